"""Dashboard logins as stored: accounts, their role and person, and the lockout state.

Only SQL lives here. Hashing passwords and the lockout policy belong to
`paceline.dashboard.auth`. The dashboard reaches the table in two ways only:
`login_lookup` and `login_outcome` (SECURITY DEFINER functions of migration
0007) and `login_by_email` (single sign-on, migration 0028) on a connection
as `paceline_login`, the one role that may call them (migration 0025), and the administrator functions in a signed admin session
as `paceline_dashboard`. The owner (the `paceline accounts` command) uses the
rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from paceline.store.errors import StoreError
from paceline.store.identity import IdentityKey

USERNAME = re.compile(r"^[a-z0-9_.@-]{2,64}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class Role(StrEnum):
    """Who an account speaks for."""

    CLINICIAN = "clinician"
    PATIENT = "patient"
    ADMIN = "admin"


class AccountError(StoreError, ValueError):
    """An account that cannot be created or changed as asked; carries the offending value."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        super().__init__(f"{value!r}: {reason}")


class UnknownAccountError(AccountError, LookupError):
    """No account has this username."""

    def __init__(self, username: str) -> None:
        super().__init__(username, "no such account")


@dataclass(frozen=True)
class Account:
    """An account as listed (never with its password hash)."""

    account_id: int
    username: str
    email: str | None
    role: Role
    clinician_id: int | None
    patient_id: int | None
    display_name: str
    failed_attempts: int
    locked_until: datetime | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    def locked_at(self, now: datetime) -> bool:
        """Whether a login would be refused at `now` (disabled, or inside a lockout)."""
        return self.disabled or (self.locked_until is not None and self.locked_until > now)


@dataclass(frozen=True)
class LoginRecord:
    """What a login needs to know about the account it names."""

    account_id: int
    username: str
    role: str
    clinician_id: int | None
    patient_id: int | None
    password_hash: str
    failed_attempts: int
    locked_until: datetime | None
    disabled: bool
    display_name: str


@dataclass(frozen=True)
class EmailLoginRecord:
    """The account a single sign-on's e-mail names: no password hash, and its lockout state."""

    account_id: int
    username: str
    role: str
    clinician_id: int | None
    patient_id: int | None
    locked_until: datetime | None
    disabled: bool
    display_name: str


def check_username(username: str) -> str:
    """The username, or `AccountError` if it is not 2-64 of a-z 0-9 _ . @ -."""
    if not USERNAME.match(username):
        raise AccountError(username, "a username has 2 to 64 of a-z, 0-9, _ . @ -")
    return username


def create_account(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    role: Role,
    password_hash: str,
    clinician_id: int | None = None,
    patient_id: int | None = None,
    email: str | None = None,
) -> int:
    """Create an account and return its id; a taken username or e-mail raises `AccountError`."""
    check_username(username)
    if email is not None and (not EMAIL.match(email) or len(email) > 254):
        raise AccountError(email, "not an e-mail address")
    needs = {Role.CLINICIAN: (True, False), Role.PATIENT: (False, True), Role.ADMIN: (False, False)}
    want_clinician, want_patient = needs[role]
    if (clinician_id is not None) != want_clinician or (patient_id is not None) != want_patient:
        raise AccountError(
            role.value,
            "a clinician account names one clinician, a patient account one patient,"
            " an admin account neither",
        )
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO account (username, email, role, clinician_id, patient_id,"
                " password_hash) VALUES (%s, %s, %s, %s, %s, %s) RETURNING account_id",
                (username, email, role.value, clinician_id, patient_id, password_hash),
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise AccountError(username, f"already taken ({exc.diag.constraint_name})") from None
    except psycopg.errors.ForeignKeyViolation:
        raise AccountError(
            clinician_id if clinician_id is not None else patient_id, "no such clinician or patient"
        ) from None
    assert row is not None
    return int(row[0])


_LIST = sql.SQL(
    "SELECT a.account_id, a.username, a.email, a.role, a.clinician_id, a.patient_id,"
    " coalesce(c.display_name, p.display_name, a.username) AS display_name,"
    " a.failed_attempts, a.locked_until, a.disabled, a.created_at, a.last_login_at"
    " FROM account a LEFT JOIN clinician c USING (clinician_id)"
    " LEFT JOIN patient p ON p.patient_id = a.patient_id"
)


def list_accounts(conn: psycopg.Connection[Any]) -> list[Account]:
    """Every account, by username."""
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(_LIST + sql.SQL(" ORDER BY a.username"))
        rows = cur.fetchall()
    return [_with_role(a) for a in rows]


def get_account(conn: psycopg.Connection[Any], username: str) -> Account:
    """One account by username, or `UnknownAccountError`."""
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(_LIST + sql.SQL(" WHERE a.username = %s"), (username,))
        row = cur.fetchone()
    if row is None:
        raise UnknownAccountError(username)
    return _with_role(row)


def _with_role(a: Account) -> Account:
    return replace(a, role=Role(a.role))


def set_password_hash(conn: psycopg.Connection[Any], username: str, password_hash: str) -> None:
    """Replace an account's password hash (and clear its lockout)."""
    _update(
        conn,
        username,
        sql.SQL(
            "password_hash = %s, password_changed_at = now(), failed_attempts = 0,"
            " locked_until = NULL"
        ),
        (password_hash,),
    )


def set_disabled(conn: psycopg.Connection[Any], username: str, *, disabled: bool) -> None:
    """Lock an account until an administrator unlocks it (unlocking also ends a lockout)."""
    if disabled:
        _update(conn, username, sql.SQL("disabled = true"), ())
    else:
        assignments = sql.SQL("disabled = false, failed_attempts = 0, locked_until = NULL")
        _update(conn, username, assignments, ())


def _update(
    conn: psycopg.Connection[Any], username: str, assignments: sql.SQL, params: tuple[object, ...]
) -> None:
    query = sql.SQL("UPDATE account SET {} WHERE username = %s").format(assignments)
    with conn.transaction():
        cur = conn.execute(query, (*params, username))
    if cur.rowcount != 1:
        raise UnknownAccountError(username)


def login_lookup(conn: psycopg.Connection[Any], login: str) -> LoginRecord | None:
    """The account a username or e-mail names, with its hash and lockout state (None if none)."""
    with conn.cursor(row_factory=class_row(LoginRecord)) as cur:
        cur.execute("SELECT * FROM paceline_login_lookup(%s)", (login,))
        return cur.fetchone()


def login_by_email(
    conn: psycopg.Connection[Any], email: str, *, at: datetime
) -> EmailLoginRecord | None:
    """The account whose e-mail (never username) is `email`, recording a sign-in it may make at `at`.

    `last_login_at` is set only when the account is neither disabled nor
    locked at `at`; the caller refuses the others by what is returned.
    """
    with conn.transaction(), conn.cursor(row_factory=class_row(EmailLoginRecord)) as cur:
        cur.execute("SELECT * FROM paceline_login_by_email(%s, %s)", (email, at))
        return cur.fetchone()


def login_outcome(
    conn: psycopg.Connection[Any],
    account_id: int,
    *,
    succeeded: bool,
    at: datetime,
    max_failures: int,
    lock_for: timedelta,
    new_hash: str | None = None,
) -> datetime | None:
    """Record one login attempt; returns the lockout end that now applies (None if none)."""
    row = conn.execute(
        "SELECT paceline_login_outcome(%s, %s, %s, %s, %s, %s)",
        (account_id, succeeded, at, max_failures, lock_for, new_hash),
    ).fetchone()
    assert row is not None
    locked: datetime | None = row[0]
    return locked


# The administrator's page (migration 0010) -------------------------------------------------


@contextmanager
def admin_session(
    conn: psycopg.Connection[Any], account_id: int, *, key: IdentityKey
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction carrying a signed administrator identity (no person role: no patient data)."""
    token = key.sign("admin", account_id, backend_pid=conn.info.backend_pid)
    with conn.transaction():
        conn.execute("SELECT set_config('paceline.identity', %s, true)", (token,))
        yield conn


@dataclass(frozen=True)
class CareTeamLink:
    """One clinician-patient link of a care team."""

    clinician_id: int
    clinician: str
    patient_id: int
    patient_ref: str
    patient: str
    team_role: str
    since: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One audit log row."""

    audit_id: int
    at: datetime
    actor: str
    clinician_id: int | None
    patient_id: int | None
    action: str
    object: str
    detail: dict[str, Any]


def admin_accounts(conn: psycopg.Connection[Any]) -> list[Account]:
    """Every account (in an admin session)."""
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(
            "SELECT account_id, username, email, role, clinician_id, patient_id, display_name,"
            " failed_attempts, locked_until, disabled, created_at, last_login_at"
            " FROM paceline_admin_accounts()"
        )
        return [_with_role(a) for a in cur.fetchall()]


def admin_care_teams(conn: psycopg.Connection[Any]) -> list[CareTeamLink]:
    """Every care-team link (in an admin session)."""
    with conn.cursor(row_factory=class_row(CareTeamLink)) as cur:
        cur.execute("SELECT * FROM paceline_admin_care_teams()")
        return cur.fetchall()


def admin_audit(
    conn: psycopg.Connection[Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    patient_id: int | None = None,
    action: str | None = None,
    limit: int = 500,
) -> list[AuditEntry]:
    """The audit log, newest first, filtered by time, actor and action prefix, patient."""
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(
            "SELECT * FROM paceline_admin_audit(%s, %s, %s, %s, %s, %s)",
            (since, until, actor or None, patient_id, action or None, limit),
        )
        return cur.fetchall()


def admin_set_disabled(conn: psycopg.Connection[Any], username: str, *, disabled: bool) -> None:
    """Lock or unlock another account from the admin page (audited as the administrator)."""
    row = conn.execute(
        "SELECT paceline_admin_set_disabled(%s, %s)", (username, disabled)
    ).fetchone()
    if not row or not row[0]:
        raise AccountError(username, "no such account, or it is your own")
