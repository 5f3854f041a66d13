"""Pytest plugin: a real PostgreSQL for every test session, a fresh database per test module.

Loaded with `-p paceline.store.testing`. The server is `--test-dsn` (default:
the `PACELINE_TEST_DSN` environment variable), for example a TimescaleDB
server; without one, the plugin starts an embedded PostgreSQL in a temporary
directory for the session and deletes it afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from paceline.store.connection import connect
from paceline.store.embedded import EmbeddedServer
from paceline.store.migrate import migrate
from paceline.store.timescale import probe


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--test-dsn`."""
    parser.addoption(
        "--test-dsn",
        default=os.environ.get("PACELINE_TEST_DSN") or None,
        help="PostgreSQL server for the tests (default: $PACELINE_TEST_DSN, else an embedded one)",
    )


@contextmanager
def temporary_server() -> Iterator[str]:
    """Start a throwaway embedded PostgreSQL; yield its DSN; delete it on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="paceline-pg-"))
    server = EmbeddedServer.start(tmp, delete_on_stop=True)
    try:
        yield server.dsn
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def temporary_database(
    server_dsn: str, label: str = "t", *, migrated: bool = True
) -> Iterator[str]:
    """Create a uniquely named database on `server_dsn` (migrated unless told not to); drop it on exit."""
    slug = re.sub(r"[^a-z0-9_]", "_", label.lower())[-30:]
    name = f"paceline_{slug}_{uuid.uuid4().hex[:8]}"
    with connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(server_dsn, dbname=name)
    try:
        if migrated:
            with connect(dsn, autocommit=True) as conn:
                migrate(conn)
        yield dsn
    finally:
        with connect(server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg_server_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of the server the whole test session uses (maintenance database)."""
    given = request.config.getoption("--test-dsn")
    if given:
        yield str(given)
        return
    with temporary_server() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def db_dsn(pg_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database for the current test module."""
    with temporary_database(pg_server_dsn, request.module.__name__.rsplit(".", 1)[-1]) as dsn:
        yield dsn


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the module's database, closed after the test."""
    with connect(db_dsn) as c:
        yield c


@pytest.fixture(scope="session")
def server_has_timescaledb(pg_server_dsn: str) -> bool:
    """Whether the test server offers the timescaledb extension."""
    with connect(pg_server_dsn, autocommit=True) as c:
        return probe(c).available


@pytest.fixture
def require_timescaledb(server_has_timescaledb: bool) -> None:
    """Skip the test unless the server has TimescaleDB."""
    if not server_has_timescaledb:
        pytest.skip("the test server has no timescaledb extension (set PACELINE_TEST_DSN)")
