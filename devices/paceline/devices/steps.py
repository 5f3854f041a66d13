"""Steps per interval from what wearables actually send: a cadence, or a cumulative counter.

Both helpers are immutable values: `advance` returns the next state together with the
whole steps of the interval that just ended, so the ingest daemon can keep the state per
device, persist it next to its spool and carry it across reconnects and restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

MAX_CADENCE_GAP_S: Final = 10.0
"""Longest gap between RSC notifications that is still integrated.

RSC sensors notify about once a second; a longer silence means a dropped link or a
sensor asleep, and what the cadence did meanwhile is unknown, so the gap is not filled
with a guess (that would invent steps the patient may never have taken).
"""


@dataclass(frozen=True, slots=True)
class CadenceIntegrator:
    """Integrate instantaneous cadence (steps/min) over time into whole steps.

    Each interval between two notifications contributes the trapezoid
    `(c_prev + c_now) / 2 * dt / 60` steps; the fractional remainder is carried so that
    many short intervals add up to the right total instead of rounding away.
    """

    last_time_s: float | None = None
    last_cadence_spm: float = 0.0
    carry_steps: float = 0.0

    def advance(self, time_s: float, cadence_spm: float) -> tuple[CadenceIntegrator, int]:
        """Take a cadence sample at monotonic `time_s`; return the new state and whole steps since the last."""
        if cadence_spm < 0:
            raise ValueError(f"cadence must not be negative, got {cadence_spm}")
        start = CadenceIntegrator(last_time_s=time_s, last_cadence_spm=cadence_spm)
        if self.last_time_s is None:
            return start, 0
        elapsed_s = time_s - self.last_time_s
        if elapsed_s == 0:
            # Two notifications handed over in one burst (a busy event loop): the interval
            # has no length, so no steps; the next interval still starts from here.
            return replace(self, last_cadence_spm=cadence_spm), 0
        if elapsed_s < 0 or elapsed_s > MAX_CADENCE_GAP_S:
            # A clock that went backwards or a long gap: restart from this sample and drop
            # the carried fraction, which belonged to a run that has ended.
            return start, 0
        total = (self.last_cadence_spm + cadence_spm) / 2 * elapsed_s / 60 + self.carry_steps
        whole = math.floor(total)
        return (
            CadenceIntegrator(
                last_time_s=time_s, last_cadence_spm=cadence_spm, carry_steps=total - whole
            ),
            whole,
        )


@dataclass(frozen=True, slots=True)
class StepCounter:
    """Turn a cumulative step counter (InfiniTime's) into steps per interval.

    The first value only sets the baseline: what the counter held before it says nothing
    about this interval. A value lower than the previous one is a device reset (InfiniTime
    zeroes at midnight, a reboot zeroes too, a uint32 wrap looks the same); the steps of
    the interval are then the new value, counted up from zero, never a negative number.
    """

    last_count: int | None = None

    def advance(self, count: int) -> tuple[StepCounter, int]:
        """Take a counter value; return the new state and the steps since the previous value."""
        if count < 0:
            raise ValueError(f"a step counter cannot be negative, got {count}")
        if self.last_count is None:
            return StepCounter(count), 0
        if count < self.last_count:
            return StepCounter(count), count
        return StepCounter(count), count - self.last_count


FRESH_CADENCE: Final = CadenceIntegrator()
"""An integrator that has seen no sample yet."""

FRESH_COUNTER: Final = StepCounter()
"""A counter tracker that has seen no value yet."""

__all__ = [
    "FRESH_CADENCE",
    "FRESH_COUNTER",
    "MAX_CADENCE_GAP_S",
    "CadenceIntegrator",
    "StepCounter",
]
