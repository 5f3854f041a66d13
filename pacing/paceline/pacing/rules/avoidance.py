"""Avoidance (bust) rules: under quota for days, falling chronic load, skipped exposures, fear.

The fear-avoidance model (Vlaeyen & Linton 2000) links pain-related fear to
avoiding activity and, over time, disuse. These rules look for its signs in
objective data: load well below quota for several valid days, a chronic load
that keeps falling while the quota is not met, exposure sessions planned but not
done, and high fear of movement on low-activity days. Non-wear days are never
evidence of avoidance: they are unknown, not zero.

References
----------
Vlaeyen JWS, Linton SJ. Fear-avoidance and its consequences in chronic
musculoskeletal pain: a state of the art. Pain 2000;85:317-332.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Final

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History
from paceline.pacing.load import MIN_REFERENCE_DAYS

#: An open under-quota flag closes only once load is back above this multiple of quota.
UNDER_HOLD_RATIO: Final = 0.85
DECLINE_LOOKBACK_DAYS: Final = 14
#: Chronic load now below this fraction of its value two weeks ago is a decline …
DECLINE_ENTER: Final = 0.85
#: … and the decline flag stays open while it is below this fraction.
DECLINE_HOLD: Final = 0.95
EXPOSURE_WINDOW_DAYS: Final = 7
MIN_NOT_DONE: Final = 2
# No validated cut-off exists for a single 0-10 fear-of-movement rating; 7 and
# above is the top third of the scale.
HIGH_FEAR: Final = 7.0
HIGH_FEAR_HOLD: Final = 6.0

UNDER_QUOTA = RuleSpec(
    "bust.under_quota",
    "Load below the bust fraction of quota on consecutive valid days",
    min_on_days=3,
    min_off_days=2,
    escalate_after_days=14,
)
CHRONIC_DECLINE = RuleSpec(
    "bust.chronic_decline",
    "Chronic (28-day EWMA) load falling over two weeks while the quota is not met",
    min_on_days=3,
    min_off_days=3,
)
SKIPPED_EXPOSURE = RuleSpec(
    "bust.skipped_exposure",
    "Exposure sessions planned but skipped or missed",
    min_on_days=1,
    min_off_days=3,
)
FEAR_AVOIDANCE = RuleSpec(
    "bust.fear_avoidance",
    "High fear of movement on low-activity days",
    min_on_days=2,
    min_off_days=2,
)


def under_quota(h: History) -> list[DaySignal]:
    """Each valid day's load against quota × bust fraction."""
    out = []
    for i, d in h.evaluated():
        v, q = h.values[i], h.quotas[i]
        if math.isnan(v) or math.isnan(q) or q <= 0:
            out.append(DaySignal(d.day, None))
            continue
        ratio = v / q
        bust = h.settings[i].bust_fraction
        out.append(
            DaySignal(
                d.day,
                enter=bool(ratio < bust),
                hold=bool(ratio < UNDER_HOLD_RATIO),
                evidence={"load": num(v), "quota": num(q), "ratio": num(ratio)},
                thresholds={
                    "bust_fraction": bust,
                    "hold_ratio": UNDER_HOLD_RATIO,
                    "min_days": UNDER_QUOTA.min_on_days,
                    "escalate_after_days": UNDER_QUOTA.escalate_after_days,
                },
            )
        )
    return out


def chronic_decline(h: History) -> list[DaySignal]:
    """Chronic load against its value two weeks earlier, on valid days below quota."""
    chronic, n_valid = h.load.chronic, h.load.n_valid
    out = []
    for i, d in h.evaluated():
        j = i - DECLINE_LOOKBACK_DAYS
        if j < 0 or n_valid[j] < MIN_REFERENCE_DAYS or math.isnan(h.load.loads[i]):
            out.append(DaySignal(d.day, None))
            continue
        if not chronic[j] > 0:
            out.append(DaySignal(d.day, None))
            continue
        fraction = chronic[i] / chronic[j]
        q = h.quotas[i]
        below_plan = math.isnan(q) or h.values[i] < q
        out.append(
            DaySignal(
                d.day,
                enter=bool(fraction < DECLINE_ENTER) and below_plan,
                hold=bool(fraction < DECLINE_HOLD) and below_plan,
                evidence={
                    "chronic": num(chronic[i]),
                    "chronic_14d_ago": num(chronic[j]),
                    "fraction": num(fraction),
                    "quota": num(q),
                    "measure": h.measure.value,
                },
                thresholds={
                    "lookback_days": DECLINE_LOOKBACK_DAYS,
                    "enter_fraction": DECLINE_ENTER,
                    "hold_fraction": DECLINE_HOLD,
                },
            )
        )
    return out


def skipped_exposure(h: History) -> list[DaySignal]:
    """Exposure sessions planned in the last week that were skipped or are overdue."""
    out = []
    for i, d in h.evaluated():
        first = d.day - timedelta(days=EXPOSURE_WINDOW_DAYS - 1)
        planned = [s for s in h.sessions if first <= s.planned_day <= d.day]
        if not planned:
            out.append(DaySignal(d.day, False))
            continue
        as_of = h.day_end(i)
        not_done = [s for s in planned if s.not_done(as_of)]
        enough = len(not_done) >= MIN_NOT_DONE and 2 * len(not_done) >= len(planned)
        out.append(
            DaySignal(
                d.day,
                enter=enough,
                hold=len(not_done) >= 1,
                evidence={
                    "planned": len(planned),
                    "not_done": len(not_done),
                    "sessions": [s.session_id for s in not_done],
                },
                thresholds={"window_days": EXPOSURE_WINDOW_DAYS, "min_not_done": MIN_NOT_DONE},
            )
        )
    return out


def fear_avoidance(h: History) -> list[DaySignal]:
    """High fear of movement on days with load below the bust fraction of quota."""
    out = []
    for i, d in h.evaluated():
        fear, v, q = h.fear[i], h.values[i], h.quotas[i]
        if math.isnan(fear) or math.isnan(v) or math.isnan(q) or q <= 0:
            out.append(DaySignal(d.day, None))
            continue
        ratio = v / q
        bust = h.settings[i].bust_fraction
        out.append(
            DaySignal(
                d.day,
                enter=bool(fear >= HIGH_FEAR and ratio < bust),
                hold=bool(fear >= HIGH_FEAR_HOLD and ratio < UNDER_HOLD_RATIO),
                severity=Severity.WARNING,
                evidence={"fear_of_movement": num(fear, 1), "load": num(v), "ratio": num(ratio)},
                thresholds={
                    "fear": HIGH_FEAR,
                    "fear_hold": HIGH_FEAR_HOLD,
                    "bust_fraction": bust,
                    "hold_ratio": UNDER_HOLD_RATIO,
                },
            )
        )
    return out
