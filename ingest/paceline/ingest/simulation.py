"""Simulated wearables wired to real database rows, for `paceline ingest run --simulate N`.

The simulator (`paceline.devices.simulator`) knows nothing of patients or device ids;
this module gives each simulated wearable a row in `device`, a demo patient to be bound
to, and the `DeviceBinding` the daemon streams it under. Accelerated simulated time
starts far enough in the past that it never runs ahead of the real clock (the store
refuses samples from more than five minutes in the future).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

import psycopg
from bleak.backends.device import BLEDevice

from paceline.devices.clock import SimClock
from paceline.devices.simulator import (
    DEFAULT_ROUTINE,
    Routine,
    SimulatedDeviceRegistry,
    SimulatedWearable,
    WearableKind,
    fake_address,
    simulated_ble_device,
)
from paceline.devices.simulator.physiology import Patient
from paceline.ingest import IngestError
from paceline.ingest.gateway_state import DeviceBinding
from paceline.store import registry

DEFAULT_KINDS: Final = (WearableKind.CHEST_STRAP, WearableKind.BAND, WearableKind.PINETIME)
"""What `--simulate N` hands out in turn: the wearables patients actually get."""

PROFILE_OF_KIND: Final = {
    WearableKind.CHEST_STRAP: "hr_strap",
    WearableKind.BAND: "rsc_sensor",
    WearableKind.FOOTPOD: "rsc_sensor",
    WearableKind.PINETIME: "pinetime",
}
SIM_ADDRESS_PREFIX: Final = "C0:5E:ED"
"""Simulated addresses (static random, so they cannot clash with a real public address)."""


class SimulationError(IngestError):
    """A simulated run cannot be set up as asked."""


@dataclass
class SimulatedFleet:
    """Simulated wearables on one shared clock, and the registry their backend finds them in."""

    clock: SimClock
    registry: SimulatedDeviceRegistry
    wearables: list[SimulatedWearable]

    def client_kwargs(self) -> dict[str, Any]:
        """What `BleakClient(..., backend=SimulatedBleakClient)` needs to find them."""
        return {"registry": self.registry}

    async def locate(self, binding: DeviceBinding) -> BLEDevice:
        """The `BLEDevice` of a simulated wearable, as a scan would return it."""
        wearable = self.registry.get(binding.address)
        if wearable is None:
            raise SimulationError(f"no simulated wearable has address {binding.address}")
        return simulated_ble_device(wearable)

    def stop(self) -> None:
        """Drop every link (ending the wearables' ticker tasks)."""
        self.registry.clear()


DAYTIME_START: Final = time(9, 58)
"""Where a daytime simulation starts: two minutes before the default routine's morning walk."""


def simulated_start(
    speed: float, covers_s: float, *, now: datetime | None = None, daytime: bool = False
) -> datetime:
    """Where simulated time starts so that `covers_s` real seconds at `speed` end before now.

    Simulated time gains `speed - 1` seconds on the real clock every real second; starting
    that much (and a minute) in the past keeps every sample of the run in the past. With
    `daytime`, the start moves further back to the last 09:58 UTC, so that a demo shows
    patients awake (chest straps come off at night and send only "no reading").
    """
    now = now or datetime.now(UTC)
    start = now - timedelta(seconds=max(0.0, covers_s) * max(0.0, speed - 1.0) + 60.0)
    if daytime:
        morning = datetime.combine(start.date(), DAYTIME_START, tzinfo=UTC)
        start = morning if morning <= start else morning - timedelta(days=1)
    return start


RESUME_GAP: Final = timedelta(seconds=1)
"""How far after the newest stored sample a continued simulation starts (about one notification)."""

CLOCK_MARGIN_S: Final = 60.0
"""How far behind the real clock a simulated run is planned to end."""


@dataclass(frozen=True)
class SimulatedSpan:
    """Where simulated time starts and how fast it runs, so that a run adds only new time."""

    start: datetime
    speed: float
    asked_speed: float
    resumed_after: datetime | None
    """The newest stored sample the run continues from (None: a fresh start)."""


def continue_after(
    newest: datetime | None,
    *,
    speed: float,
    covers_s: float,
    now: datetime | None = None,
    daytime: bool = False,
) -> SimulatedSpan:
    """Plan a simulated run that starts after `newest`, the last sample its devices stored.

    A second run over the same simulated minutes would lay a second set of samples
    between the first (two heart-rate rows a second, steps and RR intervals doubled),
    so a run continues where the stored samples end, one `RESUME_GAP` later; with no
    stored sample, or one older than a fresh run's start, it starts as `simulated_start`
    says. Accelerated time must still end before the real clock (the store refuses
    samples from the future): when the continued start leaves too little room, the
    speed is lowered, at worst to real time, which never runs ahead.
    """
    now = now or datetime.now(UTC)
    fresh = simulated_start(speed, covers_s, now=now, daytime=daytime)
    if newest is None or newest < fresh:
        return SimulatedSpan(fresh, speed, speed, None)
    start = newest + RESUME_GAP
    room_s = (now - start).total_seconds() - CLOCK_MARGIN_S
    # start + covers * fit ends at now + covers - margin: the run's real end, less the margin.
    fit = room_s / covers_s + 1.0 if covers_s > 0 else speed
    return SimulatedSpan(start, max(1.0, min(speed, fit)), speed, newest)


def build_fleet(
    count: int,
    *,
    speed: float = 1.0,
    start: datetime | None = None,
    seed: int = 0,
    kinds: Sequence[WearableKind] = DEFAULT_KINDS,
    routine: Routine = DEFAULT_ROUTINE,
    first_index: int = 1,
) -> SimulatedFleet:
    """`count` simulated wearables, each worn by its own seeded patient."""
    if count < 1:
        raise SimulationError(f"need at least one simulated wearable, got {count}")
    clock = SimClock(speed=speed, start=start)
    reg = SimulatedDeviceRegistry()
    wearables = [
        reg.add(
            SimulatedWearable(
                fake_address(first_index + i, prefix=SIM_ADDRESS_PREFIX),
                kinds[i % len(kinds)],
                clock=clock,
                patient=Patient.sample(seed * 1000 + i),
                routine=routine,
                seed=seed * 1000 + i,
            )
        )
        for i in range(count)
    ]
    return SimulatedFleet(clock, reg, wearables)


def register_fleet(conn: psycopg.Connection[Any], fleet: SimulatedFleet) -> list[DeviceBinding]:
    """Register each wearable, enrol a demo patient for it if it has none, bind, and commit."""
    bindings: list[DeviceBinding] = []
    for wearable in fleet.wearables:
        device = registry.register_device(
            conn,
            address=wearable.address,
            name=wearable.name,
            profile=PROFILE_OF_KIND[wearable.kind],
        )
        patient_id = device.patient_id
        if patient_id is None:
            ref = f"SIM-{wearable.address.replace(':', '')}"
            known = registry.patient_id_by_ref(conn, ref)
            if known is None:
                patient = registry.create_patient(
                    conn,
                    external_ref=ref,
                    display_name=f"Demo patient {wearable.address[-5:]}",
                    birth_year=datetime.now(UTC).year - round(wearable.patient.age_years),
                )
                patient_id = patient.patient_id
            else:
                patient_id = known
            device = registry.bind_device(conn, address=wearable.address, patient_id=patient_id)
        bindings.append(
            DeviceBinding(
                address=device.address,
                device_id=device.device_id,
                patient_id=patient_id,
                name=device.name,
                profile=device.profile,
            )
        )
    conn.commit()
    return bindings


__all__ = [
    "DEFAULT_KINDS",
    "PROFILE_OF_KIND",
    "SimulatedFleet",
    "SimulatedSpan",
    "SimulationError",
    "build_fleet",
    "continue_after",
    "register_fleet",
    "simulated_start",
]
