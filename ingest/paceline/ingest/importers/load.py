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
#: one batch's columns stay a few tens of MB.
BATCH_ROWS: Final = 250_000
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


def store(
    conn: psycopg.Connection[Any],
    collected: Collected,
    *,
    patient_id: int,
    fmt: str,
    digest: str,
    split_minutes: MinuteSplitter,
) -> ImportSummary:
    """Write everything `collected` holds for `patient_id`, batch by batch."""
    summary = ImportSummary(format=fmt, sources=collected.sources, notes=list(collected.notes))
    summary.rejected = dict(collected.rejected)
    lo: int | None = None
    hi: int | None = None
    for index, source in enumerate(collected.sources):
        device_id = _register(conn, patient_id, fmt, source)
        for stream in ("hr", "rr", "sdnn", "steps"):
            cols = collected.columns(source, stream)
            if stream == "steps":
                minute_end, counts = split_minutes(
                    np.asarray(cols["begin_us"], np.int64),
                    np.asarray(cols["time_us"], np.int64),
                    np.asarray(cols["steps"], np.float64),
                )
                cols = {"time_us": minute_end, "steps": counts}
            n = int(cols["time_us"].shape[0])
            if n:
                t = cols["time_us"]
                lo = min(int(np.min(t)), lo if lo is not None else int(np.min(t)))
                hi = max(int(np.max(t)), hi if hi is not None else int(np.max(t)))
            for start in range(0, n, BATCH_ROWS):
                stop = min(start + BATCH_ROWS, n)
                part = {k: np.asarray(v[start:stop]) for k, v in cols.items()}
                batch = _batch(
                    f"import:{fmt}:{patient_id}:{digest[:32]}:{index}:{stream}:{start}-{stop - 1}",
                    stream,
                    patient_id,
                    device_id,
                    part,
                )
                _count(summary, write_batch(conn, batch, source=f"import:{fmt}"), len(batch))
    summary.first = _to_dt(lo) if lo is not None else None
    summary.last = _to_dt(hi) if hi is not None else None
    return summary


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
