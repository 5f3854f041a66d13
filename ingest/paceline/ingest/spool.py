"""The durable local spool: an SQLite file in WAL mode between the device tasks and the uploader.

Every flush of the daemon commits its chunks in one transaction; what is committed
survives a crash of the daemon. Records are keyed by a sequence number that only grows
(`AUTOINCREMENT`, so a number is never reused even after the newest records were pruned:
a reused number would make a new batch look like a replay and be skipped).

The uploader takes the records after the acknowledged watermark in contiguous runs. A run
is first written to the `outbox` table under its batch id
(`{gateway}/{spool}:{first_seq}-{last_seq}`) and only then sent, so after a crash the same
rows are re-sent under the same id and the store recognises the replay. Acknowledging a
batch advances the watermark and removes it from the outbox in one transaction.

`synchronous=FULL`: with WAL, NORMAL already survives a crash of the process, but a
gateway is a Raspberry Pi that people unplug, and FULL also survives losing power. It costs
one fsync per flush (about one a second), which an SD card absorbs easily.

Every record carries a CRC-32; a record whose bytes no longer match (a flipped bit on an
SD card, a torn page) is handed to the uploader as corrupt, to be quarantined and counted,
while the records around it are recovered.

This module is the queue. The file itself (schema, lock, modes, identity, meta data,
repair) is `spool_file`; the gateway's bound devices and step counters, kept in the same
file, are `gateway_state`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from paceline.ingest.chunks import PAYLOAD, Chunk, RecordError
from paceline.ingest.gateway_state import (
    DeviceFacts,
    GatewayState,
    default_gateway_id,
    load_device_facts,
    save_device_facts,
)
from paceline.ingest.spool_file import (
    BUSY_TIMEOUT_MS,
    MAX_BATCH_RECORDS,
    SpoolDamagedError,
    SpoolError,
    add_counters,
    add_incident,
    bump_meta,
    create_schema,
    get_meta,
    identify,
    make_private,
    rebuild,
    sequence_damaged,
    set_meta,
    transaction,
    write_identity_file,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS: Final = 50_000
"""Rows per upload batch: large enough that COPY runs at full speed (the per-transaction
overhead is a few milliseconds), small enough that one batch is a few megabytes."""
DEFAULT_KEEP_UPLOADED_S: Final = 24 * 3600.0
"""Uploaded records stay a day, so a database restored from last night's backup can be
refilled from the gateway."""

GATEWAY_DEVICE: Final = 0
"""Counter key for what belongs to no device (corrupt records whose device is unknown)."""


@dataclass(frozen=True)
class CorruptRecord:
    """A spool record that cannot be trusted: its sequence number, why, and its raw bytes if readable."""

    seq: int
    reason: str
    device_id: int
    raw_hex: str | None


@dataclass(frozen=True)
class SpoolBatch:
    """A contiguous run of spool records to upload under one batch id."""

    batch_id: str
    first_seq: int
    last_seq: int
    chunks: tuple[tuple[int, Chunk], ...]
    corrupt: tuple[CorruptRecord, ...] = ()

    @property
    def spool_id(self) -> str:
        """The identity of the spool the batch was planned in (part of its id)."""
        return self.batch_id.rsplit(":", 1)[0].rpartition("/")[2]

    @property
    def rows(self) -> int:
        """Rows of the intact records (samples and rejected payloads)."""
        return sum(chunk.count for _seq, chunk in self.chunks)


@dataclass(frozen=True)
class SpoolIncident:
    """Something the spool found wrong with itself and reported (newest first in a status)."""

    at_us: int
    kind: str
    detail: str


@dataclass(frozen=True)
class SpoolStatus:
    """Backlog, lag and counters of a spool."""

    path: Path
    gateway_id: str
    spool_id: str
    last_seq: int
    acked_seq: int
    pending_records: int
    pending_rows: int
    oldest_pending_us: int | None
    in_flight: str | None
    counters: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    devices: Mapping[int, DeviceFacts] = field(default_factory=dict)
    replaces: str | None = None
    incidents: tuple[SpoolIncident, ...] = ()

    @property
    def dropped_rows(self) -> int:
        """Rows the daemon dropped while the spool could not be written (a full disk)."""
        return sum(c.get("dropped", 0) for c in self.counters.values())

    def lag_s(self, now_us: int | None = None) -> float:
        """Seconds since the oldest record not yet uploaded was spooled (0 when none is)."""
        if self.oldest_pending_us is None:
            return 0.0
        now = time.time_ns() // 1000 if now_us is None else now_us
        return max(0.0, (now - self.oldest_pending_us) / 1e6)


class Spool:
    """One connection to the spool file; use one per thread (the daemon's writer, the uploader)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self.gateway_id = self._meta("gateway_id") or default_gateway_id()
        self.gateway = GatewayState(conn)
        """The bound devices and step counters kept in this spool."""
        self._sequence_damaged = False

    @property
    def spool_id(self) -> str:
        """The identity (a UUID) of the spool; it changes only when the spool is found to have lost state."""
        return self._meta("spool_id") or ""

    @property
    def replaces(self) -> str | None:
        """The identity of the spool this one took over from, if it did."""
        return self._meta("replaces")

    @property
    def replaced_reason(self) -> str | None:
        """Why this spool took over from another (see `replaces`)."""
        return self._meta("replaced_reason")

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        gateway_id: str | None = None,
        synchronous: str = "FULL",
        repair: bool = False,
    ) -> Spool:
        """Open (creating if needed) the spool at `path`.

        With `repair` (only the daemon, holding the spool's lock, asks for it) a spool
        whose sequence page is damaged is rebuilt first: see `rebuild`.
        """
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if repair and path.exists() and path.stat().st_size and sequence_damaged(path):
            rebuild(path)
        try:
            make_private(path)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(path, f"cannot open it: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                raise SpoolError(path, f"the file system does not support WAL mode ({mode})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            with transaction(conn):
                create_schema(conn)
                if gateway_id:
                    set_meta(conn, "gateway_id", gateway_id)
                elif not get_meta(conn, "gateway_id"):
                    set_meta(conn, "gateway_id", default_gateway_id())
                identify(conn, path)
                if not get_meta(conn, "acked_seq"):
                    set_meta(conn, "acked_seq", "0")
                if not get_meta(conn, "rows_appended"):
                    set_meta(conn, "rows_acked", "0")
                    set_meta(conn, "rows_appended", "0")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SpoolError(path, f"it is not a usable spool: {exc}") from exc
        spool = cls(path, conn)
        write_identity_file(path, spool.spool_id)
        return spool

    def reidentify(self, reason: str) -> str:
        """Give the spool a new identity after it was found to have lost state; return it.

        The records after the watermark stay and are planned afresh under the new identity,
        so no batch id is ever offered again for other rows; the planned batch (under the
        old identity) is dropped from the outbox. Records the store already holds are
        recognised as duplicates by their keys, records it lacks land.
        """
        new_id = uuid.uuid4().hex
        with transaction(self._conn):
            old = get_meta(self._conn, "spool_id") or ""
            set_meta(self._conn, "replaces", old)
            set_meta(self._conn, "replaced_reason", reason)
            set_meta(self._conn, "spool_id", new_id)
            self._conn.execute("DELETE FROM outbox")
            add_incident(self._conn, "reidentified", f"was {old}, now {new_id}: {reason}")
        write_identity_file(self.path, new_id)
        logger.error("spool %s lost state (%s); continuing as spool %s", old, reason, new_id)
        return new_id

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Spool:
        """Use as a context manager that closes the spool."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the spool."""
        self.close()

    def _meta(self, key: str) -> str | None:
        return get_meta(self._conn, key)

    @property
    def acked_seq(self) -> int:
        """The highest sequence number the database has acknowledged."""
        return int(self._meta("acked_seq") or 0)

    # ------------------------------------------------------------------ the daemon's side

    def append(
        self,
        chunks: Iterable[Chunk],
        counters: Mapping[tuple[int, str], int] | None = None,
        step_counts: Mapping[int, int] | None = None,
        device_facts: Mapping[int, DeviceFacts] | None = None,
    ) -> int:
        """Commit `chunks` and counter increments in one durable transaction; return the last seq.

        `step_counts` are the devices' cumulative step counters as of these chunks; kept in
        the same transaction, so a restarted daemon continues each counter exactly where
        the spooled rows end (neither counting steps twice nor dropping the interval).
        `device_facts` replace what the devices said about themselves (battery, model).
        """
        now_us = time.time_ns() // 1000
        rows = [
            (c.stream, c.patient_id, c.device_id, c.count, c.data, c.crc, now_us)
            for c in chunks
            if c.count
        ]
        increments = dict(counters or {})
        for _s, _p, device_id, count, *_rest in rows:
            name = "spooled" if _s != PAYLOAD else "malformed_spooled"
            increments[(device_id, name)] = increments.get((device_id, name), 0) + count
        try:
            return self._append(rows, increments, step_counts, device_facts or {})
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # a full disk, an I/O error, a lock: it may pass; the caller retries
            raise SpoolDamagedError(self.path, f"cannot append: {exc}") from exc

    def _append(
        self,
        rows: list[tuple[Any, ...]],
        increments: Mapping[tuple[int, str], int],
        step_counts: Mapping[int, int] | None,
        device_facts: Mapping[int, DeviceFacts],
    ) -> int:
        with transaction(self._conn):
            save_device_facts(self._conn, device_facts)
            if rows:
                self._conn.executemany(
                    "INSERT INTO chunk (stream, patient_id, device_id, n, data, crc, spooled_us)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            add_counters(self._conn, increments)
            bump_meta(self._conn, "rows_appended", sum(r[3] for r in rows))
            if step_counts:
                self._conn.executemany(
                    "INSERT INTO step_state (device_id, last_count) VALUES (?, ?)"
                    " ON CONFLICT (device_id) DO UPDATE SET last_count = excluded.last_count",
                    list(step_counts.items()),
                )
            last = self._conn.execute("SELECT max(seq) FROM chunk").fetchone()
        return int(last[0] or 0) if last else 0

    # ------------------------------------------------------------------ the uploader's side

    def next_batch(self, max_rows: int = DEFAULT_BATCH_ROWS) -> SpoolBatch | None:
        """The batch to upload next: the one in flight if any, else a new run of records.

        Runs are planned by sequence number from the watermark on, not by scanning the
        table: numbers are gap-free, so a record that cannot be read (a damaged page) is
        still part of a run, and is set aside as corrupt instead of blocking every run.
        """
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        while True:
            planned = self._in_flight()
            if planned is not None:
                break
            # Planning reads records, which can meet a damaged page; SQLite fails the rest
            # of a write transaction after that, so it reads outside one (one statement
            # each). Only this uploader moves the watermark, so the plan stays valid if it
            # is still unchanged when the outbox row is written.
            acked = self.acked_seq
            newest = self._newest_seq()
            if newest <= acked:
                return None
            last_seq = self._plan(acked + 1, newest, max_rows)
            batch_id = f"{self.gateway_id}/{self.spool_id}:{acked + 1}-{last_seq}"
            with transaction(self._conn):
                if self._in_flight() is None and self.acked_seq == acked:
                    self._conn.execute(
                        "INSERT INTO outbox (batch_id, first_seq, last_seq) VALUES (?, ?, ?)",
                        (batch_id, acked + 1, last_seq),
                    )
        batch_id, first_seq, last_seq = str(planned[0]), int(planned[1]), int(planned[2])
        chunks, corrupt = self._read(first_seq, last_seq)
        return SpoolBatch(batch_id, first_seq, last_seq, tuple(chunks), tuple(corrupt))

    def _in_flight(self) -> tuple[str, int, int] | None:
        """The planned batch not yet acknowledged, as (batch id, first seq, last seq)."""
        row = self._conn.execute(
            "SELECT batch_id, first_seq, last_seq FROM outbox ORDER BY first_seq LIMIT 1"
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def _newest_seq(self) -> int:
        """The highest sequence number ever given out (0 for an empty spool).

        `sqlite_sequence` is one small table on its own page; if that page is damaged,
        the highest number still in `chunk` (its own b-tree) serves instead, never less
        than the watermark. The damage is reported once, as an incident.
        """
        try:
            row = self._conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'chunk'"
            ).fetchone()
            return 0 if row is None else int(row[0])
        except sqlite3.DatabaseError as exc:
            self._sequence_unreadable(exc)
        try:
            row = self._conn.execute("SELECT max(seq) FROM chunk").fetchone()
            newest = int(row[0]) if row and row[0] is not None else 0
        except sqlite3.DatabaseError:
            newest = 0
        return max(newest, self.acked_seq)

    def _sequence_unreadable(self, exc: sqlite3.DatabaseError) -> None:
        if self._sequence_damaged:
            return
        self._sequence_damaged = True
        logger.error("spool %s: its sequence table is unreadable (%s)", self.path, exc)
        try:
            with transaction(self._conn):
                add_incident(self._conn, "sequence_damaged", f"sqlite_sequence unreadable: {exc}")
        except sqlite3.DatabaseError:
            logger.exception("cannot record the damage in the spool either")

    def _plan(self, first_seq: int, newest_seq: int, max_rows: int) -> int:
        """The last sequence number of a run from `first_seq` holding about `max_rows` rows."""
        end = min(newest_seq, first_seq + MAX_BATCH_RECORDS - 1)
        try:
            sizes = dict(
                self._conn.execute(
                    "SELECT seq, n FROM chunk WHERE seq BETWEEN ? AND ?", (first_seq, end)
                ).fetchall()
            )
        except sqlite3.DatabaseError:
            logger.exception("spool records %s-%s unreadable; sizing one by one", first_seq, end)
            sizes = None
        total, last_seq = 0, first_seq
        for seq in range(first_seq, end + 1):
            n = sizes.get(seq, 0) if sizes is not None else self._size(seq)
            if total and total + int(n) > max_rows:
                break
            total += int(n)
            last_seq = seq
        return last_seq

    def _size(self, seq: int) -> int:
        """Rows of one record; 0 for one that cannot be read (it goes to quarantine as corrupt)."""
        try:
            row = self._conn.execute("SELECT n FROM chunk WHERE seq = ?", (seq,)).fetchone()
        except sqlite3.DatabaseError:
            return 0
        return int(row[0]) if row is not None and isinstance(row[0], int) else 0

    def _read(
        self, first_seq: int, last_seq: int
    ) -> tuple[list[tuple[int, Chunk]], list[CorruptRecord]]:
        """The records of a run, checked; a record that fails its check is set aside as corrupt."""
        query = (
            "SELECT seq, stream, patient_id, device_id, n, data, crc FROM chunk"
            " WHERE seq BETWEEN ? AND ? ORDER BY seq"
        )
        try:
            raw: list[tuple[Any, ...]] = [
                tuple(row) for row in self._conn.execute(query, (first_seq, last_seq))
            ]
        except sqlite3.DatabaseError:
            logger.exception(
                "spool records %s-%s unreadable; reading one by one", first_seq, last_seq
            )
            raw = self._read_one_by_one(first_seq, last_seq)
        present = {row[0] for row in raw}
        # Numbers past the watermark are never deleted, so one that is absent was lost.
        raw.extend(
            (seq, "missing from the spool")
            for seq in range(first_seq, last_seq + 1)
            if seq not in present
        )
        raw.sort(key=lambda row: int(row[0]))
        chunks: list[tuple[int, Chunk]] = []
        corrupt: list[CorruptRecord] = []
        for row in raw:
            seq = int(row[0])
            if len(row) == 2:
                corrupt.append(CorruptRecord(seq, str(row[1]), GATEWAY_DEVICE, None))
                logger.warning("spool record %s is unreadable (%s); quarantining it", seq, row[1])
                continue
            _seq, stream, patient_id, device_id, n, data, crc = row
            try:
                chunk = Chunk.verified(
                    seq,
                    stream=str(stream),
                    patient_id=int(patient_id),
                    device_id=int(device_id),
                    count=int(n),
                    data=bytes(data),
                    crc=int(crc),
                )
            except (RecordError, TypeError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, RecordError) else str(exc)
                device = int(device_id) if isinstance(device_id, int) else GATEWAY_DEVICE
                raw_hex = bytes(data).hex() if isinstance(data, bytes | bytearray) else None
                corrupt.append(CorruptRecord(seq, reason, device, raw_hex))
                logger.warning(
                    "spool record %s is corrupt (%s); it will be quarantined", seq, reason
                )
                continue
            chunks.append((seq, chunk))
        return chunks, corrupt

    def _read_one_by_one(self, first_seq: int, last_seq: int) -> list[tuple[Any, ...]]:
        """Read a damaged run record by record, so that one bad page costs only its own records."""
        out: list[tuple[Any, ...]] = []
        for seq in range(first_seq, last_seq + 1):
            try:
                row = self._conn.execute(
                    "SELECT seq, stream, patient_id, device_id, n, data, crc FROM chunk"
                    " WHERE seq = ?",
                    (seq,),
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                out.append((seq, f"unreadable: {exc}"))
                continue
            if row is not None:
                out.append(tuple(row))
        return out

    def ack(self, batch: SpoolBatch, counters: Mapping[tuple[int, str], int] | None = None) -> None:
        """Record that the database holds `batch`: advance the watermark, clear the outbox."""
        acked_before = self.acked_seq
        try:  # outside the transaction: a damaged page would fail the rest of it
            row = self._conn.execute(
                "SELECT coalesce(sum(n), 0) FROM chunk WHERE seq > ? AND seq <= ?",
                (acked_before, batch.last_seq),
            ).fetchone()
            rows = int(row[0]) if row else batch.rows
        except sqlite3.DatabaseError:
            rows = batch.rows  # a damaged page: count what could be read
        # Read outside the transaction first: a damaged page read inside one fails the rest
        # of it. Inside, it is read again (appends may have come since) unless damaged.
        newest = self._newest_seq()
        with transaction(self._conn):
            if not self._sequence_damaged:
                newest = self._newest_seq()
            self._conn.execute("DELETE FROM outbox WHERE batch_id = ?", (batch.batch_id,))
            acked = int(get_meta(self._conn, "acked_seq") or 0)
            if batch.last_seq > acked:
                set_meta(self._conn, "acked_seq", str(batch.last_seq))
                bump_meta(self._conn, "rows_acked", rows if acked == acked_before else batch.rows)
                if batch.last_seq >= newest:
                    # Everything appended is now uploaded or set aside, including the rows
                    # of unreadable records, which no sum over the table can count.
                    appended = get_meta(self._conn, "rows_appended") or "0"
                    set_meta(self._conn, "rows_acked", appended)
            add_counters(self._conn, dict(counters or {}))

    def prune(self, keep_uploaded_s: float = DEFAULT_KEEP_UPLOADED_S) -> int:
        """Delete uploaded records spooled more than `keep_uploaded_s` ago; return how many."""
        cutoff_us = time.time_ns() // 1000 - int(keep_uploaded_s * 1e6)
        with transaction(self._conn):
            acked = int(get_meta(self._conn, "acked_seq") or 0)
            cur = self._conn.execute(
                "DELETE FROM chunk WHERE seq <= ? AND spooled_us < ?", (acked, cutoff_us)
            )
        return max(cur.rowcount, 0)

    def status(self) -> SpoolStatus:
        """Backlog, lag and counters as committed now (constant time, however large the backlog)."""
        conn = self._conn
        with transaction(conn, "DEFERRED"):
            acked = int(get_meta(conn, "acked_seq") or 0)
            appended = int(get_meta(conn, "rows_appended") or 0)
            uploaded = int(get_meta(conn, "rows_acked") or 0)
            flight = conn.execute("SELECT batch_id FROM outbox LIMIT 1").fetchone()
            counters: dict[int, dict[str, int]] = {}
            for device_id, name, value in conn.execute(
                "SELECT device_id, name, value FROM counter ORDER BY device_id, name"
            ):
                counters.setdefault(int(device_id), {})[str(name)] = int(value)
            incidents = tuple(
                SpoolIncident(int(at), str(kind), str(detail))
                for at, kind, detail in conn.execute(
                    "SELECT at_us, kind, detail FROM incident ORDER BY rowid DESC LIMIT 20"
                )
            )
            replaces = get_meta(conn, "replaces")
            devices = load_device_facts(conn)
        last_seq = self._newest_seq()
        try:  # outside the transaction: a damaged page would fail the rest of it
            oldest = conn.execute(
                "SELECT spooled_us FROM chunk WHERE seq > ? ORDER BY seq LIMIT 1", (acked,)
            ).fetchone()
        except sqlite3.DatabaseError:
            oldest = None  # a damaged page; the uploader sets its records aside
        return SpoolStatus(
            path=self.path,
            gateway_id=self.gateway_id,
            spool_id=self.spool_id,
            last_seq=last_seq,
            acked_seq=acked,
            # Sequence numbers are gap-free: a rolled-back append rolls its numbers back too.
            pending_records=max(0, last_seq - acked),
            pending_rows=max(0, appended - uploaded),
            oldest_pending_us=None if oldest is None else int(oldest[0]),
            in_flight=None if flight is None else str(flight[0]),
            counters=counters,
            devices=devices,
            replaces=replaces,
            incidents=incidents,
        )


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_KEEP_UPLOADED_S",
    "CorruptRecord",
    "Spool",
    "SpoolBatch",
    "SpoolIncident",
    "SpoolStatus",
]
