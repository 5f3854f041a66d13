"""The batch writer: exactly once, deduplicated, all-or-nothing, with named bad rows."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from paceline.store import (
    Batch,
    BatchRejectedError,
    ColumnError,
    HrRows,
    RrRows,
    StepRows,
    write_batch,
)
from paceline.store.columns import MAX_RR_MS
from paceline.store.copybinary import encode_hr
from tests.factories import HR_START as T0
from tests.factories import hr_rows as _hr
from tests.factories import patient_with_device


def _count(conn: psycopg.Connection[Any], table: str, pid: int) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE patient_id = %s").format(sql.Identifier(table)),
        (pid,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _bid() -> str:
    return f"test-{uuid.uuid4()}"


def test_a_batch_lands_whole_with_its_ingest_batch_row(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    n = 500
    rr_times = [T0 + timedelta(milliseconds=800 * i) for i in range(n)]
    batch = Batch(
        _bid(),
        hr=_hr(pid, did, n),
        rr=RrRows.of(patient_id=[pid] * n, device_id=[did] * n, time=rr_times, rr_ms=[800.0] * n),
        steps=StepRows.of(
            patient_id=[pid] * 3,
            device_id=[did] * 3,
            time=[T0 + timedelta(minutes=m) for m in (1, 2, 3)],
            steps=[0, 42, 97],
        ),
    )
    result = write_batch(conn, batch, source="gw-1")
    assert (result.replayed, result.hr_rows, result.rr_rows, result.step_rows) == (False, n, n, 3)
    assert (_count(conn, "hr_sample", pid), _count(conn, "rr_interval", pid)) == (n, n)
    row = conn.execute(
        "SELECT source, hr_rows, rr_rows, step_rows, duplicate_rows FROM ingest_batch"
        " WHERE batch_id = %s",
        (batch.batch_id,),
    ).fetchone()
    assert row == ("gw-1", n, n, 3, 0)


def test_values_survive_the_binary_copy_exactly(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    t = [
        T0 + timedelta(microseconds=123_457),
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=3),
    ]
    hr = HrRows.of(
        patient_id=[pid] * 4,
        device_id=[did] * 4,
        time=t,
        bpm=[35, 72, 199, 300],
        sensor_contact=[True, False, None, None],
        energy_kj=[None, 12, 65535, None],
    )
    rr = RrRows.of(patient_id=[pid], device_id=[did], time=[t[0]], rr_ms=[1000 * 1023 / 1024])
    write_batch(conn, Batch(_bid(), hr=hr, rr=rr))
    got = conn.execute(
        "SELECT time, bpm, sensor_contact, energy_kj FROM hr_sample WHERE patient_id = %s ORDER BY time",
        (pid,),
    ).fetchall()
    assert got == [
        (t[0], 35, True, None),
        (t[1], 72, False, 12),
        (t[2], 199, None, 65535),
        (t[3], 300, None, None),
    ]
    assert conn.execute(
        "SELECT rr_ms FROM rr_interval WHERE patient_id = %s", (pid,)
    ).fetchone() == (1000 * 1023 / 1024,)


def test_a_replayed_batch_id_is_a_no_op(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    batch = Batch(_bid(), hr=_hr(pid, did, 100))
    assert write_batch(conn, batch).hr_rows == 100
    again = write_batch(conn, batch)
    assert again.replayed and again.inserted == 0
    assert _count(conn, "hr_sample", pid) == 100


def test_rows_already_stored_are_skipped_not_failed(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    write_batch(conn, Batch(_bid(), hr=_hr(pid, did, 100)))
    overlapping = _hr(pid, did, 100, start=T0 + timedelta(seconds=50))
    result = write_batch(conn, Batch(_bid(), hr=overlapping))
    assert (result.hr_rows, result.duplicate_rows) == (50, 50)
    assert _count(conn, "hr_sample", pid) == 150


def test_duplicates_inside_one_batch_are_stored_once(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    hr = HrRows.of(
        patient_id=[pid] * 3,
        device_id=[did] * 3,
        time=[T0, T0, T0 + timedelta(seconds=1)],
        bpm=[70, 70, 71],
    )
    result = write_batch(conn, Batch(_bid(), hr=hr))
    assert (result.hr_rows, result.duplicate_rows) == (2, 1)


def test_physiologically_implausible_but_possible_values_are_stored(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    hr = HrRows.of(
        patient_id=[pid] * 2,
        device_id=[did] * 2,
        time=[T0, T0 + timedelta(seconds=1)],
        bpm=[1, 280],
    )
    rr = RrRows.of(
        patient_id=[pid] * 2,
        device_id=[did] * 2,
        time=[T0, T0 + timedelta(seconds=1)],
        rr_ms=[150.0, MAX_RR_MS],
    )
    result = write_batch(conn, Batch(_bid(), hr=hr, rr=rr))
    assert (result.hr_rows, result.rr_rows) == (2, 2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: HrRows.of(
                patient_id=[1, 1], device_id=[1, 1], time=[T0, T0], bpm=[70, float("nan")]
            ),
            "hr row 1: bpm is NaN",
        ),
        (
            lambda: HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[0]),
            "hr row 0: bpm 0 is outside",
        ),
        (
            lambda: HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[301]),
            "bpm 301 is outside",
        ),
        (
            lambda: HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[72.5]),
            "not a whole number",
        ),
        (
            lambda: HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[70], energy_kj=[-1]),
            "energy_kj -1 is outside",
        ),
        (
            lambda: RrRows.of(patient_id=[1, 1], device_id=[1, 1], time=[T0, T0], rr_ms=[800, 0]),
            "rr row 1: rr_ms 0 is outside",
        ),
        (
            lambda: RrRows.of(patient_id=[1], device_id=[1], time=[T0], rr_ms=[64_001]),
            "rr_ms 64001 is outside",
        ),
        (
            lambda: StepRows.of(patient_id=[1], device_id=[1], time=[T0], steps=[-3]),
            "steps row 0: steps -3",
        ),
        (
            lambda: HrRows.of(patient_id=[1], device_id=[1], time=[datetime(2026, 1, 1)], bpm=[70]),
            "has no time zone",
        ),
        (
            lambda: HrRows.of(
                patient_id=[1],
                device_id=[1],
                time=np.array(["NaT"], dtype="datetime64[us]"),
                bpm=[70],
            ),
            "NaT",
        ),
        (
            lambda: HrRows.of(patient_id=[1, 2], device_id=[1], time=[T0, T0], bpm=[70, 70]),
            "device_id has 1 values for 2 rows",
        ),
    ],
)
def test_values_no_device_could_send_are_rejected_by_row(build: Any, match: str) -> None:
    with pytest.raises(ColumnError, match=match):
        build()


def _assert_nothing_left(conn: psycopg.Connection[Any], pid: int, batch_id: str) -> None:
    assert _count(conn, "hr_sample", pid) == 0
    assert _count(conn, "rr_interval", pid) == 0
    assert conn.execute(
        "SELECT count(*) FROM ingest_batch WHERE batch_id = %s", (batch_id,)
    ).fetchone() == (0,)


def test_an_unknown_device_rejects_the_whole_batch(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    hr = HrRows.of(patient_id=[pid, pid], device_id=[did, 987654], time=[T0, T0], bpm=[70, 70])
    batch = Batch(_bid(), hr=hr)
    with pytest.raises(BatchRejectedError, match="hr row 1: unknown device 987654") as info:
        write_batch(conn, batch)
    assert (info.value.stream, info.value.row) == ("hr", 1)
    _assert_nothing_left(conn, pid, batch.batch_id)


def test_a_row_for_another_patient_rejects_the_whole_batch(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    other, _ = patient_with_device(conn)
    rr = RrRows.of(
        patient_id=[pid, pid, other],
        device_id=[did] * 3,
        time=[T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)],
        rr_ms=[800] * 3,
    )
    batch = Batch(_bid(), hr=_hr(pid, did, 10), rr=rr)
    with pytest.raises(
        BatchRejectedError, match=f"rr row 2: device {did} is bound to patient {pid}"
    ):
        write_batch(conn, batch)
    _assert_nothing_left(conn, pid, batch.batch_id)


def test_a_time_more_than_five_minutes_ahead_rejects_the_batch(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    now = datetime.now(UTC)
    hr = HrRows.of(
        patient_id=[pid] * 3,
        device_id=[did] * 3,
        time=[now, now + timedelta(minutes=4), now + timedelta(minutes=6)],
        bpm=[70] * 3,
    )
    batch = Batch(_bid(), hr=hr)
    with pytest.raises(
        BatchRejectedError, match=r"hr row 2: time .* more than 5 minutes in the future"
    ):
        write_batch(conn, batch)
    _assert_nothing_left(conn, pid, batch.batch_id)


def test_write_batch_refuses_an_open_transaction(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    conn.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="not inside a transaction"):
        write_batch(conn, Batch(_bid(), hr=_hr(pid, did, 1)))
    conn.rollback()


def test_a_batch_within_the_callers_transaction_rolls_back_with_it(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    conn.commit()
    with pytest.raises(RuntimeError, match="needs an open transaction"):
        write_batch(conn, Batch(_bid(), hr=_hr(pid, did, 1)), within_transaction=True)
    kept, dropped = _bid(), _bid()
    with conn.transaction():
        write_batch(conn, Batch(kept, hr=_hr(pid, did, 3)), within_transaction=True)
    conn.execute("SELECT 1")  # the caller's transaction
    write_batch(conn, Batch(dropped, hr=_hr(pid, did, 5)), within_transaction=True)
    conn.rollback()
    stored = conn.execute(
        "SELECT batch_id FROM ingest_batch WHERE batch_id = ANY(%s)", ([kept, dropped],)
    ).fetchall()
    count = conn.execute("SELECT count(*) FROM hr_sample WHERE patient_id = %s", (pid,)).fetchone()
    conn.commit()
    assert stored == [(kept,)]
    assert count == (3,)


def test_device_last_seen_follows_the_newest_sample(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    conn.execute(
        "UPDATE device SET last_seen = %s WHERE device_id = %s", (T0 - timedelta(days=1), did)
    )
    conn.commit()
    write_batch(conn, Batch(_bid(), hr=_hr(pid, did, 60)))
    seen = conn.execute("SELECT last_seen FROM device WHERE device_id = %s", (did,)).fetchone()
    assert seen == (T0 + timedelta(seconds=59),)


def test_quarantined_rows_are_kept_with_their_reason(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    hr = _hr(pid, did, 2)
    result = write_batch(
        conn,
        Batch("b-q", hr=hr.take(np.array([0]))),
        quarantined=[("hr", hr.row(1), "unknown device")],
    )
    assert result.quarantined_rows == 1
    row = conn.execute(
        "SELECT stream, row_data ->> 'bpm', reason FROM ingest_quarantine WHERE batch_id = 'b-q'"
    ).fetchone()
    assert row == ("hr", "70", "unknown device")


def test_binary_encoding_groups_null_patterns_without_losing_rows() -> None:
    n = 1000
    rng = np.random.default_rng(7)
    contact = [(True, False, None)[k] for k in rng.integers(0, 3, size=n)]
    energy = [None if rng.random() < 0.5 else int(rng.integers(0, 1000)) for _ in range(n)]
    hr = HrRows.of(
        patient_id=[1] * n,
        device_id=[2] * n,
        time=[T0 + timedelta(seconds=i) for i in range(n)],
        bpm=[60] * n,
        sensor_contact=contact,
        energy_kj=energy,
    )
    payload = encode_hr(hr)
    with_contact = sum(c is not None for c in contact)
    with_energy = sum(e is not None for e in energy)
    # header 19 + trailer 2; per row: 2 + 3*(4+8) + (4+2) + 4 [+1] + 4 [+4]
    assert len(payload) == 19 + 2 + n * (2 + 36 + 6 + 4 + 4) + with_contact + 4 * with_energy


def _wait_for_lock(watch: psycopg.Connection[Any], backend_pid: int) -> None:
    """Until the backend `backend_pid` waits on a lock (30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = watch.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (backend_pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {backend_pid} never waited on a lock")


def _write_into_a_deadlock(
    conn: psycopg.Connection[Any], db_dsn: str, did: int, batch_id: str, write: Callable[[], Any]
) -> Any:
    """Run `write` (of batch `batch_id` on `conn`) into a real deadlock; its result or error.

    Another session holds the row of the batch's device `did`, which the writer waits for
    (it updates the device's last_seen), then waits for the writer's uncommitted
    batch id: a lock cycle. The server aborts the writer, which waited first, so
    its deadlock check runs first; then the other session rolls back.
    """
    writer_pid = conn.info.backend_pid
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(write())
        except psycopg.Error as exc:  # handed to the test's thread
            outcome.append(exc)

    with psycopg.connect(db_dsn, autocommit=True) as watch, psycopg.connect(db_dsn) as other:
        other.execute("UPDATE device SET last_seen = last_seen WHERE device_id = %s", (did,))
        thread = threading.Thread(target=run)
        thread.start()
        _wait_for_lock(watch, writer_pid)
        other.execute(
            "INSERT INTO ingest_batch (batch_id, source, first_time, last_time, row_count)"
            " VALUES (%s, 'intruder', now(), now(), 0) ON CONFLICT DO NOTHING",
            (batch_id,),
        )
        other.rollback()
        thread.join(60)
    assert not thread.is_alive()
    (result,) = outcome
    return result


def test_a_deadlock_victim_batch_is_tried_again_and_stored_once(
    conn: psycopg.Connection[Any], db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer, aborted as a deadlock's victim, tries again once the lock is free; the
    batch is stored exactly once, under the source it was sent with."""
    pid, did = patient_with_device(conn)
    conn.commit()
    batch = Batch(_bid(), hr=_hr(pid, did, 50))
    with caplog.at_level(logging.WARNING, logger="paceline.store.writer"):
        outcome = _write_into_a_deadlock(
            conn,
            db_dsn,
            did,
            batch.batch_id,
            lambda: write_batch(conn, batch, source="gw-deadlock"),
        )
    assert not isinstance(outcome, psycopg.Error), outcome
    assert (outcome.replayed, outcome.hr_rows) == (False, 50)
    assert any("DeadlockDetected on try 1 of 3" in r.getMessage() for r in caplog.records)
    assert _count(conn, "hr_sample", pid) == 50
    row = conn.execute(
        "SELECT source, hr_rows FROM ingest_batch WHERE batch_id = %s", (batch.batch_id,)
    ).fetchone()
    conn.commit()
    assert row == ("gw-deadlock", 50)


def test_a_deadlock_within_the_callers_transaction_is_left_to_the_caller(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    """Inside the caller's transaction the writer does not try again: the error reaches the
    caller, the savepoint is rolled back and nothing of the batch is stored."""
    pid, did = patient_with_device(conn)
    conn.commit()
    batch = Batch(_bid(), hr=_hr(pid, did, 5))

    def write() -> None:
        with conn.transaction():
            write_batch(conn, batch, within_transaction=True)

    outcome = _write_into_a_deadlock(conn, db_dsn, did, batch.batch_id, write)
    assert isinstance(outcome, psycopg.errors.DeadlockDetected)
    assert _count(conn, "hr_sample", pid) == 0
    conn.commit()
