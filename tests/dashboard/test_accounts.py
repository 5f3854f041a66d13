"""Dashboard logins: argon2id hashes, lockout after five failures, admin lock, the CLI."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import psycopg
import pytest
from psycopg import sql

from paceline.cli.main import main
from paceline.dashboard import auth
from paceline.store import accounts, registry, roles
from paceline.store.accounts import AccountError, Role
from paceline.store.connection import connect
from paceline.store.secrets import SecretFileError, write_secret
from paceline.store.testing import TEST_IDENTITY_KEY, role_password, service_dsn

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"  # noqa: S105 - a test login


def _clinician(conn: psycopg.Connection[Any]) -> int:
    tag = uuid.uuid4().hex[:8]
    clinician_id = registry.create_clinician(conn, username=f"c{tag}", display_name=f"Dr {tag}")
    conn.commit()
    return clinician_id


def _account(conn: psycopg.Connection[Any], password: str = PASSWORD) -> str:
    username = f"u{uuid.uuid4().hex[:8]}"
    accounts.create_account(
        conn,
        username=username,
        role=Role.CLINICIAN,
        clinician_id=_clinician(conn),
        password_hash=auth.hash_password(password),
        email=f"{username}@clinic.example",
    )
    return username


def test_passwords_are_stored_as_argon2id(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    (stored,) = conn.execute(
        "SELECT password_hash FROM account WHERE username = %s", (username,)
    ).fetchone() or ("",)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_right_password_signs_in_and_a_wrong_one_does_not(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    who = auth.authenticate(conn, username, PASSWORD, now=NOW)
    assert who.username == username and who.role is Role.CLINICIAN
    assert who.clinician_id is not None and who.patient_id is None
    with pytest.raises(auth.BadCredentialsError):
        auth.authenticate(conn, username, PASSWORD + "x", now=NOW)
    with pytest.raises(auth.BadCredentialsError):
        auth.authenticate(conn, "nobody-here", PASSWORD, now=NOW)


def test_the_email_address_also_names_the_account(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    assert auth.authenticate(conn, f"{username}@CLINIC.example", PASSWORD, now=NOW).username == (
        username
    )


def test_single_sign_on_maps_an_email_to_its_account_and_records_the_sign_in(
    conn: psycopg.Connection[Any],
) -> None:
    username = _account(conn)
    who = auth.identity_for_email(conn, f"{username}@CLINIC.example", now=NOW)
    assert who.username == username and who.role is Role.CLINICIAN
    assert who.clinician_id is not None
    account = accounts.get_account(conn, username)
    assert account.last_login_at == NOW
    with pytest.raises(auth.UnknownEmailError, match=r"stranger@clinic\.example"):
        auth.identity_for_email(conn, "stranger@clinic.example", now=NOW)


def test_single_sign_on_matches_the_email_never_the_username(
    conn: psycopg.Connection[Any],
) -> None:
    # A username may contain "@": a provider vouching for that address must not reach it.
    accounts.create_account(
        conn,
        username="looks.like@mail.example",
        role=Role.CLINICIAN,
        clinician_id=_clinician(conn),
        password_hash=auth.hash_password(PASSWORD),
        email="someone.else@clinic.example",
    )
    with pytest.raises(auth.UnknownEmailError):
        auth.identity_for_email(conn, "looks.like@mail.example", now=NOW)
    assert accounts.get_account(conn, "looks.like@mail.example").last_login_at is None


def test_single_sign_on_refuses_locked_and_disabled_accounts_and_keeps_the_count(
    conn: psycopg.Connection[Any],
) -> None:
    username = _account(conn)
    email = f"{username}@clinic.example"
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises((auth.BadCredentialsError, auth.LockedOutError)):
            auth.authenticate(conn, username, "wrong password", now=NOW)
    with pytest.raises(auth.LockedOutError):
        auth.identity_for_email(conn, email, now=NOW + timedelta(minutes=14))
    assert accounts.get_account(conn, username).last_login_at is None
    later = NOW + timedelta(minutes=16)
    assert auth.identity_for_email(conn, email, now=later).username == username
    accounts.set_disabled(conn, username, disabled=True)
    with pytest.raises(auth.DisabledError):
        auth.identity_for_email(conn, email, now=later + timedelta(hours=1))
    assert accounts.get_account(conn, username).last_login_at == later
    # Two wrong passwords, then a single sign-on: the password count is not reset by it.
    accounts.set_disabled(conn, username, disabled=False)
    for _ in range(2):
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(conn, username, "wrong password", now=later)
    auth.identity_for_email(conn, email, now=later)
    assert accounts.get_account(conn, username).failed_attempts == 2


def _claims(**more: object) -> dict[str, object]:
    return {"email": "lee@clinic.example", "iat": NOW.timestamp() - 60, **more}


def test_the_providers_email_must_be_there_verified_and_recent() -> None:
    age = timedelta(minutes=30)
    assert auth.verified_email(_claims(), now=NOW, max_age=age) == "lee@clinic.example"
    for verified in (True, "true"):
        claims = _claims(email_verified=verified)
        assert auth.verified_email(claims, now=NOW, max_age=age) == "lee@clinic.example"
    for unverified in (False, "false", None, 0):
        with pytest.raises(auth.UnverifiedEmailError, match="has not verified"):
            auth.verified_email(_claims(email_verified=unverified), now=NOW, max_age=age)
    for email in (None, "", "not an address", 7):
        with pytest.raises(auth.SignOnClaimsError, match="no e-mail address"):
            auth.verified_email(_claims(email=email), now=NOW, max_age=age)
    for iat in (None, "yesterday", True):
        with pytest.raises(auth.SignOnClaimsError, match="issue time"):
            auth.verified_email(_claims(iat=iat), now=NOW, max_age=age)
    stale = _claims(iat=(NOW - age - timedelta(seconds=1)).timestamp())
    with pytest.raises(auth.StaleSignOnError, match="more than 30 minutes old"):
        auth.verified_email(stale, now=NOW, max_age=age)


def test_the_sign_on_button_follows_what_paceline_dashboard_configured() -> None:
    assert auth.oidc_label({}) is None
    assert auth.oidc_label({"PACELINE_DASHBOARD_OIDC": " "}) is None
    assert auth.oidc_label({"PACELINE_DASHBOARD_OIDC": "Clinic login"}) == "Clinic login"


def test_five_failures_lock_the_account_for_fifteen_minutes(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(conn, username, "wrong password", now=NOW)
    with pytest.raises(auth.LockedOutError) as locked:
        auth.authenticate(conn, username, "wrong password", now=NOW)
    assert locked.value.until == NOW + timedelta(minutes=15)
    # While locked, even the right password is refused.
    with pytest.raises(auth.LockedOutError):
        auth.authenticate(conn, username, PASSWORD, now=NOW + timedelta(minutes=14))
    who = auth.authenticate(conn, username, PASSWORD, now=NOW + timedelta(minutes=15, seconds=1))
    assert who.username == username
    # A success clears the count: four more failures do not lock.
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(conn, username, "wrong", now=NOW + timedelta(minutes=20))


def test_failures_interrupted_by_a_success_do_not_add_up(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    for _ in range(3):
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(conn, username, "wrong", now=NOW)
    auth.authenticate(conn, username, PASSWORD, now=NOW)
    for _ in range(3):
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(conn, username, "wrong", now=NOW)
    assert accounts.get_account(conn, username).failed_attempts == 3


def test_an_administrator_lock_holds_until_unlocked(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    accounts.set_disabled(conn, username, disabled=True)
    with pytest.raises(auth.DisabledError):
        auth.authenticate(conn, username, PASSWORD, now=NOW + timedelta(days=30))
    accounts.set_disabled(conn, username, disabled=False)
    assert auth.authenticate(conn, username, PASSWORD, now=NOW).username == username


def test_an_outdated_hash_is_replaced_on_login(conn: psycopg.Connection[Any]) -> None:
    username = _account(conn)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    accounts.set_password_hash(conn, username, weak)
    auth.authenticate(conn, username, PASSWORD, now=NOW)
    (stored,) = conn.execute(
        "SELECT password_hash FROM account WHERE username = %s", (username,)
    ).fetchone() or ("",)
    assert stored != weak
    assert not argon2.PasswordHasher().check_needs_rehash(stored)


def test_short_passwords_and_bad_usernames_are_refused() -> None:
    with pytest.raises(auth.WeakPasswordError):
        auth.hash_password("short")
    with pytest.raises(AccountError, match="username"):
        accounts.check_username("Robert'); DROP TABLE account;--")


def test_an_account_names_the_person_its_role_needs(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(AccountError, match="clinician account names one clinician"):
        accounts.create_account(
            conn, username="nobody", role=Role.CLINICIAN, password_hash=auth.hash_password(PASSWORD)
        )
    with pytest.raises(AccountError, match="no such clinician"):
        accounts.create_account(
            conn,
            username="ghost",
            role=Role.CLINICIAN,
            clinician_id=10**9,
            password_hash=auth.hash_password(PASSWORD),
        )


def test_logins_reach_accounts_only_as_the_login_role_through_its_functions(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    username = _account(conn)
    with connect(service_dsn(db_dsn, roles.LOGIN)) as login:
        assert auth.authenticate(login, username, PASSWORD, now=NOW).username == username
        for _ in range(auth.MAX_FAILURES - 1):
            with pytest.raises(auth.BadCredentialsError):
                auth.authenticate(login, username, "wrong password", now=NOW)
        with pytest.raises(auth.LockedOutError):
            auth.authenticate(login, username, "wrong password", now=NOW)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            login.execute("SELECT count(*) FROM account")
        login.rollback()
    # The dashboard's own role, and the person roles it becomes, may not call them.
    conn.execute("SET ROLE paceline_dashboard")
    try:
        for role in (roles.DASHBOARD, roles.CLINICIAN, roles.PATIENT):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                accounts.login_lookup(conn, username)
            conn.rollback()
    finally:
        conn.rollback()
        conn.execute("RESET ROLE")


def test_idle_timeout_comes_from_the_environment() -> None:
    assert auth.idle_timeout({}) == timedelta(minutes=30)
    assert auth.idle_timeout({"PACELINE_DASHBOARD_IDLE_TIMEOUT": "5"}) == timedelta(minutes=5)
    with pytest.raises(ValueError, match="PACELINE_DASHBOARD_IDLE_TIMEOUT"):
        auth.idle_timeout({"PACELINE_DASHBOARD_IDLE_TIMEOUT": "soon"})
    session = auth.Session(auth.Identity(1, "a", Role.ADMIN, "A"), last_seen=NOW)
    assert not session.expired(NOW + timedelta(minutes=30), timedelta(minutes=30))
    assert session.expired(NOW + timedelta(minutes=31), timedelta(minutes=30))


# The `paceline accounts` command -------------------------------------------------------------


def _cli(monkeypatch: pytest.MonkeyPatch, dsn: str, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setenv("PACELINE_DATABASE_URL", dsn)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_accounts_command_adds_lists_locks_and_changes_passwords(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(db_dsn) as c:
        clinician_id = _clinician(c)
    add = ["accounts", "add", "dr.lee", "--role", "clinician", "--clinician", str(clinician_id)]
    assert _cli(monkeypatch, db_dsn, [*add, "--password-stdin"], PASSWORD + "\n") == 0
    assert _cli(monkeypatch, db_dsn, [*add, "--password-stdin"], PASSWORD + "\n") == 2
    assert "already taken" in capsys.readouterr().err
    assert _cli(monkeypatch, db_dsn, ["accounts", "lock", "dr.lee"]) == 0
    capsys.readouterr()
    assert _cli(monkeypatch, db_dsn, ["accounts", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # one JSON document: an array of logins
    lee = next(r for r in rows if r["username"] == "dr.lee")
    assert lee["role"] == "clinician" and lee["clinician_id"] == clinician_id
    assert lee["state"] == "locked"
    assert _cli(monkeypatch, db_dsn, ["accounts", "lock", "dr.lee", "--unlock"]) == 0
    new = "another long passphrase"
    assert (
        _cli(monkeypatch, db_dsn, ["accounts", "passwd", "dr.lee", "--password-stdin"], new + "\n")
        == 0
    )
    with connect(db_dsn) as c:
        assert auth.authenticate(c, "dr.lee", new, now=NOW).clinician_id == clinician_id
        with pytest.raises(auth.BadCredentialsError):
            auth.authenticate(c, "dr.lee", PASSWORD, now=NOW)
    capsys.readouterr()
    assert _cli(monkeypatch, db_dsn, ["accounts", "list"]) == 0
    assert "dr.lee" in capsys.readouterr().out


def test_accounts_command_refuses_a_weak_password_and_an_unknown_login(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["accounts", "add", "root.admin", "--role", "admin", "--password-stdin"]
    assert _cli(monkeypatch, db_dsn, argv, "short\n") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert _cli(monkeypatch, db_dsn, ["accounts", "lock", "nobody"]) == 2
    assert "no such account" in capsys.readouterr().err


def test_dashboard_command_serves_headless_on_loopback_by_default() -> None:
    from paceline.cli.dashboard import app_script, streamlit_argv
    from paceline.cli.main import build_parser

    args = build_parser().parse_args(["dashboard"])
    assert (args.host, args.port) == ("127.0.0.1", 8501)
    script = app_script()
    assert script.name == "streamlit_app.py" and script.is_file()
    argv = streamlit_argv(script, host=args.host, port=9999)
    assert "--server.headless=true" in argv
    assert "--server.address=127.0.0.1" in argv and "--server.port=9999" in argv
    assert "--client.showErrorDetails=none" in argv
    assert "--runner.magicEnabled=false" in argv


def test_a_deployed_dashboard_checks_passwords_as_the_login_role(
    db_dsn: str, tmp_path: Path
) -> None:
    from paceline.cli.dashboard import _access
    from paceline.cli.settings import Settings

    key = tmp_path / "identity.key"
    TEST_IDENTITY_KEY.save(key)
    dashboard = service_dsn(db_dsn, roles.DASHBOARD)
    settings = Settings.from_env(
        {
            "PACELINE_DATABASE_URL": dashboard,
            "PACELINE_IDENTITY_KEY_FILE": str(key),
            "PACELINE_SECRETS_DIR": str(tmp_path / "secrets"),
        }
    )
    with pytest.raises(SecretFileError, match=r"paceline_login\.password.*checks passwords"):
        _access(settings, dashboard)
    write_secret(
        tmp_path / "secrets" / "paceline_login.password", role_password(db_dsn, roles.LOGIN)
    )
    given = _access(settings, dashboard)
    assert given.dsn == dashboard
    with connect(given.login_dsn) as login:
        assert login.execute("SELECT session_user").fetchone() == (roles.LOGIN,)
