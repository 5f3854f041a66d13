"""Who holds one of Paceline's advisory locks, and whether it is one of Paceline's own services.

Any session may call `pg_advisory_lock`, so a stray `psql`, a test or SQL
injected through a page could take the migration lock or the scheduler's
leader lock and stall the service silently: it would simply wait, or stay a
standby forever. `holder` reads `pg_locks` with `pg_stat_activity` to name
the session that holds a key; `foreign_holder` says whether that session is
something other than the Paceline service the lock belongs to (judged by its
application name *and* its role, since a session can set its own application
name but not its login role). Migration 0018 also takes the session-level
bigint lock functions away from the person roles, the dashboard and the
gateway uploader, so those cannot hold these keys at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from paceline.store.errors import StoreError


@dataclass(frozen=True)
class LockHolder:
    """The session holding an advisory lock, as the catalog shows it."""

    pid: int
    role: str | None
    application_name: str
    client_addr: str | None
    backend_start: datetime | None
    superuser: bool

    def describe(self) -> str:
        """One line for a log or an error message."""
        app = self.application_name or "no application name"
        where = f" from {self.client_addr}" if self.client_addr else ""
        since = f" since {self.backend_start:%Y-%m-%d %H:%M:%S %Z}" if self.backend_start else ""
        return f"backend {self.pid} (role {self.role or 'unknown'}, {app!r}{where}{since})"


class LockHeldError(StoreError):
    """An advisory lock Paceline needs is held by a session that is not a Paceline service."""

    def __init__(self, key: int, purpose: str, holder: LockHolder) -> None:
        self.key = key
        self.purpose = purpose
        self.holder = holder
        super().__init__(
            f"the {purpose} lock {key:#x} is held by {holder.describe()}, which is not a"
            f" Paceline {purpose} process; end that session (SELECT pg_terminate_backend"
            f"({holder.pid})) or wait for it"
        )


def holder(conn: psycopg.Connection[Any], key: int) -> LockHolder | None:
    """The session holding session- or transaction-level advisory lock `key` (a bigint) here."""
    with conn.cursor(row_factory=class_row(LockHolder)) as cur:
        cur.execute(
            """
            SELECT l.pid, a.usename::text AS role, coalesce(a.application_name, '')
                       AS application_name,
                   a.client_addr::text AS client_addr, a.backend_start,
                   coalesce(r.rolsuper, false) AS superuser
            FROM pg_locks l
            LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            LEFT JOIN pg_roles r ON r.oid = a.usesysid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s
              AND l.pid <> pg_backend_pid()
            LIMIT 1
            """,
            # A bigint key is stored as its high and low 32 bits (objsubid 1).
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
        )
        return cur.fetchone()


def is_service(found: LockHolder, *, application_prefix: str, roles: Iterable[str]) -> bool:
    """Whether `found` is the Paceline service a lock belongs to.

    It is when its application name starts with `application_prefix` and it
    logs in as one of `roles` or as a superuser (an administrator running the
    same command).
    """
    return found.application_name.startswith(application_prefix) and (
        found.superuser or found.role in set(roles)
    )


def foreign_holder(
    conn: psycopg.Connection[Any],
    key: int,
    *,
    application_prefix: str,
    roles: Iterable[str],
) -> LockHolder | None:
    """The holder of `key` if it is not the Paceline service the lock belongs to, else None."""
    found = holder(conn, key)
    if found is None or is_service(found, application_prefix=application_prefix, roles=roles):
        return None
    return found


def try_session_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    """Take the session-level advisory lock `key` if it is free; whether this session holds it."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def session_unlock(conn: psycopg.Connection[Any], key: int) -> None:
    """Release the session-level advisory lock `key` held by this session."""
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def ping(conn: psycopg.Connection[Any]) -> None:
    """One round trip: raises `psycopg.Error` when the session (and its locks) is gone."""
    conn.execute("SELECT 1")
