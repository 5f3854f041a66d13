"""The job queue's schema: applied by `migrate`, idempotent, upgraded step by step, refused when foreign."""

from __future__ import annotations

import psycopg
import pytest

from paceline.store import queue_schema
from paceline.store.connection import connect
from paceline.store.errors import MigrationError
from paceline.store.migrate import migrate
from paceline.store.status import database_status
from paceline.store.testing import temporary_database


def test_migrate_applies_procrastinates_schema_once(db_dsn: str) -> None:
    with connect(db_dsn, autocommit=True) as conn:
        assert queue_schema.recorded_version(conn) == queue_schema.installed_version()
        again = queue_schema.apply(conn)
        migrate(conn)  # a second migrate changes nothing
        assert again.steps == ()
        assert conn.execute("SELECT count(*) FROM queue_schema").fetchone() == (1,)
        assert conn.execute(
            "SELECT to_regprocedure('procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[])')"
            " IS NOT NULL"
        ).fetchone() == (True,)
        assert database_status(conn).pending == ()


def test_an_older_queue_schema_is_upgraded_with_procrastinates_migrations(db_dsn: str) -> None:
    steps = queue_schema.upgrade_steps((3, 2, 0), queue_schema.parse_version("3.10.0"))
    names = [name for name, _ in steps]
    assert names == sorted(names)
    assert names[0].startswith("03.03.00_01")  # 3.2.0's own steps are already applied
    assert all(not n.startswith(("03.00", "03.01", "03.02")) for n in names)
    pre = names.index("03.04.00_01_pre_add_retry_failed_job_procedure.sql")
    assert names[pre + 1] == "03.04.00_50_post_add_retry_failed_job_procedure.sql"
    with connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE queue_schema SET version = '3.9.0'")
        result = queue_schema.apply(conn)
        assert result.before == "3.9.0"
        assert queue_schema.recorded_version(conn) == queue_schema.installed_version()


def test_a_database_with_a_newer_queue_schema_is_refused(db_dsn: str) -> None:
    with connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE queue_schema SET version = '99.0.0'")
        try:
            assert "job queue schema" in " ".join(database_status(conn).pending)
            with pytest.raises(MigrationError, match="upgrade procrastinate"):
                queue_schema.apply(conn)
        finally:
            conn.execute(
                "UPDATE queue_schema SET version = %s", (queue_schema.installed_version(),)
            )


def test_procrastinate_tables_paceline_did_not_create_are_refused(pg_server_dsn: str) -> None:
    with (
        temporary_database(pg_server_dsn, "foreign_queue", migrated=False) as dsn,
        connect(dsn, autocommit=True) as conn,
    ):
        conn.execute("CREATE TABLE procrastinate_jobs (id bigint)")
        with pytest.raises(MigrationError, match="did not create"):
            migrate(conn)


def test_a_version_that_is_not_one_is_refused() -> None:
    with pytest.raises(MigrationError, match="cannot read"):
        queue_schema.parse_version("three")


def test_the_queue_schema_needs_autocommit(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn, pytest.raises(MigrationError, match="autocommit"):
        queue_schema.apply(conn)
