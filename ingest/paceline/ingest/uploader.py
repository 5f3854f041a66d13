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

This module is the loop and its errors. The batch model is `batch_rows`, what a batch
sets aside is `held`, and which rows the store would refuse is `routing`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import psycopg

from paceline.devices.backoff import Backoff
from paceline.ingest import IngestError
from paceline.ingest.batch_rows import BatchRows, spool_identity
from paceline.ingest.held import HeldRows, held_unreadable
from paceline.ingest.routing import route, take_out_invalid
from paceline.ingest.spool import DEFAULT_BATCH_ROWS, DEFAULT_KEEP_UPLOADED_S, Spool, SpoolBatch
from paceline.store import (
    BatchConflictError,
    BatchIdentity,
    BatchRejectedError,
    SpoolRegressionError,
    connect,
    write_batch,
)
from paceline.store.registry import record_battery_levels
from paceline.store.spools import record_incident, register_spool

logger = logging.getLogger(__name__)
#: Where the spool's epoch-microsecond times count from.
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

PRUNE_EVERY_S: Final = 600.0
"""How often uploaded records past their keep time are deleted (a cheap indexed DELETE)."""
DB_BACKOFF: Final = Backoff(base_s=0.5, cap_s=30.0)
"""Retry after database errors: quick for a blip, every half minute during an outage."""


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
        psycopg.OperationalError  # ServerUnreachableError is one
        | psycopg.InterfaceError
        | psycopg.errors.ReadOnlySqlTransaction,
    )


# --------------------------------------------------------------------------- the uploader


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
    # Keepalive: a call blocked on a dead network fails within about 20 s, so that the
    # batch is retried and a SIGTERM is not held up.
    return connect(dsn, autocommit=True, keepalive=True, application_name="paceline-uploader")


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
        #: The battery reading (percent, epoch µs) last stored for each device.
        self._sent_battery: dict[int, tuple[int, int]] = {}
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
            self._send_battery_levels()
        except psycopg.Error as exc:
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
                except psycopg.Error as db_exc:
                    self._drop_connection()
                    raise UploadError(
                        batch.batch_id, _describe(db_exc), transient=is_transient(db_exc)
                    ) from db_exc
                refused = batch.batch_id
                continue
            except psycopg.Error as exc:
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

    def _send_battery_levels(self) -> None:
        """Store the battery level each wearable last reported, once per new reading.

        The daemon keeps what a device said on connecting in the spool (not in a batch:
        it is a state, not a sample); it reaches the device row on the next upload.
        """
        try:
            facts = self.spool.gateway.load_device_facts()
        except sqlite3.OperationalError as exc:  # a busy spool: the next call tries again
            logger.debug("device facts unreadable for now: %s", exc)
            return
        fresh = {
            device_id: (f.battery_percent, f.battery_at_us)
            for device_id, f in facts.items()
            if f.battery_percent is not None
            and f.battery_at_us is not None
            and self._sent_battery.get(device_id) != (f.battery_percent, f.battery_at_us)
        }
        levels = {}
        for device_id, (pct, at) in fresh.items():
            if 0 <= pct <= 100:
                levels[device_id] = (pct, _EPOCH + timedelta(microseconds=at))
            else:  # only a damaged spool holds one (the codec refuses it): say so, once
                logger.warning("device %s: battery level %s %% not stored", device_id, pct)
        if levels:
            record_battery_levels(self._connection(), levels)
        self._sent_battery.update(fresh)

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
        held = held_unreadable(batch)

        columns = BatchRows.of_chunks(chunks)
        total = len(columns)
        columns = take_out_invalid(columns, held)
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

    def _write(
        self,
        conn: psycopg.Connection[Any],
        batch_id: str,
        columns: BatchRows,
        held: HeldRows,
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
            columns = route(conn, columns, held)
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


def _describe(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "DB_BACKOFF",
    "UploadError",
    "UploadReport",
    "Uploader",
    "is_transient",
]
