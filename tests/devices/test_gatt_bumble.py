"""Interoperability with bumble's Heart Rate profile: encode with one, decode with the other.

bumble (`bumble.profiles.heart_rate_service.HeartRateService.HeartRateMeasurement`)
keeps RR intervals in seconds as floats and encodes them with `int(rr * 1024)`; values
built as n/1024 are exact in binary floating point, so both sides agree to the bit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.devices.gatt import HeartRateMeasurement

heart_rate_service = pytest.importorskip("bumble.profiles.heart_rate_service")
BumbleMeasurement: Any = heart_rate_service.HeartRateService.HeartRateMeasurement


def to_bumble(ours: HeartRateMeasurement) -> Any:
    """The same measurement as a bumble object."""
    return BumbleMeasurement(
        heart_rate=ours.bpm,
        sensor_contact_detected=ours.sensor_contact,
        energy_expended=ours.energy_kj,
        rr_intervals=[value / 1024 for value in ours.rr_1024] if ours.rr_1024 else None,
    )


def test_bumble_encoded_measurement_decodes_with_ours() -> None:
    """bumble → bytes → ours: every field survives, RR to the 1/1024 s."""
    theirs = BumbleMeasurement(
        heart_rate=72, sensor_contact_detected=True, energy_expended=100, rr_intervals=[0.75, 0.8]
    )
    ours = HeartRateMeasurement.from_bytes(bytes(theirs))
    assert ours.bpm == 72
    assert ours.sensor_contact is True
    assert ours.energy_kj == 100
    # bumble truncates 0.8 s * 1024 = 819.2 to 819.
    assert ours.rr_1024 == (768, 819)
    assert ours.rr_ms == (750.0, 819 * 1000 / 1024)


def test_ours_decodes_with_bumble() -> None:
    """ours → bytes → bumble: bumble reads what we wrote."""
    ours = HeartRateMeasurement(bpm=300, sensor_contact=False, energy_kj=5, rr_1024=(512, 1024))
    theirs = BumbleMeasurement.from_bytes(bytes(ours))
    assert theirs.heart_rate == 300
    assert theirs.sensor_contact_detected is False
    assert theirs.energy_expended == 5
    assert tuple(theirs.rr_intervals) == (0.5, 1.0)


canonical_measurements = st.builds(
    HeartRateMeasurement,
    bpm=st.integers(0, 0xFFFF),
    sensor_contact=st.none() | st.booleans(),
    energy_kj=st.none() | st.integers(0, 0xFFFF),
    rr_1024=st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
)


@given(canonical_measurements)
def test_ours_and_bumble_produce_identical_bytes(ours: HeartRateMeasurement) -> None:
    """For every measurement both libraries can express, the encodings are byte-identical."""
    assert bytes(to_bumble(ours)) == bytes(ours)


@given(canonical_measurements)
def test_bumble_decodes_everything_we_encode(ours: HeartRateMeasurement) -> None:
    """bumble's decoder recovers our values from our bytes."""
    theirs = BumbleMeasurement.from_bytes(bytes(ours))
    assert theirs.heart_rate == ours.bpm
    assert theirs.sensor_contact_detected == ours.sensor_contact
    assert theirs.energy_expended == ours.energy_kj
    expected_rr = tuple(value / 1024 for value in ours.rr_1024) if ours.rr_1024 else None
    assert (tuple(theirs.rr_intervals) if theirs.rr_intervals is not None else None) == expected_rr


@given(canonical_measurements)
def test_we_decode_everything_bumble_encodes(ours: HeartRateMeasurement) -> None:
    """Our decoder recovers bumble's values from bumble's bytes."""
    assert HeartRateMeasurement.from_bytes(bytes(to_bumble(ours))) == ours
