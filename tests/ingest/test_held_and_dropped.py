"""Rows the daemon cannot store now: dropped on a full disk (counted for good), held while the clock is unset."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paceline.cli.ingest import format_status
from paceline.devices.events import Reading
from paceline.devices.gatt import HeartRateMeasurement
from paceline.ingest.chunks import epoch_us
from paceline.ingest.config import DaemonConfig
from paceline.ingest.daemon import IngestDaemon
from paceline.ingest.gateway_state import DeviceBinding
from paceline.ingest.spool import Spool
from tests.devices.test_clock import SteppingClock

BASE_US = 1_780_000_000_000_000


def _queue(daemon: IngestDaemon, device_id: int, first_s: int, n: int) -> None:
    for i in range(n):
        t = BASE_US + (first_s + i) * 1_000_000
        daemon.buffer.add_hr(
            7, device_id, time_us=t, received_us=t, bpm=70, sensor_contact=None, energy_kj=None
        )


async def test_rows_dropped_on_a_full_disk_are_persisted_and_shown_in_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.sqlite"
    daemon = IngestDaemon([], spool_path=path, dsn="", config=DaemonConfig(max_buffer_rows=100))
    daemon._writer = Spool.open(path, gateway_id="gw-full")
    real_append = Spool.append
    full = True

    def append(self: Spool, *args: Any, **kwargs: Any) -> int:
        if full:
            raise sqlite3.OperationalError("database or disk is full")
        return real_append(self, *args, **kwargs)

    monkeypatch.setattr(Spool, "append", append)
    # Device 1's rows are older than device 2's: the oldest go, whichever device sent them.
    _queue(daemon, 1, 0, 80)
    _queue(daemon, 2, 1_000, 60)
    with caplog.at_level(logging.ERROR):
        assert await daemon.flush() == 0
    assert daemon.dropped_rows == 40
    assert "dropped the 40 oldest buffered rows" in caplog.text
    assert "keeping 140 rows in memory" in caplog.text
    _queue(daemon, 2, 2_000, 30)
    assert await daemon.flush() == 0
    assert daemon.dropped_rows == 70

    full = False
    assert await daemon.flush() == 100
    status = daemon._writer.status()
    daemon._writer.close()
    daemon._executor.shutdown()
    assert status.counters[1].get("dropped") == 70
    assert status.counters.get(2, {}).get("dropped", 0) == 0
    assert status.dropped_rows == 70
    with Spool.open(path) as spool:  # persisted, not only in the daemon's memory
        assert spool.status().dropped_rows == 70
    assert "dropped:      70 rows" in format_status(status)


async def test_rows_are_held_while_the_clock_is_unset_and_released_with_real_times(
    tmp_path: Path,
) -> None:
    clock = SteppingClock()
    clock.wall_time = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)  # a gateway before NTP
    path = tmp_path / "spool.sqlite"
    binding = DeviceBinding("AA:BB:CC:DD:EE:01", 3, 7, "strap", "heart_rate_strap")
    daemon = IngestDaemon([binding], spool_path=path, dsn="", clock=clock)
    daemon._writer = Spool.open(path, gateway_id="gw-clock")  # the daemon's writer
    worker = daemon.workers[0]
    stamper = worker._stamper

    def notify(bpm: int) -> None:
        value = HeartRateMeasurement(bpm, rr_1024=(1024,))
        worker.handle(Reading(binding.address, value.UUID, value, frozenset(), stamper.stamp()))

    for bpm in (60, 61, 62):
        notify(bpm)
        clock.mono += 1.0
        clock.wall_time += timedelta(seconds=1)
    assert await daemon.flush() == 0  # held: nothing reaches the spool with a 1970 time
    assert daemon._writer.status().last_seq == 0

    clock.mono += 57.0
    synced = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    clock.wall_time = synced  # NTP: 60 s of monotonic time after the first notification
    notify(70)
    assert await daemon.flush() == 8
    batch = daemon._writer.next_batch()
    daemon._writer.close()
    daemon._executor.shutdown()
    assert batch is not None
    (hr,) = [c.samples() for _s, c in batch.chunks if c.stream == "hr"]
    start = epoch_us(synced) - 60_000_000
    assert hr["time_us"].tolist() == [start, start + 1_000_000, start + 2_000_000, epoch_us(synced)]
    assert hr["bpm"].tolist() == [60, 61, 62, 70]
    (rr,) = [c.samples() for _s, c in batch.chunks if c.stream == "rr"]
    assert rr["time_us"].tolist() == hr["time_us"].tolist()  # each beat ends at its receipt
