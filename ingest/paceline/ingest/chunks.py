"""Spool chunks: samples packed as numpy columns, one chunk per stream, patient and device.

A chunk is what the daemon commits to the spool for one device and one stream at one
flush. Its rows are a packed little-endian numpy record array, so writing a chunk is one
`tobytes()` and reading it back is one `frombuffer()`: the uploader never touches a
sample in Python, which is what lets the spool drain about as fast as COPY can load.
Each row keeps both times the daemon knows: `time_us` (the monotonic-based receive time
that keys the sample) and `received_us` (the wall clock read at receipt).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from paceline.ingest import IngestError

HR_DTYPE: Final = np.dtype(
    [
        ("time_us", "<i8"),
        ("received_us", "<i8"),
        # uint16: the Heart Rate Measurement characteristic sends bpm as uint8 or uint16, so
        # every value a device can send fits (and the record size stays what int16 had).
        # What no heart could beat (above 300) is quarantined by the uploader, with the reason.
        ("bpm", "<u2"),
        ("contact", "i1"),  # -1: the sensor cannot tell whether it touches skin
        ("energy_kj", "<i4"),  # -1: not sent
    ]
)
RR_DTYPE: Final = np.dtype([("time_us", "<i8"), ("received_us", "<i8"), ("rr_ms", "<f8")])
STEP_DTYPE: Final = np.dtype([("time_us", "<i8"), ("received_us", "<i8"), ("steps", "<i4")])

SAMPLE_DTYPES: Final[dict[str, np.dtype[np.void]]] = {
    "hr": HR_DTYPE,
    "rr": RR_DTYPE,
    "steps": STEP_DTYPE,
}
PAYLOAD: Final = "payload"
"""The stream of payloads that did not decode; they go to quarantine, never to a sample table."""

STREAMS: Final = (*SAMPLE_DTYPES, PAYLOAD)


class RecordError(IngestError, ValueError):
    """A spool record whose bytes do not match its checksum or its stream's layout."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"spool record {seq}: {reason}")


def epoch_us(value: datetime) -> int:
    """Microseconds since 1970 of an aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time {value.isoformat()} has no time zone")
    # Integer arithmetic: a float timestamp can be a microsecond off.
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def checksum(stream: str, patient_id: int, device_id: int, count: int, data: bytes) -> int:
    """CRC-32 over everything a record holds, so that any flipped bit is noticed on read."""
    head = f"{stream}|{patient_id}|{device_id}|{count}|".encode()
    return zlib.crc32(data, zlib.crc32(head))


@dataclass(frozen=True, eq=False)
class Chunk:
    """Rows of one stream from one device, as committed to (or read from) the spool."""

    stream: str
    patient_id: int
    device_id: int
    count: int
    data: bytes

    @property
    def crc(self) -> int:
        """The checksum stored beside the record."""
        return checksum(self.stream, self.patient_id, self.device_id, self.count, self.data)

    def samples(self) -> NDArray[np.void]:
        """The rows as a numpy record array (sample streams only)."""
        return np.frombuffer(self.data, dtype=SAMPLE_DTYPES[self.stream])

    def payloads(self) -> list[dict[str, Any]]:
        """The rejected payloads of a `payload` record, as JSON objects."""
        loaded: list[dict[str, Any]] = json.loads(self.data)
        return loaded

    @classmethod
    def of_samples(cls, stream: str, patient_id: int, device_id: int, rows: NDArray[Any]) -> Chunk:
        """A chunk of sample rows laid out with the stream's record type."""
        dtype = SAMPLE_DTYPES[stream]
        packed = np.ascontiguousarray(rows, dtype=dtype)
        return cls(stream, patient_id, device_id, int(packed.size), packed.tobytes())

    @classmethod
    def of_payloads(
        cls, patient_id: int, device_id: int, payloads: Iterable[dict[str, Any]]
    ) -> Chunk:
        """A chunk of rejected payloads (each a JSON object with the raw bytes as hex)."""
        items = list(payloads)
        data = json.dumps(items, separators=(",", ":"), sort_keys=True).encode()
        return cls(PAYLOAD, patient_id, device_id, len(items), data)

    @classmethod
    def verified(
        cls,
        seq: int,
        *,
        stream: str,
        patient_id: int,
        device_id: int,
        count: int,
        data: bytes,
        crc: int,
    ) -> Chunk:
        """Rebuild a chunk read from disk; raise `RecordError` if it is not what was written."""
        if stream not in STREAMS:
            raise RecordError(seq, f"unknown stream {stream!r}")
        if checksum(stream, patient_id, device_id, count, data) != crc:
            raise RecordError(seq, "checksum mismatch")
        chunk = cls(stream, patient_id, device_id, count, data)
        if stream == PAYLOAD:
            try:
                items = chunk.payloads()
            except ValueError as exc:
                raise RecordError(seq, f"payload record is not JSON: {exc}") from exc
            if not isinstance(items, list) or len(items) != count:
                raise RecordError(seq, "payload record does not hold the counted items")
        elif len(data) != count * SAMPLE_DTYPES[stream].itemsize:
            raise RecordError(seq, f"{len(data)} bytes do not hold {count} {stream} rows")
        return chunk


class SampleBuffer:
    """Samples decoded since the last flush, grouped into the chunks the next flush commits."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int, int], list[Any]] = {}
        self._rows = 0

    def __len__(self) -> int:
        """How many rows (samples and rejected payloads) wait for the next flush."""
        return self._rows

    def _add(self, stream: str, patient_id: int, device_id: int, row: Any) -> None:
        self._pending.setdefault((stream, patient_id, device_id), []).append(row)
        self._rows += 1

    def add_hr(
        self,
        patient_id: int,
        device_id: int,
        *,
        time_us: int,
        received_us: int,
        bpm: int,
        sensor_contact: bool | None,
        energy_kj: int | None,
    ) -> None:
        """Queue one heart-rate sample."""
        contact = -1 if sensor_contact is None else int(sensor_contact)
        energy = -1 if energy_kj is None else energy_kj
        self._add("hr", patient_id, device_id, (time_us, received_us, bpm, contact, energy))

    def add_rr(
        self, patient_id: int, device_id: int, *, time_us: int, received_us: int, rr_ms: float
    ) -> None:
        """Queue one RR interval."""
        self._add("rr", patient_id, device_id, (time_us, received_us, rr_ms))

    def add_steps(
        self, patient_id: int, device_id: int, *, time_us: int, received_us: int, steps: int
    ) -> None:
        """Queue the steps of one interval."""
        self._add("steps", patient_id, device_id, (time_us, received_us, steps))

    def add_payload(self, patient_id: int, device_id: int, payload: dict[str, Any]) -> None:
        """Queue a payload that did not decode (raw bytes as hex), bound for quarantine."""
        self._add(PAYLOAD, patient_id, device_id, payload)

    def take(self) -> list[Chunk]:
        """Everything queued, as chunks; the buffer is empty afterwards.

        Never raises for a row's values: a row that does not fit its stream's layout is
        turned into a rejected payload (bound for quarantine, with the reason), so one
        bad value can neither stop a flush nor take the other rows down with it.
        """
        chunks: list[Chunk] = []
        for (stream, patient_id, device_id), rows in self._pending.items():
            if stream == PAYLOAD:
                chunks.append(Chunk.of_payloads(patient_id, device_id, rows))
            else:
                chunks.extend(_pack(stream, patient_id, device_id, rows))
        # Emptied only once every row is packed: should packing fail after all, the rows
        # stay queued for the next flush instead of being lost.
        self._pending, self._rows = {}, 0
        return chunks

    def release(self, offset_us: int, below_us: int) -> int:
        """Add `offset_us` to every sample time below `below_us`; return how many rows moved.

        Held rows were stamped with provisional times (1970 plus monotonic seconds) while
        the host clock was implausible; once it is set, one offset makes them real.
        """
        moved = 0
        for (stream, _p, _d), rows in self._pending.items():
            for k, row in enumerate(rows):
                if stream == PAYLOAD:
                    t = row.get("time_us") if isinstance(row, dict) else None
                    if isinstance(t, int) and t < below_us:
                        rows[k] = {**row, "time_us": t + offset_us}
                        moved += 1
                elif isinstance(row[0], int) and row[0] < below_us:
                    rows[k] = (row[0] + offset_us, *row[1:])
                    moved += 1
        return moved

    def drop_oldest(self, n: int) -> dict[int, int]:
        """Drop the `n` oldest rows (by sample time) of the buffer; return how many per device.

        What a full disk costs: the newest rows, which the patient is producing now, are
        kept. Rows without a time (a rejected payload that has none) count as oldest.
        """
        if n <= 0 or not self._pending:
            return {}
        keys = list(self._pending)
        times = np.concatenate(
            [np.fromiter((_row_time(k[0], r) for r in self._pending[k]), np.int64) for k in keys]
        )
        drop = np.zeros(times.size, dtype=np.bool_)
        drop[np.argsort(times, kind="stable")[: min(n, times.size)]] = True
        dropped: dict[int, int] = {}
        offset = 0
        for key in keys:
            rows = self._pending[key]
            mask = drop[offset : offset + len(rows)]
            offset += len(rows)
            gone = int(np.count_nonzero(mask))
            if not gone:
                continue
            dropped[key[2]] = dropped.get(key[2], 0) + gone
            kept = [row for row, d in zip(rows, mask.tolist(), strict=True) if not d]
            if kept:
                self._pending[key] = kept
            else:
                del self._pending[key]
            self._rows -= gone
        return dropped

    def restore(self, chunks: Iterable[Chunk]) -> None:
        """Put back chunks a failed flush could not commit, ahead of anything newer."""
        newer, self._pending, self._rows = self._pending, {}, 0
        for chunk in chunks:
            rows: list[Any] = (
                chunk.payloads() if chunk.stream == PAYLOAD else chunk.samples().tolist()
            )
            for row in rows:
                self._add(chunk.stream, chunk.patient_id, chunk.device_id, row)
        for (stream, patient_id, device_id), rows in newer.items():
            for row in rows:
                self._add(stream, patient_id, device_id, row)


def _row_time(stream: str, row: Any) -> int:
    """The sample time of a queued row (the smallest possible when it has none)."""
    if stream == PAYLOAD:
        value = row.get("time_us") if isinstance(row, dict) else None
        return int(value) if isinstance(value, int) else np.iinfo(np.int64).min
    value = row[0]
    return int(value) if isinstance(value, int) else np.iinfo(np.int64).min


def _pack(stream: str, patient_id: int, device_id: int, rows: list[Any]) -> list[Chunk]:
    """One chunk of the rows that fit the stream's layout, one payload chunk of those that do not."""
    dtype = SAMPLE_DTYPES[stream]
    try:
        return [Chunk.of_samples(stream, patient_id, device_id, np.array(rows, dtype=dtype))]
    except (OverflowError, ValueError, TypeError):
        pass  # find the rows at fault; the rest is packed as usual
    good: list[Any] = []
    bad: list[dict[str, Any]] = []
    for row in rows:
        try:
            np.array([row], dtype=dtype)
        except (OverflowError, ValueError, TypeError) as exc:
            bad.append(_unpackable(stream, row, exc))
        else:
            good.append(row)
    chunks = [Chunk.of_payloads(patient_id, device_id, bad)]
    if good:
        chunks.append(Chunk.of_samples(stream, patient_id, device_id, np.array(good, dtype=dtype)))
    return chunks


def _jsonable(value: Any) -> Any:
    """`value` itself if JSON (and PostgreSQL's jsonb, which has no NaN) can hold it, else its repr."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return repr(value)


def _unpackable(stream: str, row: Any, exc: Exception) -> dict[str, Any]:
    """A rejected payload describing a sample row whose values do not fit the spool."""
    values = [_jsonable(v) for v in row]
    item: dict[str, Any] = {
        "stream": stream,
        "values": values,
        "reason": f"{stream} sample does not fit the spool: {exc}",
    }
    names = SAMPLE_DTYPES[stream].names or ()
    for name, value in zip(names, values, strict=False):
        if name in ("time_us", "received_us"):
            item[name] = value
    return item


__all__ = [
    "HR_DTYPE",
    "PAYLOAD",
    "RR_DTYPE",
    "SAMPLE_DTYPES",
    "STEP_DTYPE",
    "STREAMS",
    "Chunk",
    "RecordError",
    "SampleBuffer",
    "checksum",
    "epoch_us",
]
