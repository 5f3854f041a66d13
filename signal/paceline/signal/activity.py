"""Minute-level activity: active and sedentary minutes, activity bouts, sedentary bouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import InputShapeError, ParameterError
from paceline.signal.runs import Runs, bouts, true_runs
from paceline.signal.timebase import BoolArray, FloatArray

#: Moderate intensity starts at 40 % of the heart-rate reserve (Garber et al. 2011).
ACTIVE_HRR_FRACTION: Final = 0.4
#: Below 30 % of the reserve is "very light" (Garber et al. 2011): sitting-level effort.
SEDENTARY_HRR_FRACTION: Final = 0.3
#: About 100 steps/min marks moderate-intensity walking (Tudor-Locke et al. 2018).
ACTIVE_CADENCE: Final = 100.0
#: 0-19 steps/min is non-movement or incidental movement (Tudor-Locke et al. 2018).
SEDENTARY_CADENCE: Final = 20.0
BOUT_MIN: Final = 10
BOUT_INTERRUPTION_MIN: Final = 2
SEDENTARY_BOUT_MIN: Final = 30


@dataclass(frozen=True, slots=True)
class MinuteActivity:
    """Per-minute activity class: active (moderate or harder) and sedentary masks."""

    active: BoolArray
    sedentary: BoolArray


def classify_minutes(
    *,
    worn: BoolArray,
    hr_bpm: FloatArray | None,
    steps_per_minute: FloatArray | None,
    active_hr_bpm: float | None,
    sedentary_hr_bpm: float | None,
    active_cadence: float = ACTIVE_CADENCE,
    sedentary_cadence: float = SEDENTARY_CADENCE,
) -> MinuteActivity:
    """Mark each worn minute active, sedentary or neither, from heart rate and cadence.

    - active: ``HR_min >= active_hr_bpm`` or ``cadence >= active_cadence``.
    - sedentary: not active, and every criterion that can be evaluated says "low":
      ``HR_min < sedentary_hr_bpm`` and ``cadence < sedentary_cadence``. A minute where
      neither can be evaluated is not sedentary (unknown is not sitting still).

    A criterion whose threshold is None or whose value is NaN does not vote. Minutes
    not worn are never active and never sedentary.

    Typical thresholds: ``active_hr = HRrest + 0.4 * (HRmax - HRrest)`` (moderate,
    Garber et al. 2011), ``sedentary_hr = HRrest + 0.3 * (HRmax - HRrest)``, cadence 100
    and 20 steps/min (Tudor-Locke et al. 2018).

    References
    ----------
    Garber CE et al. American College of Sports Medicine position stand: quantity and
    quality of exercise. Med Sci Sports Exerc 2011;43(7):1334-1359. Tudor-Locke C et al.
    How fast is fast enough? Br J Sports Med 2018;52(12):776-788.
    """
    n = worn.shape[0]
    for name, arr in (("hr_bpm", hr_bpm), ("steps_per_minute", steps_per_minute)):
        if arr is not None and arr.shape[0] != n:
            raise InputShapeError(name, n, arr.shape[0])
    active = np.zeros(n, dtype=np.bool_)
    low_votes = np.zeros(n, dtype=np.int64)
    not_low = np.zeros(n, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        if hr_bpm is not None:
            has = ~np.isnan(hr_bpm)
            if active_hr_bpm is not None:
                active |= hr_bpm >= active_hr_bpm
            if sedentary_hr_bpm is not None:
                low_votes += has & (hr_bpm < sedentary_hr_bpm)
                not_low |= has & (hr_bpm >= sedentary_hr_bpm)
        if steps_per_minute is not None:
            has = ~np.isnan(steps_per_minute)
            active |= steps_per_minute >= active_cadence
            low_votes += has & (steps_per_minute < sedentary_cadence)
            not_low |= has & (steps_per_minute >= sedentary_cadence)
    active &= worn
    sedentary = worn & ~active & (low_votes > 0) & ~not_low
    return MinuteActivity(active=active, sedentary=sedentary)


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    """Active minutes, bouts and sedentary bouts of one day."""

    active_min: float
    activity_bouts: Runs
    sedentary_min: float
    sedentary_bouts: Runs
    longest_sedentary_min: float

    @property
    def activity_bout_min(self) -> float:
        """Minutes inside activity bouts (interruptions included)."""
        return float(self.activity_bouts.total())

    @property
    def sedentary_bout_min(self) -> float:
        """Minutes inside prolonged sedentary bouts."""
        return float(self.sedentary_bouts.total())


def summarize(
    minutes: MinuteActivity,
    *,
    bout_min: int = BOUT_MIN,
    interruption_min: int = BOUT_INTERRUPTION_MIN,
    sedentary_bout_min: int = SEDENTARY_BOUT_MIN,
    asleep: npt.ArrayLike | None = None,
) -> ActivitySummary:
    """Active minutes, activity bouts, sedentary minutes and bouts from per-minute classes.

    - Activity bouts: at least `bout_min` minutes active, interruptions of up to
      `interruption_min` minutes allowed (Troiano et al. 2008; `runs.bouts`).
    - Sedentary bouts: uninterrupted runs of at least `sedentary_bout_min` sedentary
      minutes. Sedentary behaviour is *waking* behaviour (Tremblay et al. 2017), so
      minutes in `asleep` (e.g. the night window) are excluded and break runs.
    - Longest sedentary run: the longest uninterrupted waking sedentary run, any length.

    References
    ----------
    Troiano RP et al. Med Sci Sports Exerc 2008;40(1):181-188. Tremblay MS et al.
    Sedentary Behavior Research Network (SBRN) — terminology consensus project process
    and outcome. Int J Behav Nutr Phys Act 2017;14:75.
    """
    if sedentary_bout_min < 1:
        raise ParameterError("sedentary_bout_min", sedentary_bout_min, "must be >= 1")
    sedentary = minutes.sedentary
    if asleep is not None:
        sleep = np.asarray(asleep, dtype=np.bool_).reshape(-1)
        if sleep.shape[0] != sedentary.shape[0]:
            raise InputShapeError("asleep", sedentary.shape[0], sleep.shape[0])
        sedentary = sedentary & ~sleep
    sed_runs = true_runs(sedentary)
    return ActivitySummary(
        active_min=float(np.count_nonzero(minutes.active)),
        activity_bouts=bouts(
            minutes.active, min_length=bout_min, max_interruption=interruption_min
        ),
        sedentary_min=float(np.count_nonzero(sedentary)),
        sedentary_bouts=sed_runs.where(sed_runs.length >= sedentary_bout_min),
        longest_sedentary_min=float(sed_runs.longest()),
    )


__all__ = [
    "ACTIVE_CADENCE",
    "ACTIVE_HRR_FRACTION",
    "BOUT_INTERRUPTION_MIN",
    "BOUT_MIN",
    "SEDENTARY_BOUT_MIN",
    "SEDENTARY_CADENCE",
    "SEDENTARY_HRR_FRACTION",
    "ActivitySummary",
    "MinuteActivity",
    "classify_minutes",
    "summarize",
]
