"""The dashboard's database side: one pool, person sessions per request, and audited reads.

The dashboard logs in as its own service role. Logins go through the account
functions outside any person session; everything else runs inside the
signed-in person's session (`paceline.store.access`), so PostgreSQL itself
decides what exists. Nothing read for one person is kept for another: the
pool shares connections, never results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from paceline.dashboard.auth import Identity
from paceline.store import access, accounts
from paceline.store.accounts import Role
from paceline.store.identity import IdentityKey


class BackendError(Exception):
    """The dashboard cannot reach its database or is not configured."""


class NotAllowedError(BackendError):
    """The signed-in person may not do this (wrong role, or the patient is not theirs)."""

    def __init__(self, who: Identity, what: str) -> None:
        self.who = who
        self.what = what
        super().__init__(f"{who.actor} may not {what}")


def dsn_from_env() -> str:
    """The database the dashboard uses (`PACELINE_DASHBOARD_DSN`, set by `paceline dashboard`)."""
    dsn = os.environ.get("PACELINE_DASHBOARD_DSN", "").strip()
    if not dsn:
        raise BackendError(
            "PACELINE_DASHBOARD_DSN is not set: start the dashboard with `paceline dashboard`"
        )
    return dsn


def key_from_env() -> IdentityKey:
    """The key that signs person identities (`PACELINE_IDENTITY_KEY_FILE`, mode 0600)."""
    path = os.environ.get("PACELINE_IDENTITY_KEY_FILE", "").strip()
    if not path:
        raise BackendError(
            "PACELINE_IDENTITY_KEY_FILE is not set: start the dashboard with `paceline dashboard`"
        )
    return IdentityKey.load(Path(path))


class Backend:
    """A connection pool for the dashboard's service role."""

    def __init__(self, dsn: str, key: IdentityKey, *, max_size: int = 8) -> None:
        self.key = key
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=True,
            name="paceline-dashboard",
            kwargs={"application_name": "paceline-dashboard"},
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()

    @contextmanager
    def service(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection as the dashboard's own role (logins only: it sees no patient data)."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def admin(self, who: Identity) -> Iterator[psycopg.Connection[Any]]:
        """One transaction with `who`'s signed administrator identity."""
        if who.role is not Role.ADMIN:
            raise NotAllowedError(who, "open the administrator's page")
        with (
            self.pool.connection() as conn,
            accounts.admin_session(conn, who.account_id, key=self.key),
        ):
            yield conn

    @contextmanager
    def person(self, who: Identity) -> Iterator[psycopg.Connection[Any]]:
        """One transaction in the person session of `who`."""
        with self.pool.connection() as conn:
            if who.role is Role.CLINICIAN and who.clinician_id is not None:
                with access.clinician_session(conn, who.clinician_id, key=self.key):
                    yield conn
            elif who.role is Role.PATIENT and who.patient_id is not None:
                with access.patient_session(conn, who.patient_id, key=self.key):
                    yield conn
            else:
                raise NotAllowedError(who, "read patient data")
