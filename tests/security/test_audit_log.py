"""The audit log: append-only for every role services and people use, and tamper-evident."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.cli.main import main
from paceline.store import connect, roles
from paceline.store.access import audit
from paceline.store.audit import AuditChainError, verify
from paceline.store.testing import service_dsn, temporary_database
from tests.security.conftest import Session, World

CHANGES = {
    "update": "UPDATE audit_log SET actor = 'someone else'",
    "delete": "DELETE FROM audit_log",
    "truncate": "TRUNCATE audit_log",
}
#: What paceline_owner (reachable through paceline_migrate) would do to rewrite history.
OWNER_ATTACKS = {
    "disable_triggers": "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "drop": "DROP TABLE audit_log",
    "no_force_rls": "ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY",
    "take_ownership": "ALTER TABLE audit_log OWNER TO paceline_owner",
    "replace_chain": "CREATE OR REPLACE FUNCTION paceline_audit_chain() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "replica_mode": "SET session_replication_role = replica",
    "rewrite_head": "UPDATE audit_chain_head SET seq = 0",
    **CHANGES,
}


def _add(conn: psycopg.Connection[Any], n: int, action: str = "view") -> None:
    for i in range(n):
        audit(conn, actor="pacing-engine", action=action, obj="patient", detail={"i": i})
        conn.commit()


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("role", [roles.WORKER, roles.INGEST, roles.DASHBOARD, roles.MIGRATE])
def test_no_service_role_can_change_the_audit_log(db_dsn: str, role: str, change: str) -> None:
    with (
        connect(service_dsn(db_dsn, role)) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        c.execute(CHANGES[change])


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_no_person_can_change_the_audit_log(
    as_clinician: Session, as_patient: Session, change: str
) -> None:
    for session in (as_clinician, as_patient):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), session() as s:
            s.execute(CHANGES[change])


@pytest.mark.parametrize("attack", sorted(OWNER_ATTACKS))
def test_the_owner_cannot_rewrite_or_switch_off_the_audit_log(db_dsn: str, attack: str) -> None:
    with connect(service_dsn(db_dsn, roles.MIGRATE)) as c:
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(OWNER_ATTACKS[attack])


def test_concurrent_inserts_form_one_unbroken_chain(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    before = verify(conn).entries
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with connect(service_dsn(db_dsn, roles.WORKER)) as c:
                _add(c, 25)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread's assert
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert verify(conn).entries == before + 75


def test_a_person_cannot_choose_their_rows_place_in_the_chain(
    conn: psycopg.Connection[Any], as_clinician: Session, world: World
) -> None:
    with as_clinician() as s:
        s.execute(
            "INSERT INTO audit_log (actor, clinician_id, patient_id, action, object, seq,"
            " prev_hash, row_hash) VALUES (paceline_identity_actor(), %s, %s, 'view', 'patient',"
            " 1, '\\x00', '\\x00')",
            (world.me, world.mine),
        )
    assert verify(conn).entries >= 1


@pytest.fixture
def fresh_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A database of its own, because these tests break its audit log on purpose."""
    with temporary_database(pg_server_dsn, "tamper") as dsn:
        with connect(service_dsn(dsn, roles.WORKER)) as c:
            _add(c, 5)
        yield dsn


def _as_superuser_without_guards(dsn: str, statement: str) -> None:
    """What someone with the database superuser's password (or the disk) could do."""
    with connect(dsn) as c:
        c.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        c.execute(statement)
        for trigger in ("audit_log_chain", "audit_log_append_only", "audit_log_no_truncate"):
            c.execute(
                sql.SQL("ALTER TABLE audit_log ENABLE ALWAYS TRIGGER {}").format(
                    sql.Identifier(trigger)
                )
            )
        c.commit()


@pytest.mark.parametrize(
    "case",
    [
        ("UPDATE audit_log SET detail = '{\"i\": 99}' WHERE seq = 3", 3, "content"),
        ("DELETE FROM audit_log WHERE seq = 2", 2, "missing"),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "chain head"),
        (
            "UPDATE audit_log SET detail = '{}' WHERE seq = 4;"
            " UPDATE audit_log SET row_hash = sha256(prev_hash"
            " || paceline_audit_content(audit_log.*)) WHERE seq = 4",
            5,
            "previous entry",
        ),
    ],
)
def test_verify_names_the_first_broken_link(
    fresh_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, int, str],
) -> None:
    statement, seq, why = case
    with connect(fresh_dsn, autocommit=True) as c:
        assert verify(c).entries == 5
    _as_superuser_without_guards(fresh_dsn, statement)
    with connect(fresh_dsn, autocommit=True) as c, pytest.raises(AuditChainError) as broken:
        verify(c)
    assert broken.value.seq == seq
    assert why in str(broken.value)
    monkeypatch.setenv("PACELINE_DATABASE_URL", fresh_dsn)
    assert main(["audit", "verify"]) == 1
    assert f"broken at entry {seq}" in capsys.readouterr().err


def test_verify_passes_an_untouched_log(
    fresh_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACELINE_DATABASE_URL", fresh_dsn)
    assert main(["audit", "verify"]) == 0
    assert "intact: 5 entries" in capsys.readouterr().out


def test_entries_written_before_the_chain_existed_are_chained_in_order(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paceline.store import migrate as migrations

    every = migrations.load_migrations()
    chain = next(m.version for m in every if m.name == "audit_chain")
    with (
        temporary_database(pg_server_dsn, "prechain", migrated=False) as dsn,
        connect(dsn, autocommit=True) as c,
    ):
        monkeypatch.setattr(migrations, "load_migrations", lambda: every[: chain - 1])
        migrations.migrate(c)
        for i in range(4):
            c.execute(
                "INSERT INTO audit_log (actor, action, object, detail) VALUES ('old', 'view', 'x',"
                " %s::jsonb)",
                (f'{{"i": {i}}}',),
            )
        monkeypatch.setattr(migrations, "load_migrations", lambda: every)
        migrations.migrate(c)
        assert verify(c).entries == 4
        _add(c, 2)
        assert verify(c).entries == 6
