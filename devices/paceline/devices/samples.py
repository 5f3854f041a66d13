"""Readings turned into rows of the raw streams: heart rate, RR intervals, steps, battery.

`derive_samples` is pure: it takes a `Reading` and the device's `StreamState` and returns
the next state with the samples the reading yields. The state (step integrator and
counter) is a plain value the ingest daemon keeps per device and may persist, so a
reconnect or a daemon restart does not count a cumulative counter twice.

Time of each row:

- heart rate: the receipt stamp (`ReceiveStamp.time`); the notification carries no time.
- RR intervals: beats are laid end to end from the previous beat (see `place_beats`),
  anchored to the receipt when the chain starts or breaks, so every beat gets its own,
  strictly increasing time.
- steps: the steps of the interval that ended at the receipt of the notification.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from paceline.devices.events import Reading
from paceline.devices.gatt import (
    BatteryLevel,
    HeartRateMeasurement,
    MotionStepCount,
    RSCMeasurement,
)
from paceline.devices.steps import FRESH_CADENCE, FRESH_COUNTER, CadenceIntegrator, StepCounter


@dataclass(frozen=True, slots=True)
class HeartRateSample:
    """One heart-rate notification (`hr_sample` row)."""

    time: datetime
    bpm: int
    sensor_contact: bool | None
    energy_kj: int | None

    @property
    def has_reading(self) -> bool:
        """False for 0 bpm, which straps send without a reading: count it, do not store it."""
        return self.bpm != 0


@dataclass(frozen=True, slots=True)
class RRIntervalSample:
    """One beat-to-beat interval, dated at the end of its beat (`rr_interval` row)."""

    time: datetime
    rr_ms: float


@dataclass(frozen=True, slots=True)
class StepSample:
    """Steps taken in the interval ending at `time` (`step_sample` row)."""

    time: datetime
    steps: int


@dataclass(frozen=True, slots=True)
class BatterySample:
    """A battery level reading (kept on the `device` row, not in a stream table)."""

    time: datetime
    percent: int


Sample = HeartRateSample | RRIntervalSample | StepSample | BatterySample


@dataclass(frozen=True, slots=True)
class StreamState:
    """Per-device state that step derivation needs between readings."""

    cadence: CadenceIntegrator = FRESH_CADENCE
    counter: StepCounter = FRESH_COUNTER
    last_beat: datetime | None = None


RR_MAX_LAG_S: Final = 2.0
"""How far the chained beat timeline may trail the receipt before beats count as lost.

A strap sends once a second the beats that ended since the last notification (carrying
over what did not fit), so the last beat of a notification ended at most about a second
plus one beat before it was sent. A longer gap means beats went missing (a dropped
notification, a reconnect, the strap skipping artefacts), and the timeline is re-anchored.
"""

RR_MAX_LEAD_S: Final = 30.0
"""How far the chained timeline may run ahead of the receipt before it is re-anchored.

Beats cannot end after they were received, so a lead only comes from receipts stamped
late (a daemon whose event loop stalled, then handled the queued notifications in one
burst, anchors the chain late) or from implausible RR values. Thirty seconds rides out
any stall short of a hang, during which re-anchoring backwards would put beats out of
order, while still stopping a garbage interval from dating beats minutes into the future.
"""


def place_beats(
    previous_beat: datetime | None, received: datetime, rr_ms: tuple[float, ...]
) -> tuple[datetime | None, tuple[datetime, ...]]:
    """Date each beat of a notification; return the new last-beat time and the beat times.

    Beats are chained end to end from the previous notification's last beat, because RR
    intervals are measured by the strap far more precisely than receipt times: that keeps
    every beat strictly after the one before, across notifications. The chain is
    re-anchored (the last beat placed at the receipt, earlier ones dated back by the
    intervals that followed them) for the first notification, after lost beats
    (`RR_MAX_LAG_S`) and when it runs implausibly ahead (`RR_MAX_LEAD_S`). Only that last
    case can date a beat before the previous one.
    """
    if not rr_ms:
        return previous_beat, ()
    end = received
    if previous_beat is not None:
        chained = previous_beat + timedelta(milliseconds=sum(rr_ms))
        lag_s = (received - chained).total_seconds()
        if -RR_MAX_LEAD_S <= lag_s <= RR_MAX_LAG_S:
            end = chained
    times: list[datetime] = []
    for interval in reversed(rr_ms):
        times.append(end)
        end -= timedelta(milliseconds=interval)
    times.reverse()
    return times[-1], tuple(times)


def derive_samples(reading: Reading, state: StreamState) -> tuple[StreamState, tuple[Sample, ...]]:
    """The samples a reading yields and the device's next stream state."""
    value = reading.value
    time = reading.stamp.time
    if isinstance(value, HeartRateMeasurement):
        samples: list[Sample] = [
            HeartRateSample(time, value.bpm, value.sensor_contact, value.energy_kj)
        ]
        rr_ms = value.rr_ms
        last_beat, beat_times = place_beats(state.last_beat, time, rr_ms)
        samples.extend(
            RRIntervalSample(beat, interval)
            for beat, interval in zip(beat_times, rr_ms, strict=True)
        )
        return replace(state, last_beat=last_beat), tuple(samples)
    if isinstance(value, RSCMeasurement):
        cadence, steps = state.cadence.advance(reading.stamp.monotonic_s, value.cadence_spm)
        return replace(state, cadence=cadence), _steps(time, steps)
    if isinstance(value, MotionStepCount):
        counter, steps = state.counter.advance(value.steps)
        return replace(state, counter=counter), _steps(time, steps)
    if isinstance(value, BatteryLevel):
        return state, (BatterySample(time, value.percent),)
    return state, ()


def _steps(time: datetime, steps: int) -> tuple[Sample, ...]:
    """A step row only when there were steps: a zero row per notification would be noise."""
    return (StepSample(time, steps),) if steps else ()


__all__ = [
    "RR_MAX_LAG_S",
    "RR_MAX_LEAD_S",
    "BatterySample",
    "HeartRateSample",
    "RRIntervalSample",
    "Sample",
    "StepSample",
    "StreamState",
    "derive_samples",
    "place_beats",
]
