"""GATT codecs against payloads built by hand from the Bluetooth specifications.

Heart Rate Measurement layout (HRS 1.0 §3.1.1, GSS §3.113): flags (uint8) |
heart rate (uint8, or uint16 if bit 0) | energy expended (uint16 kJ, if bit 3) |
RR intervals (uint16 each, 1/1024 s, if bit 4). Flags bit 1 = contact detected,
bit 2 = contact supported, bits 5-7 reserved.
"""

from __future__ import annotations

import pytest

from paceline.devices import DeviceError, PayloadError
from paceline.devices.gatt import (
    BatteryLevel,
    BodySensorLocation,
    DeviceInformation,
    FirmwareRevision,
    HeartRateFlags,
    HeartRateMeasurement,
    ManufacturerName,
    ModelNumber,
    MotionStepCount,
    MotionValues,
    RSCFeature,
    RSCFeatureFlags,
    RSCMeasurement,
    SensorLocation,
    SerialNumber,
)

# (payload, expected) pairs; each payload written out field by field from the spec.
HEART_RATE_VECTORS: list[tuple[bytes, HeartRateMeasurement]] = [
    # flags 0x00: uint8 rate, no contact support, nothing else.
    (bytes([0x00, 72]), HeartRateMeasurement(bpm=72)),
    # flags 0x04: contact supported but not detected.
    (bytes([0x04, 65]), HeartRateMeasurement(bpm=65, sensor_contact=False)),
    # flags 0x06: contact supported and detected.
    (bytes([0x06, 65]), HeartRateMeasurement(bpm=65, sensor_contact=True)),
    # flags 0x01: uint16 rate 300 = 0x012C, little-endian.
    (bytes([0x01, 0x2C, 0x01]), HeartRateMeasurement(bpm=300)),
    # flags 0x08: energy expended 0x1234 = 4660 kJ.
    (bytes([0x08, 80, 0x34, 0x12]), HeartRateMeasurement(bpm=80, energy_kj=4660)),
    # flags 0x16: contact detected, one RR of 0x0400 = 1024/1024 s.
    (
        bytes([0x16, 60, 0x00, 0x04]),
        HeartRateMeasurement(bpm=60, sensor_contact=True, rr_1024=(1024,)),
    ),
    # flags 0x1F: everything: uint16 rate 90, contact, energy 16 kJ, RRs 768 and 819.
    (
        bytes([0x1F, 90, 0x00, 0x10, 0x00, 0x00, 0x03, 0x33, 0x03]),
        HeartRateMeasurement(
            bpm=90,
            sensor_contact=True,
            energy_kj=16,
            rr_1024=(768, 819),
            extra_flags=HeartRateFlags.UINT16_BPM,
        ),
    ),
    # flags 0x18: energy and three RR intervals, no contact support.
    (
        bytes([0x18, 120, 0xFF, 0xFF, 0x00, 0x02, 0x01, 0x02, 0x02, 0x02]),
        HeartRateMeasurement(bpm=120, energy_kj=0xFFFF, rr_1024=(512, 513, 514)),
    ),
    # flags 0x00 with a rate of 0: what straps send with no reading.
    (bytes([0x00, 0]), HeartRateMeasurement(bpm=0)),
]


@pytest.mark.parametrize(("payload", "expected"), HEART_RATE_VECTORS)
def test_heart_rate_measurement_decodes_spec_payloads(
    payload: bytes, expected: HeartRateMeasurement
) -> None:
    """Every flag combination decodes to the values written into the payload."""
    assert HeartRateMeasurement.from_bytes(payload) == expected


@pytest.mark.parametrize(("payload", "expected"), HEART_RATE_VECTORS)
def test_heart_rate_measurement_encodes_spec_payloads(
    payload: bytes, expected: HeartRateMeasurement
) -> None:
    """Encoding gives back exactly the hand-built payload."""
    assert bytes(expected) == payload


def test_rr_intervals_are_converted_from_1024ths_of_a_second() -> None:
    """RR 768/1024 s is 750 ms; 819/1024 s is 799.8046875 ms (no rounding)."""
    measurement = HeartRateMeasurement.from_bytes(bytes([0x10, 75, 0x00, 0x03, 0x33, 0x03]))
    assert measurement.rr_1024 == (768, 819)
    assert measurement.rr_ms == (750.0, 799.8046875)


def test_decoding_accepts_bytearray_as_bleak_delivers_it() -> None:
    """bleak hands payloads over as bytearray."""
    assert HeartRateMeasurement.from_bytes(bytearray([0x06, 70])).bpm == 70


def test_reserved_flag_bits_are_ignored_but_kept_for_the_round_trip() -> None:
    """Bits 5-7 change nothing about the values, and the payload re-encodes byte for byte."""
    payload = bytes([0xE6, 70])
    measurement = HeartRateMeasurement.from_bytes(payload)
    assert (measurement.bpm, measurement.sensor_contact) == (70, True)
    assert measurement.energy_kj is None and measurement.rr_1024 == ()
    assert bytes(measurement) == payload


def test_uint16_format_below_256_survives_the_round_trip() -> None:
    """A device may send 72 bpm as uint16; the same bytes come back out."""
    payload = bytes([0x01, 72, 0x00])
    measurement = HeartRateMeasurement.from_bytes(payload)
    assert measurement.bpm == 72
    assert bytes(measurement) == payload


def test_contact_detected_without_support_means_unsupported() -> None:
    """HRS 1.0: status 0b01 (detected bit, no support bit) means 'not supported'."""
    payload = bytes([0x02, 70])
    measurement = HeartRateMeasurement.from_bytes(payload)
    assert measurement.sensor_contact is None
    assert bytes(measurement) == payload


def test_rr_flag_with_no_intervals_decodes_to_none() -> None:
    """A flag without any RR values is tolerated (no beat ended) and round-trips."""
    payload = bytes([0x10, 55])
    measurement = HeartRateMeasurement.from_bytes(payload)
    assert measurement.rr_1024 == ()
    assert bytes(measurement) == payload


def test_zero_bpm_is_recognisable_as_no_reading() -> None:
    """0 bpm is kept (it is well formed) but flagged so ingest can count and skip it."""
    assert not HeartRateMeasurement.from_bytes(bytes([0x04, 0])).has_reading
    assert HeartRateMeasurement.from_bytes(bytes([0x06, 1])).has_reading


def test_implausible_but_well_formed_values_are_kept() -> None:
    """A uint16 rate of 1000 bpm and a 60 s RR are decoded, not judged."""
    measurement = HeartRateMeasurement.from_bytes(bytes([0x11, 0xE8, 0x03, 0x00, 0xF0]))
    assert measurement.bpm == 1000
    assert measurement.rr_ms == (0xF000 * 1000 / 1024,)


MALFORMED_HEART_RATE: list[tuple[bytes, str]] = [
    (b"", "empty"),
    (bytes([0x00]), "no heart-rate byte"),
    (bytes([0x01, 0x48]), "uint16 heart rate"),
    (bytes([0x01]), "uint16 heart rate"),
    (bytes([0x08, 0x48]), "Energy Expended"),
    (bytes([0x08, 0x48, 0x01]), "Energy Expended"),
    (bytes([0x16, 0x48, 0x00, 0x04, 0x01]), "odd trailing byte"),
    (bytes([0x10, 0x48, 0x01]), "odd trailing byte"),
    (bytes([0x00, 0x48, 0x00]), "unexpected byte"),
]


@pytest.mark.parametrize(("payload", "problem"), MALFORMED_HEART_RATE)
def test_malformed_heart_rate_raises_payload_error_naming_the_problem(
    payload: bytes, problem: str
) -> None:
    """Broken payloads raise PayloadError (a DeviceError and a ValueError) that says what is wrong."""
    with pytest.raises(PayloadError, match=problem) as raised:
        HeartRateMeasurement.from_bytes(payload)
    assert isinstance(raised.value, DeviceError)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"bpm": -1}, "bpm"),
        ({"bpm": 0x10000}, "bpm"),
        ({"bpm": 60, "energy_kj": 0x10000}, "energy_kj"),
        ({"bpm": 60, "rr_1024": (0x10000,)}, "rr_1024"),
        ({"bpm": 60, "extra_flags": HeartRateFlags.ENERGY_EXPENDED_PRESENT}, "Energy"),
        ({"bpm": 60, "extra_flags": HeartRateFlags.SENSOR_CONTACT_SUPPORTED}, "contact"),
        (
            {
                "bpm": 60,
                "sensor_contact": False,
                "extra_flags": HeartRateFlags.SENSOR_CONTACT_DETECTED,
            },
            "contact",
        ),
    ],
)
def test_measurements_that_cannot_be_encoded_are_refused(
    kwargs: dict[str, object], problem: str
) -> None:
    """Construction validates like bumble's `__post_init__`: out-of-range or contradictory fields."""
    with pytest.raises(PayloadError, match=problem):
        HeartRateMeasurement(**kwargs)  # type: ignore[arg-type]


def test_flags_implied_by_values_are_not_kept_twice() -> None:
    """Passing a flag the values already imply builds the same object as not passing it."""
    explicit = HeartRateMeasurement(
        bpm=300,
        rr_1024=(800,),
        extra_flags=HeartRateFlags.UINT16_BPM | HeartRateFlags.RR_INTERVALS_PRESENT,
    )
    assert explicit == HeartRateMeasurement(bpm=300, rr_1024=(800,))
    assert explicit.flags == HeartRateFlags.UINT16_BPM | HeartRateFlags.RR_INTERVALS_PRESENT


def test_body_sensor_location() -> None:
    """0x2A38 is one byte; 1 is chest; reserved codes decode with no named location."""
    assert BodySensorLocation.from_bytes(b"\x01").location is SensorLocation.CHEST
    assert BodySensorLocation.from_bytes(b"\x02").location is SensorLocation.WRIST
    reserved = BodySensorLocation.from_bytes(b"\x2a")
    assert reserved.location is None and bytes(reserved) == b"\x2a"
    with pytest.raises(PayloadError, match="exactly 1"):
        BodySensorLocation.from_bytes(b"")


def test_battery_level() -> None:
    """0x2A19 is one byte 0-100; 101-255 are prohibited by the specification."""
    assert BatteryLevel.from_bytes(b"\x57") == BatteryLevel(87)
    assert bytes(BatteryLevel(100)) == b"\x64"
    with pytest.raises(PayloadError, match=r"0\.\.100"):
        BatteryLevel.from_bytes(b"\x65")
    with pytest.raises(PayloadError, match="exactly 1"):
        BatteryLevel.from_bytes(b"\x50\x00")


def test_device_information_strings() -> None:
    """DIS strings are plain UTF-8; a NUL terminator is kept in value, dropped in text."""
    assert ManufacturerName.from_bytes(b"PINE64").value == "PINE64"
    padded = FirmwareRevision.from_bytes(b"1.14.0\x00")
    assert padded.text == "1.14.0"
    assert bytes(padded) == b"1.14.0\x00"
    assert ModelNumber.from_bytes("Grüne Uhr".encode()).value == "Grüne Uhr"
    with pytest.raises(PayloadError, match="UTF-8"):
        SerialNumber.from_bytes(b"\xff\xfe")


def test_device_information_gathers_any_subset() -> None:
    """DeviceInformation maps each string to its field and leaves the rest None."""
    info = DeviceInformation.from_strings([FirmwareRevision("2.0\x00"), ManufacturerName("Acme")])
    assert info == DeviceInformation(manufacturer="Acme", firmware="2.0")


def test_rsc_measurement_with_every_field() -> None:
    """RSCS 1.0 §4.1: flags 0x03 | speed 0x0180 (1.5 m/s) | 110 spm | 140 cm | 0x1234 dm."""
    payload = bytes([0x03, 0x80, 0x01, 110, 0x8C, 0x00, 0x34, 0x12, 0x00, 0x00])
    measurement = RSCMeasurement.from_bytes(payload)
    assert measurement == RSCMeasurement(
        speed_256=384, cadence_spm=110, stride_length_cm=140, total_distance_dm=0x1234
    )
    assert measurement.speed_m_s == 1.5
    assert measurement.stride_length_m == 1.4
    assert measurement.total_distance_m == 466.0
    assert bytes(measurement) == payload


def test_rsc_measurement_minimal_and_running() -> None:
    """Flags 0x04: running status, only speed and cadence follow."""
    payload = bytes([0x04, 0x00, 0x04, 170])
    measurement = RSCMeasurement.from_bytes(payload)
    assert measurement.running and measurement.cadence_spm == 170
    assert measurement.stride_length_cm is None and measurement.total_distance_dm is None
    assert bytes(measurement) == payload


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (bytes([0x00, 0x00, 0x01]), "at least 4"),
        (bytes([0x01, 0x00, 0x01, 100, 0x10]), "stride length"),
        (bytes([0x02, 0x00, 0x01, 100, 0x10, 0x00]), "total distance"),
        (bytes([0x00, 0x00, 0x01, 100, 0x00]), "unexpected byte"),
    ],
)
def test_malformed_rsc_measurement(payload: bytes, problem: str) -> None:
    """Truncated optional fields and trailing bytes are rejected."""
    with pytest.raises(PayloadError, match=problem):
        RSCMeasurement.from_bytes(payload)


def test_rsc_feature() -> None:
    """0x2A54 is a uint16 bit field."""
    feature = RSCFeature.from_bytes(bytes([0x07, 0x00]))
    assert feature.features == (
        RSCFeatureFlags.STRIDE_LENGTH
        | RSCFeatureFlags.TOTAL_DISTANCE
        | RSCFeatureFlags.WALKING_OR_RUNNING_STATUS
    )
    assert bytes(feature) == bytes([0x07, 0x00])


def test_infinitime_step_count_is_uint32_little_endian() -> None:
    """InfiniTime MotionService: step count is one uint32_t."""
    assert MotionStepCount.from_bytes(bytes([0x10, 0x27, 0x00, 0x00])) == MotionStepCount(10_000)
    assert bytes(MotionStepCount(0x01020304)) == bytes([0x04, 0x03, 0x02, 0x01])
    with pytest.raises(PayloadError, match="exactly 4"):
        MotionStepCount.from_bytes(bytes([0x10, 0x27]))


def test_infinitime_motion_values_are_three_int16() -> None:
    """InfiniTime MotionService: raw motion is X, Y, Z as int16_t."""
    values = MotionValues.from_bytes(bytes([0xFF, 0xFF, 0x00, 0x00, 0x00, 0x04]))
    assert values == MotionValues(-1, 0, 1024)
    assert bytes(values) == bytes([0xFF, 0xFF, 0x00, 0x00, 0x00, 0x04])
