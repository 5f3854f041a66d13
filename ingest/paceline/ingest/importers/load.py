"""From a parsed file to stored rows: devices per source, deterministic batches, one writer.

Every batch goes through `paceline.store.writer.write_batch`, the exactly-once
writer of live data. Its id is made of the patient, the file's SHA-256, the
source, the stream and the record range, so importing the same file again replays batches
that are already committed (and adds nothing), and an overlapping export (a
later one that repeats older days) stores its repeated rows as duplicates of the
ones already there, because the key (patient, device, time) is the same.

Each source (the app or device that recorded the samples) gets a device row of
its own, registered to the patient, so a phone and a watch reporting the same
minute stay apart, as two live wearables do.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import psycopg
from numpy.typing import NDArray

from paceline.ingest.importers.collect import Collected, Stream
from paceline.store.columns import HrRows, RrRows, SdnnRows, StepRows
from paceline.store.registry import bind_device, register_device
from paceline.store.writer import Batch, WriteResult, write_batch

#: Rows per batch: large enough for COPY to run at full speed, small enough that
#: one batch's columns stay a few MB and that the last partial batches, written
#: once the parse has ended, take little time after it.
BATCH_ROWS: Final = 100_000
#: Namespace of the device addresses given to import sources (uuid5 of patient and source).
_SOURCE_NAMESPACE: Final = uuid.UUID("6f0b5c1e-2a7d-5f43-9d8e-5e1ce1a1b0a7")

#: Splits step intervals of one device onto the minute grid: (begin µs, end µs, steps)
#: → (minute end µs, whole steps). `paceline.signal.stepgrid.to_minute_grid` in practice;
#: passed in because ingest does not depend on the signal layer.
MinuteSplitter = Callable[
    [NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    tuple[NDArray[np.int64], NDArray[np.int64]],
]


@dataclass
class ImportSummary:
    """What one import stored, per stream, and what it did not."""

    format: str
    hr: int = 0
    rr: int = 0
    steps: int = 0
    sdnn: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    batches: int = 0
    replayed_batches: int = 0

    def as_json(self) -> dict[str, Any]:
        """The summary as ``paceline import --json`` prints it."""
        return {
            "hr": self.hr,
            "rr": self.rr,
            "steps": self.steps,
            "sdnn": self.sdnn,
            "duplicates": self.duplicates,
            "rejected": sum(self.rejected.values()),
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "format": self.format,
            "rejected_reasons": dict(self.rejected),
            "sources": self.sources,
            "notes": self.notes,
        }


def source_address(patient_id: int, fmt: str, source: str) -> str:
    """The device address of an import source: a UUID fixed by patient, format and source."""
    return str(uuid.uuid5(_SOURCE_NAMESPACE, f"{patient_id}\x00{fmt}\x00{source}")).upper()


def _register(conn: psycopg.Connection[Any], patient_id: int, fmt: str, source: str) -> int:
    address = source_address(patient_id, fmt, source)
    with conn.transaction():
        register_device(conn, address=address, name=source[:200], profile=f"import-{fmt}")
        device = bind_device(conn, address=address, patient_id=patient_id)
    return device.device_id


def _to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


class BatchStream:
    """Stores a file's batches while its parser is still reading it, all in one transaction.

    The parser runs in the calling thread; a writer thread takes each full batch
    of a (source, stream) as soon as `Collected` has kept its rows and writes it
    through `write_batch` inside one transaction on `conn`, so the database
    inserts on its own core while Python parses. The transaction commits in
    `finish`, once the whole file has parsed; `abort` (a file broken halfway)
    rolls it back, so a bad file still stores nothing, devices included. Step
    intervals are split onto the minute grid per source, which needs all of a
    source's intervals: they are written in `finish`.

    Batch ids do not depend on when a batch is written: the patient, the file's
    SHA-256 (computed in the writer thread while the parse starts), the source's
    index in the file, the stream and the row range.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        collected: Collected,
        *,
        patient_id: int,
        fmt: str,
        digest: Callable[[], str],
        split_minutes: MinuteSplitter,
    ) -> None:
        self._conn = conn
        self._collected = collected
        self._patient_id = patient_id
        self._fmt = fmt
        self._digest = digest
        self._split_minutes = split_minutes
        self._batch_rows = BATCH_ROWS
        self._queue: queue.SimpleQueue[_Item | str] = queue.SimpleQueue()
        self._queued: dict[tuple[str, Stream], int] = {}
        self._devices: dict[str, int] = {}
        self._summary = ImportSummary(format=fmt)
        self._span: list[int] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paceline-import-writer")
        collected.on_rows = self._rows_added

    def start(self) -> None:
        """Open the transaction and start writing (call before the parser runs)."""
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError("an import needs a connection that is not inside a transaction")
        self._thread.start()

    def _rows_added(self, source: str, index: int, stream: Stream, rows: int) -> None:
        if self.error is not None:
            raise self.error  # the writer failed: stop parsing, the import fails with it
        if stream != "steps":
            self._queue_full(source, index, stream, rows, final=False)

    def _queue_full(
        self, source: str, index: int, stream: Stream, rows: int, *, final: bool
    ) -> None:
        start = self._queued.get((source, stream), 0)
        while rows - start >= self._batch_rows or (final and rows > start):
            stop = min(start + self._batch_rows, rows)
            self._queue.put(_Item(source, index, stream, start, stop))
            start = stop
        self._queued[(source, stream)] = start

    def finish(self) -> ImportSummary:
        """Write the rest, commit, and return what was stored; re-raise a writer's error."""
        out = self._collected
        for index, source in enumerate(out.sources):
            for stream in ("hr", "rr", "sdnn"):
                self._queue_full(source, index, stream, out.rows(source, stream), final=True)
            n = out.rows(source, "steps")
            if n:
                cols = out.read(source, "steps", 0, n)
                minute_end, counts = self._split_minutes(
                    np.asarray(cols["begin_us"], np.int64),
                    np.asarray(cols["time_us"], np.int64),
                    np.asarray(cols["steps"], np.float64),
                )
                for start in range(0, minute_end.shape[0], self._batch_rows):
                    stop = min(start + self._batch_rows, minute_end.shape[0])
                    rows = {"time_us": minute_end[start:stop], "steps": counts[start:stop]}
                    self._queue.put(_Item(source, index, "steps", start, stop, rows))
        self._queue.put(_COMMIT)
        self._thread.join()
        if self.error is not None:
            raise self.error
        summary = self._summary
        summary.sources = out.sources
        summary.notes = list(out.notes)
        summary.rejected = dict(out.rejected)
        if self._span:
            summary.first, summary.last = _to_dt(min(self._span)), _to_dt(max(self._span))
        return summary

    def abort(self) -> None:
        """Roll back everything written so far and stop the writer."""
        self._queue.put(_ROLLBACK)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            digest = self._digest()
            with self._conn.transaction():
                while True:
                    item = self._queue.get()
                    if item == _ROLLBACK:
                        raise _RollbackRequestedError
                    if item == _COMMIT:
                        break
                    assert isinstance(item, _Item)
                    self._write(item, digest)
        except _RollbackRequestedError:
            pass
        except BaseException as exc:  # noqa: BLE001 (handed to the parsing thread, which raises it)
            self.error = exc
            while self._queue.get() not in (_COMMIT, _ROLLBACK):
                pass  # keep taking work until the parser learns of the error

    def _write(self, item: _Item, digest: str) -> None:
        conn = self._conn
        device_id = self._devices.get(item.source)
        if device_id is None:
            device_id = _register(conn, self._patient_id, self._fmt, item.source)
            self._devices[item.source] = device_id
        cols = item.rows or self._collected.read(item.source, item.stream, item.start, item.stop)
        t = cols["time_us"]
        self._span += [int(np.min(t)), int(np.max(t))]
        batch = _batch(
            f"import:{self._fmt}:{self._patient_id}:{digest[:32]}:{item.index}:{item.stream}"
            f":{item.start}-{item.stop - 1}",
            item.stream,
            self._patient_id,
            device_id,
            cols,
        )
        result = write_batch(conn, batch, source=f"import:{self._fmt}", within_transaction=True)
        _count(self._summary, result, len(batch))


@dataclass(frozen=True)
class _Item:
    """Rows `start` to `stop` of one (source, stream) to write as one batch."""

    source: str
    index: int
    stream: Stream
    start: int
    stop: int
    rows: dict[str, NDArray[Any]] | None = None


_COMMIT: Final = "commit"
_ROLLBACK: Final = "rollback"


class _RollbackRequestedError(Exception):
    """Raised inside the writer's transaction to roll it back."""


def _batch(
    batch_id: str,
    stream: Stream,
    patient_id: int,
    device_id: int,
    cols: dict[str, NDArray[Any]],
) -> Batch:
    n = cols["time_us"].shape[0]
    keys = {
        "patient_id": np.full(n, patient_id, np.int64),
        "device_id": np.full(n, device_id, np.int64),
        "time": cols["time_us"].astype("datetime64[us]"),
    }
    if stream == "hr":
        return Batch(batch_id, hr=HrRows.of(**keys, bpm=np.round(cols["bpm"])))
    if stream == "rr":
        return Batch(batch_id, rr=RrRows.of(**keys, rr_ms=cols["rr_ms"]))
    if stream == "sdnn":
        return Batch(batch_id, sdnn=SdnnRows.of(**keys, sdnn_ms=cols["sdnn_ms"]))
    return Batch(batch_id, steps=StepRows.of(**keys, steps=cols["steps"]))


def _count(summary: ImportSummary, result: WriteResult, rows: int) -> None:
    summary.batches += 1
    if result.replayed:
        summary.replayed_batches += 1
        summary.duplicates += rows
        return
    summary.hr += result.hr_rows
    summary.rr += result.rr_rows
    summary.steps += result.step_rows
    summary.sdnn += result.sdnn_rows
    summary.duplicates += result.duplicate_rows
