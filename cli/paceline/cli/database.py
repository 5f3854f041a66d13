"""Which database a command talks to: `PACELINE_DATABASE_URL`, or the embedded default."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from paceline.cli.settings import Settings
from paceline.store.connection import check_dsn
from paceline.store.embedded import EmbeddedServer


@contextmanager
def database_dsn(settings: Settings, *, announce: bool = True) -> Iterator[str]:
    """Yield the DSN to use, starting the embedded server for the duration when no URL is set."""
    if settings.database_url:
        check_dsn(settings.database_url)
        yield settings.database_url
        return
    server = EmbeddedServer.start(settings.data_dir)
    if announce:
        print(f"embedded PostgreSQL: data in {server.pgdata}", file=sys.stderr)
    try:
        yield server.dsn
    finally:
        server.stop()
