"""One patient-day of objective load as the pacing rules see it, and the plan measures."""

from __future__ import annotations

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
    def silent(cls, day: date) -> DayLoad:
        """A day on which the device sent nothing at all."""
        return cls(day, 0.0, 0.0, 0, None, 0.0, 0, reported=False, valid_wear=False)


def from_row(row: MetricsRow, *, min_wear_min: float = VALID_WEAR_MIN) -> DayLoad:
    """The pacing view of a daily-metrics row (Banister TRIMP, else Edwards TRIMP)."""
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
        from_row(by_day[d], min_wear_min=min_wear_min) if d in by_day else DayLoad.silent(d)
        for d in date_range(start, end)
    ]


def values(days: Sequence[DayLoad], m: Measure) -> list[float | None]:
    """The load of each day in measure `m` (None on non-valid days)."""
    return [d.value(m) for d in days]
