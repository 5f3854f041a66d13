"""Data-quality rules: days without wear, a silent device, unusable metrics, missing diaries.

These keep the clinical rules honest: a day the wearable was off is not a day of
inactivity, so it raises a data flag here and is unknown (never avoidance) for
the load rules. A daily-metrics row with a value that is not a number (NaN or
infinite, from a defect upstream) is skipped the same way, and its flag names
the day and the metrics, so that one bad row neither poisons the baseline nor
blocks the patient's later evaluations.
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
)
DEVICE_SILENT = RuleSpec(
    "data.device_silent",
    "The wearable sent nothing at all for consecutive days",
    min_on_days=2,
    min_off_days=1,
    escalate_after_days=7,
)
BAD_METRICS = RuleSpec(
    "data.bad_metrics",
    "The day's metrics held values that are not numbers (NaN or infinite); the day was skipped",
    min_on_days=1,
    min_off_days=1,
)
MISSING_DIARY = RuleSpec(
    "data.missing_diary",
    "No diary entry on consecutive days",
    min_on_days=2,
    min_off_days=1,
    escalate_after_days=5,
)


def no_wear(h: History) -> list[DaySignal]:
    """Days the device reported with less than a valid day of wear."""
    return [
        DaySignal(
            d.day,
            None if not d.reported or d.bad_metrics else not d.valid_wear,
            severity=Severity.INFO,
            evidence={"wear_min": num(d.wear_min, 1), "hr_samples": d.hr_samples},
            thresholds={"valid_wear_min": d.valid_wear_min},
        )
        for _, d in h.evaluated()
    ]


def bad_metrics(h: History) -> list[DaySignal]:
    """Days whose daily-metrics row held values that are not numbers (the day is skipped)."""
    return [
        DaySignal(
            d.day,
            bool(d.bad_metrics) if d.reported else None,
            severity=Severity.WARNING,
            evidence={"metrics": list(d.bad_metrics)},
        )
        for _, d in h.evaluated()
    ]


def device_silent(h: History) -> list[DaySignal]:
    """Days on which no sample of any kind arrived."""
    out = []
    before = h.last_reported_before
    last_seen: str | None = None if before is None else before.isoformat()
    for i, d in enumerate(h.days):
        if d.reported:
            last_seen = d.day.isoformat()
        if i < h.first:
            continue
        out.append(
            DaySignal(
                d.day,
                not d.reported,
                severity=Severity.WARNING,
                evidence={"last_day_with_data": last_seen},
                thresholds={"min_days": DEVICE_SILENT.min_on_days},
            )
        )
    return out


def missing_diary(h: History) -> list[DaySignal]:
    """Days without a diary entry."""
    return [
        DaySignal(
            d.day,
            d.day not in h.diary,
            severity=Severity.INFO,
            thresholds={"min_days": MISSING_DIARY.min_on_days},
        )
        for _, d in h.evaluated()
    ]
