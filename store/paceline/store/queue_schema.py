"""The job queue's schema (procrastinate's tables and functions), applied by `paceline db migrate`.

Procrastinate ships its schema as one SQL file for fresh databases and as
numbered migration files (`03.04.00_01_pre_….sql`) for upgrades. Copying either
into our numbered migrations would tie our checksums to one procrastinate
release, so instead `apply` runs, under the migration lock the caller holds:

- on a database without the queue: procrastinate's `schema.sql`, and records
  the installed version in `queue_schema`;
- on a database whose recorded version is older than the installed one: every
  procrastinate migration after the recorded version up to the installed one,
  in order (pre and post steps together: stop the workers, migrate, start the
  new workers), then the new version;
- otherwise nothing.

Each case runs in one transaction, so a failure leaves the old schema intact.
Then (every time, so an upgrade's new tables get it too) the queue's tables are
brought into the security model: owned by `paceline_owner` (the migration runs
as it), no privilege for anyone but the worker role, which runs procrastinate's
queries and so gets DML on the tables and the use of their sequences.

procrastinate's own tables have no row-level security: nobody but the owner and
the worker may read them at all, and both would see every row, so a policy
would add nothing; and PostgreSQL leaves the key out of a unique-violation
message on a table with row security, which is how procrastinate learns that a
queueing lock is taken (without the key it fails an assertion instead of
reporting "already enqueued"). `queue_schema` keeps FORCE ROW LEVEL SECURITY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

import psycopg
from psycopg import sql

from paceline.store.errors import MigrationError

_MIGRATION_FILE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{2})_(\d{2})_[a-z0-9_]+\.sql$")

Version = tuple[int, int, int]

#: The role that runs jobs; it alone (with the owner) may touch the queue's tables.
_WORKER = "paceline_worker"
#: Who may read which version the queue schema is at (`paceline db status` as a service).
_VERSION_READERS = ("paceline_worker", "paceline_ingest")


@dataclass(frozen=True)
class QueueSchemaResult:
    """What `apply` did: the version before (None on a fresh database) and after."""

    before: str | None
    after: str
    steps: tuple[str, ...]


def parse_version(text: str) -> Version:
    """`3.10.0` → (3, 10, 0); a `MigrationError` naming the text otherwise."""
    parts = text.split(".")
    if len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
        raise MigrationError(f"cannot read procrastinate version {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def installed_version() -> str:
    """The procrastinate release installed beside Paceline."""
    return metadata.version("procrastinate")


def upgrade_steps(before: Version, after: Version) -> list[tuple[str, str]]:
    """Procrastinate's migration files (name, SQL) after `before` up to `after`, in order."""
    folder = resources.files("procrastinate").joinpath("sql", "migrations")
    steps = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if not match:
            continue
        version = (int(match[1]), int(match[2]), int(match[3]))
        if before < version <= after:
            steps.append((version, int(match[4]), entry.name, entry.read_text(encoding="utf-8")))
    steps.sort()
    return [(name, text) for _, _, name, text in steps]


def recorded_version(conn: psycopg.Connection[Any]) -> str | None:
    """The procrastinate version the database's queue schema was built for, if any."""
    row = conn.execute("SELECT to_regclass('public.queue_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT version FROM queue_schema").fetchone()
    return None if found is None else str(found[0])


def apply(conn: psycopg.Connection[Any]) -> QueueSchemaResult:
    """Create or upgrade the queue schema (the caller holds the migration lock)."""
    if not conn.autocommit:
        raise MigrationError("the queue schema needs a connection in autocommit mode")
    target = installed_version()
    before = recorded_version(conn)
    if before == target:
        try:
            with conn.transaction():
                secure(conn)
        except psycopg.Error as exc:
            raise MigrationError(f"securing the queue's tables failed: {exc}") from exc
        return QueueSchemaResult(before, target, ())
    try:
        with conn.transaction():
            conn.execute(
                "CREATE TABLE IF NOT EXISTS queue_schema ("
                " version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            if before is None:
                exists = conn.execute(
                    "SELECT to_regclass('public.procrastinate_jobs') IS NOT NULL"
                ).fetchone()
                if exists and exists[0]:
                    raise MigrationError(
                        "the database has procrastinate tables that Paceline did not create;"
                        " record their version in queue_schema or drop them"
                    )
                schema = resources.files("procrastinate").joinpath("sql", "schema.sql")
                conn.execute(schema.read_text(encoding="utf-8").encode())
                steps: list[str] = ["schema.sql"]
            else:
                if parse_version(before) > parse_version(target):
                    raise MigrationError(
                        f"the queue schema is at procrastinate {before}, newer than the"
                        f" installed {target}: upgrade procrastinate"
                    )
                steps = []
                for name, text in upgrade_steps(parse_version(before), parse_version(target)):
                    conn.execute(text.encode())
                    steps.append(name)
            conn.execute("DELETE FROM queue_schema")
            conn.execute("INSERT INTO queue_schema (version) VALUES (%s)", (target,))
            secure(conn)
    except psycopg.Error as exc:
        raise MigrationError(f"applying procrastinate {target}'s schema failed: {exc}") from exc
    return QueueSchemaResult(before, target, tuple(steps))


def secure(conn: psycopg.Connection[Any]) -> None:
    """Row security, policies and grants of the queue's tables (idempotent)."""
    tables = [
        str(name)
        for (name,) in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind = 'r' AND (relname LIKE 'procrastinate\\_%' OR relname = 'queue_schema')"
            " ORDER BY 1"
        ).fetchall()
    ]
    for table in tables:
        name = sql.Identifier(table)
        conn.execute(sql.SQL("DROP POLICY IF EXISTS services ON {}").format(name))
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(name))
        if table == "queue_schema":
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name))
            conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(name))
            readers = sql.SQL(", ").join(map(sql.Identifier, _VERSION_READERS))
            conn.execute(
                sql.SQL("CREATE POLICY services ON {} TO paceline_owner, {} USING (true)").format(
                    name, readers
                )
            )
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(name, readers))
            continue
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(name))
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(name))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                name, sql.Identifier(_WORKER)
            )
        )
    sequences = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind = 'S' AND relname LIKE 'procrastinate\\_%'"
    ).fetchall()
    for (seq,) in sequences:
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
                sql.Identifier(seq), sql.Identifier(_WORKER)
            )
        )
