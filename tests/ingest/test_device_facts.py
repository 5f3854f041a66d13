"""The daemon reads each wearable's battery level and Device Information when it connects.

The battery level reaches the device's row in the database through the uploader.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bleak.exc import BleakError

from paceline.cli.ingest import format_status
from paceline.devices.simulator import WearableKind
from paceline.ingest.gateway_state import DeviceFacts
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader
from paceline.store import connect, registry, roles
from paceline.store.testing import service_dsn
from tests.factories import patient_with_device
from tests.ingest.conftest import Rig, RigFactory, guarded


async def _stream_until_each_sent_heart_rate(rig: Rig) -> None:
    """Run the rig's daemon until every wearable has sent five heart rates, then stop it."""
    daemon = rig.daemon()
    task = asyncio.create_task(daemon.run(signals=False))
    try:
        for wearable in rig.fleet.wearables:
            await guarded(wearable.wait_until(lambda t: len(t.heart_rate) >= 5))
    finally:
        daemon.stop()
        await guarded(task)


async def test_battery_and_device_information_are_read_on_connect_and_shown_in_the_status(
    make_rig: RigFactory,
) -> None:
    rig = make_rig((WearableKind.CHEST_STRAP, WearableKind.PINETIME))
    await _stream_until_each_sent_heart_rate(rig)
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


async def test_the_battery_level_read_on_connect_reaches_the_device_row_as_the_ingest_role(
    make_rig: RigFactory, db_dsn: str
) -> None:
    made = make_rig((WearableKind.CHEST_STRAP, WearableKind.PINETIME))
    # The daemon and its uploader log in as the gateway's own role, as deployed.
    rig = replace(made, dsn=service_dsn(db_dsn, roles.INGEST))
    await _stream_until_each_sent_heart_rate(rig)
    with Spool.open(rig.spool_path) as spool:
        facts = spool.status().devices
        # Whatever the daemon's uploader had sent before it stopped, a drain sends the rest.
        await asyncio.to_thread(Uploader(spool, rig.dsn).drain)
    ids = [rig.binding(i).device_id for i in range(len(rig.fleet.wearables))]
    with connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT device_id, battery_pct, (extract(epoch FROM battery_at) * 1e6)::int8"
            " FROM device WHERE device_id = ANY(%s) ORDER BY device_id",
            (ids,),
        ).fetchall()
    assert rows == sorted(
        (
            rig.binding(i).device_id,
            w.battery_percent,
            facts[rig.binding(i).device_id].battery_at_us,
        )
        for i, w in enumerate(rig.fleet.wearables)
    )


def test_a_battery_level_is_replaced_only_by_a_newer_reading(db_dsn: str) -> None:
    with connect(db_dsn) as conn:
        _pid, did = patient_with_device(conn)
        t = datetime(2026, 5, 1, 9, tzinfo=UTC)
        assert registry.record_battery_levels(conn, {did: (80, t)}) == 1
        assert registry.record_battery_levels(conn, {did: (95, t - timedelta(hours=1))}) == 0
        assert registry.record_battery_levels(conn, {did: (79, t + timedelta(minutes=5))}) == 1
        assert registry.record_battery_levels(conn, {10**12: (50, t)}) == 0  # unknown device
        row = conn.execute(
            "SELECT battery_pct, battery_at FROM device WHERE device_id = %s", (did,)
        ).fetchone()
        assert row == (79, t + timedelta(minutes=5))
        for bad in ((101, t), (-1, t), (50, t.replace(tzinfo=None))):
            with pytest.raises(registry.InvalidBatteryLevelError) as caught:
                registry.record_battery_levels(conn, {did: bad})
            assert (caught.value.device_id, caught.value.percent) == (did, bad[0])


def test_a_level_out_of_range_in_a_damaged_spool_is_skipped_and_the_others_stored(
    db_dsn: str, tmp_path: Path
) -> None:
    with connect(db_dsn) as conn:
        (_p1, good), (_p2, bad) = patient_with_device(conn), patient_with_device(conn)
    at_us = int(datetime(2026, 5, 1, 9, tzinfo=UTC).timestamp()) * 1_000_000
    with Spool.open(tmp_path / "spool.sqlite", gateway_id="gw-battery") as spool:
        spool.append([], device_facts={good: DeviceFacts(64, at_us), bad: DeviceFacts(150, at_us)})
        assert Uploader(spool, service_dsn(db_dsn, roles.INGEST)).drain() == []
    with connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT device_id, battery_pct FROM device WHERE device_id = ANY(%s) ORDER BY 1",
            ([good, bad],),
        ).fetchall()
    assert rows == sorted([(good, 64), (bad, None)])
