"""The writer's doors: a batch id names its rows for good, spools cannot go back, bad input is typed."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from paceline.store import (
    Batch,
    BatchConflictError,
    BatchIdentity,
    BatchRejectedError,
    ColumnError,
    HrRows,
    RrRows,
    SpoolRegressionError,
    StepRows,
    batch_identity,
    write_batch,
)
from tests.factories import HR_START as T0
from tests.factories import hr_rows as _hr
from tests.factories import patient_with_device


def _count(conn: psycopg.Connection[Any], pid: int) -> int:
    row = conn.execute("SELECT count(*) FROM hr_sample WHERE patient_id = %s", (pid,)).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def _spool(batch: Batch, spool_id: str, first: int, last: int) -> BatchIdentity:
    return replace(batch_identity(batch), spool_id=spool_id, first_seq=first, last_seq=last)


def test_a_known_batch_id_with_other_rows_is_refused_and_writes_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    batch_id = f"gw/{uuid.uuid4().hex}:1-100"
    write_batch(conn, Batch(batch_id, hr=_hr(pid, did, 100)))
    later = Batch(batch_id, hr=_hr(pid, did, 100, start=T0 + timedelta(hours=1)))
    with pytest.raises(BatchConflictError) as caught:
        write_batch(conn, later)
    assert caught.value.batch_id == batch_id
    assert _count(conn, pid) == 100
    # Same rows, same id: still an honest replay.
    assert write_batch(conn, Batch(batch_id, hr=_hr(pid, did, 100))).replayed


def test_a_batch_with_one_more_row_under_a_known_id_is_refused(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    batch_id = f"gw/{uuid.uuid4().hex}:1-2"
    write_batch(conn, Batch(batch_id, hr=_hr(pid, did, 100)))
    with pytest.raises(BatchConflictError, match="100 rows"):
        write_batch(conn, Batch(batch_id, hr=_hr(pid, did, 101)))
    assert _count(conn, pid) == 100


def test_a_spool_that_goes_back_is_refused_and_the_store_keeps_its_high_mark(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    spool_id = uuid.uuid4().hex
    first = Batch(f"gw/{spool_id}:1-50", hr=_hr(pid, did, 50))
    write_batch(conn, first, source="gw", identity=_spool(first, spool_id, 1, 50))
    second = Batch(f"gw/{spool_id}:51-80", hr=_hr(pid, did, 30, start=T0 + timedelta(minutes=5)))
    write_batch(conn, second, source="gw", identity=_spool(second, spool_id, 51, 80))
    acked = conn.execute(
        "SELECT acked_seq FROM ingest_spool WHERE spool_id = %s", (spool_id,)
    ).fetchone()
    conn.commit()
    assert acked == (80,)
    # The spool lost its last 30 records and numbers new ones from 51 again, in other runs.
    rewound = Batch(f"gw/{spool_id}:51-60", hr=_hr(pid, did, 10, start=T0 + timedelta(hours=2)))
    with pytest.raises(SpoolRegressionError) as caught:
        write_batch(conn, rewound, source="gw", identity=_spool(rewound, spool_id, 51, 60))
    assert (caught.value.acked_seq, caught.value.first_seq) == (80, 51)
    assert _count(conn, pid) == 80
    # A replay of what was acknowledged is still a replay.
    assert write_batch(
        conn, second, source="gw", identity=_spool(second, spool_id, 51, 80)
    ).replayed


@pytest.mark.parametrize(
    ("bpm", "match"),
    [
        ([70, True, 72], "bpm True is not a number"),
        (["70", "71", "72"], "bpm '70' is not a number"),
        (np.array([True, False, True]), "numeric column, not bool"),
        (np.array(["70", "71", "72"]), "numeric column"),
    ],
)
def test_bpm_must_be_numbers_not_strings_or_booleans(bpm: Any, match: str) -> None:
    with pytest.raises(ColumnError, match=match):
        HrRows.of(patient_id=[1] * 3, device_id=[1] * 3, time=[T0] * 3, bpm=bpm)


@pytest.mark.parametrize("energy", [float("inf"), float("nan"), -float("inf")])
def test_a_non_finite_energy_is_refused_not_stored_as_absent(energy: float) -> None:
    with pytest.raises(ColumnError, match="hr row 0: energy_kj"):
        HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[70], energy_kj=np.array([energy]))
    absent = HrRows.of(patient_id=[1], device_id=[1], time=[T0], bpm=[70], energy_kj=[None])
    assert not absent.energy_present[0]


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_non_finite_values_are_refused_in_every_stream(value: float) -> None:
    with pytest.raises(ColumnError, match="rr_ms"):
        RrRows.of(patient_id=[1], device_id=[1], time=[T0], rr_ms=[value])
    with pytest.raises(ColumnError, match="steps"):
        StepRows.of(patient_id=[1], device_id=[1], time=[T0], steps=np.array([value]))


@pytest.mark.parametrize(
    "time",
    [
        [datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)],
        [datetime(1, 1, 1, tzinfo=UTC)],
        np.array(["-5000-01-01T00:00"], dtype="datetime64[us]"),
        np.array(["1999-12-31T23:59:59"], dtype="datetime64[s]"),
    ],
)
def test_times_before_2000_are_refused_with_a_typed_error(time: Any) -> None:
    with pytest.raises(ColumnError, match=r"hr row 0: time .* is before 2000-01-01"):
        HrRows.of(patient_id=[1], device_id=[1], time=time, bpm=[70])


def test_times_before_the_patients_birth_year_are_refused(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn, birth_year=2005)
    early = _hr(pid, did, 3, start=datetime(2004, 12, 31, 23, 59, 58, tzinfo=UTC))
    with pytest.raises(BatchRejectedError, match="before the birth year of patient"):
        write_batch(conn, Batch(f"b-{uuid.uuid4()}", hr=early))
    assert _count(conn, pid) == 0
    fine = _hr(pid, did, 3, start=datetime(2005, 1, 1, tzinfo=UTC))
    assert write_batch(conn, Batch(f"b-{uuid.uuid4()}", hr=fine)).hr_rows == 3


def test_a_duplicate_key_with_other_values_in_one_batch_is_refused(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    hr = HrRows.of(
        patient_id=[pid] * 3,
        device_id=[did] * 3,
        time=[T0, T0 + timedelta(seconds=1), T0],
        bpm=[70, 71, 90],
    )
    with pytest.raises(BatchRejectedError, match="bpm differs from row 0") as caught:
        write_batch(conn, Batch(f"b-{uuid.uuid4()}", hr=hr))
    assert caught.value.row == 2
    assert _count(conn, pid) == 0


def test_a_nul_in_a_batch_id_is_a_typed_error(conn: psycopg.Connection[Any]) -> None:
    pid, did = patient_with_device(conn)
    with pytest.raises(BatchRejectedError, match="NUL"):
        write_batch(conn, Batch("gw/\x00:1-2", hr=_hr(pid, did, 2)))
    assert _count(conn, pid) == 0


def test_nan_in_a_quarantined_row_is_kept_not_a_raw_database_error(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = patient_with_device(conn)
    batch_id = f"b-{uuid.uuid4()}"
    held = [("rr", {"rr_ms": float("nan"), "device_id": did}, "rr_ms is NaN")]
    result = write_batch(conn, Batch(batch_id, hr=_hr(pid, did, 2)), quarantined=held)
    assert result.quarantined_rows == 1
    stored = conn.execute(
        "SELECT row_data ->> 'rr_ms' FROM ingest_quarantine WHERE batch_id = %s", (batch_id,)
    ).fetchone()
    conn.commit()
    assert stored == ("nan",)
    rows = _hr(pid, did, 2, start=T0 + timedelta(hours=1))
    with pytest.raises(BatchRejectedError, match="cannot be kept as JSON"):
        write_batch(
            conn, Batch(f"b-{uuid.uuid4()}", hr=rows), quarantined=[("hr", {"x": object()}, "r")]
        )
    with pytest.raises(BatchRejectedError, match="NUL"):
        write_batch(
            conn, Batch(f"b-{uuid.uuid4()}", hr=rows), quarantined=[("hr", {"x": "a\x00b"}, "r")]
        )
    assert _count(conn, pid) == 2
