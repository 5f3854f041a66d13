"""`paceline db migrate` and `paceline db status`."""

from __future__ import annotations

import argparse
from typing import Any

from paceline.cli.database import (
    administrator_secrets,
    database_dsn,
    identity_key,
    role_password,
)
from paceline.cli.settings import Settings
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey
from paceline.store.migrate import migrate
from paceline.store.status import DatabaseStatus, database_status


def register(commands: Any) -> None:
    """Add the `db` command group."""
    db = commands.add_parser("db", help="database schema and state")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    sub.add_parser(
        "migrate", help="apply pending migrations and TimescaleDB policies"
    ).set_defaults(handler=run_migrate)
    sub.add_parser("status", help="schema version, server version, TimescaleDB state").set_defaults(
        handler=run_status
    )
    sub.add_parser(
        "secrets",
        help="create the service roles' passwords and the identity key (0600) in"
        " PACELINE_SECRETS_DIR where missing",
    ).set_defaults(handler=run_secrets)


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations."""
    with database_dsn(settings) as dsn, connect(dsn, autocommit=True) as conn:
        result = migrate(
            conn,
            compress_after=settings.compress_after,
            retention=settings.retention,
            identity_key=identity_key(settings),
            passwords=administrator_secrets(settings),
        )
    if result.applied:
        print(f"applied migrations {', '.join(str(v) for v in result.applied)}")
    else:
        print("schema is up to date")
    print(f"schema version {result.schema_version}; TimescaleDB: {result.timescale.reason}")
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the database status."""
    with database_dsn(settings) as dsn, connect(dsn, autocommit=True) as conn:
        status = database_status(conn)
    print(format_status(status))
    return 1 if status.pending or status.migration_lock_foreign else 0


def format_status(status: DatabaseStatus) -> str:
    """The status as the lines an operator reads."""
    lines = [
        f"server:          PostgreSQL {status.server_version}",
        f"schema version:  {status.schema_version} of {status.latest_version}"
        + (f" (pending: {', '.join(status.pending)})" if status.pending else ""),
        f"mode:            {status.mode}",
        f"timescaledb:     {status.timescale.reason}"
        + (f" ({status.timescale.version})" if status.timescale.version else ""),
    ]
    if status.migration_lock is not None:
        who = status.migration_lock.describe()
        lines.append(
            f"migration lock:  held by {who}"
            + (
                " - NOT a Paceline migration: migrations will refuse to run"
                if status.migration_lock_foreign
                else ""
            )
        )
    for t in status.tables:
        if t.hypertable:
            lines.append(
                f"  {t.table:<12} hypertable, {t.chunks} chunks ({t.compressed_chunks} compressed),"
                f" compress after {t.compress_after or 'never'}, retention {t.retention or 'none'}"
            )
        else:
            lines.append(f"  {t.table:<12} plain table")
    return "\n".join(lines)


def run_secrets(args: argparse.Namespace, settings: Settings) -> int:
    """Create the secret files a deployment needs (never overwriting one that exists)."""
    for role in roles.SERVICE_ROLES:
        role_password(settings.secrets, role)
        print(settings.secrets / f"{role}.password")
    IdentityKey.load_or_create(settings.identity_key_path)
    print(settings.identity_key_path)
    return 0
