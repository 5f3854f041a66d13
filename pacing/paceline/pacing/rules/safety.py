"""Safety rules: a positive red-flag screen, and an exposure session stopped at the stop rule.

``exposure.stopped`` opens on the day of an exposure session recorded as
stopped (`paceline.pacing.exposure.stop_reason`: the patient stopped it, or a
fear or distress rating passed the patient's stop threshold) and closes the
next day without one; a warning, so the alert policy pushes it to the care
team (outside quiet hours) for the debrief.

``safety.red_flag`` opens on the day the patient answers yes to any red-flag
question (`paceline.pacing.redflags`; Finucane et al. 2020, NICE NG59) and
stays open while progression is paused, that is until a clinician clears the
pause; it is critical from its first day. It reads the screens only: a pain
rating, however high, never opens it.

References
----------
Finucane LM, Downie A, Mercer C, et al. International framework for red flags
for potential serious spinal pathologies. J Orthop Sports Phys Ther
2020;50(7):350-372.
"""

from __future__ import annotations

from paceline.pacing.exposure import SessionStatus
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History
from paceline.pacing.redflags import pathology

RED_FLAG = RuleSpec(
    "safety.red_flag",
    "Positive red-flag screen: progression paused until a clinician clears it",
    min_on_days=1,
    min_off_days=1,
)


def red_flag(h: History) -> list[DaySignal]:
    """Each day: a positive screen opens the flag; an uncleared pause keeps it open."""
    out = []
    for i, d in h.evaluated():
        paused = bool(h.paused[i]) if len(h.paused) == len(h.days) else False
        screens = h.red_flags.get(d.day, ())
        positive = sorted({c for s in screens for c in s.positive})
        out.append(
            DaySignal(
                d.day,
                enter=bool(screens),
                hold=paused,
                severity=Severity.CRITICAL,
                evidence={
                    "positive": list(positive),
                    "screens_for": [pathology(c) for c in positive],
                    "screen_ids": [s.screen_id for s in screens],
                    # Each screen's own care, beside its id: a re-notification about a
                    # new screen says how soon that answer needs care.
                    "screen_care": [None if s.care is None else s.care.value for s in screens],
                    "care": sorted({c.value for s in screens if (c := s.care) is not None}),
                    "paused": paused,
                },
                thresholds={"any_yes": True},
            )
        )
    return out


EXPOSURE_STOPPED = RuleSpec(
    "exposure.stopped",
    "Exposure session stopped at the stop rule: debrief before the step is repeated",
    min_on_days=1,
    min_off_days=1,
)


def exposure_stopped(h: History) -> list[DaySignal]:
    """Each day: the exposure sessions planned for it that were stopped."""
    out = []
    for i, d in h.evaluated():
        stopped = [
            s for s in h.sessions if s.planned_day == d.day and s.status is SessionStatus.STOPPED
        ]
        out.append(
            DaySignal(
                d.day,
                enter=bool(stopped),
                hold=False,
                severity=Severity.WARNING,
                evidence={
                    "sessions": [s.session_id for s in stopped],
                    "items": [s.item_id for s in stopped],
                    "peak_distress": [s.peak_distress for s in stopped],
                    "debrief": [s.debrief for s in stopped],
                },
                thresholds={"stop_distress": h.settings[i].exposure_stop_distress},
            )
        )
    return out
