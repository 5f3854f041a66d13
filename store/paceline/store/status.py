"""What `paceline db status` reports: schema, server and TimescaleDB state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from paceline.store import locks, migrate, queue_schema, roles
from paceline.store.timescale import HypertableStatus, TimescaleState, probe, table_status


@dataclass(frozen=True)
class DatabaseStatus:
    """A snapshot of the database Paceline is connected to."""

    server_version: str
    schema_version: int
    latest_version: int
    pending: tuple[str, ...]
    timescale: TimescaleState
    tables: tuple[HypertableStatus, ...]
    migration_lock: locks.LockHolder | None = None
    migration_lock_foreign: bool = False

    @property
    def mode(self) -> str:
        """'timescaledb' when the sample tables are hypertables, else 'postgresql'."""
        return "timescaledb" if any(t.hypertable for t in self.tables) else "postgresql"


def database_status(conn: psycopg.Connection[Any]) -> DatabaseStatus:
    """Read the schema version, server version and TimescaleDB state."""
    server = conn.execute("SHOW server_version").fetchone()
    done = migrate.applied_versions(conn)
    known = migrate.load_migrations()
    waiting = tuple(f"{m.version:04d}_{m.name}" for m in known if m.version not in done)
    queue = queue_schema.installed_version()
    if queue_schema.recorded_version(conn) != queue:
        waiting += (f"job queue schema (procrastinate {queue})",)
    tables = tuple(table_status(conn)) if done else ()
    holder = locks.holder(conn, migrate.MIGRATION_LOCK_KEY)
    foreign = holder is not None and not locks.is_service(
        holder, application_prefix=migrate.MIGRATE_APPLICATION, roles=(roles.MIGRATE,)
    )
    return DatabaseStatus(
        server_version=str(server[0]) if server else "unknown",
        schema_version=max(done, default=0),
        latest_version=known[-1].version,
        pending=waiting,
        timescale=probe(conn),
        tables=tables,
        migration_lock=holder,
        migration_lock_foreign=foreign,
    )
