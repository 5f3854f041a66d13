"""Rows set aside from a batch are recorded with it, once, by the attempt that claims its id."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from paceline.ingest import uploader as uploader_module
from paceline.ingest.chunks import Chunk, SampleBuffer, epoch_us
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader, UploadError
from paceline.store import Batch, BatchRejectedError, HrRows, write_batch
from tests.factories import patient_with_device

Key = tuple[str, int, int]
"""(stream, device id, time in µs) of one sample."""


def _start_us() -> int:
    return epoch_us(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))


def _samples(patient_id: int, device_id: int, first_us: int, n: int) -> list[Chunk]:
    buffer = SampleBuffer()
    for i in range(n):
        t = first_us + i * 1_000_000
        buffer.add_hr(
            patient_id,
            device_id,
            time_us=t,
            received_us=t,
            bpm=70 + i,
            sensor_contact=True,
            energy_kj=None,
        )
        buffer.add_rr(patient_id, device_id, time_us=t, received_us=t, rr_ms=800.0 + i)
    return buffer.take()


def _where_rows_are(conn: psycopg.Connection[Any], device_ids: list[int]) -> Counter[Key]:
    """Every stored and every quarantined sample of these devices, counted."""
    found: Counter[Key] = Counter()
    for stream, table in (("hr", "hr_sample"), ("rr", "rr_interval")):
        rows = conn.execute(
            sql.SQL(
                "SELECT device_id, (extract(epoch FROM time) * 1000000)::bigint FROM {}"
                " WHERE device_id = ANY(%s)"
            ).format(sql.Identifier(table)),
            (device_ids,),
        ).fetchall()
        found.update((stream, int(d), int(t)) for d, t in rows)
    held = conn.execute(
        "SELECT stream, (row_data->>'device_id')::bigint, (row_data->>'time_us')::bigint"
        " FROM ingest_quarantine WHERE (row_data->>'device_id')::bigint = ANY(%s)",
        (device_ids,),
    ).fetchall()
    found.update((str(s), int(d), int(t)) for s, d, t in held)
    conn.commit()
    return found


def _lose_the_connection_after_the_first_commit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the first committed batch look, to the uploader, like a connection lost before the ack."""
    committed: list[str] = []

    def write_then_drop(conn: psycopg.Connection[Any], batch: Batch, **kwargs: Any) -> Any:
        result = write_batch(conn, batch, **kwargs)
        if not committed:
            committed.append(batch.batch_id)
            conn.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(uploader_module, "write_batch", write_then_drop)  # the name it calls
    return committed


@pytest.mark.parametrize(
    "bound_at_first", [False, True], ids=["held-then-bound", "sent-then-rebound"]
)
def test_a_binding_changed_before_the_retry_stores_each_row_exactly_once(
    conn: psycopg.Connection[Any],
    db_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bound_at_first: bool,
) -> None:
    pid, did = patient_with_device(conn)
    other_pid, other_did = patient_with_device(conn)
    start = _start_us()

    def bind_other_device_to(patient_id: int) -> None:
        conn.execute(
            "UPDATE device SET patient_id = %s WHERE device_id = %s", (patient_id, other_did)
        )
        conn.commit()

    if bound_at_first:
        bind_other_device_to(pid)
    spool = Spool.open(tmp_path / "spool.sqlite", gateway_id="gw-atomic")
    # The second strap's rows are filed under the first patient.
    spool.append(_samples(pid, did, start, 20) + _samples(pid, other_did, start, 10))
    committed = _lose_the_connection_after_the_first_commit(monkeypatch)

    with pytest.raises(UploadError) as lost:
        Uploader(spool, db_dsn).upload_once()
    assert lost.value.transient and committed
    bind_other_device_to(other_pid if bound_at_first else pid)  # the operator's change
    report = Uploader(spool, db_dsn).upload_once()

    assert report is not None and report.replayed
    expected = Counter(
        (stream, device, start + i * 1_000_000)
        for device, n in ((did, 20), (other_did, 10))
        for stream in ("hr", "rr")
        for i in range(n)
    )
    assert _where_rows_are(conn, [did, other_did]) == expected
    assert spool.status().pending_rows == 0


def _hr_batch(batch_id: str, patient_id: int, device_id: int, first_us: int) -> Batch:
    times = np.array([first_us, first_us + 1_000_000], dtype="datetime64[us]")
    return Batch(
        batch_id,
        hr=HrRows.of(
            patient_id=[patient_id] * 2, device_id=[device_id] * 2, time=times, bpm=[70, 71]
        ),
    )


def _quarantined(conn: psycopg.Connection[Any], batch_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT stream, reason FROM ingest_quarantine WHERE batch_id = %s ORDER BY quarantine_id",
        (batch_id,),
    ).fetchall()
    conn.commit()
    return [(str(s), str(r)) for s, r in rows]


def test_the_writer_quarantines_with_the_claim_and_not_on_a_replay(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    pid, did = patient_with_device(conn)
    start = _start_us()
    aside = [("hr", {"device_id": did, "bpm": 40000}, "bpm 40000 is outside 1..300")]
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        first = write_batch(writer, _hr_batch("atomic-1", pid, did, start), quarantined=aside)
        again = write_batch(
            writer,
            _hr_batch("atomic-1", pid, did, start),
            quarantined=[*aside, ("rr", {"device_id": did}, "another decision")],
        )
    assert (first.replayed, first.inserted, first.quarantined_rows) == (False, 2, 1)
    assert (again.replayed, again.quarantined_rows) == (True, 0)
    assert _quarantined(conn, "atomic-1") == [("hr", "bpm 40000 is outside 1..300")]


def test_a_rejected_batch_leaves_no_quarantined_rows_behind(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    pid, _did = patient_with_device(conn)
    unknown_device = 2**40
    aside = [("payload", {"hex": "01"}, "malformed payload")]
    with (
        psycopg.connect(db_dsn, autocommit=True) as writer,
        pytest.raises(BatchRejectedError),
    ):
        write_batch(
            writer, _hr_batch("atomic-2", pid, unknown_device, _start_us()), quarantined=aside
        )
    assert _quarantined(conn, "atomic-2") == []
