"""Numbered SQL migrations, applied in order, once, under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from paceline.store import locks, queue_schema, roles, timescale
from paceline.store.errors import MigrationError
from paceline.store.identity import IdentityKey, install_key
from paceline.store.locks import LockHeldError

logger = logging.getLogger(__name__)

# pg_advisory_lock key shared by every Paceline process that migrates: the
# ASCII of "pace" so that it is recognisable in pg_locks.
MIGRATION_LOCK_KEY = 0x70616365
#: application_name of a migrating session: how a waiting one tells a Paceline
#: migration holding the lock from a stray session.
MIGRATE_APPLICATION = "paceline-migrate"
#: Who may read TimescaleDB's information views and catalog (chunk ranges, sizes, jobs).
CATALOG_READERS = (roles.OWNER, roles.MIGRATE, roles.WORKER, roles.INGEST)
#: How often a migration waiting behind another one looks at the lock again.
MIGRATION_LOCK_POLL_S = 0.2
#: First line of a migration that a superuser must apply (as itself, not as the owner).
SUPERUSER_MARKER = "-- paceline: requires superuser"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def needs_superuser(self) -> bool:
        """Whether the file says it must run as a superuser, not as `paceline_owner`."""
        return self.sql.startswith(SUPERUSER_MARKER)

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text, to notice a file edited after it was applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationResult:
    """What one `migrate` call did."""

    applied: tuple[int, ...]
    schema_version: int
    timescale: timescale.TimescaleState


def load_migrations() -> list[Migration]:
    """Every migration shipped with Paceline, in order."""
    found = []
    for entry in resources.files("paceline.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1, 2, 3 … without gaps; found {versions}")
    return found


def applied_versions(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Applied migration versions and their checksums (empty on a new database)."""
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(v): str(c) for v, c in rows}


def migrate(
    conn: psycopg.Connection[Any],
    *,
    compress_after: timedelta = timescale.DEFAULT_COMPRESS_AFTER,
    retention: timedelta | None = None,
    identity_key: IdentityKey | None = None,
    passwords: Mapping[str, str] | None = None,
) -> MigrationResult:
    """Bring the schema up to date, then set up TimescaleDB features if the server has them.

    Safe to run twice and from several processes at once: the work happens
    under a session advisory lock, and each migration commits in its own
    transaction together with its row in `schema_migrations`.

    Run by a superuser, it first sets up the roles (`roles.bootstrap`, with
    `passwords` for the LOGIN roles) and hands any object a superuser created
    earlier to `paceline_owner`. Run by `paceline_migrate`, it needs that done
    once. Either way the migrations themselves run as `paceline_owner`, so
    everything they create belongs to it. `identity_key`, when given, becomes
    the key that person identity tokens are verified with.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs a connection in autocommit mode")
    migrations = load_migrations()
    superuser = roles.is_superuser(conn)
    if not superuser and not _can_become_owner(conn):
        raise MigrationError(
            f"{conn.info.user!r} cannot migrate: migrations run as {roles.OWNER}, which only"
            f" {roles.MIGRATE} or a superuser can become; the first migration of a server"
            " needs a superuser to set up the roles"
        )
    previous_name = conn.execute("SHOW application_name").fetchone()
    conn.execute("SELECT set_config('application_name', %s, false)", (MIGRATE_APPLICATION,))
    # The roles are set up under the migration lock too: another process's migrations
    # grant on schema public and the database while bootstrap revokes and grants on
    # them, and two such catalog updates at once fail with "tuple concurrently updated".
    _take_migration_lock(conn)
    try:
        if superuser:
            roles.bootstrap(conn, passwords=passwords)
            ts_ready = timescale.enable_extension(conn)
            _adopt_objects(conn)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER)))
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = applied_versions(conn)
        _check_applied(migrations, done)
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            if migration.needs_superuser and not superuser:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} must be applied by a"
                    " superuser (it hands objects to a role the owner cannot become); run"
                    " `paceline db migrate` once with an administrator's PACELINE_DATABASE_URL"
                )
            try:
                with conn.transaction():
                    if migration.needs_superuser:
                        conn.execute("SET LOCAL ROLE NONE")
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            applied.append(migration.version)
            # A plain SET or RESET ROLE inside a migration would outlive its transaction.
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER)))
        if identity_key is not None:
            install_key(conn, identity_key)
        queue_schema.apply(conn)
        try:
            ts_state = timescale.configure(conn, compress_after=compress_after, retention=retention)
        except psycopg.Error as exc:
            raise MigrationError(f"setting up TimescaleDB failed: {exc}") from exc
        if superuser and ts_state.active:
            conn.execute("SET ROLE NONE")  # the extension's objects belong to a superuser
            timescale.restrict_catalog(conn, CATALOG_READERS)
        if superuser and not ts_state.active and ts_ready.reason != ts_state.reason:
            ts_state = ts_ready  # the administrator's reason, not the owner's "permission denied"
    finally:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.execute("RESET ROLE")
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute(
                "SELECT set_config('application_name', %s, false)",
                (previous_name[0] if previous_name else "",),
            )
    return MigrationResult(tuple(applied), migrations[-1].version, ts_state)


class MigrationLockError(LockHeldError, MigrationError):
    """Another session, not a Paceline migration, holds the migration lock."""


def _take_migration_lock(conn: psycopg.Connection[Any]) -> None:
    """Take the migration lock; wait while another Paceline migration holds it, refuse otherwise.

    Waiting silently behind a stray session (`SELECT pg_advisory_lock(...)` in
    a forgotten psql) would stall every deployment step with no word why.
    """
    announced = False
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        found = locks.holder(conn, MIGRATION_LOCK_KEY)
        if found is not None and not locks.is_service(
            found, application_prefix=MIGRATE_APPLICATION, roles=(roles.MIGRATE,)
        ):
            raise MigrationLockError(MIGRATION_LOCK_KEY, "migration", found)
        if found is not None and not announced:
            logger.info("waiting for the migration run by %s", found.describe())
            announced = True
        time.sleep(MIGRATION_LOCK_POLL_S)


def _can_become_owner(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT to_regrole(%s) IS NOT NULL AND pg_has_role(session_user, %s, 'MEMBER')",
        (roles.OWNER, roles.OWNER),
    ).fetchone()
    return bool(row and row[0])


def _adopt_objects(conn: psycopg.Connection[Any]) -> None:
    """Give `paceline_owner` what a superuser created in schema public before roles existed."""
    rows = conn.execute(
        """
        SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
               c.oid::regclass::text
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v')
          AND c.relowner NOT IN (to_regrole(%(owner)s), to_regrole(%(audit)s))
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.proowner NOT IN (to_regrole(%(owner)s), to_regrole(%(audit)s))
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
        """,
        {"owner": roles.OWNER, "audit": roles.AUDIT_OWNER},
    ).fetchall()
    for kind, name in rows:
        # `name` comes from regclass/regprocedure output, which quotes as needed.
        conn.execute(
            sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(kind), sql.SQL(name), sql.Identifier(roles.OWNER)
            )
        )


def _check_applied(migrations: list[Migration], done: dict[int, str]) -> None:
    known = {m.version: m for m in migrations}
    for version, checksum in sorted(done.items()):
        if version not in known:
            raise MigrationError(
                f"the database has migration {version}, which this Paceline does not know: "
                "it was migrated by a newer version"
            )
        if known[version].checksum != checksum:
            m = known[version]
            raise MigrationError(
                f"migration {version:04d}_{m.name} was changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )


def pending(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Migrations not yet applied to this database."""
    done = applied_versions(conn)
    return [m for m in load_migrations() if m.version not in done]
