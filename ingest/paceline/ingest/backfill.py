"""A simulated gateway's history: whole patient-days committed to the spool as the daemon commits them.

Streaming weeks of a cohort through the simulated BLE stack at 1 Hz takes far
longer than a demo has: every second of every patient is a physiological model
step, a GATT payload encoded by the simulated device, decoded by the daemon's
device task and buffered for the spool (measured on the shared 2-core machine:
about 2,300 simulated seconds per real second for one wearable, so sixty days
of eight patients would take over four hours). For a back-filled history this
module writes each patient-day straight into the gateway's spool, in the
daemon's own record format (`Chunk.of_samples`), from a few numbers the caller
decides (when the wearable was put on, how long it was worn, how many minutes
were active, how many steps). The gateway's uploader then moves the records
into the store exactly as it moves live ones (batch ids, routing, quarantine,
the rollup's spans), so from the spool on nothing differs from a live day.

The device is a PineTime-style watch (`pinetime` profile, as the simulator's
`WearableKind.PINETIME`): heart rate without a contact bit and without RR
intervals, and a step counter. The history is thinner than a live 1 Hz stream:
one heart-rate sample every `HR_EVERY_S` seconds while worn (the rollup
bridges gaps of up to 15 s, so every worn minute is covered) and one step row
per minute; a watch logging its optical heart rate every few seconds is what
such a device records when it is not streaming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from paceline.devices.simulator.physiology import Patient
from paceline.ingest import IngestError
from paceline.ingest.chunks import HR_DTYPE, STEP_DTYPE, Chunk, epoch_us

HR_EVERY_S: Final = 5
"""Seconds between two logged heart-rate samples (below the rollup's 15 s gap limit)."""

ACTIVE_INTENSITY: Final = 0.47
"""Fraction of heart-rate reserve while walking briskly: moderate (>= 40 %, Garber et al. 2011)."""

REST_INTENSITY: Final = 0.05
"""Fraction of heart-rate reserve while up and about but not walking."""

ACTIVE_CADENCE_SPM: Final = (105.0, 118.0)
"""Cadence range of the active minutes (>= 100 steps/min is moderate, Tudor-Locke et al. 2018)."""

BACKGROUND_CADENCE_MAX: Final = 15
"""Most steps in a minute of pottering about (below the 20 steps/min of sedentary, ibid.)."""

TAU_S: Final = 45.0
"""Time constant of the heart rate following the activity (between rise and recovery)."""

WALK_STARTS: Final = (0.2, 0.6)
"""Where in the worn window the day's two walks start (fractions of the window)."""


class BackfillError(IngestError, ValueError):
    """A day that cannot be simulated as asked (a negative duration, a window beyond the day)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} = {value!r}: {reason}")


@dataclass(frozen=True)
class WornDay:
    """One patient-day to simulate: when the watch was worn and how active the patient was."""

    start: datetime
    """When the watch was put on (aware)."""
    wear_min: int
    active_min: int
    steps: int

    def __post_init__(self) -> None:
        """Refuse what no day can hold."""
        if self.start.tzinfo is None:
            raise BackfillError("start", self.start, "must be an aware datetime")
        for name in ("wear_min", "active_min", "steps"):
            if getattr(self, name) < 0:
                raise BackfillError(name, getattr(self, name), "must not be negative")
        if self.wear_min > 24 * 60:
            raise BackfillError("wear_min", self.wear_min, "a day has 1,440 minutes")
        if self.active_min > self.wear_min:
            raise BackfillError("active_min", self.active_min, "cannot exceed the minutes worn")


def _active_mask(day: WornDay) -> NDArray[np.bool_]:
    """Which worn minutes are active: two walks, at `WALK_STARTS` of the window."""
    active = np.zeros(day.wear_min, dtype=np.bool_)
    first = math.ceil(day.active_min / 2)
    for frac, length in zip(WALK_STARTS, (first, day.active_min - first), strict=True):
        start = min(int(frac * day.wear_min), day.wear_min - length)
        active[start : start + length] = True
    # Overlapping walks (a very short window) still give the asked number of minutes.
    short = day.active_min - int(active.sum())
    if short > 0:
        active[np.flatnonzero(~active)[:short]] = True
    return active


def _steps_per_minute(
    day: WornDay, active: NDArray[np.bool_], rng: np.random.Generator
) -> NDArray[np.int32]:
    """Steps in each worn minute: brisk cadence while active, a little pottering otherwise."""
    steps = np.zeros(day.wear_min, dtype=np.int32)
    steps[active] = rng.uniform(*ACTIVE_CADENCE_SPM, int(active.sum())).round().astype(np.int32)
    left = max(0, day.steps - int(steps.sum()))
    idle = np.flatnonzero(~active)
    if left and idle.size:
        per = min(BACKGROUND_CADENCE_MAX, max(1, math.ceil(left / idle.size)))
        chosen = rng.permutation(idle)[: math.ceil(left / per)]
        steps[chosen] = per
        # The last pottering minute takes what is left, so the day's total is exact.
        steps[chosen[-1]] = per - (per * chosen.size - left)
    return steps


def _heart_rate(
    patient: Patient, active: NDArray[np.bool_], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Heart rate every `HR_EVERY_S` s: Karvonen targets, a first-order lag, slow drift."""
    per_min = 60 // HR_EVERY_S
    reserve = patient.max_hr_bpm - patient.resting_hr_bpm
    intensity = np.where(np.repeat(active, per_min), ACTIVE_INTENSITY, REST_INTENSITY)
    target = patient.resting_hr_bpm + intensity * reserve
    if not target.size:
        return target
    # A first-order lag towards the target (exact for the sampling step), started at rest.
    alpha = 1.0 - math.exp(-HR_EVERY_S / TAU_S)
    lagged, _ = lfilter([alpha], [1.0, alpha - 1.0], target, zi=[(1.0 - alpha) * target[0]])
    # An AR(1) drift of a few bpm (posture, digestion), exact for the sampling step.
    keep = math.exp(-HR_EVERY_S / 180.0)
    shocks = rng.normal(0.0, 2.0 * math.sqrt(1 - keep * keep), target.size)
    drift = lfilter([1.0], [1.0, -keep], shocks)
    return np.asarray(lagged + drift, dtype=np.float64)


def day_chunks(
    patient_id: int, device_id: int, patient: Patient, day: WornDay, *, seed: int
) -> list[Chunk]:
    """The spool records of one simulated day of a PineTime-style watch (heart rate, steps)."""
    if day.wear_min == 0:
        return []
    rng = np.random.default_rng(seed)
    active = _active_mask(day)
    start_us = epoch_us(day.start)
    hr = _heart_rate(patient, active, rng)
    hr_rows = np.zeros(hr.size, dtype=HR_DTYPE)
    hr_rows["time_us"] = start_us + np.arange(1, hr.size + 1, dtype=np.int64) * HR_EVERY_S * 10**6
    hr_rows["received_us"] = hr_rows["time_us"]
    hr_rows["bpm"] = np.clip(hr.round(), 30, 255).astype(np.uint16)
    hr_rows["contact"] = -1  # InfiniTime sends no contact bit
    hr_rows["energy_kj"] = -1
    per_min = _steps_per_minute(day, active, rng)
    step_rows = np.zeros(day.wear_min, dtype=STEP_DTYPE)
    # A step row counts the steps of the minute that ends at its time.
    step_rows["time_us"] = start_us + np.arange(1, day.wear_min + 1, dtype=np.int64) * 60 * 10**6
    step_rows["received_us"] = step_rows["time_us"]
    step_rows["steps"] = per_min
    return [
        Chunk.of_samples("hr", patient_id, device_id, hr_rows),
        Chunk.of_samples("steps", patient_id, device_id, step_rows),
    ]


def day_end(day: WornDay) -> datetime:
    """When the last sample of the day is taken."""
    return day.start + timedelta(minutes=day.wear_min)


__all__ = ["HR_EVERY_S", "BackfillError", "WornDay", "day_chunks", "day_end"]
