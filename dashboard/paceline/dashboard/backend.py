"""The dashboard's database side: two pools, person sessions per request, and audited reads.

The dashboard logs in as two service roles. Password checks run on a small
pool of its own as `paceline_login`, the only role that may call the login
functions (they return password hashes and change lockouts); those
connections run nothing but the fixed login calls and never hold a person
session. Everything else runs as `paceline_dashboard` inside the signed-in
person's session (`paceline.store.access`), so PostgreSQL itself decides what
exists, and SQL injected there cannot reach the login functions even after
`RESET ROLE`. Nothing read for one person is kept for another: the pools share
connections, never results.
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
from paceline.store import access, accounts, roles
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
    return _env_dsn("PACELINE_DASHBOARD_DSN")


def login_dsn_from_env() -> str:
    """The password checks' database (`PACELINE_DASHBOARD_LOGIN_DSN`, as `paceline_login`)."""
    return _env_dsn("PACELINE_DASHBOARD_LOGIN_DSN")


def _env_dsn(name: str) -> str:
    dsn = os.environ.get(name, "").strip()
    if not dsn:
        raise BackendError(f"{name} is not set: start the dashboard with `paceline dashboard`")
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
    """The dashboard's connection pools: person sessions as `dsn`, password checks as `login_dsn`.

    `dsn` must log in as `paceline_dashboard` and `login_dsn` as
    `paceline_login`; the backend refuses anything else, so that a
    configuration mix-up cannot bring the login functions back into reach of
    person sessions.
    """

    def __init__(
        self, dsn: str, key: IdentityKey, *, login_dsn: str, max_size: int = 8, login_size: int = 2
    ) -> None:
        self.key = key
        self.pool = _pool(dsn, "paceline-dashboard", max_size)
        self.login_pool = _pool(login_dsn, "paceline-dashboard-login", login_size)
        try:
            _check_role(self.pool, roles.DASHBOARD)
            _check_role(self.login_pool, roles.LOGIN)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every pooled connection."""
        self.login_pool.close()
        self.pool.close()

    @contextmanager
    def login(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection as `paceline_login`, for `auth.authenticate` and nothing else."""
        with self.login_pool.connection() as conn:
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


def _pool(dsn: str, name: str, max_size: int) -> ConnectionPool[psycopg.Connection[Any]]:
    return ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        open=True,
        name=name,
        kwargs={"application_name": name},
    )


def _check_role(pool: ConnectionPool[psycopg.Connection[Any]], want: str) -> None:
    """Refuse a pool whose connections log in as another role than `want`."""
    with pool.connection() as conn:
        row = conn.execute("SELECT session_user").fetchone()
    user = str(row[0]) if row else ""
    if user != want:
        raise BackendError(f"{pool.name} logs in as {user!r}; it must log in as {want}")
