"""The simulated wearable: a bleak backend driven by a seeded physiological model.

Usage::

    clock = SimClock(speed=60)
    registry = SimulatedDeviceRegistry()
    strap = registry.add(SimulatedWearable("C0:FF:EE:00:00:01", WearableKind.CHEST_STRAP,
                                           clock=clock, seed=7))
    async with BleakClient(strap.address, backend=SimulatedBleakClient,
                           registry=registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_notify)

`BleakScanner(backend=SimulatedBleakScanner, registry=registry)` lists them, and
`strap.truth` holds every payload the strap sent.
"""

from __future__ import annotations

from paceline.devices.clock import SimClock
from paceline.devices.simulator.backend import (
    SimulatedBleakClient,
    SimulatedBleakScanner,
    simulated_ble_device,
)
from paceline.devices.simulator.physiology import (
    DEFAULT_ROUTINE,
    Activity,
    Patient,
    PatientModel,
    Routine,
    SecondOfLife,
)
from paceline.devices.simulator.registry import DEFAULT_REGISTRY, SimulatedDeviceRegistry
from paceline.devices.simulator.wearable import (
    ConnectFault,
    GroundTruth,
    MalformedKind,
    SimulatedWearable,
    WearableKind,
)


def fake_address(index: int, *, prefix: str = "C0:FF:EE") -> str:
    """A fake static random address (the two top bits of 0xC0 mark it random static)."""
    if not 0 <= index <= 0xFFFFFF:
        raise ValueError(f"index must fit three bytes, got {index}")
    return f"{prefix}:{index >> 16 & 0xFF:02X}:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}"


def populate_demo(
    registry: SimulatedDeviceRegistry = DEFAULT_REGISTRY,
    *,
    clock: SimClock | None = None,
    seed: int = 0,
) -> list[SimulatedWearable]:
    """Add one wearable of each kind (same patient) to `registry`, e.g. for `paceline devices scan`."""
    shared_clock = clock or SimClock()
    patient = Patient.sample(seed)
    devices = [
        SimulatedWearable(
            fake_address(seed * 16 + index + 1),
            kind,
            clock=shared_clock,
            patient=patient,
            seed=seed * 16 + index,
            rssi_dbm=-55 - 6 * index,
        )
        for index, kind in enumerate(WearableKind)
    ]
    return [registry.add(device) for device in devices]


__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_ROUTINE",
    "Activity",
    "ConnectFault",
    "GroundTruth",
    "MalformedKind",
    "Patient",
    "PatientModel",
    "Routine",
    "SecondOfLife",
    "SimClock",
    "SimulatedBleakClient",
    "SimulatedBleakScanner",
    "SimulatedDeviceRegistry",
    "SimulatedWearable",
    "WearableKind",
    "fake_address",
    "populate_demo",
    "simulated_ble_device",
]
