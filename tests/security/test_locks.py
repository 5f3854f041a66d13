"""Nobody outside the services can take their advisory locks, and a stray holder is named."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.cli.main import main
from paceline.pacing.jobs.clock import Clock
from paceline.pacing.jobs.leader import LEADER_LOCK_KEY
from paceline.store import connect, locks, roles
from paceline.store.migrate import MIGRATION_LOCK_KEY, MigrationLockError, migrate
from paceline.store.testing import service_dsn
from tests.security.conftest import Session

KEYS = {"migration": MIGRATION_LOCK_KEY, "leader": LEADER_LOCK_KEY}
CALLS = ("pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_xact_lock")


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("key", sorted(KEYS))
def test_people_the_dashboard_and_the_uploader_cannot_take_service_locks(
    db_dsn: str, as_clinician: Session, key: str, call: str
) -> None:
    statement = sql.SQL("SELECT {}(%s)").format(sql.Identifier(call))
    for role in (roles.DASHBOARD, roles.INGEST):
        with (
            connect(service_dsn(db_dsn, role)) as c,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            c.execute(statement, (KEYS[key],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_clinician() as s:
        s.execute(statement, (KEYS[key],))


def test_the_per_patient_engine_lock_stays_open_to_clinician_sessions(
    as_clinician: Session,
) -> None:
    with as_clinician() as s:
        s.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x70636E67, 1))


@pytest.fixture
def stray(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A worker's interactive session (psql), not a Paceline service."""
    with connect(service_dsn(db_dsn, roles.WORKER), autocommit=True, application_name="psql") as c:
        yield c


def test_migrate_names_a_stray_session_holding_its_lock_instead_of_waiting(
    db_dsn: str, stray: psycopg.Connection[Any]
) -> None:
    stray.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    with connect(db_dsn, autocommit=True) as admin, pytest.raises(MigrationLockError) as held:
        migrate(admin)
    assert held.value.holder.pid == stray.info.backend_pid
    assert held.value.holder.role == roles.WORKER
    assert "'psql'" in str(held.value) and "pg_terminate_backend" in str(held.value)


def test_a_paceline_holder_is_not_foreign_and_a_stray_one_is(
    db_dsn: str, stray: psycopg.Connection[Any]
) -> None:
    with (
        connect(
            service_dsn(db_dsn, roles.WORKER),
            autocommit=True,
            application_name="paceline-clock a",
        ) as leader,
        connect(db_dsn, autocommit=True) as observer,
    ):
        leader.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK_KEY,))
        found = locks.holder(observer, LEADER_LOCK_KEY)
        assert found is not None and found.pid == leader.info.backend_pid
        assert (
            locks.foreign_holder(
                observer,
                LEADER_LOCK_KEY,
                application_prefix="paceline-clock",
                roles=[roles.WORKER],
            )
            is None
        )
        leader.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK_KEY,))
        stray.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK_KEY,))
        foreign = locks.foreign_holder(
            observer, LEADER_LOCK_KEY, application_prefix="paceline-clock", roles=[roles.WORKER]
        )
        assert foreign is not None and foreign.pid == stray.info.backend_pid


def test_a_standby_blocked_by_a_stray_holder_says_who_it_is(
    db_dsn: str, stray: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    stray.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK_KEY,))
    clock = Clock(service_dsn(db_dsn, roles.WORKER), name="standby")
    with caplog.at_level(logging.INFO, logger="paceline.pacing.jobs.clock"):
        clock._try_to_lead()  # one leadership attempt, without the timer
    clock.stop(timeout_s=5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"backend {stray.info.backend_pid}" in m and "not a Paceline clock" in m for m in warnings
    ), warnings


def test_db_status_names_a_stray_migration_lock_holder(
    db_dsn: str,
    stray: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stray.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    assert main(["db", "status"]) == 1
    out = capsys.readouterr().out
    assert f"backend {stray.info.backend_pid}" in out and "NOT a Paceline migration" in out
