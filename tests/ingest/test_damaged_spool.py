"""A damaged page of the spool file costs only the records on it; the rest drains, once."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from paceline.ingest.chunks import Chunk, SampleBuffer, epoch_us
from paceline.ingest.config import DaemonConfig
from paceline.ingest.spool import Spool
from paceline.ingest.spool_file import SpoolDamagedError
from paceline.ingest.uploader import Uploader
from tests.factories import patient_with_device
from tests.ingest.conftest import (
    FAST_DB_BACKOFF,
    RigFactory,
    assert_stored_exactly_what_was_emitted,
    eventually,
    guarded,
)

RECORDS = 400
ROWS_PER_RECORD = 5
LEAF_TABLE_PAGE = 0x0D
"""First byte of a table b-tree leaf page (SQLite file format, 1.6)."""


def _record(patient_id: int, device_id: int, first_us: int) -> Chunk:
    buffer = SampleBuffer()
    for i in range(ROWS_PER_RECORD):
        t = first_us + i * 1_000_000
        buffer.add_hr(
            patient_id,
            device_id,
            time_us=t,
            received_us=t,
            bpm=60 + i,
            sensor_contact=True,
            energy_kj=None,
        )
    (chunk,) = buffer.take()
    return chunk


def _damage_a_leaf_page(path: Path, data_by_seq: dict[int, bytes]) -> set[int]:
    """Overwrite, with garbage, the table page holding the middle record; return its records."""
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    content = bytearray(path.read_bytes())
    page_size = int.from_bytes(content[16:18], "big")
    page_of = {seq: content.find(data) // page_size for seq, data in data_by_seq.items()}
    assert all(content.find(data) > 0 for data in data_by_seq.values())
    page = page_of[RECORDS // 2]
    assert page > 0, "not the header and schema page"
    start = page * page_size
    assert content[start] == LEAF_TABLE_PAGE
    content[start : start + page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(content))
    return {seq for seq, p in page_of.items() if p == page}


def test_a_damaged_page_sets_its_records_aside_and_the_rest_drains_once(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    start = epoch_us(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    path = tmp_path / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-damage", synchronous="NORMAL") as spool:
        records = [_record(pid, did, start + k * 10_000_000) for k in range(RECORDS)]
        assert spool.append(records) == RECORDS
    data_by_seq = {seq: chunk.data for seq, chunk in enumerate(records, start=1)}
    lost = _damage_a_leaf_page(path, data_by_seq)
    assert 1 < len(lost) < RECORDS // 4
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.DatabaseError):
        raw.execute("SELECT count(*) FROM chunk").fetchone()

    with Spool.open(path) as spool:
        reports = Uploader(spool, db_dsn, batch_rows=200).drain()
        status = spool.status()

    assert sum(r.corrupt_records for r in reports) == len(lost)
    assert sum(r.duplicates for r in reports) == 0
    expected = sorted(
        start + k * 10_000_000 + i * 1_000_000
        for k in range(RECORDS)
        if k + 1 not in lost
        for i in range(ROWS_PER_RECORD)
    )
    times = conn.execute(
        "SELECT (extract(epoch FROM time) * 1000000)::bigint FROM hr_sample"
        " WHERE device_id = %s ORDER BY time",
        (did,),
    ).fetchall()
    held = conn.execute(
        "SELECT (row_data->>'spool_seq')::int, reason FROM ingest_quarantine"
        " WHERE source = 'gw-damage' AND batch_id LIKE %s",
        (f"gw-damage/{status.spool_id}:%",),
    ).fetchall()
    conn.commit()
    assert [int(t) for (t,) in times] == expected
    assert sorted(int(seq) for seq, _reason in held) == sorted(lost)
    assert all("unreadable" in reason for _seq, reason in held)
    assert (status.acked_seq, status.pending_rows) == (RECORDS, 0)
    assert status.counters[0]["corrupt_records"] == len(lost)


def _damage_the_sequence_page(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        (root,) = raw.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).fetchone()
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = bytearray(path.read_bytes())
    page_size = int.from_bytes(content[16:18], "big")
    at = (int(root) - 1) * page_size
    content[at : at + page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(content))


def test_a_damaged_sequence_page_is_reported_and_the_spool_still_drains(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    start = epoch_us(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    path = tmp_path / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-sequence", synchronous="NORMAL") as spool:
        assert spool.append([_record(pid, did, start + k * 10_000_000) for k in range(40)]) == 40
    _damage_the_sequence_page(path)

    with Spool.open(path) as spool:
        reports = Uploader(spool, db_dsn, batch_rows=50).drain()
        status = spool.status()
    stored = conn.execute("SELECT count(*) FROM hr_sample WHERE device_id = %s", (did,)).fetchone()
    conn.commit()
    assert stored == (40 * ROWS_PER_RECORD,)
    assert sum(r.inserted for r in reports) == 40 * ROWS_PER_RECORD
    assert (status.acked_seq, status.last_seq, status.pending_records) == (40, 40, 0)
    assert [i.kind for i in status.incidents] == ["sequence_damaged"]


def test_a_spool_that_cannot_append_is_rebuilt_keeping_its_records_and_identity(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    start = epoch_us(datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    path = tmp_path / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-rebuild", synchronous="NORMAL") as spool:
        spool.append([_record(pid, did, start + k * 10_000_000) for k in range(30)])
        Uploader(spool, db_dsn, batch_rows=50).drain(max_batches=2)  # 20 records acknowledged
        spool.append([_record(pid, did, start + k * 10_000_000) for k in range(30, 40)])
        before = spool.status()
    _damage_the_sequence_page(path)

    with Spool.open(path) as spool, pytest.raises(SpoolDamagedError, match="cannot append"):
        spool.append([_record(pid, did, start + 50 * 10_000_000)])
    with Spool.open(path, repair=True) as spool:
        rebuilt = spool.status()
        assert spool.append([_record(pid, did, start + 50 * 10_000_000)]) == 41
        Uploader(spool, db_dsn, batch_rows=50).drain()
        after = spool.status()
    assert (rebuilt.spool_id, rebuilt.acked_seq, rebuilt.last_seq) == (before.spool_id, 20, 40)
    assert rebuilt.counters == before.counters
    assert [i.kind for i in rebuilt.incidents][:1] == ["rebuilt"]
    assert len(list(tmp_path.glob("spool.sqlite.damaged-*"))) >= 1  # kept for inspection
    assert path.stat().st_mode & 0o777 == 0o600
    assert (after.acked_seq, after.pending_rows) == (41, 0)
    stored = conn.execute("SELECT count(*) FROM hr_sample WHERE device_id = %s", (did,)).fetchone()
    conn.commit()
    assert stored == (41 * ROWS_PER_RECORD,)


async def test_the_daemon_rebuilds_a_spool_it_cannot_append_to_and_loses_nothing(
    make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    strap = rig.wearable()
    real_append = Spool.append
    damaged: list[int] = []
    reopened: list[bool] = []
    real_open = Spool.open.__func__  # type: ignore[attr-defined]

    def append(self: Spool, *args: Any, **kwargs: Any) -> int:
        if len(damaged) < 2 and self.status().last_seq >= 3:  # twice: also the shutdown flush
            damaged.append(1)
            raise SpoolDamagedError(self.path, "cannot append: database disk image is malformed")
        return real_append(self, *args, **kwargs)

    def open_spool(cls: type[Spool], path: Path, /, **kwargs: Any) -> Spool:
        reopened.append(bool(kwargs.get("repair")))
        return real_open(cls, path, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Spool, "append", append)
    monkeypatch.setattr(Spool, "open", classmethod(open_spool))
    daemon = rig.daemon(DaemonConfig(upload_backoff=FAST_DB_BACKOFF))

    async def through_the_restart() -> None:
        await eventually(lambda: len(damaged) == 2)
        sent = len(strap.truth.heart_rate)
        await eventually(lambda: len(strap.truth.heart_rate) >= sent + 30)

    task = asyncio.create_task(daemon.run(signals=False))
    try:
        await through_the_restart()
    finally:
        daemon.stop()
        await guarded(task)
    assert reopened.count(True) == 2  # the writer's spool, opened again after the stop
    assert daemon.dropped_rows == 0
    assert_stored_exactly_what_was_emitted(rig)
