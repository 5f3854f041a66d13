"""Nobody sees a patient they should not: row-level security over the care team."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.store import Batch, HrRows, registry, write_batch
from paceline.store.access import audit, clinician_session
from paceline.store.identity import IdentityKey
from tests.factories import patient_with_device


def _clinician(conn: psycopg.Connection[Any]) -> int:
    return registry.create_clinician(conn, username=f"c{uuid.uuid4().hex[:8]}", display_name="Dr X")


def test_a_clinician_sees_only_patients_on_their_care_team(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, my_device = patient_with_device(conn)
    theirs, their_device = patient_with_device(conn)
    me, other = _clinician(conn), _clinician(conn)
    registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
    registry.assign_care_team(conn, clinician_id=other, patient_id=theirs)
    conn.commit()
    t = datetime(2026, 5, 1, tzinfo=UTC)
    for pid, did in ((mine, my_device), (theirs, their_device)):
        write_batch(
            conn,
            Batch(
                f"rls-{pid}", hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[60])
            ),
        )

    with clinician_session(dashboard_conn, me, key=identity_key) as dr:
        patients = {r[0] for r in dr.execute("SELECT patient_id FROM patient").fetchall()}
        samples = {
            r[0] for r in dr.execute("SELECT patient_id FROM clinician_hr_sample").fetchall()
        }
        devices = {r[0] for r in dr.execute("SELECT device_id FROM device").fetchall()}
    assert patients == {mine}
    assert samples == {mine}
    assert devices == {my_device}


def test_without_an_identity_the_role_sees_nothing(
    conn: psycopg.Connection[Any], dashboard_conn: psycopg.Connection[Any]
) -> None:
    patient_with_device(conn)
    with dashboard_conn.transaction():
        dashboard_conn.execute("SET LOCAL ROLE paceline_clinician")
        assert dashboard_conn.execute("SELECT count(*) FROM patient").fetchone() == (0,)


def test_a_clinician_cannot_write_a_diary_for_someone_elses_patient(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    theirs, _ = patient_with_device(conn)
    me = _clinician(conn)
    conn.commit()
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        clinician_session(dashboard_conn, me, key=identity_key) as dr,
    ):
        dr.execute(
            "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, now(), 3)",
            (theirs,),
        )


def test_a_clinician_session_can_append_but_not_read_the_audit_log(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, _ = patient_with_device(conn)
    me = _clinician(conn)
    registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
    conn.commit()
    with clinician_session(dashboard_conn, me, key=identity_key) as dr:
        audit(dr, clinician_id=me, patient_id=mine, action="view", obj="hr_sample")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        clinician_session(dashboard_conn, me, key=identity_key) as dr,
    ):
        dr.execute("SELECT count(*) FROM audit_log")
    assert conn.execute(
        "SELECT count(*) FROM audit_log WHERE clinician_id = %s AND patient_id = %s", (me, mine)
    ).fetchone() == (1,)


@pytest.mark.parametrize("table", ["hr_sample", "rr_interval", "step_sample"])
def test_a_clinician_session_cannot_read_raw_sample_tables_directly(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
    table: str,
) -> None:
    me = _clinician(conn)
    conn.commit()
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        clinician_session(dashboard_conn, me, key=identity_key) as dr,
    ):
        dr.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))


def test_no_chunk_of_a_sample_table_is_readable_by_the_clinician_role(
    conn: psycopg.Connection[Any], require_timescaledb: None
) -> None:
    """TimescaleDB copies a hypertable's grants to its chunks, which row security does not reach."""
    pid, did = patient_with_device(conn)
    t = datetime(2026, 5, 3, tzinfo=UTC)
    write_batch(
        conn,
        Batch(f"chunks-{pid}", hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[60])),
    )
    rows = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid"
        " WHERE i.inhparent IN ('hr_sample'::regclass, 'rr_interval'::regclass,"
        " 'step_sample'::regclass)"
    ).fetchall()
    assert rows, "writing a sample should have created a chunk"
    for (chunk,) in rows:
        granted = conn.execute(
            "SELECT has_table_privilege('paceline_clinician', %s, 'SELECT')", (chunk,)
        ).fetchone()
        assert granted == (False,), chunk


def test_an_exposure_session_cannot_point_at_another_patients_item(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, _ = patient_with_device(conn)
    theirs, _ = patient_with_device(conn)
    me = _clinician(conn)
    registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
    row = conn.execute(
        "INSERT INTO exposure_item (patient_id, activity, fear_rating, position)"
        " VALUES (%s, 'lifting a bag', 60, 0) RETURNING item_id",
        (theirs,),
    ).fetchone()
    assert row is not None
    conn.commit()
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation),
        clinician_session(dashboard_conn, me, key=identity_key) as dr,
    ):
        dr.execute(
            "INSERT INTO exposure_session (item_id, patient_id, planned_at) VALUES (%s, %s, now())",
            (row[0], mine),
        )


def test_a_clinician_session_inserts_without_seeing_sequence_counters(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, _ = patient_with_device(conn)
    me = _clinician(conn)
    registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
    conn.commit()
    with clinician_session(dashboard_conn, me, key=identity_key) as dr:
        dr.execute(
            "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, now(), 4)",
            (mine,),
        )
        readable = dr.execute(
            "SELECT count(*) FROM pg_sequences WHERE schemaname = 'public'"
            " AND last_value IS NOT NULL"
        ).fetchone()
    assert readable == (0,)
    granted = conn.execute(
        "SELECT has_sequence_privilege('paceline_clinician', 'patient_patient_id_seq', 'USAGE')"
    ).fetchone()
    assert granted == (False,)
