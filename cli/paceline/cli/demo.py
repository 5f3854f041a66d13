"""`paceline demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.db import format_status
from paceline.cli.settings import Settings
from paceline.store.connection import connect
from paceline.store.migrate import migrate
from paceline.store.status import database_status


def register(commands: Any) -> None:
    """Add the `demo` command."""
    demo = commands.add_parser("demo", help="run the demo on the embedded database")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate the database and show its status."""
    with database_dsn(settings) as dsn, connect(dsn, autocommit=True) as conn:
        result = migrate(conn, compress_after=settings.compress_after, retention=settings.retention)
        print(f"migrated: {len(result.applied)} new migration(s)")
        print(format_status(database_status(conn)))
    return 0
