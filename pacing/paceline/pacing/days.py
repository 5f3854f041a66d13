"""One patient-day of objective load as the pacing rules see it, and the plan measures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from paceline.pacing.errors import PlanError

# A day counts as valid with at least 10 hours of wear, the convention of
# accelerometer surveillance (Troiano et al. 2008, Med Sci Sports Exerc
# 40:181-188). Shorter days under-count activity and would read as avoidance.
VALID_WEAR_MIN: Final = 600.0


class Measure(StrEnum):
    """What a pacing plan counts (the values stored in `pacing_plan.measure`)."""

    ACTIVE_MINUTES = "active_minutes"
    STEPS = "steps"
    TRIMP = "trimp"

    @property
    def unit(self) -> str:
        """How the patient view names one unit of this measure (plural)."""
        return {"active_minutes": "active minutes", "steps": "steps", "trimp": "load points"}[
            self.value
        ]


def measure(name: str) -> Measure:
    """The measure called `name`, or `PlanError` listing the valid ones."""
    try:
        return Measure(name)
    except ValueError:
        valid = ", ".join(m.value for m in Measure)
        raise PlanError(f"unknown plan measure {name!r}; valid measures are {valid}") from None


@dataclass(frozen=True)
class MetricsRow:
    """The columns of one `daily_metrics` row that pacing reads."""

    day: date
    wear_min: float
    active_min: float
    steps: int
    trimp_banister: float | None
    trimp_edwards: float | None
    above_ceiling_min: float
    hr_samples: int


@dataclass(frozen=True)
class DayLoad:
    """One local day: wear, load in each measure, and whether the day is valid for rules."""

    day: date
    wear_min: float
    active_min: float
    steps: int
    trimp: float | None
    above_ceiling_min: float
    hr_samples: int
    reported: bool
    valid_wear: bool
    #: The wear a day needed to count as valid (the threshold `valid_wear` was decided with).
    valid_wear_min: float = VALID_WEAR_MIN
    #: Metrics of the stored row that were not numbers (NaN, ±inf): the day is skipped.
    bad_metrics: tuple[str, ...] = ()

    def value(self, m: Measure) -> float | None:
        """The day's load in measure `m`, or None when the day is not valid (non-wear)."""
        if not self.valid_wear:
            return None
        if m is Measure.ACTIVE_MINUTES:
            return self.active_min
        if m is Measure.STEPS:
            return float(self.steps)
        return self.trimp

    @classmethod
    def silent(cls, day: date, *, min_wear_min: float = VALID_WEAR_MIN) -> DayLoad:
        """A day on which the device sent nothing at all."""
        return cls(
            day,
            0.0,
            0.0,
            0,
            None,
            0.0,
            0,
            reported=False,
            valid_wear=False,
            valid_wear_min=min_wear_min,
        )


_FLOAT_METRICS: Final = (
    "wear_min",
    "active_min",
    "trimp_banister",
    "trimp_edwards",
    "above_ceiling_min",
)


def bad_metrics(row: MetricsRow) -> tuple[str, ...]:
    """The metrics of a row that are present but not finite numbers (NaN, ±inf)."""
    out = []
    for name in _FLOAT_METRICS:
        value = getattr(row, name)
        if value is not None and not math.isfinite(value):
            out.append(name)
    return tuple(out)


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else 0.0


def from_row(row: MetricsRow, *, min_wear_min: float = VALID_WEAR_MIN) -> DayLoad:
    """The pacing view of a daily-metrics row (Banister TRIMP, else Edwards TRIMP).

    A row with a metric that is not a number is a reported day that no rule can
    use: its values read as zero and the day is not valid (`bad_metrics` names
    the metrics for the data-quality flag).
    """
    bad = bad_metrics(row)
    if bad:
        return DayLoad(
            day=row.day,
            wear_min=_finite(row.wear_min),
            active_min=_finite(row.active_min),
            steps=row.steps,
            trimp=None,
            above_ceiling_min=_finite(row.above_ceiling_min),
            hr_samples=row.hr_samples,
            reported=True,
            valid_wear=False,
            valid_wear_min=min_wear_min,
            bad_metrics=bad,
        )
    reported = row.hr_samples > 0 or row.steps > 0 or row.wear_min > 0
    trimp = row.trimp_banister if row.trimp_banister is not None else row.trimp_edwards
    return DayLoad(
        day=row.day,
        wear_min=row.wear_min,
        active_min=row.active_min,
        steps=row.steps,
        trimp=trimp,
        above_ceiling_min=row.above_ceiling_min,
        hr_samples=row.hr_samples,
        reported=reported,
        valid_wear=reported and row.wear_min >= min_wear_min,
        valid_wear_min=min_wear_min,
    )


def date_range(start: date, end: date) -> Iterator[date]:
    """Every day from `start` to `end`, both included."""
    for i in range((end - start).days + 1):
        yield start + timedelta(days=i)


def series(
    rows: Iterable[MetricsRow], start: date, end: date, *, min_wear_min: float = VALID_WEAR_MIN
) -> list[DayLoad]:
    """One `DayLoad` per day from `start` to `end`; a day without a row is a silent day."""
    by_day = {r.day: r for r in rows}
    return [
        from_row(by_day[d], min_wear_min=min_wear_min)
        if d in by_day
        else DayLoad.silent(d, min_wear_min=min_wear_min)
        for d in date_range(start, end)
    ]


def values(days: Sequence[DayLoad], m: Measure) -> list[float | None]:
    """The load of each day in measure `m` (None on non-valid days)."""
    return [d.value(m) for d in days]
