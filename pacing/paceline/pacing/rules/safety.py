"""Safety rules: a positive red-flag screen, and an exposure session stopped at the stop rule.

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
                    "care": sorted({c.value for s in screens if (c := s.care) is not None}),
                    "paused": paused,
                },
                thresholds={"any_yes": True},
            )
        )
    return out
