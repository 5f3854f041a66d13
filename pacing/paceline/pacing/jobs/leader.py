"""Leader election: a PostgreSQL session advisory lock held on a connection of its own.

The instance whose connection holds `LEADER_LOCK_KEY` is the leader. The lock
lives as long as the session: if the leader dies or its network goes, the
server ends the session (TCP keepalives make that take seconds, not hours) and
a standby's next `try_acquire` wins. The lock must live in a real server
session: behind PgBouncer in transaction mode, point the clock at the server
(or a session-mode pool) directly.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

import psycopg

from paceline.store import locks
from paceline.store.connection import KEEPALIVE, connect
from paceline.store.roles import WORKER

logger = logging.getLogger(__name__)

#: `pg_try_advisory_lock` key of the leader: the ASCII of "schd". It lives in the
#: single-bigint key space, apart from the engine's two-key per-patient locks, and
#: differs from the rollup's ("roll") and the migrations' ("pace") keys.
LEADER_LOCK_KEY: Final = 0x73636864
#: How long a release waits for a heartbeat that holds the connection.
RELEASE_GRACE_S: Final = 2.0
#: TCP keepalive of the lock connection: a leader behind a dead network must notice
#: (and the server must drop its session, releasing the lock) within about 20 s,
#: rather than after the kernel's two-hour default. One definition, in store.
LOCK_KEEPALIVE: Final = KEEPALIVE
_APPLICATION_NAME_MAX = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)


class LeaderLock:
    """The lock connection of one instance: acquire, confirm, release (thread-safe)."""

    def __init__(self, dsn: str, *, key: int = LEADER_LOCK_KEY, name: str) -> None:
        self._dsn = dsn
        self.key = key
        self.name = name
        self._io = threading.Lock()  # serialises use of the connection
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the lock connection, if connected."""
        conn = self._conn
        if conn is None or conn.closed:
            return None
        return int(conn.info.backend_pid)

    def try_acquire(self) -> bool:
        """Connect if needed and try the lock once; True if this instance now holds it.

        Raises `psycopg.Error` or `paceline.store.errors.StoreError` when the database cannot be reached
        (the connection is dropped then, and the next call reconnects).
        """
        conn = self._conn
        if conn is None or conn.closed:
            conn = connect(
                self._dsn,
                autocommit=True,
                application_name=f"paceline-clock {self.name}"[:_APPLICATION_NAME_MAX],
                keepalive=True,
            )
            with self._io:
                if self._closed:  # `release` ran while this call was connecting
                    conn.close()
                    return False
                self._conn = conn
        try:
            with self._io:
                return locks.try_session_lock(conn, self.key)
        except psycopg.Error:
            self.release()
            raise

    def foreign_holder(self) -> locks.LockHolder | None:
        """The session holding the key when it is not a Paceline clock (`paceline.store.locks`)."""
        conn = self._conn
        if conn is None or conn.closed:
            return None
        with self._io:
            return locks.foreign_holder(
                conn, self.key, application_prefix="paceline-clock", roles=[WORKER]
            )

    def confirm(self) -> bool:
        """`SELECT 1` on the lock connection: whether the session (and so the lock) lives."""
        conn = self._conn
        if conn is None:
            return False
        try:
            with self._io:
                locks.ping(conn)
        except psycopg.Error:
            logger.warning("%s: the lock connection failed", self.name, exc_info=True)
            return False
        return True

    def release(self, *, unlock: bool = False, final: bool = False) -> None:
        """Close the lock connection, unlocking first if asked and the connection is usable."""
        # Closing the session releases the lock too, but only once the server has processed
        # the disconnection; the explicit unlock makes the release visible before `stop()`
        # returns. It is skipped when a heartbeat stuck on a dead network holds `_io`:
        # closing the socket is then what unblocks that heartbeat.
        got = self._io.acquire(timeout=RELEASE_GRACE_S)
        try:
            conn, self._conn = self._conn, None
            if final:
                self._closed = True
            if conn is None:
                return
            if got and unlock and not conn.closed:
                try:
                    locks.session_unlock(conn, self.key)
                except psycopg.Error:
                    logger.debug("unlock before closing failed", exc_info=True)
            conn.close()
        finally:
            if got:
                self._io.release()
