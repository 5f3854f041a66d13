"""Property-based round trips: value → bytes → value, and bytes → value → bytes, for every codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.devices import PayloadError
from paceline.devices.gatt import (
    BatteryLevel,
    BodySensorLocation,
    GattValue,
    HeartRateFlags,
    HeartRateMeasurement,
    MotionStepCount,
    MotionValues,
    RSCFeature,
    RSCFeatureFlags,
    RSCMeasurement,
    SoftwareRevision,
)


@st.composite
def heart_rate_measurements(draw: st.DrawFn) -> HeartRateMeasurement:
    """Any encodable measurement, including the encoding choices devices are free to make."""
    contact = draw(st.none() | st.booleans())
    extra = HeartRateFlags(draw(st.sampled_from([0x00, 0x20, 0x40, 0x80, 0xE0])))
    if draw(st.booleans()):
        extra |= HeartRateFlags.UINT16_BPM
    if draw(st.booleans()):
        extra |= HeartRateFlags.RR_INTERVALS_PRESENT
    if contact is None and draw(st.booleans()):
        extra |= HeartRateFlags.SENSOR_CONTACT_DETECTED
    return HeartRateMeasurement(
        bpm=draw(st.integers(0, 0xFFFF)),
        sensor_contact=contact,
        energy_kj=draw(st.none() | st.integers(0, 0xFFFF)),
        rr_1024=tuple(draw(st.lists(st.integers(0, 0xFFFF), max_size=12))),
        extra_flags=extra,
    )


@given(heart_rate_measurements())
def test_heart_rate_value_round_trips(measurement: HeartRateMeasurement) -> None:
    """from_bytes(bytes(m)) == m for every measurement that constructs."""
    assert HeartRateMeasurement.from_bytes(bytes(measurement)) == measurement


@given(st.binary(max_size=24))
def test_heart_rate_bytes_round_trip_or_raise_payload_error(payload: bytes) -> None:
    """Any byte string either decodes and re-encodes identically, or raises PayloadError."""
    try:
        measurement = HeartRateMeasurement.from_bytes(payload)
    except PayloadError:
        return
    assert bytes(measurement) == payload


@given(heart_rate_measurements())
def test_rr_ms_is_rr_1024_scaled(measurement: HeartRateMeasurement) -> None:
    """rr_ms carries every interval of the notification, converted from 1/1024 s."""
    assert len(measurement.rr_ms) == len(measurement.rr_1024)
    for ms, raw in zip(measurement.rr_ms, measurement.rr_1024, strict=True):
        assert ms == pytest.approx(raw * 1000 / 1024)


rsc_measurements = st.builds(
    RSCMeasurement,
    speed_256=st.integers(0, 0xFFFF),
    cadence_spm=st.integers(0, 0xFF),
    stride_length_cm=st.none() | st.integers(0, 0xFFFF),
    total_distance_dm=st.none() | st.integers(0, 0xFFFF_FFFF),
    running=st.booleans(),
    reserved_flags=st.sampled_from([0, 0x08, 0x80, 0xF8]),
)

OTHER_VALUES: st.SearchStrategy[GattValue] = st.one_of(
    rsc_measurements,
    st.builds(BatteryLevel, st.integers(0, 100)),
    st.builds(BodySensorLocation, st.integers(0, 255)),
    st.builds(MotionStepCount, st.integers(0, 0xFFFF_FFFF)),
    st.builds(
        MotionValues,
        st.integers(-0x8000, 0x7FFF),
        st.integers(-0x8000, 0x7FFF),
        st.integers(-0x8000, 0x7FFF),
    ),
    st.builds(RSCFeature, st.integers(0, 0xFFFF).map(RSCFeatureFlags)),
    st.builds(SoftwareRevision, st.text(max_size=20)),
)


@given(OTHER_VALUES)
def test_every_other_codec_round_trips(value: GattValue) -> None:
    """The same exactness holds for every other characteristic."""
    assert type(value).from_bytes(bytes(value)) == value


CODECS: list[type[GattValue]] = [
    RSCMeasurement,
    BatteryLevel,
    BodySensorLocation,
    MotionStepCount,
    MotionValues,
    RSCFeature,
    SoftwareRevision,
]


@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.__name__)
@given(payload=st.binary(max_size=16))
def test_other_codecs_round_trip_bytes_or_raise(codec: type[GattValue], payload: bytes) -> None:
    """Arbitrary bytes either round-trip exactly or raise PayloadError, never anything else."""
    try:
        value = codec.from_bytes(payload)
    except PayloadError:
        return
    assert bytes(value) == payload
