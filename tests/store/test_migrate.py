"""Migrations: all tables, applied once, safe twice and from two processes at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from paceline.store import MigrationError, connect
from paceline.store.migrate import (
    MIGRATE_APPLICATION,
    MIGRATION_LOCK_KEY,
    load_migrations,
    migrate,
    pending,
)
from paceline.store.status import database_status
from paceline.store.testing import temporary_database

DATA_MODEL_TABLES = {
    "patient",
    "clinician",
    "care_team",
    "device",
    "hr_sample",
    "rr_interval",
    "step_sample",
    "ingest_batch",
    "self_report",
    "questionnaire_response",
    "exposure_item",
    "exposure_session",
    "daily_metrics",
    "pacing_plan",
    "flag",
    "alert",
    "audit_log",
}


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {r[0] for r in rows}


def test_every_table_of_the_data_model_exists(conn: psycopg.Connection[Any]) -> None:
    assert _tables(conn) >= DATA_MODEL_TABLES


def test_migrate_twice_applies_nothing_the_second_time(pg_server_dsn: str) -> None:
    with (
        temporary_database(pg_server_dsn, "twice", migrated=False) as dsn,
        connect(dsn, autocommit=True) as c,
    ):
        first = migrate(c)
        second = migrate(c)
        assert first.applied == tuple(m.version for m in load_migrations())
        assert second.applied == ()
        assert pending(c) == []
        assert c.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(first.applied),
        )


def test_two_processes_migrating_at_once_apply_each_migration_once(pg_server_dsn: str) -> None:
    with temporary_database(pg_server_dsn, "race", migrated=False) as dsn:
        code = (
            "import sys; from paceline.store import connect; from paceline.store.migrate import migrate\n"
            "with connect(sys.argv[1], autocommit=True) as c: print(len(migrate(c).applied))"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", code, dsn], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert sorted(int(o) for o in outs) == [0, len(load_migrations())]
        with connect(dsn, autocommit=True) as c:
            assert _tables(c) >= DATA_MODEL_TABLES


def test_an_edited_applied_migration_is_refused(pg_server_dsn: str) -> None:
    with temporary_database(pg_server_dsn, "edited") as dsn, connect(dsn, autocommit=True) as c:
        c.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(c)


def test_a_migration_from_a_newer_paceline_is_refused(pg_server_dsn: str) -> None:
    with temporary_database(pg_server_dsn, "newer") as dsn, connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')")
        with pytest.raises(MigrationError, match="newer version"):
            migrate(c)


def test_migrate_needs_autocommit(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(MigrationError, match="autocommit"):
        migrate(conn)


def test_status_reports_schema_server_and_mode(conn: psycopg.Connection[Any]) -> None:
    status = database_status(conn)
    assert status.schema_version == status.latest_version == load_migrations()[-1].version
    assert status.pending == ()
    assert int(status.server_version.split(".")[0]) >= 15
    assert status.mode == ("timescaledb" if status.timescale.active else "postgresql")
    assert {t.table for t in status.tables} == {"hr_sample", "rr_interval", "step_sample"}


def test_audit_log_is_append_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO audit_log (actor, action, object) VALUES ('system', 'view', 'x')")
    conn.commit()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'someone else'")
    conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM audit_log")


def test_a_patient_with_an_unknown_time_zone_is_refused(conn: psycopg.Connection[Any]) -> None:
    from paceline.store.registry import InvalidTimezoneError, create_patient

    with pytest.raises(InvalidTimezoneError, match="Mars/Olympus_Mons"):
        create_patient(conn, external_ref="tz-x", display_name="X", timezone="Mars/Olympus_Mons")


def test_roles_are_set_up_under_the_migration_lock(pg_server_dsn: str) -> None:
    """Bootstrap's grants wait for a migration in progress instead of racing its grants.

    A migration that grants on schema public holds the catalog row until it commits;
    a bootstrap updating the same row meanwhile failed with "tuple concurrently
    updated" (seen when two processes migrated one database at once).
    """
    with (
        temporary_database(pg_server_dsn, "bootlock", migrated=False) as dsn,
        connect(dsn, autocommit=True) as holder,
        connect(dsn, autocommit=True) as watcher,
    ):
        holder.execute("SELECT set_config('application_name', %s, false)", (MIGRATE_APPLICATION,))
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        holder.execute("BEGIN")
        holder.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # as a migration's grant
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with connect(dsn, autocommit=True) as c:
                    migrate(c)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while not _waiting(watcher, dsn, holder.info.backend_pid):
            assert thread.is_alive(), errors
            assert time.monotonic() < deadline, "migrate() never waited for the holder"
            time.sleep(0.1)
        holder.execute("COMMIT")
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        thread.join(timeout=240)
        assert not thread.is_alive()
        assert errors == []


def _waiting(watcher: psycopg.Connection[Any], dsn: str, holder_pid: int) -> bool:
    """Whether the migrating session (neither the watcher nor the holder) waits."""
    dbname = conninfo_to_dict(dsn)["dbname"]
    row = watcher.execute(
        # Blocked on a lock (bootstrap before the migration lock), or past bootstrap's
        # place before it (the session names itself, then polls for the lock).
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        " AND pid NOT IN (pg_backend_pid(), %s)"
        " AND (wait_event_type = 'Lock' OR application_name = %s)",
        (dbname, holder_pid, MIGRATE_APPLICATION),
    ).fetchone()
    return bool(row and row[0])
