"""Dashboard uploads (migration 0022): only the care team or the patient, checked by PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from paceline.store.access import clinician_session, patient_session
from paceline.store.identity import IdentityKey
from tests.security.conftest import Session, World

FILE = b"\x0e\x10\x54\x08" + bytes(60)  # any bytes: the worker decides what they are


def _request(conn: psycopg.Connection[Any], patient_id: int, content: bytes = FILE) -> int:
    row = conn.execute(
        "SELECT paceline_request_import(%s, 'export.fit', %s)", (patient_id, content)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _uploads_and_jobs(conn: psycopg.Connection[Any], patient_id: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM import_upload WHERE patient_id = %s),"
        " (SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'paceline.import_upload'"
        "  AND lock = %s)",
        (patient_id, f"patient:{patient_id}"),
    ).fetchone()
    conn.rollback()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_clinician_of_another_team_is_refused_in_sql(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    before = _uploads_and_jobs(conn, world.theirs)
    with (
        as_clinician() as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="care team"),
    ):
        _request(c, world.theirs)
    assert _uploads_and_jobs(conn, world.theirs) == before


def test_a_patient_may_upload_only_for_themself(
    conn: psycopg.Connection[Any], as_patient: Session, world: World
) -> None:
    before = _uploads_and_jobs(conn, world.theirs)
    with as_patient() as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        _request(c, world.theirs)
    assert _uploads_and_jobs(conn, world.theirs) == before
    mine = _uploads_and_jobs(conn, world.mine)
    with as_patient() as c:
        upload = _request(c, world.mine)
        seen = c.execute(
            "SELECT requested_by, status, size_bytes FROM import_upload WHERE upload_id = %s",
            (upload,),
        ).fetchone()
    assert seen == (f"patient:{world.mine}", "queued", len(FILE))
    assert _uploads_and_jobs(conn, world.mine) == (mine[0] + 1, mine[1] + 1)


def test_the_dashboard_role_without_a_person_is_refused(
    dashboard_conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _request(dashboard_conn, world.mine)
    dashboard_conn.rollback()


def test_a_request_is_stored_audited_and_queued_in_one_transaction(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    with as_clinician() as c:
        upload = _request(c, world.mine)
    job = conn.execute(
        "SELECT queue_name, args, queueing_lock, status FROM procrastinate_jobs"
        " WHERE task_name = 'paceline.import_upload' AND args ->> 'upload_id' = %s",
        (str(upload),),
    ).fetchone()
    audit = conn.execute(
        "SELECT actor, clinician_id, detail ->> 'bytes' FROM audit_log"
        " WHERE action = 'import.request' AND (detail ->> 'upload_id')::bigint = %s",
        (upload,),
    ).fetchone()
    stored = conn.execute(
        "SELECT sha256 = encode(sha256(content), 'hex'), length(content) FROM import_upload"
        " WHERE upload_id = %s",
        (upload,),
    ).fetchone()
    conn.rollback()
    assert job == ("import", {"upload_id": upload}, f"import:{upload}", "todo")
    assert audit == (f"clinician:{world.me}", world.me, str(len(FILE)))
    assert stored == (True, len(FILE))


def test_people_read_the_outcome_never_the_bytes_and_write_nothing(
    as_clinician: Session, world: World
) -> None:
    with as_clinician() as c:
        upload = _request(c, world.mine)
    for statement in (
        "SELECT content FROM import_upload",
        "UPDATE import_upload SET status = 'done'",
        "DELETE FROM import_upload",
        "INSERT INTO import_upload (patient_id, requested_by, filename, size_bytes, sha256)"
        " VALUES (1, 'x', 'x', 1, repeat('0', 64))",
    ):
        with as_clinician() as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(statement)
    with as_clinician() as c:
        visible = c.execute("SELECT DISTINCT patient_id FROM import_upload").fetchall()
    assert upload and visible == [(world.mine,)]


def test_an_empty_upload_is_refused_in_sql(as_clinician: Session, world: World) -> None:
    with as_clinician() as c, pytest.raises(psycopg.errors.ProgramLimitExceeded):
        _request(c, world.mine, b"")


def test_another_teams_uploads_stay_invisible(
    dashboard_conn: psycopg.Connection[Any], world: World, identity_key: IdentityKey
) -> None:
    with clinician_session(dashboard_conn, world.other, key=identity_key) as c:
        theirs = _request(c, world.theirs)
    with clinician_session(dashboard_conn, world.me, key=identity_key) as c:
        seen = c.execute(
            "SELECT count(*) FROM import_upload WHERE upload_id = %s", (theirs,)
        ).fetchone()
    with patient_session(dashboard_conn, world.mine, key=identity_key) as c:
        seen_by_patient = c.execute(
            "SELECT count(*) FROM import_upload WHERE upload_id = %s", (theirs,)
        ).fetchone()
    assert seen == (0,) and seen_by_patient == (0,)
