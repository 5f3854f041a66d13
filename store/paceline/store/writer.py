"""The batch writer: one spool batch lands whole, exactly once, or not at all.

A batch is committed in a single transaction that also inserts its
`ingest_batch` row, so a batch id that is present has landed completely and a
replay of it is a no-op. Rows go in with binary COPY. When none of the batch's
rows can already be stored (no overlap with what the table holds for the same
patient, device and time span), they are copied straight into the table; when
some may be, they are copied into a temporary staging table and moved with
`INSERT … ON CONFLICT DO NOTHING`, so rows re-sent after a reconnect are
skipped instead of failing the batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import errors as pgerrors
from psycopg import sql

from paceline.store.columns import HrRows, Rows, RrRows, SdnnRows, StepRows, _iso_us
from paceline.store.copybinary import encode
from paceline.store.errors import BatchConflictError, BatchRejectedError, SpoolRegressionError

logger = logging.getLogger(__name__)

# Devices stamp samples with the gateway's clock; a sample further ahead than
# this is a clock fault, not data, and is refused rather than stored.
MAX_FUTURE_S = 300
#: Tries of a batch whose transaction the server aborted as a deadlock victim or for a
#: serialization failure: TimescaleDB's compression policy locks the chunks a COPY
#: writes to, and either side may lose. The batch is whole or absent after each try.
RETRY_ATTEMPTS = 3
#: The pause before the second try (the third waits twice as long), jittered ±50 %.
RETRY_PAUSE_S = 0.2
# COPY data is streamed to the server in pieces of this size so that memory
# stays flat however large a batch is.
COPY_CHUNK_BYTES = 4 * 1024 * 1024

_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hr": ("hr_sample", ("patient_id", "device_id", "time", "bpm", "sensor_contact", "energy_kj")),
    "rr": ("rr_interval", ("patient_id", "device_id", "time", "rr_ms")),
    "steps": ("step_sample", ("patient_id", "device_id", "time", "steps")),
    "sdnn": ("hrv_sdnn_sample", ("patient_id", "device_id", "time", "sdnn_ms")),
}


@dataclass(frozen=True, eq=False)
class Batch:
    """Rows of one spool batch, by stream, under one batch id."""

    batch_id: str
    hr: HrRows | None = None
    rr: RrRows | None = None
    steps: StepRows | None = None
    sdnn: SdnnRows | None = None

    def streams(self) -> list[Rows]:
        """The non-empty streams of this batch."""
        return [r for r in (self.hr, self.rr, self.steps, self.sdnn) if r is not None and len(r)]

    def __len__(self) -> int:
        return sum(len(r) for r in self.streams())


@dataclass(frozen=True)
class BatchIdentity:
    """What a batch id stands for: how many rows, their digest, and where in a spool they sit.

    A sender that can describe its batch better than the rows that reach the writer
    (the uploader: the spool records as read, before any row was set aside) passes it;
    otherwise `write_batch` derives it from the batch and its set-aside rows.
    `spool_id` with `first_seq`..`last_seq` places the batch in a spool, whose highest
    acknowledged sequence the store keeps, so that a spool going back is refused.
    """

    row_count: int
    digest: bytes
    spool_id: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None

    def __post_init__(self) -> None:
        """Refuse a digest that is not SHA-256 or a spool range that is not one."""
        if len(self.digest) != hashlib.sha256().digest_size or self.row_count < 0:
            raise ValueError("a batch identity needs a row count >= 0 and a SHA-256 digest")
        placed = (self.spool_id, self.first_seq, self.last_seq)
        if any(v is not None for v in placed) and not (
            self.spool_id
            and self.first_seq is not None
            and self.last_seq is not None
            and 1 <= self.first_seq <= self.last_seq
        ):
            raise ValueError(f"spool range {placed} needs a spool id and 1 <= first <= last")


def batch_identity(batch: Batch) -> BatchIdentity:
    """The identity of a batch as given: its rows, as the COPY bytes that would store them.

    Rows set aside by the caller are not part of it: they are decided by whichever
    attempt claims the id, and a replay may see them differently (a binding changed).
    """
    digest = hashlib.sha256()
    for rows in batch.streams():
        digest.update(f"{rows.STREAM}:{len(rows)}:".encode())
        digest.update(encode(rows))
    return BatchIdentity(len(batch), digest.digest())


@dataclass(frozen=True)
class WriteResult:
    """What committing one batch did."""

    batch_id: str
    replayed: bool
    hr_rows: int = 0
    rr_rows: int = 0
    step_rows: int = 0
    duplicate_rows: int = 0
    quarantined_rows: int = 0
    sdnn_rows: int = 0

    @property
    def inserted(self) -> int:
        """Rows newly stored by this batch."""
        return self.hr_rows + self.rr_rows + self.step_rows + self.sdnn_rows


def write_batch(
    conn: psycopg.Connection[Any],
    batch: Batch,
    *,
    source: str = "",
    quarantined: Sequence[tuple[str, Mapping[str, Any], str]] = (),
    identity: BatchIdentity | None = None,
    within_transaction: bool = False,
) -> WriteResult:
    """Commit `batch` exactly once; raise `BatchRejectedError` and write nothing if a row is invalid.

    `conn` must not be inside a transaction: the batch gets its own, committed
    here. A replayed batch id returns `replayed=True` and changes nothing.

    With `within_transaction`, `conn` must be inside the caller's transaction
    instead, and the batch (its `ingest_batch` row with it) is written in a
    savepoint of it: it commits or rolls back with the caller's transaction.
    A file importer writes every batch of a file this way, so that a file that
    turns out broken halfway stores nothing.

    `quarantined` holds the (stream, row, reason) of rows the caller set aside
    from this batch; they go to `ingest_quarantine` in the batch's own
    transaction, so the rows stored and the rows set aside are decided once, by
    whichever attempt claims the batch id (a replay inserts neither).

    A transaction the server aborted as a deadlock's victim or for a
    serialization failure (TimescaleDB's compression job locks the chunks a COPY
    writes to) held nothing that survives, so the batch is tried again, up to
    `RETRY_ATTEMPTS` tries in all with a short jittered pause; the last try's
    error propagates. Within the caller's transaction the error propagates at
    once: the caller owns the transaction and decides whether to try it again.
    """
    _check_text(batch.batch_id, "batch id", batch.batch_id, 200)
    _check_text(batch.batch_id, "source", source, 10_000, empty=True)
    status = conn.info.transaction_status
    if within_transaction and status != psycopg.pq.TransactionStatus.INTRANS:
        raise RuntimeError("write_batch(within_transaction=True) needs an open transaction")
    if not within_transaction and status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("write_batch needs a connection that is not inside a transaction")
    ident = identity or batch_identity(batch)
    held = [
        (stream, _row_json(row, batch.batch_id, stream, i), reason)
        for i, (stream, row, reason) in enumerate(quarantined)
    ]
    streams = [_dedupe_within(batch.batch_id, rows) for rows in batch.streams()]

    def attempt() -> WriteResult:
        return _write_once(conn, batch, source=source, ident=ident, held=held, streams=streams)

    if within_transaction:
        return attempt()
    for tried in range(1, RETRY_ATTEMPTS):
        try:
            return attempt()
        except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure) as exc:
            # The server rolled the whole transaction back (the batch id with it), so the
            # next try decides afresh; only the try that claims the id commits.
            pause = RETRY_PAUSE_S * tried * random.uniform(0.5, 1.5)
            logger.warning(
                "batch %s: %s on try %s of %s; trying again in %.2f s",
                batch.batch_id,
                type(exc).__name__,
                tried,
                RETRY_ATTEMPTS,
                pause,
            )
            time.sleep(pause)
    return attempt()


def _write_once(
    conn: psycopg.Connection[Any],
    batch: Batch,
    *,
    source: str,
    ident: BatchIdentity,
    held: Sequence[tuple[str, str, str]],
    streams: Sequence[Rows],
) -> WriteResult:
    """One transaction (or savepoint) of `write_batch`: claim the id, check, copy, account."""
    with conn.transaction():
        acked = _spool_acked(conn, ident, source)
        first_us, last_us = _span(streams)
        claimed = conn.execute(
            "INSERT INTO ingest_batch (batch_id, source, first_time, last_time, row_count,"
            " digest, spool_id, first_seq, last_seq)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING"
            " RETURNING (now() + make_interval(secs => %s))",
            (
                batch.batch_id,
                source,
                _ts(first_us),
                _ts(last_us),
                ident.row_count,
                ident.digest,
                ident.spool_id,
                ident.first_seq,
                ident.last_seq,
                MAX_FUTURE_S,
            ),
        ).fetchone()
        if claimed is None:
            _check_replay(conn, batch.batch_id, ident)
            logger.info("batch %s was committed before; skipping the replay", batch.batch_id)
            return WriteResult(batch.batch_id, replayed=True)
        if acked is not None and ident.first_seq is not None and ident.first_seq <= acked:
            assert ident.spool_id is not None
            raise SpoolRegressionError(
                ident.spool_id, acked_seq=acked, first_seq=ident.first_seq, batch_id=batch.batch_id
            )
        limit_us = int(claimed[0].timestamp() * 1_000_000)
        _check_future(batch.batch_id, streams, limit_us)
        _check_devices(conn, batch.batch_id, streams)
        counts = {"hr": 0, "rr": 0, "steps": 0, "sdnn": 0}
        duplicates = sum(len(s) for s in batch.streams()) - sum(len(s) for s in streams)
        for rows in streams:
            inserted = _insert(conn, rows)
            counts[rows.STREAM] = inserted
            duplicates += len(rows) - inserted
        conn.execute(
            "UPDATE ingest_batch SET hr_rows = %s, rr_rows = %s, step_rows = %s,"
            " duplicate_rows = %s WHERE batch_id = %s",
            (counts["hr"], counts["rr"], counts["steps"], duplicates, batch.batch_id),
        )
        if ident.spool_id is not None:
            conn.execute(
                "UPDATE ingest_spool SET acked_seq = greatest(acked_seq, %s), last_seen = now()"
                " WHERE spool_id = %s",
                (ident.last_seq, ident.spool_id),
            )
        _touch_devices(conn, streams)
        if any(counts.values()):
            _record_spans(conn, streams)
        _insert_quarantined(conn, batch.batch_id, source, held)
    return WriteResult(
        batch.batch_id,
        replayed=False,
        hr_rows=counts["hr"],
        rr_rows=counts["rr"],
        step_rows=counts["steps"],
        duplicate_rows=duplicates,
        quarantined_rows=len(held),
        sdnn_rows=counts["sdnn"],
    )


def _check_text(batch_id: str, what: str, value: str, longest: int, *, empty: bool = False) -> None:
    """Refuse text PostgreSQL cannot hold (NUL) or the schema would refuse (length)."""
    if not isinstance(value, str):
        raise BatchRejectedError(repr(batch_id), "batch", 0, f"{what} must be text, not {value!r}")
    if (not value and not empty) or len(value) > longest:
        raise BatchRejectedError(batch_id, "batch", 0, f"{what} must be 1..{longest} characters")
    if "\x00" in value:
        raise BatchRejectedError(
            batch_id.replace("\x00", "\\0"), "batch", 0, f"{what} holds a NUL character"
        )


def _spool_acked(conn: psycopg.Connection[Any], ident: BatchIdentity, source: str) -> int | None:
    """The spool's highest acknowledged sequence, locked for this transaction (None: no spool)."""
    if ident.spool_id is None:
        return None
    conn.execute(
        "INSERT INTO ingest_spool (spool_id, source) VALUES (%s, %s)"
        " ON CONFLICT (spool_id) DO NOTHING",
        (ident.spool_id, source),
    )
    row = conn.execute(
        "SELECT acked_seq FROM ingest_spool WHERE spool_id = %s FOR UPDATE", (ident.spool_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _check_replay(conn: psycopg.Connection[Any], batch_id: str, ident: BatchIdentity) -> None:
    """A known batch id is a replay only if it names the same rows; else `BatchConflictError`."""
    row = conn.execute(
        "SELECT row_count, digest FROM ingest_batch WHERE batch_id = %s", (batch_id,)
    ).fetchone()
    assert row is not None
    count, digest = row
    if digest is None:
        return  # stored before batches had digests: nothing to compare against
    if count != ident.row_count or bytes(digest) != ident.digest:
        raise BatchConflictError(
            batch_id,
            stored=(count, bytes(digest).hex()),
            offered=(ident.row_count, ident.digest.hex()),
        )


def _jsonable(value: Any) -> Any:
    """`value` as JSON PostgreSQL's jsonb can hold: non-finite numbers become their name."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'nan', 'inf': jsonb has no NaN, and the row must still be kept
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _row_json(
    row: Mapping[str, Any], batch_id: str = "", stream: str = "payload", index: int = 0
) -> str:
    """A set-aside row as jsonb text; `BatchRejectedError` for what JSON cannot hold."""
    try:
        text = json.dumps(_jsonable(dict(row)), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise BatchRejectedError(
            batch_id, stream, index, f"quarantined row cannot be kept as JSON: {exc}"
        ) from exc
    if "\\u0000" in text:
        raise BatchRejectedError(batch_id, stream, index, "quarantined row holds a NUL character")
    return text


def _insert_quarantined(
    conn: psycopg.Connection[Any],
    batch_id: str,
    source: str,
    rows: Sequence[tuple[str, str, str]],
) -> None:
    """Insert set-aside rows given as (stream, row as JSON text, reason)."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest_quarantine (batch_id, source, stream, row_data, reason)"
            " VALUES (%s, %s, %s, %s::jsonb, %s)",
            [(batch_id, source, stream, text, reason) for stream, text, reason in rows],
        )


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(us: int | None) -> datetime | None:
    return None if us is None else _UNIX_EPOCH + timedelta(microseconds=us)


def _span(streams: Sequence[Rows]) -> tuple[int | None, int | None]:
    if not streams:
        return None, None
    return (
        int(min(int(s.time_us.min()) for s in streams)),
        int(max(int(s.time_us.max()) for s in streams)),
    )


def _dedupe_within(batch_id: str, rows: Rows) -> Rows:
    """Drop rows that repeat an earlier row's (patient, device, time) key within the batch.

    A repeat with other values is not a repeat but two readings for one key, and which
    one is right cannot be decided here: `BatchRejectedError` names the later one.
    """
    order = np.lexsort((rows.time_us, rows.device_id, rows.patient_id))
    p, d, t = rows.patient_id[order], rows.device_id[order], rows.time_us[order]
    first = np.ones(order.size, dtype=np.bool_)
    first[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1]) | (t[1:] != t[:-1])
    if first.all():
        return rows
    # Each repeat against the first row of its key (a stable sort keeps input order).
    head = order[np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
    for f in fields(rows):
        column = getattr(rows, f.name)
        differs = np.flatnonzero(~first & (column[order] != column[head]))
        if differs.size:
            i = int(order[differs[0]])
            raise BatchRejectedError(
                batch_id,
                rows.STREAM,
                i,
                f"{f.name} differs from row {int(head[differs[0]])} with the same"
                f" (patient, device, time {_iso_us(int(rows.time_us[i]))})",
            )
    keep: NDArray[np.intp] = np.sort(order[first])
    return rows.take(keep)


def _check_future(batch_id: str, streams: Sequence[Rows], limit_us: int) -> None:
    for rows in streams:
        ahead = np.flatnonzero(rows.time_us > limit_us)
        if ahead.size:
            i = int(ahead[0])
            raise BatchRejectedError(
                batch_id,
                rows.STREAM,
                i,
                f"time {_iso_us(int(rows.time_us[i]))} is more than"
                f" {MAX_FUTURE_S // 60} minutes in the future",
            )


def _check_devices(conn: psycopg.Connection[Any], batch_id: str, streams: Sequence[Rows]) -> None:
    if not streams:
        return
    device_ids = np.unique(np.concatenate([s.device_id for s in streams]))
    found = conn.execute(
        "SELECT d.device_id, d.patient_id,"
        " (extract(epoch FROM make_date(p.birth_year, 1, 1)::timestamp AT TIME ZONE 'UTC')"
        " * 1000000)::bigint"
        " FROM device d LEFT JOIN patient p USING (patient_id) WHERE d.device_id = ANY(%s)",
        ([int(d) for d in device_ids],),
    ).fetchall()
    bound = {int(d): p for d, p, _born in found}
    born = {int(d): b for d, _p, b in found}
    for rows in streams:
        for device_id in np.unique(rows.device_id):
            i = int(np.flatnonzero(rows.device_id == device_id)[0])
            if int(device_id) not in bound:
                raise BatchRejectedError(batch_id, rows.STREAM, i, f"unknown device {device_id}")
            owner = bound[int(device_id)]
            wrong = np.flatnonzero((rows.device_id == device_id) & (rows.patient_id != owner))
            if wrong.size:
                j = int(wrong[0])
                raise BatchRejectedError(
                    batch_id,
                    rows.STREAM,
                    j,
                    f"device {device_id} is bound to patient {owner},"
                    f" not patient {rows.patient_id[j]}",
                )
            floor = born[int(device_id)]
            if floor is None:
                continue
            # The lower bound of a sample's time (see columns.EARLIEST_TIME_US): nobody
            # wore a heart-rate sensor before the year they were born.
            early = np.flatnonzero((rows.device_id == device_id) & (rows.time_us < floor))
            if early.size:
                j = int(early[0])
                raise BatchRejectedError(
                    batch_id,
                    rows.STREAM,
                    j,
                    f"time {_iso_us(int(rows.time_us[j]))} is before the birth year of"
                    f" patient {owner}",
                )


def _spans(
    keys: NDArray[np.int64], times: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Distinct `keys` with the earliest and latest of their `times`."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    lo = np.full(distinct.size, np.iinfo(np.int64).max)
    hi = np.full(distinct.size, np.iinfo(np.int64).min)
    np.minimum.at(lo, inverse, times)
    np.maximum.at(hi, inverse, times)
    return distinct, lo, hi


def _may_overlap(conn: psycopg.Connection[Any], table: str, rows: Rows) -> bool:
    """Whether the table already holds any row in the batch's span for one of its (patient, device).

    Called after `_check_devices`, so each device id belongs to exactly one
    patient and grouping by device is grouping by (patient, device).
    """
    devices, lo, hi = _spans(rows.device_id, rows.time_us)
    _, first = np.unique(rows.device_id, return_index=True)
    patients = rows.patient_id[first]
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::bigint[],"
            " %s::timestamptz[], %s::timestamptz[]) AS k(pid, did, lo, hi)"
            " WHERE EXISTS (SELECT 1 FROM {} s WHERE s.patient_id = k.pid"
            " AND s.time BETWEEN k.lo AND k.hi AND s.device_id = k.did))"
        ).format(sql.Identifier(table)),
        (
            [int(x) for x in patients],
            [int(x) for x in devices],
            [_ts(int(x)) for x in lo],
            [_ts(int(x)) for x in hi],
        ),
    ).fetchone()
    return bool(row and row[0])


def _copy(
    conn: psycopg.Connection[Any], target: sql.Composable, columns: tuple[str, ...], rows: Rows
) -> None:
    payload = memoryview(encode(rows))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, len(payload), COPY_CHUNK_BYTES):
            copy.write(payload[start : start + COPY_CHUNK_BYTES])


def _insert(conn: psycopg.Connection[Any], rows: Rows) -> int:
    """Store `rows`, skipping any already stored; return how many were new."""
    table, columns = _TABLES[rows.STREAM]
    if not _may_overlap(conn, table, rows):
        try:
            with conn.transaction():
                _copy(conn, sql.Identifier(table), columns, rows)
            return len(rows)
        except pgerrors.UniqueViolation:
            # Another writer stored some of these rows after the overlap check.
            logger.info("fast path hit rows stored concurrently in %s; deduplicating", table)
    stage = sql.Identifier(f"paceline_stage_{rows.STREAM}")
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(stage, sql.Identifier(table))
    )
    conn.execute(sql.SQL("TRUNCATE {}").format(stage))
    _copy(conn, stage, columns, rows)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    cur = conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            sql.Identifier(table), cols, cols, stage
        )
    )
    return max(cur.rowcount, 0)


def _touch_devices(conn: psycopg.Connection[Any], streams: Sequence[Rows]) -> None:
    if not streams:
        return
    ids, _, last = _spans(
        np.concatenate([s.device_id for s in streams]), np.concatenate([s.time_us for s in streams])
    )
    conn.execute(
        "UPDATE device d SET last_seen = greatest(d.last_seen, k.seen)"
        " FROM unnest(%s::bigint[], %s::timestamptz[]) AS k(did, seen) WHERE d.device_id = k.did",
        ([int(i) for i in ids], [_ts(int(t)) for t in last]),
    )


def _record_spans(conn: psycopg.Connection[Any], streams: Sequence[Rows]) -> None:
    """Note, per patient, the time span this batch added samples to (for the daily rollup)."""
    # A step row counts the interval that ends at its time: one stamped at
    # midnight belongs to the day before, so it is placed a microsecond earlier.
    times = [s.time_us - 1 if isinstance(s, StepRows) else s.time_us for s in streams]
    patients, lo, hi = _spans(
        np.concatenate([s.patient_id for s in streams]), np.concatenate(times)
    )
    conn.execute(
        "INSERT INTO sample_span (patient_id, first_time, last_time)"
        " SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])",
        ([int(p) for p in patients], [_ts(int(t)) for t in lo], [_ts(int(t)) for t in hi]),
    )
