"""Rows dropped while the spool cannot be written are counted for good, and the log says how many."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from paceline.cli.ingest import format_status
from paceline.ingest.config import DaemonConfig
from paceline.ingest.daemon import IngestDaemon
from paceline.ingest.spool import Spool

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
