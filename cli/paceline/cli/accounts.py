"""`paceline accounts add|passwd|lock|list`: the dashboard's logins."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

import psycopg

from paceline.cli.database import database_dsn
from paceline.cli.output import add_json_option, emit_json
from paceline.cli.settings import Settings
from paceline.store import accounts, registry
from paceline.store.accounts import Role
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `accounts` command group."""
    group = commands.add_parser("accounts", help="dashboard logins for clinicians and patients")
    sub = group.add_subparsers(dest="accounts_command", required=True, metavar="SUBCOMMAND")

    add = sub.add_parser("add", help="create a login")
    add.add_argument("username", metavar="USERNAME")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    who = add.add_mutually_exclusive_group()
    who.add_argument("--clinician", type=int, metavar="ID", help="the clinician it speaks for")
    add.add_argument(
        "--name",
        help="with --role clinician and no --clinician: record a new clinician of this name"
        " (username as the login's) and link the login to them",
    )
    who.add_argument("--patient", type=int, metavar="ID", help="the patient it speaks for")
    add.add_argument("--email", help="e-mail address (single sign-on maps logins by it)")
    _password_options(add)
    add.set_defaults(handler=run_add)

    passwd = sub.add_parser("passwd", help="set a new password (also ends a lockout)")
    passwd.add_argument("username", metavar="USERNAME")
    _password_options(passwd)
    passwd.set_defaults(handler=run_passwd)

    lock = sub.add_parser("lock", help="lock a login until it is unlocked")
    lock.add_argument("username", metavar="USERNAME")
    lock.add_argument("--unlock", action="store_true", help="unlock it (and end any lockout)")
    lock.set_defaults(handler=run_lock)

    listing = sub.add_parser("list", help="every login with its role and lockout state")
    add_json_option(
        listing,
        "an array, one object per login: username, role, clinician_id, patient_id, email,"
        " name, state, failed_attempts, last_login_at",
    )
    listing.set_defaults(handler=run_list)


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (default: prompt twice)",
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("password", "the two passwords differ")
    return first


def _hash(password: str) -> str:
    # argon2-cffi is part of the `dashboard` extra; a gateway install has no logins to manage.
    try:
        from paceline.dashboard.auth import WeakPasswordError, hash_password  # noqa: PLC0415
    except ImportError as exc:
        raise accounts.AccountError(
            "argon2", f"install the dashboard extra (pip install 'paceline[dashboard]'): {exc}"
        ) from None
    try:
        return hash_password(password)
    except WeakPasswordError as exc:
        raise accounts.AccountError("password", str(exc)) from None


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create a login."""
    accounts.check_username(args.username)
    password_hash = _hash(_read_password(args))
    role = Role(args.role)
    if args.name is not None and (role is not Role.CLINICIAN or args.clinician is not None):
        raise accounts.AccountError(
            args.name, "--name records a new clinician: use it with --role clinician alone"
        )
    with (
        database_dsn(settings, announce=False) as dsn,
        connect(dsn) as conn,
        conn.transaction(),  # a new clinician and their login, or neither
    ):
        clinician_id = args.clinician
        if args.name is not None:
            try:
                with conn.transaction():
                    clinician_id = registry.create_clinician(
                        conn, username=args.username, display_name=args.name
                    )
            except psycopg.errors.IntegrityError as exc:
                raise accounts.AccountError(
                    args.username,
                    f"cannot be a clinician's username ({exc.diag.constraint_name}):"
                    " taken, or not 2-64 of a-z 0-9 _ . -",
                ) from None
        account_id = accounts.create_account(
            conn,
            username=args.username,
            role=role,
            password_hash=password_hash,
            clinician_id=clinician_id,
            patient_id=args.patient,
            email=args.email,
        )
    person = f" for clinician {clinician_id}" if clinician_id is not None else ""
    print(f"account {args.username} ({args.role}) created with id {account_id}{person}")
    return 0


def run_passwd(args: argparse.Namespace, settings: Settings) -> int:
    """Set a new password."""
    password_hash = _hash(_read_password(args))
    with database_dsn(settings, announce=False) as dsn, connect(dsn, autocommit=True) as conn:
        accounts.set_password_hash(conn, args.username, password_hash)
    print(f"password of {args.username} changed")
    return 0


def run_lock(args: argparse.Namespace, settings: Settings) -> int:
    """Lock or unlock a login."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn, autocommit=True) as conn:
        accounts.set_disabled(conn, args.username, disabled=not args.unlock)
    print(f"account {args.username} {'unlocked' if args.unlock else 'locked'}")
    return 0


def _state(a: accounts.Account, now: datetime) -> str:
    if a.disabled:
        return "locked"
    if a.locked_until is not None and a.locked_until > now:
        return f"locked out until {a.locked_until:%Y-%m-%d %H:%M} UTC"
    return "active"


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every login."""
    now = datetime.now(UTC)
    with database_dsn(settings, announce=False) as dsn, connect(dsn, autocommit=True) as conn:
        found = accounts.list_accounts(conn)
    if args.json:
        emit_json(
            [
                {
                    "username": a.username,
                    "role": a.role.value,
                    "clinician_id": a.clinician_id,
                    "patient_id": a.patient_id,
                    "email": a.email,
                    "name": a.display_name,
                    "state": _state(a, now),
                    "failed_attempts": a.failed_attempts,
                    "last_login_at": a.last_login_at,
                }
                for a in found
            ]
        )
        return 0
    if not found:
        print("no accounts")
        return 0
    print(f"{'USERNAME':<24} {'ROLE':<10} {'FOR':<28} STATE")
    for a in found:
        person = (
            f"clinician {a.clinician_id}"
            if a.clinician_id is not None
            else f"patient {a.patient_id}"
            if a.patient_id is not None
            else "-"
        )
        print(
            f"{a.username:<24} {a.role.value:<10} {person + ' ' + a.display_name:<28} {_state(a, now)}"
        )
    return 0
