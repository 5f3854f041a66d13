"""Readings into rows: heart rate, back-dated RR beats, steps from cadence and counters."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from paceline.devices import uuids
from paceline.devices.clock import ReceiveStamp
from paceline.devices.events import Reading
from paceline.devices.gatt import (
    BatteryLevel,
    GattValue,
    HeartRateMeasurement,
    ManufacturerName,
    MotionStepCount,
    RSCMeasurement,
)
from paceline.devices.profiles import Stream
from paceline.devices.samples import (
    BatterySample,
    HeartRateSample,
    RRIntervalSample,
    Sample,
    StepSample,
    StreamState,
    derive_samples,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def reading(value: GattValue, at_s: float, uuid: str = uuids.HEART_RATE_MEASUREMENT) -> Reading:
    """A reading received `at_s` seconds after T0 (monotonic = at_s)."""
    time = T0 + timedelta(seconds=at_s)
    return Reading(
        "C0:FF:EE:00:00:01",
        uuid,
        value,
        frozenset({Stream.HEART_RATE}),
        ReceiveStamp(time, time, at_s),
    )


def test_heart_rate_notification_yields_one_hr_row_and_one_row_per_beat() -> None:
    """Every RR interval of a notification becomes its own row, the last beat at receipt."""
    measurement = HeartRateMeasurement(
        bpm=64, sensor_contact=True, energy_kj=12, rr_1024=(960, 1000)
    )
    state, samples = derive_samples(reading(measurement, 5.0), StreamState())
    received = T0 + timedelta(seconds=5)
    assert state.last_beat_us == state.last_hr_us and state.last_hr_us is not None
    assert samples == (
        HeartRateSample(received, 64, True, 12),
        RRIntervalSample(received - timedelta(milliseconds=1000 * 1000 / 1024), 960 * 1000 / 1024),
        RRIntervalSample(received, 1000 * 1000 / 1024),
    )


def test_zero_bpm_sample_is_marked_as_no_reading() -> None:
    """The row is produced so ingest can count it, and says it holds no reading."""
    _, samples = derive_samples(
        reading(HeartRateMeasurement(0, sensor_contact=False), 1.0), StreamState()
    )
    assert samples == (HeartRateSample(T0 + timedelta(seconds=1), 0, False, None),)
    assert isinstance(samples[0], HeartRateSample) and not samples[0].has_reading


def _beats(
    state: StreamState, at_s: float, rr_1024: tuple[int, ...]
) -> tuple[StreamState, list[datetime]]:
    state, samples = derive_samples(reading(HeartRateMeasurement(70, rr_1024=rr_1024), at_s), state)
    return state, [x.time for x in samples if isinstance(x, RRIntervalSample)]


def test_first_notification_is_dated_back_from_its_receipt() -> None:
    """Without a previous beat, the last beat is placed at receipt and earlier ones before it."""
    state, times = _beats(StreamState(), 0.0, (1024, 512))
    assert times == [T0 - timedelta(milliseconds=500), T0]
    assert state.last_beat_us is not None


def test_beats_chain_across_notifications_even_when_receipt_jitters() -> None:
    """Beats are laid end to end from the previous beat: receipt jitter cannot reorder them."""
    state, _ = _beats(StreamState(), 0.0, (1024,))
    # A late receipt (+0.4 s), then an early one: back-dating from receipt would overlap.
    state, times = _beats(state, 1.4, (512, 512))
    assert times == [T0 + timedelta(milliseconds=900), T0 + timedelta(milliseconds=1400)]
    _, more = _beats(state, 1.5, (1024,))
    assert more == [T0 + timedelta(milliseconds=2400)]


def test_lost_beats_reanchor_the_chain_at_receipt() -> None:
    """After a gap (a dropped notification, a reconnect) the beats follow the receipt again."""
    state, _ = _beats(StreamState(), 0.0, (1024,))
    _, times = _beats(state, 30.0, (1024,))
    assert times == [T0 + timedelta(seconds=30)]


def test_heart_rate_times_strictly_increase_when_stamps_repeat() -> None:
    state, first = derive_samples(reading(HeartRateMeasurement(70), 1.0), StreamState())
    _, second = derive_samples(reading(HeartRateMeasurement(71), 1.0), state)
    assert second[0].time - first[0].time == timedelta(microseconds=1)


def test_no_rr_keeps_the_chain() -> None:
    """A notification without RR intervals changes nothing."""
    state, _ = _beats(StreamState(), 0.0, (1024,))
    again, times = _beats(state, 1.0, ())
    assert times == [] and again.last_beat_us == state.last_beat_us


@given(
    rr_ms=st.lists(st.integers(350, 1500), min_size=1, max_size=80),
    spacing_s=st.lists(st.floats(0.6, 1.4), min_size=1, max_size=80),
    jitter_s=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=80),
)
def test_beat_times_strictly_increase_and_stay_near_the_truth(
    rr_ms: list[int], spacing_s: list[float], jitter_s: list[float]
) -> None:
    """A strap notifying about once a second with the beats that ended since, received with jitter.

    However the notifications and receipt delays fall, beat times never repeat or go
    backwards, no beat is dated before it ended (beyond 1/1024 s rounding), and none later
    than one notification period plus the receipt delay.
    """
    beat_ends = [sum(rr_ms[: i + 1]) / 1000 for i in range(len(rr_ms))]
    state = StreamState()
    placed: list[tuple[float, datetime]] = []
    sent = 0
    now = 0.0
    index = 0
    while sent < len(beat_ends):
        now += spacing_s[index % len(spacing_s)]
        delay = jitter_s[index % len(jitter_s)]
        index += 1
        batch = [i for i in range(sent, len(beat_ends)) if beat_ends[i] <= now]
        if not batch:
            continue
        sent = batch[-1] + 1
        rr_1024 = tuple(round(rr_ms[i] * 1.024) for i in batch)
        measurement = HeartRateMeasurement(70, rr_1024=rr_1024)
        state, samples = derive_samples(reading(measurement, now + delay), state)
        beats = [s.time for s in samples if isinstance(s, RRIntervalSample)]
        placed.extend(zip((beat_ends[i] for i in batch), beats, strict=True))
    times = [time for _, time in placed]
    assert all(a < b for a, b in itertools.pairwise(times))
    for true_end, time in placed:
        error_s = ((time - T0).total_seconds()) - true_end
        assert -0.05 <= error_s <= 1.4 + 0.3 + 0.05


def test_rsc_cadence_becomes_steps_between_notifications() -> None:
    """Cadence 120 steps/min at 1 Hz: nothing on the first notification, then 2 steps each."""
    state = StreamState()
    rows: list[Sample] = []
    for second in range(4):
        measurement = RSCMeasurement(speed_256=300, cadence_spm=120)
        state, samples = derive_samples(
            reading(measurement, float(second), uuids.RSC_MEASUREMENT), state
        )
        rows.extend(samples)
    assert rows == [StepSample(T0 + timedelta(seconds=s), 2) for s in (1, 2, 3)]


def test_counter_reset_through_derivation() -> None:
    """A PineTime counter dropping to a small value is a reset: steps since the reset, never negative."""
    state = StreamState()
    rows: list[Sample] = []
    for second, count in enumerate((5_000, 5_040, 12, 30)):
        state, samples = derive_samples(
            reading(MotionStepCount(count), float(second), uuids.INFINITIME_STEP_COUNT), state
        )
        rows.extend(samples)
    assert [row.steps for row in rows if isinstance(row, StepSample)] == [40, 12, 18]


def test_battery_and_metadata() -> None:
    """Battery readings give a battery sample; metadata gives nothing."""
    _, samples = derive_samples(reading(BatteryLevel(77), 0.0, uuids.BATTERY_LEVEL), StreamState())
    assert samples == (BatterySample(T0, 77),)
    _, samples = derive_samples(
        reading(ManufacturerName("Acme"), 0.0, uuids.MANUFACTURER_NAME), StreamState()
    )
    assert samples == ()
