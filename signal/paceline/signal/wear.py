"""Wear time: tell "not worn" apart from "resting", minute by minute.

A day without data must never read as a day without activity. So every minute gets
a reason: worn, or not worn because there was no data, because the sensor reported no
skin contact, because the signal was flat (a sensor on a table repeating one value),
or — for step-only bands — because there was no movement for far longer than anyone
sits still awake (Choi et al. 2011).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import InputShapeError, ParameterError
from paceline.signal.runs import Runs, true_runs
from paceline.signal.timebase import (
    US_PER_MIN,
    US_PER_S,
    BoolArray,
    FloatArray,
    Int8Array,
    IntArray,
    Minutes,
    as_epoch_us,
    check_sorted,
)

# Ten minutes of one unchanging reading: a worn sensor shows beat-to-beat variation
# within seconds even in deep sleep, a sensor lying on a table repeats itself.
DEFAULT_FLAT_MIN_S: Final = 600.0
# Samples further apart than this do not continue a flat run.
DEFAULT_FLAT_MAX_GAP_S: Final = 60.0
DEFAULT_MIN_COVERAGE: Final = 0.5
# Choi et al. (2011): 90 min of zero counts is non-wear, allowing 2 min of movement
# inside it when 30 min before and after that movement are zero.
CHOI_NONWEAR_MIN: Final = 90
CHOI_INTERRUPTION_MIN: Final = 2
CHOI_GUARD_MIN: Final = 30


class WearReason(IntEnum):
    """Why a minute counts as worn or not."""

    WORN = 0
    NO_DATA = 1
    NO_CONTACT = 2
    FLAT_SIGNAL = 3
    NO_MOVEMENT = 4


@dataclass(frozen=True, slots=True)
class WearMinutes:
    """One `WearReason` per minute from `start_us`."""

    start_us: int
    reason: Int8Array

    @property
    def n_minutes(self) -> int:
        """Number of minutes covered."""
        return int(self.reason.shape[0])

    @property
    def worn(self) -> BoolArray:
        """Mask of worn minutes."""
        return np.asarray(self.reason == WearReason.WORN, dtype=np.bool_)

    @property
    def worn_min(self) -> float:
        """Minutes worn."""
        return float(np.count_nonzero(self.reason == WearReason.WORN))

    def minutes(self, reason: WearReason) -> int:
        """Number of minutes with the given reason."""
        return int(np.count_nonzero(self.reason == reason))


def flat_mask(
    time: npt.ArrayLike,
    bpm: npt.ArrayLike,
    *,
    min_duration_s: float = DEFAULT_FLAT_MIN_S,
    max_gap_s: float = DEFAULT_FLAT_MAX_GAP_S,
) -> BoolArray:
    """Samples inside runs of identical readings lasting at least `min_duration_s`.

    A run is a stretch of consecutive samples with exactly the same value and no gap
    longer than `max_gap_s`; its duration is ``t_last - t_first``. Heart rate measured
    on skin varies from beat to beat (Task Force 1996), so a reading that does not
    change for ten minutes comes from a sensor that is not on a body.
    """
    if min_duration_s <= 0:
        raise ParameterError("min_duration_s", min_duration_s, "must be > 0")
    t = as_epoch_us(time)
    check_sorted(t)
    x = np.asarray(bpm, dtype=np.float64).reshape(-1)
    if x.shape[0] != t.shape[0]:
        raise InputShapeError("bpm", t.shape[0], x.shape[0])
    n = t.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.bool_)
    same = (x[1:] == x[:-1]) & (np.diff(t) <= max_gap_s * US_PER_S)
    runs = true_runs(same)
    # Run r of "same" pairs [start, stop) spans samples start .. stop inclusive.
    duration = t[runs.stop] - t[runs.start]
    long = runs.where(duration >= min_duration_s * US_PER_S)
    return Runs(long.start, long.stop + 1).to_mask(n)


def minute_of(time_us: IntArray, start_us: int, n_minutes: int) -> IntArray:
    """Minute index of each time stamp within the day (only those inside it)."""
    idx = (time_us - start_us) // US_PER_MIN
    return idx[(idx >= 0) & (idx < n_minutes)]


def step_nonwear(
    steps_per_minute: npt.ArrayLike,
    *,
    nonwear_min: int = CHOI_NONWEAR_MIN,
    interruption_min: int = CHOI_INTERRUPTION_MIN,
    guard_min: int = CHOI_GUARD_MIN,
) -> BoolArray:
    """Non-wear minutes of a step-only band by the Choi et al. (2011) rule.

    Non-wear is a stretch of at least `nonwear_min` minutes with zero steps (minutes
    without data count as zero), which may contain interruptions of at most
    `interruption_min` minutes with steps provided the `guard_min` minutes on both
    sides of each interruption are zero.

    References
    ----------
    Choi L, Liu Z, Matthews CE, Buchowski MS. Validation of accelerometer wear and
    nonwear time classification algorithm. Med Sci Sports Exerc 2011;43(2):357-364.
    """
    if nonwear_min < 1 or interruption_min < 0 or guard_min < 0:
        raise ParameterError("nonwear_min", nonwear_min, "windows must be positive")
    s = np.asarray(steps_per_minute, dtype=np.float64).reshape(-1)
    n = s.shape[0]
    zero = ~(s > 0)
    runs = true_runs(zero)
    if len(runs) >= 2:
        gap = runs.start[1:] - runs.stop[:-1]
        lengths = runs.length
        join = (gap <= interruption_min) & (lengths[:-1] >= guard_min) & (lengths[1:] >= guard_min)
        split = ~join
        runs = Runs(
            runs.start[np.concatenate(([True], split))],
            runs.stop[np.concatenate((split, [True]))],
        )
    return runs.where(runs.length >= nonwear_min).to_mask(n)


def wear_minutes(
    *,
    start_us: int,
    n_minutes: int,
    hr: Minutes | None,
    no_contact_time_us: npt.ArrayLike | None = None,
    flat_time_us: npt.ArrayLike | None = None,
    steps_per_minute: FloatArray | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> WearMinutes:
    """Classify every minute of a day as worn or as not worn for a stated reason.

    With heart rate available that day (any cleaned value in `hr`):

    - worn if the cleaned heart rate covers at least `min_coverage` of the minute, or if
      steps were counted in it (movement proves the band is on);
    - otherwise ``NO_CONTACT`` if the sensor reported no contact in that minute,
      ``FLAT_SIGNAL`` if it sat in a flat run (`flat_mask`), else ``NO_DATA``.

    Without any heart rate that day (a step-only band): minutes with no step row are
    ``NO_DATA``, minutes inside `step_nonwear` stretches are ``NO_MOVEMENT``, the rest
    are worn; a minute without steps in which the sensor reported no contact (or sat in
    a flat run) is ``NO_CONTACT`` (``FLAT_SIGNAL``) instead. Without either stream
    every minute is ``NO_DATA``.

    Parameters
    ----------
    start_us, n_minutes
        The day: minute ``i`` starts at ``start_us + i`` minutes.
    hr
        Per-minute cleaned heart rate with coverage (`timebase.per_minute`), or None.
    no_contact_time_us
        Times of samples the sensor flagged as having no skin contact.
    flat_time_us
        Times of samples inside flat runs.
    steps_per_minute
        Steps per minute (NaN where no row), or None when the device counts no steps.
    min_coverage
        Fraction of a minute the heart rate must cover for the minute to count as worn.
    """
    if not 0.0 < min_coverage <= 1.0:
        raise ParameterError("min_coverage", min_coverage, "must be in (0, 1]")
    if hr is not None and hr.n_minutes != n_minutes:
        raise InputShapeError("hr minutes", n_minutes, hr.n_minutes)
    if steps_per_minute is not None and steps_per_minute.shape[0] != n_minutes:
        raise InputShapeError("steps_per_minute", n_minutes, steps_per_minute.shape[0])
    reason = np.full(n_minutes, WearReason.NO_DATA, dtype=np.int8)
    has_hr = hr is not None and bool(np.any(hr.coverage > 0))
    stepped = (
        np.zeros(n_minutes, dtype=np.bool_)
        if steps_per_minute is None
        else np.asarray(steps_per_minute > 0, dtype=np.bool_)
    )
    if hr is not None and has_hr:
        if flat_time_us is not None:
            reason[minute_of(as_epoch_us(flat_time_us), start_us, n_minutes)] = (
                WearReason.FLAT_SIGNAL
            )
        if no_contact_time_us is not None:
            reason[minute_of(as_epoch_us(no_contact_time_us), start_us, n_minutes)] = (
                WearReason.NO_CONTACT
            )
        worn = (hr.coverage >= min_coverage) | stepped
        reason[worn] = WearReason.WORN
        return WearMinutes(start_us, reason)
    if steps_per_minute is not None:
        has_row = ~np.isnan(steps_per_minute)
        reason[has_row] = WearReason.WORN
        reason[has_row & step_nonwear(steps_per_minute)] = WearReason.NO_MOVEMENT
    # A sensor that says it is off the skin outweighs a zero step count.
    for times, why in (
        (flat_time_us, WearReason.FLAT_SIGNAL),
        (no_contact_time_us, WearReason.NO_CONTACT),
    ):
        if times is not None:
            hit = np.zeros(n_minutes, dtype=np.bool_)
            hit[minute_of(as_epoch_us(times), start_us, n_minutes)] = True
            reason[hit & ~stepped] = why
    return WearMinutes(start_us, reason)


__all__ = [
    "CHOI_GUARD_MIN",
    "CHOI_INTERRUPTION_MIN",
    "CHOI_NONWEAR_MIN",
    "DEFAULT_FLAT_MIN_S",
    "WearMinutes",
    "WearReason",
    "flat_mask",
    "minute_of",
    "step_nonwear",
    "wear_minutes",
]
