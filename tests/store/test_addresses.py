"""Device addresses: Bluetooth addresses and macOS CoreBluetooth identifiers, nothing else."""

from __future__ import annotations

import pytest

from paceline.store.registry import InvalidAddressError, normalize_address


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("aa:bb:cc:00:11:22", "AA:BB:CC:00:11:22"),
        (" C0:5E:ED:00:00:01 ", "C0:5E:ED:00:00:01"),
        ("aa-bb-cc-00-11-22", "AA:BB:CC:00:11:22"),  # as Windows tools print it
        ("1f2e3d4c-5b6a-4789-9abc-def012345678", "1F2E3D4C-5B6A-4789-9ABC-DEF012345678"),
    ],
)
def test_accepted_addresses_are_stored_in_one_form(given: str, stored: str) -> None:
    assert normalize_address(given) == stored


@pytest.mark.parametrize(
    "address",
    [
        "",
        "AA:BB:CC:DD:EE",  # five octets
        "AA:BB:CC:DD:EE:FF:00",
        "AA:BB-CC:DD:EE:FF",  # mixed separators
        "AABBCCDDEEFF",
        "AA:BB:CC:DD:EE:GG",
        "1F2E3D4C-5B6A-4789-9ABC-DEF01234567",  # one digit short
        "hr strap",
    ],
)
def test_anything_else_is_refused_with_the_value(address: str) -> None:
    with pytest.raises(InvalidAddressError) as info:
        normalize_address(address)
    assert info.value.address == address
    assert isinstance(info.value, ValueError)
