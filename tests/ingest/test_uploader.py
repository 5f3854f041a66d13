"""The uploader against a real PostgreSQL: exactly once, poison rows split out, errors retried."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.ingest import uploader as uploader_module
from paceline.ingest.chunks import Chunk, SampleBuffer, epoch_us
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader, UploadError, is_transient
from paceline.store import ServerUnreachableError, connect
from tests.factories import patient_with_device
from tests.ingest.conftest import FAST_DB_BACKOFF, guarded, quarantined

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _us(seconds: float) -> int:
    return epoch_us(T0 + timedelta(seconds=seconds))


def _hr_rr(patient_id: int, device_id: int, start_s: float, n: int) -> list[Chunk]:
    buffer = SampleBuffer()
    for i in range(n):
        t = _us(start_s + i)
        buffer.add_hr(
            patient_id,
            device_id,
            time_us=t,
            received_us=t,
            bpm=70 + i % 30,
            sensor_contact=True,
            energy_kj=i if i % 10 == 0 else None,
        )
        buffer.add_rr(patient_id, device_id, time_us=t, received_us=t, rr_ms=850.0 + i)
        if i % 60 == 0:
            buffer.add_steps(patient_id, device_id, time_us=t, received_us=t, steps=i % 7)
    return buffer.take()


def _counts(conn: psycopg.Connection[Any], device_id: int) -> tuple[int, int, int]:
    out = []
    for table in ("hr_sample", "rr_interval", "step_sample"):
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE device_id = %s").format(sql.Identifier(table)),
            (device_id,),
        ).fetchone()
        assert row is not None
        out.append(int(row[0]))
    conn.commit()
    return out[0], out[1], out[2]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool.open(tmp_path / "spool.sqlite", gateway_id="gw-upload")


def test_a_drained_spool_is_in_the_database_exactly_once(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    for k in range(4):
        spool.append(_hr_rr(pid, did, k * 1000, 500))
    uploader = Uploader(spool, db_dsn, batch_rows=1009)
    reports = uploader.drain()
    assert len(reports) == 4
    assert sum(r.inserted for r in reports) == 4 * (500 + 500 + 9)
    assert _counts(conn, did) == (2000, 2000, 36)
    assert spool.status().pending_rows == 0
    assert uploader.drain() == []
    stored = conn.execute(
        "SELECT bpm, sensor_contact, energy_kj FROM hr_sample WHERE device_id = %s ORDER BY time LIMIT 2",
        (did,),
    ).fetchall()
    conn.commit()
    assert stored == [(70, True, 0), (71, True, None)]
    assert spool.status().counters[did]["uploaded"] == 4 * 1009


def test_the_same_batch_delivered_twice_is_stored_once(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid, did = patient_with_device(conn)
    spool.append(_hr_rr(pid, did, 0, 300))
    real_ack = Spool.ack

    def crash_once(self: Spool, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(Spool, "ack", real_ack)
        raise sqlite3.OperationalError("disk I/O error")  # the gateway dies after the commit

    monkeypatch.setattr(Spool, "ack", crash_once)
    with pytest.raises(sqlite3.OperationalError):
        Uploader(spool, db_dsn).upload_once()
    again = Uploader(Spool.open(spool.path), db_dsn).upload_once()
    assert again is not None and again.replayed
    assert _counts(conn, did) == (300, 300, 5)
    row = conn.execute(
        "SELECT count(*) FROM ingest_batch WHERE batch_id = %s", (again.batch_id,)
    ).fetchone()
    conn.commit()
    assert row == (1,)


def test_a_poison_row_is_quarantined_and_the_good_rows_land(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    chunks = _hr_rr(pid, did, 0, 200)
    buffer = SampleBuffer()
    # A value no device could send, and a sample from 10 minutes in the future.
    buffer.add_hr(
        pid,
        did,
        time_us=_us(500),
        received_us=_us(500),
        bpm=400,
        sensor_contact=None,
        energy_kj=None,
    )
    future = epoch_us(datetime.now(UTC) + timedelta(minutes=10))
    buffer.add_rr(pid, did, time_us=future, received_us=future, rr_ms=900.0)
    spool.append(chunks + buffer.take())
    report = Uploader(spool, db_dsn).upload_once()
    assert report is not None
    assert (report.inserted, report.quarantined) == (200 + 200 + 4, 2)
    assert _counts(conn, did) == (200, 200, 4)
    reasons = {(s, r) for s, _row, r in quarantined(db_dsn) if _row.get("device_id") == did}
    assert ("hr", "bpm 400 is outside 1..300") in reasons
    assert ("rr", "time is more than 5 minutes in the future") in reasons


def test_a_future_row_the_uploader_did_not_foresee_is_split_out_by_the_writer(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid, did = patient_with_device(conn)
    future = epoch_us(datetime.now(UTC) + timedelta(minutes=10))
    buffer = SampleBuffer()
    buffer.add_rr(pid, did, time_us=future, received_us=future, rr_ms=900.0)
    spool.append(_hr_rr(pid, did, 0, 30) + buffer.take())
    monkeypatch.setattr(uploader_module, "route", lambda conn, columns, held: columns)
    report = Uploader(spool, db_dsn).upload_once()
    assert report is not None
    assert (report.inserted, report.quarantined) == (30 + 30 + 1, 1)
    assert _counts(conn, did) == (30, 30, 1)


def test_a_row_the_writer_rejects_is_split_out_around_it(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid, did = patient_with_device(conn)
    other_pid, other_did = patient_with_device(conn)
    chunks = _hr_rr(pid, did, 0, 50)
    stray = _hr_rr(pid, other_did, 7, 1)  # one sample filed under the wrong patient
    spool.append(chunks[:1] + stray + chunks[1:])
    # Without the uploader's own look at the bindings, the writer names the bad rows.
    monkeypatch.setattr(uploader_module, "route", lambda conn, columns, held: columns)
    report = Uploader(spool, db_dsn).upload_once()
    assert report is not None
    assert (report.inserted, report.quarantined) == (50 + 50 + 1, 3)
    assert report.pieces > 1
    assert _counts(conn, did) == (50, 50, 1)
    assert _counts(conn, other_did) == (0, 0, 0)
    reasons = [r for _s, row, r in quarantined(db_dsn) if row.get("device_id") == other_did]
    assert reasons == [f"device {other_did} is bound to patient {other_pid}, not patient {pid}"] * 3
    counted = spool.status().counters
    assert counted[did]["uploaded"] == 101
    assert counted[other_did] == {"spooled": 3, "quarantined": 3}


def test_rows_of_a_device_rebound_to_someone_else_are_quarantined_in_one_pass(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    other, _ = patient_with_device(conn)
    spool.append(_hr_rr(pid, did, 0, 100))
    conn.execute("UPDATE device SET patient_id = %s WHERE device_id = %s", (other, did))
    conn.commit()
    report = Uploader(spool, db_dsn).upload_once()
    assert report is not None
    assert (report.inserted, report.quarantined, report.pieces) == (0, 202, 1)


def test_malformed_payloads_and_corrupt_records_are_quarantined_once(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    buffer = SampleBuffer()
    buffer.add_payload(pid, did, {"hex": "0148", "reason": "malformed payload: truncated"})
    spool.append(buffer.take() + _hr_rr(pid, did, 0, 10))
    spool.append(_hr_rr(pid, did, 100, 10))
    spool.close()
    raw = sqlite3.connect(spool.path)
    raw.execute("UPDATE chunk SET crc = crc + 1 WHERE seq = (SELECT max(seq) FROM chunk)")
    raw.commit()
    raw.close()
    first = Spool.open(spool.path)
    real_ack = first.ack
    first.ack = lambda *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError("crash"))  # type: ignore[method-assign]
    with pytest.raises(sqlite3.OperationalError):
        Uploader(first, db_dsn).upload_once()
    first.ack = real_ack  # type: ignore[method-assign]
    report = Uploader(Spool.open(spool.path), db_dsn).upload_once()
    assert report is not None and report.corrupt_records == 1
    mine = [(s, row, r) for s, row, r in quarantined(db_dsn, "payload") if row.get("spool_seq")]
    assert len([q for q in mine if q[1].get("hex") == "0148"]) == 1
    assert len([q for q in mine if "checksum" in q[2]]) == 1


def test_connection_loss_and_admin_shutdown_are_transient() -> None:
    assert is_transient(psycopg.errors.AdminShutdown())
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_transient(psycopg.InterfaceError("the connection is closed"))
    assert is_transient(ServerUnreachableError("host=x", "refused"))
    assert not is_transient(psycopg.errors.UndefinedTable())


def test_an_upload_that_loses_its_connection_is_retried_and_lands_once(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    spool.append(_hr_rr(pid, did, 0, 100))
    uploader = Uploader(spool, db_dsn)
    uploader._connection()
    assert uploader._conn is not None
    backend_pid = uploader._conn.info.backend_pid
    conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
    conn.commit()
    with pytest.raises(UploadError) as lost:
        uploader.upload_once()
    assert lost.value.transient
    report = uploader.upload_once()
    assert report is not None and not report.replayed
    assert _counts(conn, did) == (100, 100, 2)


async def test_the_upload_loop_backs_off_while_the_database_is_unreachable(
    conn: psycopg.Connection[Any], db_dsn: str, spool: Spool
) -> None:
    pid, did = patient_with_device(conn)
    spool.append(_hr_rr(pid, did, 0, 20))
    attempts: list[str] = []

    def flaky(dsn: str) -> psycopg.Connection[Any]:
        attempts.append(dsn)
        if len(attempts) < 4:
            raise ServerUnreachableError(dsn, "connection refused")
        return connect(dsn, autocommit=True)

    uploader = Uploader(spool, db_dsn, connect_fn=flaky, backoff=FAST_DB_BACKOFF)
    stop = asyncio.Event()
    done: list[int] = []

    def on_report(report: Any) -> None:
        done.append(report.inserted)
        stop.set()

    await guarded(uploader.run(stop, idle_s=0.01, on_report=on_report))
    assert len(attempts) == 4
    assert uploader.failures == 3
    assert done == [20 + 20 + 1]


def test_bad_rows_are_split_out_in_one_validation_pass_not_one_per_row(
    conn: psycopg.Connection[Any], spool: Spool, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paceline.store import columns

    pid, did = patient_with_device(conn)
    buffer = SampleBuffer()
    n = 2_000
    for i in range(n):
        t = _us(i)
        # Every other row beats faster than any heart: 1,000 bad rows in one batch.
        bpm = 400 if i % 2 else 70
        buffer.add_hr(
            pid, did, time_us=t, received_us=t, bpm=bpm, sensor_contact=True, energy_kj=None
        )
    spool.append(buffer.take())
    passes = 0
    # Whichever validates a whole stream: `checked` (every row at once) or, before it, `of`.
    name = "checked" if hasattr(columns.HrRows, "checked") else "of"
    real = getattr(columns.HrRows, name)

    def counting(**kwargs: Any) -> Any:
        nonlocal passes
        passes += 1
        return real(**kwargs)

    monkeypatch.setattr(columns.HrRows, name, staticmethod(counting))
    report = Uploader(spool, db_dsn).upload_once()

    assert report is not None and (report.inserted, report.quarantined) == (n // 2, n // 2)
    assert passes <= 3  # validate, then build the batch of the good rows
    held = [r for _s, row, r in quarantined(db_dsn, "hr") if row.get("device_id") == did]
    assert held == ["bpm 400 is outside 1..300"] * (n // 2)


def test_a_second_reading_for_one_time_is_quarantined_and_the_first_stored(
    conn: psycopg.Connection[Any], spool: Spool, db_dsn: str
) -> None:
    pid, did = patient_with_device(conn)
    buffer = SampleBuffer()
    t = _us(0)
    for bpm in (70, 70, 95):
        buffer.add_hr(
            pid, did, time_us=t, received_us=t, bpm=bpm, sensor_contact=True, energy_kj=None
        )
    spool.append(buffer.take())
    report = Uploader(spool, db_dsn).upload_once()
    assert report is not None
    assert (report.inserted, report.duplicates, report.quarantined) == (1, 1, 1)
    stored = conn.execute("SELECT bpm FROM hr_sample WHERE device_id = %s", (did,)).fetchall()
    conn.commit()
    assert stored == [(70,)]
    (held,) = [row for row in quarantined(db_dsn, "hr") if row[1].get("device_id") == did]
    assert held[1]["bpm"] == 95 and "second hr reading" in held[2]
