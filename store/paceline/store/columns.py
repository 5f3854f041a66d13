"""Column batches of raw samples, validated and ready for binary COPY.

A batch holds each stream as parallel numpy columns. Building one checks
every value that no device could have sent (NaN, bpm <= 0 or above 300, RR
<= 0 ms or above 64 s, negative steps, missing times) and names the first
offending row. Physiologically implausible but possible values (a 35 bpm
reading, a 250 ms RR) are kept: cleaning is the signal layer's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from paceline.store.errors import StoreError

# Limits of what the Bluetooth Heart Rate Measurement can carry and what a
# human heart could produce; beyond these a value is a bug or corruption.
MAX_BPM = 300
MAX_RR_MS = 64_000.0  # uint16 in 1/1024 s tops out at 64 s
MAX_ENERGY_KJ = 65_535  # uint16 on the wire
MAX_STEPS_PER_ROW = 1_000_000

Int64Array = NDArray[np.int64]


class ColumnError(StoreError, ValueError):
    """A column value that no device could have sent; `row` is its index in the stream."""

    def __init__(self, stream: str, row: int, reason: str) -> None:
        self.stream = stream
        self.row = row
        self.reason = reason
        super().__init__(f"{stream} row {row}: {reason}")


def to_epoch_us(stream: str, values: Sequence[datetime] | NDArray[Any]) -> Int64Array:
    """Convert aware datetimes or numpy datetime64 (UTC) to int64 microseconds since 1970."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        as_us = values.astype("datetime64[us]")
        bad = np.flatnonzero(np.isnat(as_us))
        if bad.size:
            raise ColumnError(stream, int(bad[0]), "time is missing (NaT)")
        return as_us.astype(np.int64)
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.integer):
        raise ColumnError(stream, 0, "times must be datetime64 or aware datetimes, not integers")
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if not isinstance(value, datetime):
            raise ColumnError(stream, i, f"time {value!r} is not a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ColumnError(stream, i, f"time {value.isoformat()} has no time zone")
        out[i] = round(value.timestamp() * 1_000_000)
    return out


def _ids(stream: str, name: str, values: Sequence[int] | NDArray[Any], n: int) -> Int64Array:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ColumnError(stream, 0, f"{name} has {arr.size} values for {n} rows")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ColumnError(stream, 0, f"{name} must be integers, not {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _keys(
    stream: str,
    patient_id: Sequence[int] | NDArray[Any],
    device_id: Sequence[int] | NDArray[Any],
    time: Sequence[datetime] | NDArray[Any],
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """The key columns every stream has: patient, device and time (epoch µs), validated."""
    time_us = to_epoch_us(stream, time)
    n = time_us.size
    return (
        _ids(stream, "patient_id", patient_id, n),
        _ids(stream, "device_id", device_id, n),
        time_us,
    )


def _numbers(
    stream: str, name: str, values: Sequence[Any] | NDArray[Any], n: int
) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ColumnError(stream, 0, f"{name} holds a value that is not a number") from exc
    if arr.shape != (n,):
        raise ColumnError(stream, 0, f"{name} has {arr.size} values for {n} rows")
    bad = np.flatnonzero(np.isnan(arr))
    if bad.size:
        raise ColumnError(stream, int(bad[0]), f"{name} is NaN")
    return arr


def _first(mask: NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _whole(stream: str, name: str, arr: NDArray[np.float64]) -> None:
    row = _first(arr != np.round(arr))
    if row is not None:
        raise ColumnError(stream, row, f"{name} {arr[row]} is not a whole number")


class _Columns:
    """Shared behaviour of the column batches: length, row selection, one row as JSON."""

    time_us: Int64Array

    def __len__(self) -> int:
        return int(self.time_us.size)

    def take(self, index: NDArray[np.intp]) -> Self:
        """The rows at `index`, in that order."""
        columns = (getattr(self, f.name)[index] for f in fields(self))  # type: ignore[arg-type]
        return type(self)(*columns)

    def row(self, i: int) -> dict[str, Any]:
        """Row `i` as plain JSON-able values (for quarantine and error messages)."""
        return {f.name: getattr(self, f.name)[i].item() for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class HrRows(_Columns):
    """Heart-rate samples: one row per notification that carried a reading."""

    patient_id: Int64Array
    device_id: Int64Array
    time_us: Int64Array
    bpm: NDArray[np.int16]
    sensor_contact: NDArray[np.int8]  # -1 when the sensor cannot detect contact
    energy_kj: NDArray[np.int32]
    energy_present: NDArray[np.bool_]

    STREAM = "hr"

    @classmethod
    def of(
        cls,
        *,
        patient_id: Sequence[int] | NDArray[Any],
        device_id: Sequence[int] | NDArray[Any],
        time: Sequence[datetime] | NDArray[Any],
        bpm: Sequence[float] | NDArray[Any],
        sensor_contact: Sequence[bool | None] | NDArray[Any] | None = None,
        energy_kj: Sequence[int | None] | NDArray[Any] | None = None,
    ) -> HrRows:
        """Validate heart-rate columns; raise `ColumnError` naming the first bad row."""
        s = cls.STREAM
        pids, dids, time_us = _keys(s, patient_id, device_id, time)
        n = time_us.size
        bpm_f = _numbers(s, "bpm", bpm, n)
        _whole(s, "bpm", bpm_f)
        row = _first((bpm_f <= 0) | (bpm_f > MAX_BPM))
        if row is not None:
            raise ColumnError(s, row, f"bpm {bpm_f[row]:g} is outside 1..{MAX_BPM}")
        if sensor_contact is None:
            contact = np.full(n, -1, dtype=np.int8)
        else:
            raw = list(sensor_contact)
            if len(raw) != n:
                raise ColumnError(s, 0, f"sensor_contact has {len(raw)} values for {n} rows")
            contact = np.array([-1 if v is None else int(bool(v)) for v in raw], dtype=np.int8)
        if energy_kj is None:
            energy = np.zeros(n, dtype=np.int32)
            present = np.zeros(n, dtype=np.bool_)
        else:
            energy_f = _numbers(s, "energy_kj", [np.inf if v is None else v for v in energy_kj], n)
            present = np.isfinite(energy_f)
            filled = np.where(present, energy_f, 0.0)
            _whole(s, "energy_kj", filled)
            row = _first((filled < 0) | (filled > MAX_ENERGY_KJ))
            if row is not None:
                raise ColumnError(
                    s, row, f"energy_kj {filled[row]:g} is outside 0..{MAX_ENERGY_KJ}"
                )
            energy = filled.astype(np.int32)
        return cls(
            pids,
            dids,
            time_us,
            bpm_f.astype(np.int16),
            contact,
            energy,
            present,
        )

    def row(self, i: int) -> dict[str, Any]:
        """Row `i` as plain JSON-able values (for quarantine and error messages)."""
        return {
            "patient_id": int(self.patient_id[i]),
            "device_id": int(self.device_id[i]),
            "time_us": int(self.time_us[i]),
            "bpm": int(self.bpm[i]),
            "sensor_contact": None if self.sensor_contact[i] < 0 else bool(self.sensor_contact[i]),
            "energy_kj": int(self.energy_kj[i]) if self.energy_present[i] else None,
        }


@dataclass(frozen=True, eq=False)
class RrRows(_Columns):
    """Beat-to-beat RR intervals, one row per beat, timed at the end of the beat."""

    patient_id: Int64Array
    device_id: Int64Array
    time_us: Int64Array
    rr_ms: NDArray[np.float64]

    STREAM = "rr"

    @classmethod
    def of(
        cls,
        *,
        patient_id: Sequence[int] | NDArray[Any],
        device_id: Sequence[int] | NDArray[Any],
        time: Sequence[datetime] | NDArray[Any],
        rr_ms: Sequence[float] | NDArray[Any],
    ) -> RrRows:
        """Validate RR columns; raise `ColumnError` naming the first bad row."""
        s = cls.STREAM
        pids, dids, time_us = _keys(s, patient_id, device_id, time)
        n = time_us.size
        rr = _numbers(s, "rr_ms", rr_ms, n)
        row = _first((rr <= 0) | (rr > MAX_RR_MS))
        if row is not None:
            raise ColumnError(s, row, f"rr_ms {rr[row]:g} is outside (0, {MAX_RR_MS:g}]")
        return cls(pids, dids, time_us, rr)


@dataclass(frozen=True, eq=False)
class StepRows(_Columns):
    """Steps counted in the interval that ends at `time`."""

    patient_id: Int64Array
    device_id: Int64Array
    time_us: Int64Array
    steps: NDArray[np.int32]

    STREAM = "steps"

    @classmethod
    def of(
        cls,
        *,
        patient_id: Sequence[int] | NDArray[Any],
        device_id: Sequence[int] | NDArray[Any],
        time: Sequence[datetime] | NDArray[Any],
        steps: Sequence[int] | NDArray[Any],
    ) -> StepRows:
        """Validate step columns; raise `ColumnError` naming the first bad row."""
        s = cls.STREAM
        pids, dids, time_us = _keys(s, patient_id, device_id, time)
        n = time_us.size
        counts = _numbers(s, "steps", steps, n)
        _whole(s, "steps", counts)
        row = _first((counts < 0) | (counts > MAX_STEPS_PER_ROW))
        if row is not None:
            raise ColumnError(s, row, f"steps {counts[row]:g} is outside 0..{MAX_STEPS_PER_ROW}")
        return cls(
            pids,
            dids,
            time_us,
            counts.astype(np.int32),
        )


Rows = HrRows | RrRows | StepRows
