"""A spool that lost state is detected, reported and drained again: no row lost, no id reused.

Each test reproduces one way a gateway spool goes back in time: its WAL lost after a
power cut, the file restored from a backup, the file truncated to zero. Before batch ids
named their rows (row count and digest) and the store kept each spool's acknowledged
sequence, the new records were numbered like the lost ones, their batch ids were taken
for replays, and 5,000 rows vanished each time without a word.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from paceline.ingest.chunks import Chunk, SampleBuffer, epoch_us
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader
from paceline.store import roles
from paceline.store.spools import incidents
from paceline.store.testing import service_dsn
from tests.factories import patient_with_device

ROWS_PER_RECORD = 500
RECORDS = 10
BATCH_ROWS = 2_500
"""Five records a batch: the lost and the new records fall into batches with equal ids."""


def _records(patient_id: int, device_id: int, first_s: int) -> list[Chunk]:
    """RECORDS records of ROWS_PER_RECORD heart-rate rows, one a second from `first_s`."""
    start = epoch_us(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    chunks = []
    for k in range(RECORDS):
        buffer = SampleBuffer()
        for i in range(ROWS_PER_RECORD):
            t = start + (first_s + k * ROWS_PER_RECORD + i) * 1_000_000
            buffer.add_hr(
                patient_id,
                device_id,
                time_us=t,
                received_us=t,
                bpm=60 + i % 40,
                sensor_contact=True,
                energy_kj=None,
            )
        chunks.extend(buffer.take())
    return chunks


def _append(spool: Spool, chunks: list[Chunk]) -> None:
    for chunk in chunks:  # one record per append, as the daemon's flushes make them
        spool.append([chunk])


def _stored(conn: psycopg.Connection[Any], device_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM hr_sample WHERE device_id = %s", (device_id,)
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def _no_autocheckpoint(spool: Spool) -> None:
    """Keep every commit in the WAL, as on a gateway between two checkpoints."""
    spool._conn.execute("PRAGMA wal_autocheckpoint = 0")


def _checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_spool_whose_wal_was_lost_is_reported_and_its_new_rows_land(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    path = tmp_path / "gw" / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-wal", synchronous="NORMAL") as spool:
        _append(spool, _records(pid, did, 0))
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()
        _checkpoint(path)
        _no_autocheckpoint(spool)
        _append(spool, _records(pid, did, 10_000))  # committed to the WAL only
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()
        old_id = spool.spool_id
        # Power lost before the WAL reached the card: what survives is the main file.
        crashed = tmp_path / "after-crash" / "spool.sqlite"
        crashed.parent.mkdir()
        shutil.copyfile(path, crashed)
        identity = path.with_name("spool.sqlite.id")
        if identity.exists():
            shutil.copyfile(identity, crashed.with_name(identity.name))
    assert _stored(conn, did) == 2 * RECORDS * ROWS_PER_RECORD

    with Spool.open(crashed) as spool:
        assert spool.acked_seq == RECORDS  # back in time by ten records
        _append(spool, _records(pid, did, 20_000))
        uploader = Uploader(spool, db_dsn, batch_rows=BATCH_ROWS)
        uploader.drain()
        status = spool.status()

    assert _stored(conn, did) == 3 * RECORDS * ROWS_PER_RECORD
    assert uploader.regressions == 1
    assert status.replaces == old_id and status.spool_id != old_id
    assert status.pending_rows == 0
    kinds = {(i.spool_id, i.kind) for i in incidents(conn, source="gw-wal")}
    conn.commit()
    assert (old_id, "conflict") in kinds or (old_id, "regression") in kinds
    assert (status.spool_id, "replaced") in kinds


def test_a_spool_restored_from_a_backup_is_reported_and_its_new_rows_land(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    path = tmp_path / "spool.sqlite"
    backup = tmp_path / "backup.sqlite"
    with Spool.open(path, gateway_id="gw-backup", synchronous="NORMAL") as spool:
        _append(spool, _records(pid, did, 0))
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()
        pending = _records(pid, did, 10_000)
        _append(spool, pending[: RECORDS // 2])  # in the backup, not yet uploaded
        with sqlite3.connect(backup) as copy:
            spool._conn.backup(copy)
        _append(spool, pending[RECORDS // 2 :])
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()
        old_id = spool.spool_id
    assert _stored(conn, did) == 2 * RECORDS * ROWS_PER_RECORD

    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, path)
    with Spool.open(path) as spool:
        assert spool.spool_id == old_id and spool.acked_seq == RECORDS
        _append(spool, _records(pid, did, 20_000)[: RECORDS // 2 + 5])
        uploader = Uploader(spool, db_dsn, batch_rows=BATCH_ROWS)
        reports = uploader.drain()
        status = spool.status()

    new_rows = (RECORDS // 2 + 5) * ROWS_PER_RECORD
    assert _stored(conn, did) == 2 * RECORDS * ROWS_PER_RECORD + new_rows
    # The records the backup held and the store already had came back as duplicates.
    assert sum(r.duplicates for r in reports) == RECORDS // 2 * ROWS_PER_RECORD
    assert uploader.regressions == 1 and status.replaces == old_id
    assert status.pending_rows == 0


def test_a_spool_truncated_to_zero_is_reported_as_replacing_the_lost_one(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    path = tmp_path / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-trunc", synchronous="NORMAL") as spool:
        _append(spool, _records(pid, did, 0))
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()
        _append(spool, _records(pid, did, 10_000))  # never uploaded: lost with the file
        old_id = spool.spool_id
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(b"")

    with Spool.open(path, gateway_id="gw-trunc") as spool:
        status = spool.status()
        assert status.replaces == old_id and status.spool_id != old_id
        assert [i.kind for i in status.incidents] == ["replaced"]
        _append(spool, _records(pid, did, 20_000))
        Uploader(spool, db_dsn, batch_rows=BATCH_ROWS).drain()

    assert _stored(conn, did) == 2 * RECORDS * ROWS_PER_RECORD
    (replaced,) = [i for i in incidents(conn, source="gw-trunc") if i.kind == "replaced"]
    conn.commit()
    assert replaced.spool_id == status.spool_id
    assert replaced.detail["replaces"] == old_id
    assert replaced.detail["replaced_acked_seq"] == RECORDS


def test_the_uploader_role_can_keep_marks_report_incidents_and_check_birth_years(
    conn: psycopg.Connection[Any], db_dsn: str, tmp_path: Path
) -> None:
    pid, did = patient_with_device(conn)
    ingest_dsn = service_dsn(db_dsn, roles.INGEST)
    path = tmp_path / "spool.sqlite"
    with Spool.open(path, gateway_id="gw-role", synchronous="NORMAL") as spool:
        _append(spool, _records(pid, did, 0))
        Uploader(spool, ingest_dsn, batch_rows=BATCH_ROWS).drain()
        with sqlite3.connect(path) as raw:  # the spool loses its last five records
            raw.execute("UPDATE meta SET value = '5' WHERE key = 'acked_seq'")
            raw.execute("DELETE FROM chunk WHERE seq > 5")
            raw.execute("UPDATE sqlite_sequence SET seq = 5 WHERE name = 'chunk'")
        _append(spool, _records(pid, did, 10_000)[:2])
        uploader = Uploader(spool, ingest_dsn, batch_rows=BATCH_ROWS)
        uploader.drain()
    assert uploader.regressions == 1
    assert _stored(conn, did) == (RECORDS + 2) * ROWS_PER_RECORD
    assert {i.kind for i in incidents(conn, source="gw-role")} == {"regression", "replaced"}
    conn.commit()
