"""Pytest plugin: a real PostgreSQL for every test session, a fresh database per test module.

Loaded with `-p paceline.store.testing`. The server is `--test-dsn` (default:
the `PACELINE_TEST_DSN` environment variable), for example a TimescaleDB
server; without one, the plugin starts an embedded PostgreSQL in a temporary
directory for the session and deletes it afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.embedded import (
    EmbeddedServer,
    ServerUser,
    run_server_command,
    server_bin_path,
    server_options,
)
from paceline.store.identity import IdentityKey
from paceline.store.migrate import migrate
from paceline.store.timescale import probe

#: The identity key every test database verifies person tokens with.
TEST_IDENTITY_KEY: Final = IdentityKey.generate()


def role_password(server_dsn: str, role: str) -> str:
    """The password of `role` on a test server (derived, so parallel runs agree on it)."""
    server = conninfo_to_dict(server_dsn)
    passfile = Path(str(server["passfile"])) if server.get("passfile") else None
    secret = passfile.read_text() if passfile and passfile.exists() else server.get("password")
    seed = f"{server.get('host')}:{server.get('port')}:{secret}"
    return hmac.new(seed.encode(), role.encode(), hashlib.sha256).hexdigest()


def role_passwords(server_dsn: str) -> dict[str, str]:
    """Passwords of every service role on a test server."""
    return {role: role_password(server_dsn, role) for role in roles.SERVICE_ROLES}


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--test-dsn`."""
    parser.addoption(
        "--test-dsn",
        default=os.environ.get("PACELINE_TEST_DSN") or None,
        help="PostgreSQL server for the tests (default: $PACELINE_TEST_DSN, else an embedded one)",
    )


def server_tempdir() -> Path:
    """A new private temporary directory that the embedded server's own user can enter.

    Run as root, the server runs as another user (see `paceline.store.embedded`), which
    must pass through the directory; the directory is new, so setting its mode (0711:
    enter, not list) changes nothing that existed.
    """
    tmp = Path(tempfile.mkdtemp(prefix="paceline-pg-"))
    if os.geteuid() == 0:
        tmp.chmod(0o711)
    return tmp


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A fresh directory for a test's own embedded data directory (see `server_tempdir`)."""
    tmp = server_tempdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def temporary_server() -> Iterator[str]:
    """Start a throwaway embedded PostgreSQL; yield its DSN; delete it on exit."""
    tmp = server_tempdir()
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
                migrate(conn, identity_key=TEST_IDENTITY_KEY, passwords=role_passwords(server_dsn))
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


def service_dsn(dsn: str, role: str) -> str:
    """`dsn` (a test database) logged in as the service role `role`."""
    return roles.role_dsn(dsn, role, role_password(dsn, role))


@pytest.fixture
def identity_key() -> IdentityKey:
    """The key the test databases verify person identity tokens with."""
    return TEST_IDENTITY_KEY


@pytest.fixture(scope="module")
def dashboard_dsn(db_dsn: str) -> str:
    """The module's database, logged in as `paceline_dashboard` (for person sessions)."""
    return service_dsn(db_dsn, roles.DASHBOARD)


@pytest.fixture
def dashboard_conn(dashboard_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as `paceline_dashboard`, closed after the test."""
    with connect(dashboard_dsn) as c:
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


@dataclass
class StoppableServer:
    """A throwaway embedded PostgreSQL that a test can stop and start again under the same DSN."""

    dsn: str
    pgdata: Path
    socket_dir: Path
    user: ServerUser | None

    def _pg_ctl(self, *args: str) -> None:
        run_server_command(
            [str(server_bin_path("pg_ctl", self.user)), "-D", str(self.pgdata), *args],
            self.user,
            timeout=120,
        )

    @property
    def running(self) -> bool:
        """Whether the server's postmaster is up."""
        try:
            self._pg_ctl("status")
        except subprocess.CalledProcessError:
            return False
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` ends every session with an administrator-shutdown error."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        """Start the server again, listening on the same socket."""
        self._pg_ctl(
            "-w", *server_options(self.socket_dir), "-l", str(self.pgdata / "log"), "start"
        )


@contextmanager
def stoppable_server() -> Iterator[StoppableServer]:
    """Like `temporary_server`, but yield a handle that can stop and restart the server."""
    tmp = server_tempdir()
    server = EmbeddedServer.start(tmp, delete_on_stop=True)
    handle = StoppableServer(
        dsn=server.dsn, pgdata=server.pgdata, socket_dir=server.socket_dir, user=server.user
    )
    try:
        yield handle
    finally:
        # Stopping the last hold stops whichever postmaster now serves the cluster (the
        # test may have restarted it) and deletes the cluster.
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
