"""Logins: argon2id password hashes, the lockout policy, idle timeout and the signed-in identity.

Passwords are hashed with argon2id through argon2-cffi at its default (RFC
9106 low-memory) parameters; a hash made with older parameters is replaced on
the next successful login. After `MAX_FAILURES` wrong passwords in a row an
account is locked for `LOCKOUT` (OWASP Authentication Cheat Sheet, "Account
Lockout"); while it is locked, no password is checked at all. An unknown
username costs the same argon2 verification as a known one, so response time
does not tell which usernames exist.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import argon2
import psycopg

from paceline.dashboard.times import shown_at
from paceline.store import accounts
from paceline.store.accounts import Role

MAX_FAILURES: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
#: Sessions end after this long without a request (`PACELINE_DASHBOARD_IDLE_TIMEOUT`).
DEFAULT_IDLE_TIMEOUT: Final = timedelta(minutes=30)
MIN_PASSWORD_CHARS: Final = 10
#: The `[auth.<name>]` section of the Streamlit secrets `paceline dashboard` writes for
#: single sign-on, and so the provider `st.login` is given (Streamlit forbids "_" in it).
OIDC_PROVIDER: Final = "paceline"

_hasher = argon2.PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against when the username is unknown, so that both paths cost one argon2 hash.
_DUMMY_HASH: Final = _hasher.hash("paceline: no such account")


class LoginError(Exception):
    """Root of the dashboard's login errors; the message is safe to show on the login page."""


class BadCredentialsError(LoginError):
    """Unknown username or wrong password (deliberately not saying which)."""

    def __init__(self) -> None:
        super().__init__("Wrong username or password.")


class LockedOutError(LoginError):
    """Too many failed logins: the account is locked until `until`."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            "Too many failed logins: this account is locked for"
            f" {LOCKOUT.seconds // 60} minutes (until {shown_at(until, UTC)})."
        )


class DisabledError(LoginError):
    """An administrator has locked the account."""

    def __init__(self) -> None:
        super().__init__("This account is locked. Ask an administrator to unlock it.")


class EmailRefusedError(LoginError):
    """A single sign-on refused for its e-mail address (`email`)."""

    def __init__(self, email: str, message: str) -> None:
        self.email = email
        super().__init__(message)


class UnknownEmailError(EmailRefusedError):
    """A single sign-on whose (verified) e-mail address belongs to no account."""

    def __init__(self, email: str) -> None:
        super().__init__(
            email,
            f"No Paceline account has the e-mail address {email}. Ask an administrator to"
            " add it to your account, or sign in with your username and password.",
        )


class UnverifiedEmailError(EmailRefusedError):
    """The identity provider says it has not verified the e-mail address."""

    def __init__(self, email: str) -> None:
        super().__init__(
            email,
            f"Your identity provider has not verified the e-mail address {email},"
            " so Paceline cannot sign you in with it.",
        )


class SignOnClaimsError(LoginError):
    """The identity provider's answer lacks what a sign-in needs."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"Single sign-on failed: {what}.")


class StaleSignOnError(LoginError):
    """The identity provider's sign-in is older than the idle timeout."""

    def __init__(self, max_age: timedelta) -> None:
        self.max_age = max_age
        super().__init__(
            f"Your single sign-on is more than {int(max_age.total_seconds() // 60)} minutes"
            " old: sign in again."
        )


class WeakPasswordError(LoginError, ValueError):
    """A new password that is too short."""

    def __init__(self, length: int) -> None:
        self.length = length
        super().__init__(f"a password has at least {MIN_PASSWORD_CHARS} characters; got {length}")


@dataclass(frozen=True)
class Identity:
    """Who is signed in: the account, its role and the clinician or patient it speaks for."""

    account_id: int
    username: str
    role: Role
    display_name: str
    clinician_id: int | None = None
    patient_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this person (`clinician:7`, `patient:12`, `admin:alice`)."""
        if self.role is Role.CLINICIAN:
            return f"clinician:{self.clinician_id}"
        if self.role is Role.PATIENT:
            return f"patient:{self.patient_id}"
        return f"admin:{self.username}"

    @property
    def cache_key(self) -> str:
        """A key that separates every person's cached data from everyone else's."""
        return f"{self.account_id}:{self.actor}"


def hash_password(password: str) -> str:
    """An argon2id PHC string for a new password (at least `MIN_PASSWORD_CHARS` characters)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(len(password))
    return _hasher.hash(password)


def _identity(rec: accounts.LoginRecord) -> Identity:
    return Identity(
        account_id=rec.account_id,
        username=rec.username,
        role=Role(rec.role),
        display_name=rec.display_name,
        clinician_id=rec.clinician_id,
        patient_id=rec.patient_id,
    )


def authenticate(
    conn: psycopg.Connection[Any], login: str, password: str, *, now: datetime
) -> Identity:
    """Check a username (or e-mail) and password; record the attempt; return who signed in.

    Raises `BadCredentialsError`, `LockedOutError` or `DisabledError`.
    """
    rec = accounts.login_lookup(conn, login.strip())
    if rec is None:
        with contextlib.suppress(argon2.exceptions.VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        raise BadCredentialsError
    if rec.disabled:
        raise DisabledError
    if rec.locked_until is not None and rec.locked_until > now:
        raise LockedOutError(rec.locked_until)
    try:
        _hasher.verify(rec.password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        with conn.transaction():
            locked = accounts.login_outcome(
                conn,
                rec.account_id,
                succeeded=False,
                at=now,
                max_failures=MAX_FAILURES,
                lock_for=LOCKOUT,
            )
        if locked is not None and locked > now:
            raise LockedOutError(locked) from None
        raise BadCredentialsError from None
    rehash = _hasher.hash(password) if _hasher.check_needs_rehash(rec.password_hash) else None
    with conn.transaction():
        accounts.login_outcome(
            conn,
            rec.account_id,
            succeeded=True,
            at=now,
            max_failures=MAX_FAILURES,
            lock_for=LOCKOUT,
            new_hash=rehash,
        )
    return _identity(rec)


def identity_for_email(conn: psycopg.Connection[Any], email: str, *, now: datetime) -> Identity:
    """The account a single sign-on's verified e-mail names, recording the sign-in.

    Runs on the login role's connection (`paceline_login_by_email`); matches
    the account's e-mail only, never its username. Raises
    `UnknownEmailError`, `DisabledError` or `LockedOutError`.
    """
    rec = accounts.login_by_email(conn, email, at=now)
    if rec is None:
        raise UnknownEmailError(email)
    if rec.disabled:
        raise DisabledError
    if rec.locked_until is not None and rec.locked_until > now:
        raise LockedOutError(rec.locked_until)
    return Identity(
        account_id=rec.account_id,
        username=rec.username,
        role=Role(rec.role),
        display_name=rec.display_name,
        clinician_id=rec.clinician_id,
        patient_id=rec.patient_id,
    )


def verified_email(claims: Mapping[str, object], *, now: datetime, max_age: timedelta) -> str:
    """The e-mail address an identity provider vouches for in `claims` (its ID token's).

    The address must be present and well-formed; `email_verified`, when the
    provider sends it, must be true (OpenID Connect Core 1.0 §5.1: "false"
    means the provider has not checked that the person controls it); and the
    provider's sign-in (`iat`, the ID token's issue time) must be younger than
    `max_age`, the idle timeout, so that Streamlit's 30-day identity cookie
    cannot open a session long after the person last proved who they are.
    Raises `SignOnClaimsError`, `UnverifiedEmailError` or `StaleSignOnError`.
    """
    email = claims.get("email")
    if not isinstance(email, str) or not accounts.EMAIL.match(email.strip()):
        raise SignOnClaimsError("the identity provider sent no e-mail address")
    email = email.strip()
    verified = claims.get("email_verified", True)
    if verified is not True and verified != "true":  # some providers send the string
        raise UnverifiedEmailError(email)
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise SignOnClaimsError("the identity provider's token has no issue time (iat)")
    if now - datetime.fromtimestamp(issued, UTC) > max_age:
        raise StaleSignOnError(max_age)
    return email


def oidc_label(env: Mapping[str, str] | None = None) -> str | None:
    """The identity provider's name for the sign-in button, or None without single sign-on.

    `paceline dashboard` sets `PACELINE_DASHBOARD_OIDC` for the app when (and
    only when) it has written the Streamlit secrets that `st.login` needs.
    """
    env = os.environ if env is None else env
    return env.get("PACELINE_DASHBOARD_OIDC", "").strip() or None


def idle_timeout(env: Mapping[str, str] | None = None) -> timedelta:
    """The idle timeout from `PACELINE_DASHBOARD_IDLE_TIMEOUT` (minutes; default 30)."""
    env = os.environ if env is None else env
    text = env.get("PACELINE_DASHBOARD_IDLE_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_IDLE_TIMEOUT
    try:
        minutes = float(text)
    except ValueError:
        raise ValueError(
            f"PACELINE_DASHBOARD_IDLE_TIMEOUT={text!r}: expected a number of minutes"
        ) from None
    if minutes <= 0:
        raise ValueError(f"PACELINE_DASHBOARD_IDLE_TIMEOUT={text!r}: must be greater than zero")
    return timedelta(minutes=minutes)


@dataclass
class Session:
    """A signed-in browser session: who, and when they were last active."""

    identity: Identity
    last_seen: datetime
    #: How they signed in: "password", or "oidc" (their sign-out also ends Streamlit's
    #: identity cookie through `st.logout`).
    method: str = "password"

    def expired(self, now: datetime, timeout: timedelta) -> bool:
        """Whether the session has been idle longer than `timeout`."""
        return now - self.last_seen > timeout

    def touch(self, now: datetime) -> None:
        """Record activity."""
        self.last_seen = now
