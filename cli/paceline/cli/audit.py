"""`paceline audit verify`: check the audit log's hash chain."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.store.audit import AuditChainError, verify
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `audit` command group."""
    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    sub.add_parser(
        "verify",
        help="recompute the hash chain; exit 1 and name the first broken entry if it is broken",
    ).set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the chain (needs an administrator: nobody else may read the log)."""
    with database_dsn(settings) as dsn, connect(dsn, autocommit=True) as conn:
        try:
            report = verify(conn)
        except AuditChainError as exc:
            print(f"paceline: audit log TAMPERED: {exc}", file=sys.stderr)
            return 1
    print(f"audit log intact: {report.entries} entries, head {report.head_hash.hex()}")
    return 0
