"""Data-quality rules: days without wear, a device that stopped reporting, missing diaries.

These keep the clinical rules honest: a day the wearable was off is not a day of
inactivity, so it raises a data flag here and is unknown (never avoidance) for
the load rules.
"""

from __future__ import annotations

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History

NO_WEAR = RuleSpec(
    "data.no_wear",
    "The wearable reported but was worn less than a valid day",
    min_on_days=1,
    min_off_days=2,
    escalate_after_days=3,
    thresholds={"valid_wear_min": 600.0},
)
DEVICE_SILENT = RuleSpec(
    "data.device_silent",
    "The wearable sent nothing at all for consecutive days",
    min_on_days=2,
    min_off_days=1,
    escalate_after_days=7,
    thresholds={"min_days": 2},
)
MISSING_DIARY = RuleSpec(
    "data.missing_diary",
    "No diary entry on consecutive days",
    min_on_days=2,
    min_off_days=1,
    escalate_after_days=5,
    thresholds={"min_days": 2},
)


def no_wear(h: History) -> list[DaySignal]:
    """Days the device reported with less than a valid day of wear."""
    return [
        DaySignal(
            d.day,
            None if not d.reported else not d.valid_wear,
            severity=Severity.INFO,
            evidence={"wear_min": num(d.wear_min, 1), "hr_samples": d.hr_samples},
        )
        for d in h.days
    ]


def device_silent(h: History) -> list[DaySignal]:
    """Days on which no sample of any kind arrived."""
    out = []
    last_seen: str | None = None
    for d in h.days:
        if d.reported:
            last_seen = d.day.isoformat()
        out.append(
            DaySignal(
                d.day,
                not d.reported,
                severity=Severity.WARNING,
                evidence={"last_day_with_data": last_seen},
            )
        )
    return out


def missing_diary(h: History) -> list[DaySignal]:
    """Days without a diary entry."""
    return [
        DaySignal(d.day, d.day not in h.diary, severity=Severity.INFO, evidence={}) for d in h.days
    ]
