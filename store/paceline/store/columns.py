"""Column batches of raw samples, validated and ready for binary COPY.

A batch holds each stream as parallel numpy columns. Building one checks
every value that no device could have sent (NaN, bpm <= 0 or above 300, RR
<= 0 ms or above 64 s, negative steps, missing times) and names the first
offending row. Physiologically implausible but possible values (a 35 bpm
reading, a 250 ms RR) are kept: cleaning is the signal layer's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from numbers import Real
from typing import Any, ClassVar, Final, ParamSpec, Self, TypeVar

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


EARLIEST_TIME_US: Final = 946_684_800_000_000
"""2000-01-01T00:00Z in epoch microseconds: no sample is stored from before it.

The rule for the lower bound of a sample's time: not before 2000-01-01 UTC, and not
before 1 January of the patient's birth year where it is known (checked by the writer,
which sees the patient). Consumer heart-rate straps with wireless transmission predate
2000, but no export or gateway Paceline reads produces earlier data, while a clock that
was never set produces exactly such times: 1970 (an unsynchronised Raspberry Pi), year 1
(a zeroed timestamp). Those are clock faults, refused rather than stored as history.
"""


def _iso_us(us: int) -> str:
    """An epoch-microsecond time as ISO text; never overflows, whatever the value."""
    return f"{np.datetime64(int(us), 'us')}Z"


def to_epoch_us(stream: str, values: Sequence[datetime] | NDArray[Any]) -> Int64Array:
    """Convert aware datetimes or numpy datetime64 (UTC) to int64 microseconds since 1970."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        with np.errstate(over="raise"):
            try:
                as_us = values.astype("datetime64[us]")
            except FloatingPointError as exc:  # pragma: no cover - numpy wraps silently today
                raise ColumnError(stream, 0, "time is out of range") from exc
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
        # Exact integer arithmetic: `timestamp()` is a float and loses microseconds.
        delta = value - _EPOCH
        out[i] = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return out


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ids(stream: str, name: str, values: Sequence[int] | NDArray[Any], n: int) -> Int64Array:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ColumnError(stream, 0, f"{name} has {arr.size} values for {n} rows")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ColumnError(stream, 0, f"{name} must be integers, not {arr.dtype}")
    return arr.astype(np.int64, copy=False)


Problem = tuple[NDArray[np.bool_], Callable[[int], str]]
"""Rows failing one check (a mask over the stream) and the reason for one such row."""


def _keys(
    stream: str,
    patient_id: Sequence[int] | NDArray[Any],
    device_id: Sequence[int] | NDArray[Any],
    time: Sequence[datetime] | NDArray[Any],
) -> tuple[Int64Array, Int64Array, Int64Array, list[Problem]]:
    """The key columns every stream has: patient, device and time (epoch µs), validated."""
    time_us = to_epoch_us(stream, time)
    n = time_us.size
    early: Problem = (
        time_us < EARLIEST_TIME_US,
        lambda i: f"time {_iso_us(time_us[i])} is before {_iso_us(EARLIEST_TIME_US)[:10]}",
    )
    return (
        _ids(stream, "patient_id", patient_id, n),
        _ids(stream, "device_id", device_id, n),
        time_us,
        [early],
    )


def _numbers(
    stream: str, name: str, values: Sequence[Any] | NDArray[Any], n: int
) -> tuple[NDArray[np.float64], list[Problem]]:
    """A numeric column as float64, and the rows whose value is not finite.

    Only numbers are numbers: numpy would turn "72" into 72.0 and True into 1.0, and a
    heart rate of True is a caller's bug, not a reading of 1 bpm.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iuf":
            raise ColumnError(stream, 0, f"{name} must be a numeric column, not {values.dtype}")
        arr = values.astype(np.float64, copy=False)
    else:
        for i, v in enumerate(values):
            if isinstance(v, bool | np.bool_) or not isinstance(v, Real):
                raise ColumnError(stream, i, f"{name} {v!r} is not a number")
        arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ColumnError(stream, 0, f"{name} has {arr.size} values for {n} rows")

    def reason(i: int) -> str:
        return f"{name} is NaN" if np.isnan(arr[i]) else f"{name} {arr[i]} is not finite"

    return arr, [(~np.isfinite(arr), reason)]


def _whole(name: str, arr: NDArray[np.float64]) -> Problem:
    with np.errstate(invalid="ignore"):
        return arr != np.round(arr), lambda i: f"{name} {arr[i]} is not a whole number"


def _text(value: float) -> str:
    """A limit as the messages print it: whole numbers without a fraction or exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounded(
    stream: str,
    name: str,
    values: Sequence[Any] | NDArray[Any],
    n: int,
    *,
    low: float,
    high: float,
    whole: bool,
    low_open: bool = False,
) -> tuple[NDArray[np.float64], list[Problem]]:
    """A numeric column and its checks: finite, whole if told, and within `low`..`high`.

    `low_open` excludes `low` itself (an RR interval of 0 ms is no beat).
    """
    arr, checks = _numbers(stream, name, values, n)
    if whole:
        checks.append(_whole(name, arr))
    with np.errstate(invalid="ignore"):
        below = arr <= low if low_open else arr < low
        mask = below | (arr > high)
    lo, hi = _text(low), _text(high)
    span = f"({lo}, {hi}]" if low_open else f"{lo}..{hi}"
    checks.append((mask, lambda i: f"{name} {_text(arr[i])} is outside {span}"))
    return arr, checks


def problems(checks: Sequence[Problem], n: int) -> dict[int, str]:
    """Every failing row of `checks`, with the reason of the first check it fails."""
    found: dict[int, str] = {}
    for mask, reason in checks:
        for i in np.flatnonzero(mask).tolist():
            if i not in found:
                found[i] = reason(i)
    return dict(sorted(found.items())) if n else {}


def _raise_first(stream: str, checks: Sequence[Problem]) -> None:
    """Raise `ColumnError` for the lowest row any check fails."""
    first: int | None = None
    for mask, _reason in checks:
        hits = np.flatnonzero(mask)
        if hits.size and (first is None or int(hits[0]) < first):
            first = int(hits[0])
    if first is not None:
        reason = next(r for m, r in checks if m[first])
        raise ColumnError(stream, first, reason(first))


class _Columns:
    """Shared behaviour of the column batches: length, row selection, one row as JSON."""

    STREAM: ClassVar[str]
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


_P = ParamSpec("_P")
_R = TypeVar("_R", bound=_Columns)


def _strict(checked: Callable[_P, tuple[_R, list[Problem]]]) -> Callable[_P, _R]:
    """`of` from a stream's `checked`: the same columns, raising for the first bad row."""

    def of(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Validate the columns (as `checked` takes them); raise for the first bad row."""
        rows, checks = checked(*args, **kwargs)
        _raise_first(rows.STREAM, checks)
        return rows

    return of


def _cast(arr: NDArray[np.float64], dtype: type[np.signedinteger[Any]]) -> NDArray[Any]:
    """`arr` as an integer column; rows a check refused hold 0 instead of a wrapped value."""
    info = np.iinfo(dtype)
    ok = np.isfinite(arr) & (arr >= info.min) & (arr <= info.max)
    return np.where(ok, arr, 0.0).astype(dtype)


Keys = Sequence[int] | NDArray[Any]
Times = Sequence[datetime] | NDArray[Any]


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

    STREAM: ClassVar[str] = "hr"

    @staticmethod
    def checked(
        *,
        patient_id: Keys,
        device_id: Keys,
        time: Times,
        bpm: Sequence[float] | NDArray[Any],
        sensor_contact: Sequence[bool | None] | NDArray[Any] | None = None,
        energy_kj: Sequence[int | None] | NDArray[Any] | None = None,
    ) -> tuple[HrRows, list[Problem]]:
        """The columns and every row-level check, evaluated once over the whole stream.

        Raises `ColumnError` only for what concerns a whole column (a wrong length, a
        column that is not numbers); rows failing a check are in the returned checks.
        `HrRows.of` takes the same columns and raises for the first bad row.
        """
        s = HrRows.STREAM
        pids, dids, time_us, checks = _keys(s, patient_id, device_id, time)
        n = time_us.size
        bpm_f, bpm_checks = _bounded(s, "bpm", bpm, n, low=1, high=MAX_BPM, whole=True)
        checks += bpm_checks
        if sensor_contact is None:
            contact = np.full(n, -1, dtype=np.int8)
        else:
            raw = list(sensor_contact)
            if len(raw) != n:
                raise ColumnError(s, 0, f"sensor_contact has {len(raw)} values for {n} rows")
            contact = np.array([-1 if v is None else int(bool(v)) for v in raw], dtype=np.int8)
        if energy_kj is None:
            energy_f = np.zeros(n)
            present = np.zeros(n, dtype=np.bool_)
        else:
            if isinstance(energy_kj, np.ndarray) and energy_kj.dtype != object:
                values: Sequence[Any] | NDArray[Any] = energy_kj
                present = np.ones(len(energy_kj), dtype=np.bool_)
            else:
                # None, and only None, says "not sent"; inf or NaN is a bad value.
                present = np.array([v is not None for v in energy_kj], dtype=np.bool_)
                values = [0 if v is None else v for v in energy_kj]
            energy_f, energy_checks = _bounded(
                s, "energy_kj", values, n, low=0, high=MAX_ENERGY_KJ, whole=True
            )
            checks += energy_checks
        rows = HrRows(
            pids,
            dids,
            time_us,
            _cast(bpm_f, np.int16),
            contact,
            _cast(energy_f, np.int32),
            present,
        )
        return rows, checks

    of = staticmethod(_strict(checked))

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

    STREAM: ClassVar[str] = "rr"

    @staticmethod
    def checked(
        *, patient_id: Keys, device_id: Keys, time: Times, rr_ms: Sequence[float] | NDArray[Any]
    ) -> tuple[RrRows, list[Problem]]:
        """The columns and every row-level check (see `HrRows.checked`)."""
        s = RrRows.STREAM
        pids, dids, time_us, checks = _keys(s, patient_id, device_id, time)
        rr, rr_checks = _bounded(
            s, "rr_ms", rr_ms, time_us.size, low=0, high=MAX_RR_MS, whole=False, low_open=True
        )
        return RrRows(pids, dids, time_us, rr), checks + rr_checks

    of = staticmethod(_strict(checked))


@dataclass(frozen=True, eq=False)
class StepRows(_Columns):
    """Steps counted in the interval that ends at `time`."""

    patient_id: Int64Array
    device_id: Int64Array
    time_us: Int64Array
    steps: NDArray[np.int32]

    STREAM: ClassVar[str] = "steps"

    @staticmethod
    def checked(
        *, patient_id: Keys, device_id: Keys, time: Times, steps: Sequence[int] | NDArray[Any]
    ) -> tuple[StepRows, list[Problem]]:
        """The columns and every row-level check (see `HrRows.checked`)."""
        s = StepRows.STREAM
        pids, dids, time_us, checks = _keys(s, patient_id, device_id, time)
        counts, count_checks = _bounded(
            s, "steps", steps, time_us.size, low=0, high=MAX_STEPS_PER_ROW, whole=True
        )
        return StepRows(pids, dids, time_us, _cast(counts, np.int32)), checks + count_checks

    of = staticmethod(_strict(checked))


@dataclass(frozen=True, eq=False)
class SdnnRows(_Columns):
    """Heart-rate variability as SDNN (ms) over the window that ends at `time`; never RMSSD."""

    patient_id: Int64Array
    device_id: Int64Array
    time_us: Int64Array
    sdnn_ms: NDArray[np.float64]

    STREAM: ClassVar[str] = "sdnn"

    @staticmethod
    def checked(
        *, patient_id: Keys, device_id: Keys, time: Times, sdnn_ms: Sequence[float] | NDArray[Any]
    ) -> tuple[SdnnRows, list[Problem]]:
        """The columns and every row-level check (see `HrRows.checked`)."""
        s = SdnnRows.STREAM
        pids, dids, time_us, checks = _keys(s, patient_id, device_id, time)
        # The standard deviation of intervals each at most MAX_RR_MS cannot exceed it.
        sdnn, sdnn_checks = _bounded(
            s, "sdnn_ms", sdnn_ms, time_us.size, low=0, high=MAX_RR_MS, whole=False, low_open=True
        )
        return SdnnRows(pids, dids, time_us, sdnn), checks + sdnn_checks

    of = staticmethod(_strict(checked))


Rows = HrRows | RrRows | StepRows | SdnnRows
