"""Every read of a patient's data through the query layer for a person is audited; services' are not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.pacing import overview
from paceline.store import access, connect, reads, roles
from paceline.store.audit import verify
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


@pytest.fixture
def statements(
    dashboard_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The text of every statement the dashboard connection runs during the test."""
    seen: list[str] = []
    original = psycopg.Cursor.execute

    def noting(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if cur.connection is dashboard_conn:
            text = query.as_string(cur.connection) if isinstance(query, sql.Composable) else query
            seen.append(text if isinstance(text, str) else bytes(text).decode())
        return original(cur, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", noting)
    return seen


def test_a_deferred_block_audits_every_read_in_one_statement_at_its_end(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World, statements: list[str]
) -> None:
    before = _reads_of(conn, f"clinician:{world.me}")
    with as_clinician() as s, access.deferred_audit(s):
        overview.timeline(s, world.mine, START.date(), END.date())
        overview.exposure(s, world.mine)
        access.audit(
            s,
            action="dashboard.view",
            obj="patient",
            patient_id=world.mine,
            clinician_id=world.me,
        )
        with access.deferred_audit(s):  # nested: written with the outer block
            overview.exposure(s, world.mine)
        # Nothing written yet: the chain's head is not locked while the block reads.
        assert not [q for q in statements if "INSERT INTO audit_log" in q]
    inserts = [q for q in statements if "INSERT INTO audit_log" in q]
    assert len(inserts) == 1
    after = _reads_of(conn, f"clinician:{world.me}")[len(before) :]
    # In the order audited (the chain numbers them so), each read still its own row.
    assert after == [(world.mine, "timeline"), (world.mine, "exposure"), (world.mine, "exposure")]
    view = conn.execute(
        "SELECT actor FROM audit_log WHERE action = 'dashboard.view' AND patient_id = %s"
        " ORDER BY seq DESC LIMIT 1",
        (world.mine,),
    ).fetchone()
    conn.rollback()
    assert view == (f"clinician:{world.me}",)  # the verified person, as without deferral
    assert verify(conn).entries > 0


def test_a_deferred_block_that_raises_still_audits_what_it_did(db_dsn: str) -> None:
    mark = f"deferred-{datetime.now(UTC).timestamp()}"
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        with pytest.raises(ValueError, match="after the read"), access.deferred_audit(worker):
            access.audit(worker, actor="pacing-engine", action="test.read", obj=mark)
            raise ValueError("after the read")
        worker.commit()
        # A failed transaction cannot take the rows: its own error comes out, not another.
        with (
            pytest.raises(psycopg.errors.DivisionByZero),
            access.deferred_audit(worker),
        ):
            access.audit(worker, actor="pacing-engine", action="test.read", obj=mark)
            worker.execute("SELECT 1 / 0")
        worker.rollback()
        # Outside a person session an entry needs an actor, deferred or not.
        with pytest.raises(access.PersonSessionError), access.deferred_audit(worker):
            access.audit(worker, action="test.read", obj=mark)
        worker.rollback()
    with connect(db_dsn) as c:
        rows = c.execute("SELECT count(*) FROM audit_log WHERE object = %s", (mark,)).fetchone()
    assert rows == (1,)


def test_the_timeline_reads_the_patient_row_once(
    as_clinician: Session, world: World, statements: list[str]
) -> None:
    with as_clinician() as s:
        t = overview.timeline(s, world.mine, START.date(), END.date())
    assert t.display_name
    assert len([q for q in statements if "FROM patient WHERE" in q]) == 1
