"""Every read of a patient's data through the query layer for a person is audited; services' are not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from paceline.pacing import overview
from paceline.store import connect, reads, roles
from paceline.store.testing import service_dsn
from tests.security.conftest import Session, World

START = datetime(2026, 4, 30, tzinfo=UTC)
END = START + timedelta(days=3)


def _reads_of(conn: psycopg.Connection[Any], actor: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT patient_id, object FROM audit_log WHERE actor = %s AND action = 'read'"
        " ORDER BY seq",
        (actor,),
    ).fetchall()
    conn.rollback()
    return [(r[0], r[1]) for r in rows]


def _read_everything(s: psycopg.Connection[Any], patient_id: int) -> tuple[int, ...]:
    return (
        len(reads.caseload(s)),
        len(reads.daily_metrics(s, patient_id, date(2026, 4, 1), date(2026, 5, 31))),
        len(reads.hr_buckets(s, patient_id, START, END)),
        len(reads.diary(s, patient_id, START, END)),
    )


def test_a_clinicians_reads_are_audited_as_them(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    before = _reads_of(conn, f"clinician:{world.me}")
    with as_clinician() as s:
        counts = _read_everything(s, world.mine)
    assert counts == (1, 1, 1, 1)
    after = _reads_of(conn, f"clinician:{world.me}")[len(before) :]
    assert after == [
        (world.mine, "caseload"),
        (world.mine, "daily_metrics"),
        (world.mine, "hr_sample"),
        (world.mine, "self_report"),
    ]


def test_a_patients_reads_of_their_own_data_are_audited(
    conn: psycopg.Connection[Any], as_patient: Session, world: World
) -> None:
    before = len(_reads_of(conn, f"patient:{world.mine}"))
    with as_patient() as s:
        assert _read_everything(s, world.mine) == (1, 1, 1, 1)
    assert len(_reads_of(conn, f"patient:{world.mine}")) == before + 4


def test_reading_another_teams_patient_returns_nothing_and_records_nothing(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    with as_clinician() as s:
        assert _read_everything(s, world.theirs)[1:] == (0, 0, 0)
    assert world.theirs not in {pid for pid, _ in _reads_of(conn, f"clinician:{world.me}")}


def test_a_services_reads_are_not_audited(
    conn: psycopg.Connection[Any], db_dsn: str, world: World
) -> None:
    count = "SELECT count(*) FROM audit_log WHERE action = 'read'"
    before = conn.execute(count).fetchone()
    conn.rollback()
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        assert len(reads.daily_metrics(worker, world.mine, date(2026, 4, 1), date(2026, 5, 31)))
        worker.commit()
    assert conn.execute(count).fetchone() == before


def test_the_dashboards_read_models_audit_each_patient_they_show(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    # A caseload is a view of every patient on it: one read row per patient, like
    # reads.caseload, not one page row that names no patient.
    before = _reads_of(conn, f"clinician:{world.me}")
    with as_clinician() as s:
        shown = [e.patient_id for e in overview.caseload(s, now=END)]
        overview.timeline(s, world.mine, START.date(), END.date())
        overview.exposure(s, world.mine)
    assert shown == [world.mine]
    after = _reads_of(conn, f"clinician:{world.me}")[len(before) :]
    assert after == [(world.mine, "caseload"), (world.mine, "timeline"), (world.mine, "exposure")]
