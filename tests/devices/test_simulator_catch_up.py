"""A simulated wearable that fell behind its clock catches up without holding the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from paceline.devices import uuids
from paceline.devices.clock import SimClock
from paceline.devices.simulator import (
    Activity,
    SimulatedBleakClient,
    SimulatedDeviceRegistry,
    WearableKind,
)
from paceline.devices.simulator.wearable import CATCH_UP_S
from tests.devices.conftest import MORNING, SIM_SPEED, DeviceFactory, within_guard

#: Real seconds the host clock jumps ahead (as after a stall): simulated time jumps 80 s.
JUMP_S = 80.0 / SIM_SPEED
_offset = [0.0]


@pytest.fixture
def clock() -> SimClock:
    """A simulated clock whose host time the test can move on at once (a stalled host)."""
    _offset[0] = 0.0
    return SimClock(
        speed=SIM_SPEED, start=MORNING, host_monotonic=lambda: time.monotonic() + _offset[0]
    )


async def test_a_device_behind_its_clock_sends_a_bounded_burst_per_turn_of_the_loop(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    strap = make_device(WearableKind.CHEST_STRAP, activity=Activity.REST)
    per_turn = [0]  # notifications received since another task last had a turn

    def received(_char: BleakGATTCharacteristic, _data: bytearray) -> None:
        per_turn[-1] += 1

    async def another_task() -> None:
        while True:
            per_turn.append(0)
            await asyncio.sleep(0)

    client = BleakClient(strap.address, backend=SimulatedBleakClient, registry=registry)
    async with client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        await within_guard(strap.wait_until(lambda t: len(t.heart_rate) >= 3))
        other = asyncio.create_task(another_task())
        _offset[0] += JUMP_S  # the device is now 80 simulated seconds behind its clock
        sent = len(strap.truth.heart_rate)
        await within_guard(strap.wait_until(lambda t: len(t.heart_rate) >= sent + 80))
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)
    assert strap.max_lag_s >= 80 - 2 * CATCH_UP_S
    assert max(per_turn) <= CATCH_UP_S
