"""The daemon reads each wearable's battery level and Device Information when it connects."""

from __future__ import annotations

import asyncio

import pytest
from bleak.exc import BleakError

from paceline.cli.ingest import format_status
from paceline.devices.simulator import WearableKind
from paceline.ingest.spool import Spool
from tests.ingest.conftest import RigFactory, guarded


async def test_battery_and_device_information_are_read_on_connect_and_shown_in_the_status(
    make_rig: RigFactory,
) -> None:
    rig = make_rig((WearableKind.CHEST_STRAP, WearableKind.PINETIME))
    daemon = rig.daemon()
    task = asyncio.create_task(daemon.run(signals=False))
    try:
        for wearable in rig.fleet.wearables:
            await guarded(wearable.wait_until(lambda t: len(t.heart_rate) >= 5))
    finally:
        daemon.stop()
        await guarded(task)
    with Spool.open(rig.spool_path) as spool:
        status = spool.status()
    text = format_status(status)
    for i, wearable in enumerate(rig.fleet.wearables):
        device_id = rig.binding(i).device_id
        facts = status.devices[device_id]
        info = wearable.device_information
        assert facts.battery_percent == wearable.battery_percent
        assert facts.battery_at_us is not None
        assert facts.info == info
        assert f"device {device_id}: battery {wearable.battery_percent} % at " in text
        assert f"firmware {info.firmware}" in text


async def test_a_device_that_cannot_answer_the_reads_keeps_streaming(
    make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    strap = rig.wearable()

    def refuse(characteristic_uuid: str) -> bytes:
        raise BleakError(f"read of {characteristic_uuid} failed")

    monkeypatch.setattr(strap, "read", refuse)
    daemon = rig.daemon()
    task = asyncio.create_task(daemon.run(signals=False))
    try:
        await guarded(strap.wait_until(lambda t: len(t.heart_rate) >= 5))
    finally:
        daemon.stop()
        await guarded(task)
    worker = daemon.workers[0]
    assert worker.stats.connects == 1 and worker.stats.connect_failures == 0
    assert worker.stats.info is None and worker.stats.battery_percent is None
    with Spool.open(rig.spool_path) as spool:
        assert spool.status().devices == {}
