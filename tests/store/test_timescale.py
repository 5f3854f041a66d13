"""TimescaleDB features: hypertables, compression and retention policies (skipped without it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from paceline.store import Batch, HrRows, connect, write_batch
from paceline.store.status import database_status
from paceline.store.timescale import SAMPLE_TABLES, configure, probe, table_status
from tests.factories import patient_with_device

pytestmark = pytest.mark.timescaledb
DAY0 = datetime(2026, 2, 1, tzinfo=UTC)


def _hr_days(pid: int, did: int, days: int, per_day: int = 100) -> HrRows:
    t = np.datetime64(DAY0.replace(tzinfo=None), "us") + (
        np.repeat(np.arange(days), per_day) * np.timedelta64(1, "D")
        + np.tile(np.arange(per_day), days) * np.timedelta64(1, "s")
    )
    n = t.size
    return HrRows.of(
        patient_id=np.full(n, pid), device_id=np.full(n, did), time=t, bpm=np.full(n, 65)
    )


def test_sample_tables_are_hypertables_with_one_day_chunks_and_compression(
    conn: psycopg.Connection[Any], require_timescaledb: None
) -> None:
    for table in SAMPLE_TABLES:
        row = conn.execute(
            "SELECT d.time_interval, h.compression_enabled"
            " FROM timescaledb_information.dimensions d"
            " JOIN timescaledb_information.hypertables h USING (hypertable_schema, hypertable_name)"
            " WHERE d.hypertable_name = %s",
            (table,),
        ).fetchone()
        assert row == (timedelta(days=1), True), table
    statuses = {s.table: s for s in table_status(conn)}
    assert all(s.hypertable for s in statuses.values())
    assert statuses["hr_sample"].compress_after is not None
    assert database_status(conn).mode == "timescaledb"


def test_each_day_of_samples_lands_in_its_own_chunk(
    conn: psycopg.Connection[Any], require_timescaledb: None
) -> None:
    pid, did = patient_with_device(conn)
    write_batch(conn, Batch(f"days-{uuid.uuid4()}", hr=_hr_days(pid, did, 3)))
    chunks = conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'hr_sample'"
        " AND range_start >= %s AND range_end <= %s",
        (DAY0, DAY0 + timedelta(days=3)),
    ).fetchone()
    assert chunks == (3,)


def test_rows_resent_into_a_compressed_chunk_are_deduplicated(
    conn: psycopg.Connection[Any], require_timescaledb: None
) -> None:
    pid, did = patient_with_device(conn)
    rows = _hr_days(pid, did, 2)
    write_batch(conn, Batch(f"c-{uuid.uuid4()}", hr=rows))
    conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('hr_sample') c"
    )
    conn.commit()
    result = write_batch(conn, Batch(f"c-{uuid.uuid4()}", hr=rows))
    assert (result.hr_rows, result.duplicate_rows) == (0, len(rows))
    count = conn.execute("SELECT count(*) FROM hr_sample WHERE patient_id = %s", (pid,)).fetchone()
    assert count == (len(rows),)


def test_policies_follow_the_configured_intervals(db_dsn: str, require_timescaledb: None) -> None:
    with connect(db_dsn, autocommit=True) as c:
        configure(c, compress_after=timedelta(days=3), retention=timedelta(days=400))
        statuses = {s.table: s for s in table_status(c)}
        assert statuses["rr_interval"].compress_after == "3 days"
        assert statuses["rr_interval"].retention == "400 days"
        configure(c, compress_after=timedelta(days=7), retention=None)
        statuses = {s.table: s for s in table_status(c)}
        assert statuses["rr_interval"].compress_after == "7 days"
        assert statuses["rr_interval"].retention is None
        assert probe(c).active
