"""The embedded default: created once, reused, and clear about what is wrong with its directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from paceline.store import DataDirError, connect
from paceline.store.embedded import LOCK_NAME, PGDATA_NAME, EmbeddedServer, bundled_major_version


@pytest.mark.slow
def test_the_data_directory_is_created_then_reused_with_its_data(server_dir: Path) -> None:
    data_dir = server_dir / "paceline-data"
    server = EmbeddedServer.start(data_dir)
    try:
        assert server.pgdata == data_dir / PGDATA_NAME
        with connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    finally:
        server.stop()
    again = EmbeddedServer.start(data_dir, delete_on_stop=True)
    try:
        with connect(again.dsn) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    finally:
        again.stop()


def test_a_cluster_of_another_major_version_is_refused(server_dir: Path) -> None:
    pgdata = server_dir / PGDATA_NAME
    pgdata.mkdir()
    other = bundled_major_version() - 3
    (pgdata / "PG_VERSION").write_text(f"{other}\n")
    with pytest.raises(DataDirError, match=f"PostgreSQL {other} cluster"):
        EmbeddedServer.start(server_dir)


def test_an_unwritable_data_directory_is_refused(server_dir: Path) -> None:
    blocked = server_dir / "file-not-dir"
    blocked.write_text("")
    with pytest.raises(DataDirError, match="cannot create it"):
        EmbeddedServer.start(blocked / "data")


def test_a_data_directory_locked_by_another_process_is_reported(server_dir: Path) -> None:
    server_dir.mkdir(exist_ok=True)
    with (server_dir / LOCK_NAME).open("a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write("4242")
        holder.flush()
        with pytest.raises(DataDirError, match=r"locked by another process \(pid 4242\)"):
            EmbeddedServer.start(server_dir, lock_timeout_s=0.3)
    assert not (server_dir / PGDATA_NAME).exists()


def test_an_interrupted_initdb_is_moved_aside_not_deleted(server_dir: Path) -> None:
    pgdata = server_dir / PGDATA_NAME
    pgdata.mkdir()
    (pgdata / "base").mkdir()
    (pgdata / "half-written").write_text("x")
    server = EmbeddedServer.start(server_dir, delete_on_stop=True)
    try:
        assert (server_dir / f"{PGDATA_NAME}.incomplete" / "half-written").exists()
        with connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert os.path.exists(server_dir / f"{PGDATA_NAME}.incomplete")
