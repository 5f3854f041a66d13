"""Readings turned into rows of the raw streams: heart rate, RR intervals, steps, battery.

`derive_samples` is pure: it takes a `Reading` and the device's `StreamState` and returns
the next state with the samples the reading yields. The state (step integrator and
counter) is a plain value the ingest daemon keeps per device and may persist, so a
reconnect or a daemon restart does not count a cumulative counter twice.

Time of each row:

- heart rate: the receipt stamp (`ReceiveStamp.time`); the notification carries no time.
- RR intervals: beats are laid end to end from the previous beat, anchored to the receipt
  when the chain starts or breaks (`paceline.devices.timeline.place_beats`).
- steps: the steps of the interval that ended at the receipt of the notification.

Every stream's times strictly increase per device (`paceline.devices.timeline`), so no
two rows of one device share a key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from paceline.devices.events import Reading
from paceline.devices.gatt import (
    BatteryLevel,
    HeartRateMeasurement,
    MotionStepCount,
    RSCMeasurement,
)
from paceline.devices.steps import FRESH_CADENCE, FRESH_COUNTER, CadenceIntegrator, StepCounter
from paceline.devices.timeline import place, place_beats


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
    """Per-device state between readings: step derivation and the last time of each stream.

    The times are epoch microseconds of the last row placed (None before any, and after a
    re-anchored clock, so that the new times are not pushed past the old ones).
    """

    cadence: CadenceIntegrator = FRESH_CADENCE
    counter: StepCounter = FRESH_COUNTER
    last_beat_us: int | None = None
    last_hr_us: int | None = None
    last_step_us: int | None = None

    def restarted_times(self) -> StreamState:
        """The same state with the stream times forgotten (the receive clock was re-anchored)."""
        return replace(self, last_beat_us=None, last_hr_us=None, last_step_us=None)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _us(time: datetime) -> int:
    delta = time - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def derive_samples(reading: Reading, state: StreamState) -> tuple[StreamState, tuple[Sample, ...]]:
    """The samples a reading yields and the device's next stream state."""
    value = reading.value
    time = reading.stamp.time
    if isinstance(value, HeartRateMeasurement):
        hr_us = place(state.last_hr_us, _us(time))
        samples: list[Sample] = [
            HeartRateSample(_at(hr_us), value.bpm, value.sensor_contact, value.energy_kj)
        ]
        rr_ms = value.rr_ms
        beats = place_beats(state.last_beat_us, _us(time), [round(ms * 1000) for ms in rr_ms])
        samples.extend(
            RRIntervalSample(_at(beat), interval)
            for beat, interval in zip(beats, rr_ms, strict=True)
        )
        last_beat = beats[-1] if beats else state.last_beat_us
        return replace(state, last_hr_us=hr_us, last_beat_us=last_beat), tuple(samples)
    if isinstance(value, RSCMeasurement):
        cadence, steps = state.cadence.advance(reading.stamp.monotonic_s, value.cadence_spm)
        return _steps(replace(state, cadence=cadence), time, steps)
    if isinstance(value, MotionStepCount):
        counter, steps = state.counter.advance(value.steps)
        return _steps(replace(state, counter=counter), time, steps)
    if isinstance(value, BatteryLevel):
        return state, (BatterySample(time, value.percent),)
    return state, ()


def _steps(
    state: StreamState, time: datetime, steps: int
) -> tuple[StreamState, tuple[Sample, ...]]:
    """A step row only when there were steps: a zero row per notification would be noise."""
    if not steps:
        return state, ()
    step_us = place(state.last_step_us, _us(time))
    return replace(state, last_step_us=step_us), (StepSample(_at(step_us), steps),)


__all__ = [
    "BatterySample",
    "HeartRateSample",
    "RRIntervalSample",
    "Sample",
    "StepSample",
    "StreamState",
    "derive_samples",
]
