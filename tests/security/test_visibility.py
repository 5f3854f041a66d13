"""Whatever a person can select, no other patient's row is in it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.store.access import audit
from tests.security.conftest import Session, World

#: Relations a person role may read that have no patient_id column, and why that is safe.
NO_PATIENT_COLUMN = {
    "clinician": "own row only (policy clinician_own_row)",
}


def _readable(conn: psycopg.Connection[Any], role: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " AND has_table_privilege(%s, c.oid, 'SELECT') ORDER BY 1",
        (role,),
    ).fetchall()
    return [r[0] for r in rows]


def _has_patient_column(conn: psycopg.Connection[Any], relation: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attname = 'patient_id' AND NOT attisdropped",
        (relation,),
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("person", ["clinician", "patient"])
def test_no_readable_relation_shows_another_patient(
    conn: psycopg.Connection[Any],
    as_clinician: Session,
    as_patient: Session,
    world: World,
    person: str,
) -> None:
    role = f"paceline_{person}"
    readable = _readable(conn, role)
    checked = [r for r in readable if _has_patient_column(conn, r)]
    conn.rollback()
    assert "self_report" in checked and "clinician_hr_sample" in checked
    unchecked = sorted(set(readable) - set(checked) - set(NO_PATIENT_COLUMN))
    assert unchecked == [], f"{role} can read {unchecked}, which have no patient_id to check"
    session = as_clinician if person == "clinician" else as_patient
    with session() as s:
        for relation in checked:
            seen = {
                r[0]
                for r in s.execute(
                    sql.SQL("SELECT DISTINCT patient_id FROM {}").format(sql.Identifier(relation))
                )
            }
            assert seen <= {world.mine}, relation
        if person == "clinician":
            own = s.execute("SELECT clinician_id FROM clinician").fetchall()
            assert own == [(world.me,)]


def test_a_patient_sees_only_themself(as_patient: Session, world: World) -> None:
    with as_patient() as s:
        assert s.execute("SELECT patient_id FROM patient").fetchall() == [(world.mine,)]
        assert s.execute("SELECT DISTINCT patient_id FROM clinician_hr_sample").fetchall() == [
            (world.mine,)
        ]
        assert s.execute(
            "SELECT count(*) FROM patient WHERE patient_id = %s", (world.theirs,)
        ).fetchone() == (0,)


def test_a_patient_cannot_write_another_patients_diary(as_patient: Session, world: World) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_patient() as s:
        s.execute(
            "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, now(), 2)",
            (world.theirs,),
        )


def test_a_patient_writes_their_own_diary(as_patient: Session, world: World) -> None:
    with as_patient() as s:
        s.execute(
            "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, now(), 2)",
            (world.mine,),
        )
        audit(s, patient_id=world.mine, action="diary.add", obj="self_report")


@pytest.mark.parametrize(
    ("field", "value"),
    [("actor", "clinician:999999"), ("clinician_id", "other"), ("patient_id", "theirs")],
)
def test_a_clinician_cannot_audit_as_someone_else_or_about_a_stranger(
    as_clinician: Session, world: World, field: str, value: str
) -> None:
    row: dict[str, Any] = {
        "actor": None,
        "clinician_id": world.me,
        "patient_id": world.mine,
    }
    row[field] = {"other": world.other, "theirs": world.theirs}.get(value, value)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_clinician() as s:
        audit(s, action="view", obj="patient", **row)


def test_a_patient_cannot_audit_about_another_patient(as_patient: Session, world: World) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_patient() as s:
        audit(s, patient_id=world.theirs, action="view", obj="patient")
