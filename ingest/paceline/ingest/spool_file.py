"""The spool's SQLite file: schema, locking, permissions, identity, meta data, repair.

What every user of the file needs, whichever side of the queue it is on: the schema,
transactions on an autocommit connection, the key/value meta table and counters, the
daemon's lock, the 0600/0700 modes (heart data on a gateway), the spool's identity (kept
in the file and beside it, so a file that was emptied is noticed), and the rebuild of a
file damaged where appends need it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from paceline.ingest import IngestError

logger = logging.getLogger(__name__)

SPOOL_FILE: Final = "spool.sqlite"
BUSY_TIMEOUT_MS: Final = 30_000
"""How long one side waits for the other's write lock; commits take milliseconds, so
thirty seconds only runs out when the other process hangs."""
MAX_BATCH_RECORDS: Final = 100_000
"""Records per upload batch at most, so that planning a run of tiny records stays bounded."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    stream      TEXT NOT NULL,
    patient_id  INTEGER NOT NULL,
    device_id   INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    data        BLOB NOT NULL,
    crc         INTEGER NOT NULL,
    spooled_us  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    batch_id    TEXT PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
    device_id   INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (device_id, name)
);
CREATE TABLE IF NOT EXISTS step_state (
    device_id   INTEGER PRIMARY KEY,
    last_count  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS incident (
    at_us       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_facts (
    device_id       INTEGER PRIMARY KEY,
    battery_percent INTEGER,
    battery_at_us   INTEGER,
    manufacturer    TEXT,
    model           TEXT,
    serial          TEXT,
    firmware        TEXT,
    hardware        TEXT,
    software        TEXT
);
CREATE TABLE IF NOT EXISTS binding (
    address     TEXT PRIMARY KEY,
    device_id   INTEGER NOT NULL,
    patient_id  INTEGER NOT NULL,
    name        TEXT,
    profile     TEXT NOT NULL
);
"""


class SpoolError(IngestError):
    """The spool file cannot be opened or read at all."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"spool {path}: {reason}")


class SpoolDamagedError(SpoolError):
    """The spool file is damaged where a write needs it (its sequence page): it must be rebuilt.

    Raised instead of SQLite's raw `DatabaseError`; the daemon answers it by reopening
    the spool with `repair=True`, which sets the damaged file aside and rebuilds it.
    """


@contextmanager
def daemon_lock(path: Path) -> Iterator[None]:
    """Hold the spool's daemon lock while the block runs; `SpoolError` if another daemon holds it.

    Two daemons on one spool would upload the same outbox twice over and race each other
    for every record; the lock is an flock, so the kernel releases it when a daemon dies.
    """
    make_private(path)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise SpoolError(path, "another ingest daemon is using it") from exc
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def make_private(path: Path) -> None:
    """Make the spool's directory 0700 and its files 0600, creating the directory if needed.

    The spool holds patients' heart data. SQLite creates its files 0644 (and gives the
    `-wal` and `-shm` files the database file's mode), so the database file is created
    0600 before SQLite opens it; a spool left wider by an older version is narrowed.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)
    # O_EXCL: never open (and close) a file SQLite may already hold here, since closing
    # any descriptor of a file drops all of this process's POSIX locks on it.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}.lock"):
        with contextlib.suppress(FileNotFoundError):
            if (directory / name).stat().st_mode & 0o077:
                (directory / name).chmod(0o600)


def spool_path(data_dir: Path) -> Path:
    """Where the spool lives under `PACELINE_DATA_DIR`."""
    return data_dir / "spool" / SPOOL_FILE


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """BEGIN IMMEDIATE (or DEFERRED, for reads) … COMMIT on an autocommit connection."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_TABLES_KEPT: Final = {
    "meta": ("SELECT key, value FROM meta", "INSERT INTO meta VALUES (?, ?)"),
    "outbox": ("SELECT * FROM outbox", "INSERT INTO outbox VALUES (?, ?, ?)"),
    "counter": ("SELECT * FROM counter", "INSERT INTO counter VALUES (?, ?, ?)"),
    "step_state": ("SELECT * FROM step_state", "INSERT INTO step_state VALUES (?, ?)"),
    "binding": ("SELECT * FROM binding", "INSERT INTO binding VALUES (?, ?, ?, ?, ?)"),
    "incident": ("SELECT * FROM incident", "INSERT INTO incident VALUES (?, ?, ?)"),
    "device_facts": (
        "SELECT * FROM device_facts",
        "INSERT INTO device_facts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
}
"""What a rebuild copies besides the records: each table's read and its write, spelled out."""
_CHUNK_SELECT: Final = (
    "SELECT seq, stream, patient_id, device_id, n, data, crc, spooled_us FROM chunk"
    " WHERE seq BETWEEN ? AND ?"
)
_CHUNK_INSERT: Final = (
    "INSERT INTO chunk (seq, stream, patient_id, device_id, n, data, crc, spooled_us)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_REBUILD_RANGE: Final = 1_000


def sequence_damaged(path: Path) -> bool:
    """Whether the spool's sequence table cannot be read (the page appends need)."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("SELECT seq FROM sqlite_sequence").fetchall()
    except sqlite3.OperationalError:
        return False  # locked, or no such table yet: not damage
    except sqlite3.DatabaseError:
        return True
    return False


def rebuild(path: Path) -> Path:
    """Copy what can be read of a damaged spool into a new file; set the damaged one aside.

    Every readable record keeps its sequence number, the meta data (identity, watermark,
    counters) and the outbox are kept, and the sequence restarts above the highest number
    known, so no number is given out twice. Records that cannot be read are left out:
    the uploader finds their numbers missing and quarantines them as corrupt, so their
    loss is counted. The damaged file is kept beside the spool (`*.damaged-<time>`) for
    inspection. Returns where it went. The caller must hold the daemon lock.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    fresh = path.with_name(f"{path.name}.rebuild")
    fresh.unlink(missing_ok=True)
    # Created 0600 before SQLite opens it, like the spool itself (heart data).
    os.close(os.open(fresh, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    lost: list[str] = []
    with (
        contextlib.closing(sqlite3.connect(path, isolation_level=None)) as src,
        contextlib.closing(sqlite3.connect(fresh, isolation_level=None)) as dst,
    ):
        dst.execute("PRAGMA journal_mode = DELETE")
        with transaction(dst):
            create_schema(dst)
            for table, (read, write) in _TABLES_KEPT.items():
                try:
                    found = src.execute(read).fetchall()
                except sqlite3.DatabaseError as exc:
                    lost.append(f"table {table}: {exc}")
                    continue
                dst.executemany(write, found)
            newest, copied, unreadable = _copy_chunks(src, dst)
            known = [newest]
            for query in (
                "SELECT max(last_seq) FROM outbox",
                "SELECT value FROM meta WHERE key = 'acked_seq'",
            ):
                row = dst.execute(query).fetchone()
                if row and row[0] is not None:
                    known.append(int(row[0]))
            dst.execute("DELETE FROM sqlite_sequence WHERE name = 'chunk'")
            dst.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('chunk', ?)", (max(known),)
            )
            detail = (
                f"sqlite_sequence damaged: rebuilt with {copied} records, {unreadable}"
                f" unreadable left out; damaged file kept as {aside.name}"
            )
            if lost:
                detail += "; lost " + "; ".join(lost)
            add_incident(dst, "rebuilt", detail)
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            os.replace(source, aside.with_name(aside.name + suffix))
    os.replace(fresh, path)
    logger.error("spool %s: %s", path, detail)
    return aside


def _copy_chunks(src: sqlite3.Connection, dst: sqlite3.Connection) -> tuple[int, int, int]:
    """Copy every readable record; return (highest number copied, copied, unreadable)."""
    try:
        row = src.execute("SELECT min(seq), max(seq) FROM chunk").fetchone()
        low, high = (int(row[0]), int(row[1])) if row and row[0] is not None else (1, 0)
    except sqlite3.DatabaseError:
        low, high = _probe_range(src)
    copied = unreadable = 0
    highest = 0
    for first in range(low, high + 1, _REBUILD_RANGE):
        last = min(high, first + _REBUILD_RANGE - 1)
        try:
            found = src.execute(_CHUNK_SELECT, (first, last)).fetchall()
        except sqlite3.DatabaseError:
            found = []
            for seq in range(first, last + 1):
                try:
                    found.extend(src.execute(_CHUNK_SELECT, (seq, seq)).fetchall())
                except sqlite3.DatabaseError:
                    unreadable += 1
        dst.executemany(_CHUNK_INSERT, found)
        copied += len(found)
        highest = max([highest, *(int(r[0]) for r in found)])
    return highest, copied, unreadable


def _probe_range(src: sqlite3.Connection) -> tuple[int, int]:
    """The range of record numbers when the table cannot be scanned: from the meta data."""
    try:
        row = src.execute("SELECT value FROM meta WHERE key = 'acked_seq'").fetchone()
        acked = int(row[0]) if row else 0
    except sqlite3.DatabaseError:
        acked = 0
    return acked + 1, acked + MAX_BATCH_RECORDS


def _identity_path(path: Path) -> Path:
    return path.with_name(path.name + ".id")


def identify(conn: sqlite3.Connection, path: Path) -> None:
    """Give a new spool its identity; note which spool it replaces if its file was lost.

    The identity is kept twice: in the spool and in a small file beside it. A spool file
    that is new or was emptied (truncated to zero, deleted) while the identity file names
    another spool took over from that one, and whatever the lost file held that the store
    had not acknowledged is gone: that is recorded, to be reported, not passed over.
    """
    if get_meta(conn, "spool_id"):
        return
    new_id = uuid.uuid4().hex
    set_meta(conn, "spool_id", new_id)
    try:
        previous = _identity_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        previous = ""
    if previous and previous != new_id:
        reason = (
            f"the spool file was new or empty but its identity file names spool {previous}:"
            " what that spool had not uploaded is lost"
        )
        set_meta(conn, "replaces", previous)
        set_meta(conn, "replaced_reason", reason)
        add_incident(conn, "replaced", reason)
        logger.error("spool %s replaces lost spool %s (file new or emptied)", new_id, previous)


def write_identity_file(path: Path, spool_id: str) -> None:
    """Keep the identity beside the spool (atomically: a torn write must not name another)."""
    target = _identity_path(path)
    try:
        if target.read_text(encoding="ascii").strip() == spool_id:
            return
    except (OSError, UnicodeDecodeError):
        pass
    # A name of its own: the daemon's two connections (and a status reader) open at once.
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{spool_id}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def add_incident(conn: sqlite3.Connection, kind: str, detail: str) -> None:
    """Record something the spool found wrong with itself (shown by `ingest status`)."""
    conn.execute(
        "INSERT INTO incident (at_us, kind, detail) VALUES (?, ?, ?)",
        (time.time_ns() // 1000, kind, detail),
    )


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the spool's tables where missing."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """One value of the meta table (None when unset)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set one value of the meta table."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def bump_meta(conn: sqlite3.Connection, key: str, by: int) -> None:
    """Add `by` to a numeric value of the meta table."""
    if by:
        set_meta(conn, key, str(int(get_meta(conn, key) or 0) + by))


def add_counters(conn: sqlite3.Connection, increments: Mapping[tuple[int, str], int]) -> None:
    """Add per-device counter increments ((device, name) -> n)."""
    rows = [(d, n, v) for (d, n), v in increments.items() if v]
    if rows:
        conn.executemany(
            "INSERT INTO counter (device_id, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT (device_id, name) DO UPDATE SET value = value + excluded.value",
            rows,
        )


__all__ = [
    "BUSY_TIMEOUT_MS",
    "MAX_BATCH_RECORDS",
    "SCHEMA",
    "SPOOL_FILE",
    "SpoolDamagedError",
    "SpoolError",
    "add_counters",
    "add_incident",
    "bump_meta",
    "create_schema",
    "daemon_lock",
    "get_meta",
    "identify",
    "make_private",
    "rebuild",
    "sequence_damaged",
    "set_meta",
    "spool_path",
    "transaction",
    "write_identity_file",
]
