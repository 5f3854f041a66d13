"""The uploader: drains the spool into the store in batches, exactly once, whatever fails.

Each spool batch goes through `paceline.store.write_batch` under the batch id the spool
planned for it, so a batch re-sent after a crash or a lost connection is recognised and
skipped. Rows the store would refuse are taken out before sending and quarantined with
the reason: rows of a device that is unknown or now bound to another patient, rows from
more than five minutes in the future, values no device could send. Rejected payloads and
corrupt spool records are set aside with them.

Which rows are sent and which are set aside depends on the database at the time (a
binding, the server's clock), so it must be decided once: the set-aside rows go into
`ingest_quarantine` in the batch's own transaction (`write_batch(quarantined=...)`). The
attempt that claims the batch id records both; a replay records neither and is only
acknowledged. Whatever the writer still rejects (a binding changed between the look and
the write) is moved to the set-aside rows and the batch is tried again under the same id,
so the good rows land and only the bad one is quarantined.

Database errors that come and go (connection lost, administrator shutdown, server
starting, failover) are retried with exponential backoff; the batch stays in the spool's
outbox meanwhile and the spool keeps growing behind it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import psycopg
from numpy.typing import NDArray

from paceline.ingest import IngestError
from paceline.ingest.backoff import Backoff
from paceline.ingest.records import PAYLOAD, SAMPLE_DTYPES, Chunk
from paceline.ingest.spool import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_KEEP_UPLOADED_S,
    CorruptRecord,
    Spool,
    SpoolBatch,
)
from paceline.store import (
    Batch,
    BatchConflictError,
    BatchIdentity,
    BatchRejectedError,
    ColumnError,
    HrRows,
    RrRows,
    ServerUnreachableError,
    SpoolRegressionError,
    StepRows,
    connect,
    write_batch,
)
from paceline.store.columns import MAX_ENERGY_KJ, Rows, problems
from paceline.store.spools import record_incident, register_spool
from paceline.store.writer import MAX_FUTURE_S

logger = logging.getLogger(__name__)

PRUNE_EVERY_S: Final = 600.0
"""How often uploaded records past their keep time are deleted (a cheap indexed DELETE)."""
MAX_QUARANTINED_HEX: Final = 65_536
"""Raw bytes kept of a corrupt spool record, as hex characters: enough to inspect it,
bounded so that one damaged megabyte does not bloat the quarantine table."""

DB_BACKOFF: Final = Backoff(base_s=0.5, cap_s=30.0)
"""Retry after database errors: quick for a blip, every half minute during an outage."""
DB_KEEPALIVE: Final[dict[str, int]] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
"""TCP keepalive of the uploader's connection: behind a dead network (a gateway whose Wi-Fi
dropped mid-COPY) a blocked call must fail within about 20 s, so that the batch is retried
and a SIGTERM is not held up, rather than after the kernel's two-hour default. The values
and the reasoning are those of the clock's lock connection
(`paceline.pacing.jobs.leader.LOCK_KEEPALIVE`), which ingest may not import."""


class UploadError(IngestError):
    """A batch could not be uploaded this time; `transient` says whether retrying is expected to help."""

    def __init__(self, batch_id: str, reason: str, *, transient: bool) -> None:
        self.batch_id = batch_id
        self.reason = reason
        self.transient = transient
        super().__init__(f"batch {batch_id}: {reason}")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is one that goes away on its own.

    Connection loss, administrator shutdown, a server still starting, serialization
    failures, deadlocks, cancelled statements and a full disk are all
    `OperationalError`s; a closed connection is an `InterfaceError`; a read-only
    transaction means a failover in progress. Anything else (a missing table, a
    constraint the schema should not have) needs a person, though retrying stays safe.
    """
    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.InterfaceError
        | ServerUnreachableError
        | psycopg.errors.ReadOnlySqlTransaction,
    )


# --------------------------------------------------------------------------- batch columns

_KEY_FIELDS: Final = [("patient_id", "<i8"), ("device_id", "<i8")]


def _with_keys(stream: str) -> np.dtype[np.void]:
    return np.dtype(_KEY_FIELDS + SAMPLE_DTYPES[stream].descr)


_KEYED: Final = {stream: _with_keys(stream) for stream in SAMPLE_DTYPES}


@dataclass(frozen=True, eq=False)
class Columns:
    """The sample rows of a batch, one keyed record array per stream."""

    streams: dict[str, NDArray[np.void]]

    @classmethod
    def of_chunks(cls, chunks: list[Chunk]) -> Columns:
        """Concatenate the sample chunks of a spool batch, stream by stream."""
        parts: dict[str, list[NDArray[np.void]]] = {s: [] for s in SAMPLE_DTYPES}
        for chunk in chunks:
            if chunk.stream == PAYLOAD:
                continue
            samples = chunk.samples()
            keyed = np.empty(samples.size, dtype=_KEYED[chunk.stream])
            keyed["patient_id"] = chunk.patient_id
            keyed["device_id"] = chunk.device_id
            for name in samples.dtype.names or ():
                keyed[name] = samples[name]
            parts[chunk.stream].append(keyed)
        return cls(
            {s: np.concatenate(p) if p else np.empty(0, dtype=_KEYED[s]) for s, p in parts.items()}
        )

    def __len__(self) -> int:
        return sum(int(a.size) for a in self.streams.values())

    def without(self, stream: str, index: NDArray[np.intp]) -> Columns:
        """Everything except the rows at `index` of `stream`."""
        keep = np.ones(self.streams[stream].size, dtype=np.bool_)
        keep[index] = False
        return Columns({s: (a[keep] if s == stream else a) for s, a in self.streams.items()})

    def row(self, stream: str, i: int) -> dict[str, Any]:
        """One row as JSON-able values (for quarantine)."""
        record = self.streams[stream][i]
        names = record.dtype.names or ()
        return {name: record[name].item() for name in names}

    def rows_per_device(self) -> dict[int, int]:
        """How many rows each device has in these columns."""
        counts: dict[int, int] = {}
        for a in self.streams.values():
            ids, n = np.unique(a["device_id"], return_counts=True)
            for device_id, count in zip(ids.tolist(), n.tolist(), strict=True):
                counts[device_id] = counts.get(device_id, 0) + count
        return counts

    def dedupe(self, held: _Quarantined) -> tuple[Columns, int]:
        """Drop rows repeating an earlier row's (patient, device, time) key, as the writer would.

        Done here so that a row number in the writer's rejection is a row number of ours.
        A repeat whose values differ is a second reading for one key, which the writer
        refuses: it is set aside (with the first kept) rather than failing the batch.
        """
        out: dict[str, NDArray[np.void]] = {}
        dropped = 0
        for s, a in self.streams.items():
            order = np.lexsort((a["time_us"], a["device_id"], a["patient_id"]))
            p, d, t = a["patient_id"][order], a["device_id"][order], a["time_us"][order]
            first = np.ones(order.size, dtype=np.bool_)
            first[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1]) | (t[1:] != t[:-1])
            if first.all():
                out[s] = a
                continue
            head = order[np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
            conflict = np.zeros(order.size, dtype=np.bool_)
            for name in SAMPLE_DTYPES[s].names or ():
                if name not in ("time_us", "received_us"):
                    conflict |= ~first & (a[name][order] != a[name][head])
            for k in np.flatnonzero(conflict).tolist():
                i = int(order[k])
                reason = (
                    f"a second {s} reading for the time of row {int(head[k])}, with other values"
                )
                held.add(s, reason, self.row(s, i), int(a["device_id"][i]))
            keep = np.sort(order[first])
            dropped += int(a.size - keep.size - np.count_nonzero(conflict))
            out[s] = a[keep]
        return Columns(out), dropped

    def checked_rows(self, stream: str) -> tuple[Rows, dict[int, str]]:
        """Store columns for one stream, and every row no device could have sent, with why.

        Every check runs once over the whole stream (a batch with 50,000 bad rows costs
        one pass, not one per bad row).
        """
        a = self.streams[stream]
        time_col = a["time_us"].astype("datetime64[us]")
        rows: Rows
        if stream == "hr":
            hr, checks = HrRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                bpm=a["bpm"],
            )
            energy = a["energy_kj"].astype(np.int64)
            checks.append(
                (
                    (energy < -1) | (energy > MAX_ENERGY_KJ),
                    lambda i: f"energy_kj {energy[i]} is outside 0..{MAX_ENERGY_KJ}",
                )
            )
            # The spool's sentinels (-1) map straight onto the writer's own encoding, without
            # a per-row Python detour through None that would halve the drain rate.
            rows = dataclasses.replace(
                hr,
                sensor_contact=np.clip(a["contact"], -1, 1).astype(np.int8),
                energy_kj=np.clip(energy, 0, MAX_ENERGY_KJ).astype(np.int32),
                energy_present=energy >= 0,
            )
        elif stream == "rr":
            rows, checks = RrRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                rr_ms=a["rr_ms"],
            )
        else:
            rows, checks = StepRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                steps=a["steps"],
            )
        return rows, problems(checks, int(a.size))

    def to_rows(self, stream: str) -> Rows:
        """Validated store columns for one stream; raises `ColumnError` naming the first bad row."""
        rows, bad = self.checked_rows(stream)
        if bad:
            i, reason = next(iter(bad.items()))
            raise ColumnError(stream, i, reason)
        return rows

    def to_batch(self, batch_id: str) -> Batch:
        """A store batch of these columns; raises `ColumnError` if a value is invalid."""
        made: dict[str, Any] = {}
        for s, a in self.streams.items():
            if a.size:
                made[s] = self.to_rows(s)
        return Batch(batch_id, hr=made.get("hr"), rr=made.get("rr"), steps=made.get("steps"))


# --------------------------------------------------------------------------- the uploader


@dataclass
class _Quarantined:
    """Rows set aside from one batch, with their reasons, and how many each device had."""

    by_key: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    per_device: dict[int, int] = field(default_factory=dict)

    def add(self, stream: str, reason: str, row: dict[str, Any], device_id: int) -> None:
        self.by_key.setdefault((stream, reason), []).append(row)
        self.per_device[device_id] = self.per_device.get(device_id, 0) + 1

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.by_key.values())

    def entries(self) -> list[tuple[str, dict[str, Any], str]]:
        """(stream, row, reason) of every held row, as `write_batch(quarantined=...)` takes them."""
        return [
            (stream, row, reason)
            for (stream, reason), rows in sorted(self.by_key.items())
            for row in rows
        ]


@dataclass
class _Written:
    """What the pieces of one batch that the store accepted held."""

    inserted: int = 0
    duplicates: int = 0
    replayed: bool = False
    pieces: int = 0
    per_device: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadReport:
    """What uploading one spool batch did."""

    batch_id: str
    rows: int
    inserted: int
    duplicates: int
    quarantined: int
    corrupt_records: int
    replayed: bool
    pieces: int
    seconds: float


ConnectFn = Callable[[str], psycopg.Connection[Any]]


def _autocommit_connect(dsn: str) -> psycopg.Connection[Any]:
    return connect(dsn, autocommit=True, application_name="paceline-uploader", **DB_KEEPALIVE)


class Uploader:
    """Moves spool batches into the database; one per gateway, on its own connections."""

    def __init__(
        self,
        spool: Spool,
        dsn: str,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        backoff: Backoff = DB_BACKOFF,
        connect_fn: ConnectFn = _autocommit_connect,
        keep_uploaded_s: float = DEFAULT_KEEP_UPLOADED_S,
        rng: random.Random | None = None,
    ) -> None:
        self.spool = spool
        self.dsn = dsn
        self.batch_rows = batch_rows
        self.backoff = backoff
        self._connect_fn = connect_fn
        self._conn: psycopg.Connection[Any] | None = None
        self._keep_uploaded_s = keep_uploaded_s
        self._last_prune = 0.0
        self._rng = rng or random.Random()
        self.failures = 0
        self.last_error: str | None = None
        self.uploaded_rows = 0
        self.regressions = 0
        self._registered: str | None = None
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Cut an idle wait short: there is something to upload (or a stop to notice)."""
        self._wake.set()

    @property
    def source(self) -> str:
        """What the `ingest_batch.source` column says about this gateway."""
        return self.spool.gateway_id

    def close(self) -> None:
        """Close the database connection (the spool stays open)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect_fn(self.dsn)
        return self._conn

    # ------------------------------------------------------------------ one batch

    def upload_once(self) -> UploadReport | None:
        """Upload the next spool batch; None when the spool is drained.

        Raises `UploadError` when the database failed; the batch then stays planned and
        is retried, under the same id, by the next call.
        """
        try:
            self._register()
        except (psycopg.Error, ServerUnreachableError) as exc:
            self._drop_connection()
            raise UploadError("-", _describe(exc), transient=is_transient(exc)) from exc
        refused = "-"
        for _try in range(2):
            batch = self.spool.next_batch(self.batch_rows)
            if batch is None:
                return None
            started = time.perf_counter()
            try:
                report = self._upload(batch, started)
            except (SpoolRegressionError, BatchConflictError) as exc:
                try:
                    self._lost_state(batch, exc)
                except (psycopg.Error, ServerUnreachableError) as db_exc:
                    self._drop_connection()
                    raise UploadError(
                        batch.batch_id, _describe(db_exc), transient=is_transient(db_exc)
                    ) from db_exc
                refused = batch.batch_id
                continue
            except (psycopg.Error, ServerUnreachableError) as exc:
                transient = is_transient(exc)
                self._drop_connection()
                raise UploadError(batch.batch_id, _describe(exc), transient=transient) from exc
            self.uploaded_rows += report.inserted + report.duplicates
            self._maybe_prune()
            return report
        raise UploadError(
            refused,
            "the store refused the batch under a fresh spool identity too",
            transient=False,
        )

    def _register(self) -> None:
        """Make the store know this spool (and which lost spool it replaces), once per identity."""
        spool_id = self.spool.spool_id
        if self._registered == spool_id:
            return
        register_spool(
            self._connection(),
            spool_id,
            source=self.source,
            replaces=self.spool.replaces,
            reason=self.spool.replaced_reason,
        )
        self._registered = spool_id

    def _lost_state(
        self, batch: SpoolBatch, exc: SpoolRegressionError | BatchConflictError
    ) -> None:
        """The spool went back in time: report it, and go on under a new identity.

        The store refused the batch, so nothing was acknowledged twice. The incident is
        recorded in the store (for `ingest status` and a person), the spool takes a new
        identity so that no id is ever offered again for other rows, and its records after
        the watermark are sent again under it: rows the store holds are duplicates by key,
        rows it lacks land. Nothing is dropped.
        """
        conn = self._connection()
        kind: Literal["regression", "conflict"] = (
            "regression" if isinstance(exc, SpoolRegressionError) else "conflict"
        )
        detail: dict[str, Any] = {
            "batch_id": batch.batch_id,
            "reason": str(exc),
            "spool_acked_seq": self.spool.acked_seq,
            "first_seq": batch.first_seq,
            "last_seq": batch.last_seq,
        }
        if isinstance(exc, SpoolRegressionError):
            detail["store_acked_seq"] = exc.acked_seq
        record_incident(conn, batch.spool_id, source=self.source, kind=kind, detail=detail)
        logger.error("the store refused batch %s: %s", batch.batch_id, exc)
        self.spool.reidentify(str(exc))
        self.regressions += 1
        self._register()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                logger.debug("closing a broken connection failed", exc_info=True)

    def _upload(self, batch: SpoolBatch, started: float) -> UploadReport:
        conn = self._connection()
        chunks = [chunk for _seq, chunk in batch.chunks]
        held = _Quarantined()
        for seq, chunk in batch.chunks:
            if chunk.stream == PAYLOAD:
                for item in chunk.payloads():
                    held.add(
                        PAYLOAD,
                        str(item.get("reason", "malformed payload")),
                        {**item, "spool_seq": seq},
                        chunk.device_id,
                    )
        for record in batch.corrupt:
            held.add(
                PAYLOAD,
                f"spool record failed its check: {record.reason}",
                _corrupt_row(record),
                record.device_id,
            )

        columns = Columns.of_chunks(chunks)
        total = len(columns)
        columns = _validated(columns, held)
        columns, duplicates = columns.dedupe(held)
        identity = spool_identity(batch)
        written = self._write(conn, batch.batch_id, columns, held, identity)

        # On a replay these are this attempt's view of the batch: the database already
        # holds the first attempt's decision, which counters cannot see.
        counters: dict[tuple[int, str], int] = {}
        for device_id, n in written.per_device.items():
            counters[(device_id, "uploaded")] = n
        for device_id, n in held.per_device.items():
            counters[(device_id, "quarantined")] = counters.get((device_id, "quarantined"), 0) + n
        if batch.corrupt:
            for record in batch.corrupt:
                key = (record.device_id, "corrupt_records")
                counters[key] = counters.get(key, 0) + 1
        self.spool.ack(batch, counters)
        return UploadReport(
            batch_id=batch.batch_id,
            rows=total,
            inserted=written.inserted,
            duplicates=duplicates + written.duplicates,
            quarantined=len(held),
            corrupt_records=len(batch.corrupt),
            replayed=written.replayed,
            pieces=written.pieces,
            seconds=time.perf_counter() - started,
        )

    def _route(
        self, conn: psycopg.Connection[Any], columns: Columns, held: _Quarantined
    ) -> Columns:
        """Take out rows the writer would refuse for a reason that concerns many rows at once.

        Those are rows of a device the store does not know or has bound to another patient
        (a re-bound strap's backlog), and rows from more than five minutes in the future by
        the server's clock (a gateway whose clock was stepped back). The writer would
        refuse the batch for each of them in turn; one look here saves a split per row.
        The writer stays the authority: anything it still refuses is split out later.
        """
        device_ids = sorted(columns.rows_per_device())
        if not device_ids:
            return columns
        rows = conn.execute(
            "SELECT d.device_id, d.patient_id,"
            " (extract(epoch FROM now() + make_interval(secs => %s)) * 1000000)::bigint"
            " FROM unnest(%s::bigint[]) AS k(device_id) LEFT JOIN device d USING (device_id)",
            (MAX_FUTURE_S, device_ids),
        ).fetchall()
        limit_us = int(rows[0][2])
        bound: dict[int, int | None] = {
            int(d): (None if p is None else int(p)) for d, p, _limit in rows if d is not None
        }
        keys = np.array(device_ids, dtype=np.int64)
        owners = np.array([-1 if bound.get(d) is None else bound[d] for d in device_ids])
        out = columns
        for stream, a in columns.streams.items():
            if not a.size:
                continue
            owner = owners[np.searchsorted(keys, a["device_id"])]
            wrong = np.flatnonzero((owner != a["patient_id"]) | (a["time_us"] > limit_us))
            if not wrong.size:
                continue
            for i in wrong.tolist():
                device_id = int(a["device_id"][i])
                if device_id not in bound:
                    reason = f"unknown device {device_id}"
                elif bound[device_id] is None:
                    reason = f"device {device_id} is not bound to a patient"
                elif bound[device_id] != int(a["patient_id"][i]):
                    reason = (
                        f"device {device_id} is bound to patient {bound[device_id]},"
                        f" not patient {int(a['patient_id'][i])}"
                    )
                else:
                    reason = f"time is more than {MAX_FUTURE_S // 60} minutes in the future"
                held.add(stream, reason, columns.row(stream, i), device_id)
            out = out.without(stream, wrong)
        return out

    def _write(
        self,
        conn: psycopg.Connection[Any],
        batch_id: str,
        columns: Columns,
        held: _Quarantined,
        identity: BatchIdentity,
    ) -> _Written:
        """Commit the batch with its set-aside rows in one transaction, under its own id.

        Each try first routes the rows against the database as it is now; a row the writer
        still rejects joins `held` and the batch is tried again under the same id. Every
        try takes at least one row out, so this ends. Nothing is committed but by the try
        that claims the batch id, so no later try can decide differently about a row.
        """
        written = _Written()
        while True:
            written.pieces += 1
            columns = self._route(conn, columns, held)
            try:
                result = write_batch(
                    conn,
                    columns.to_batch(batch_id),
                    source=self.source,
                    quarantined=held.entries(),
                    identity=identity,
                )
            except BatchRejectedError as exc:
                rows = columns.streams.get(exc.stream)
                if rows is None or not 0 <= exc.row < rows.size:
                    raise UploadError(
                        batch_id, f"the store rejected the batch: {exc.reason}", transient=False
                    ) from exc
                row = columns.row(exc.stream, exc.row)
                held.add(exc.stream, exc.reason, row, int(row["device_id"]))
                columns = columns.without(exc.stream, np.array([exc.row], dtype=np.intp))
                logger.warning("quarantined a row of batch %s: %s", batch_id, exc.reason)
                continue
            break
        written.replayed = result.replayed
        if result.replayed:
            written.duplicates = len(columns)
        else:
            written.inserted = result.inserted
            written.duplicates = result.duplicate_rows
        written.per_device = columns.rows_per_device()
        return written

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            try:
                removed = self.spool.prune(self._keep_uploaded_s)
            except sqlite3.DatabaseError:
                # A damaged page among the uploaded records; they are in the database.
                logger.exception("cannot prune the spool")
                return
            if removed:
                logger.info("pruned %s uploaded spool records", removed)

    # ------------------------------------------------------------------ loops

    def drain(self, *, max_batches: int | None = None) -> list[UploadReport]:
        """Upload until the spool is drained (errors propagate); return what each batch did."""
        reports: list[UploadReport] = []
        while max_batches is None or len(reports) < max_batches:
            report = self.upload_once()
            if report is None:
                break
            reports.append(report)
        return reports

    async def run(
        self,
        stop: asyncio.Event,
        *,
        idle_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_report: Callable[[UploadReport], None] | None = None,
    ) -> None:
        """Upload until `stop` is set, backing off after database errors; never raises them."""
        attempt = 0
        while not stop.is_set():
            try:
                report = await asyncio.to_thread(self.upload_once)
            except UploadError as exc:
                delay = self.backoff.delay_s(attempt, self._rng.random())
                self.failures += 1
                self.last_error = exc.reason
                log = logger.warning if exc.transient else logger.error
                log("upload of %s failed (%s); retrying in %.1f s", exc.batch_id, exc.reason, delay)
                attempt += 1
                await _wait(stop, delay, sleep)
                continue
            except Exception:
                # A bug must not stop the uploader; the batch stays planned for the retry.
                delay = self.backoff.max_delay_s
                self.failures += 1
                self.last_error = "internal error"
                logger.exception("upload failed unexpectedly; retrying in %.1f s", delay)
                await _wait(stop, delay, sleep)
                continue
            attempt = 0
            self.last_error = None
            if report is None:
                await _wait(stop, idle_s, sleep, self._wake)
                self._wake.clear()
            elif on_report is not None:
                on_report(report)


async def _wait(
    stop: asyncio.Event,
    seconds: float,
    sleep: Callable[[float], Awaitable[None]] | None,
    wake: asyncio.Event | None = None,
) -> None:
    """Sleep `seconds`, or until `stop` (or `wake`) is set, whichever comes first."""
    if sleep is not None:
        await sleep(seconds)
        return
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _validated(columns: Columns, held: _Quarantined) -> Columns:
    """Take out, in one pass per stream, the rows holding values no device could send."""
    out = columns
    for stream in SAMPLE_DTYPES:
        if not out.streams[stream].size:
            continue
        _rows, bad = out.checked_rows(stream)
        if not bad:
            continue
        for i, reason in bad.items():
            row = out.row(stream, i)
            held.add(stream, reason, row, int(row["device_id"]))
        out = out.without(stream, np.fromiter(bad, dtype=np.intp, count=len(bad)))
    return out


def spool_identity(batch: SpoolBatch) -> BatchIdentity:
    """What the batch id stands for: the spool's records as read, before anything was set aside.

    Independent of what the database decides (routing, quarantine), so a replay of the
    same records is recognised as one, and the same id offered for other records is not.
    """
    digest = hashlib.sha256()
    for seq, chunk in batch.chunks:
        digest.update(
            f"{seq}:{chunk.stream}:{chunk.patient_id}:{chunk.device_id}:{chunk.count}:".encode()
        )
        digest.update(chunk.data)
    for record in batch.corrupt:
        digest.update(f"{record.seq}:corrupt:".encode())
    return BatchIdentity(
        row_count=batch.rows + len(batch.corrupt),
        digest=digest.digest(),
        spool_id=batch.spool_id,
        first_seq=batch.first_seq,
        last_seq=batch.last_seq,
    )


def _corrupt_row(record: CorruptRecord) -> dict[str, Any]:
    raw = record.raw_hex
    return {
        "spool_seq": record.seq,
        "hex": None if raw is None else raw[:MAX_QUARANTINED_HEX],
        "truncated": raw is not None and len(raw) > MAX_QUARANTINED_HEX,
    }


def _describe(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "DB_BACKOFF",
    "DB_KEEPALIVE",
    "Columns",
    "UploadError",
    "UploadReport",
    "Uploader",
    "is_transient",
]
