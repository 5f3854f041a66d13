"""Time stamps and regular grids: epoch microseconds, sorting, gap-aware resampling, minutes.

Every function in `paceline.signal` takes time as int64 epoch microseconds (UTC) or
as numpy ``datetime64`` values; `as_epoch_us` turns either into int64 microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import (
    InputShapeError,
    ParameterError,
    TimeTypeError,
    UnsortedTimeError,
)

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
Int8Array: TypeAlias = npt.NDArray[np.int8]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
TimeLike: TypeAlias = int | np.integer[Any] | np.datetime64

US_PER_S: Final = 1_000_000
US_PER_MIN: Final = 60 * US_PER_S
S_PER_MIN: Final = 60.0


def as_epoch_us(time: npt.ArrayLike, name: str = "time") -> IntArray:
    """Return time stamps as int64 epoch microseconds (from int64 µs or any ``datetime64``).

    Raises
    ------
    TimeTypeError
        If the array is neither integer nor ``datetime64``, or holds ``NaT``.
    """
    arr = np.asarray(time)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if np.issubdtype(arr.dtype, np.datetime64):
        us = arr.astype("datetime64[us]")
        if np.isnat(us).any():
            raise TimeTypeError(name, "datetime64 with NaT")
        return us.view(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    raise TimeTypeError(name, str(arr.dtype))


def scalar_us(t: TimeLike, name: str = "time") -> int:
    """Return one time stamp (int µs or ``datetime64``) as int epoch microseconds."""
    if isinstance(t, np.datetime64):
        if np.isnat(t):
            raise TimeTypeError(name, "NaT")
        return int(t.astype("datetime64[us]").astype(np.int64))
    if isinstance(t, int | np.integer):
        return int(t)
    raise TimeTypeError(name, type(t).__name__)


def as_float(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    """Return `values` as a float64 vector of length `n` (the number of time stamps)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise InputShapeError(name, n, arr.shape[0])
    return arr


def check_sorted(time_us: IntArray, name: str = "time") -> None:
    """Raise `UnsortedTimeError` unless `time_us` is non-decreasing."""
    if time_us.shape[0] > 1:
        back = np.flatnonzero(time_us[1:] < time_us[:-1])
        if back.size:
            raise UnsortedTimeError(name, int(back[0]) + 1)


def time_order(time_us: IntArray) -> npt.NDArray[np.intp] | None:
    """Stable order that sorts `time_us`, or None when it is already sorted (no copy needed)."""
    if time_us.shape[0] < 2 or bool(np.all(time_us[1:] >= time_us[:-1])):
        return None
    return np.argsort(time_us, kind="stable")


def window_slice(time_us: IntArray, start_us: int, end_us: int) -> slice:
    """Return the slice of sorted `time_us` with ``start_us <= t < end_us``."""
    lo = int(np.searchsorted(time_us, start_us, side="left"))
    hi = int(np.searchsorted(time_us, end_us, side="left"))
    return slice(lo, hi)


def grid_cells(start_us: int, end_us: int, step_s: float) -> tuple[int, int]:
    """Return ``(step_us, n_cells)`` of a grid covering ``[start_us, end_us)`` exactly."""
    step_us = round(step_s * US_PER_S)
    if step_us <= 0:
        raise ParameterError("step_s", step_s, "must be at least one microsecond")
    span = end_us - start_us
    if span <= 0:
        raise ParameterError("end", end_us, f"must be after start ({start_us})")
    if span % step_us:
        raise ParameterError("step_s", step_s, f"must divide the span of {span} µs evenly")
    return step_us, span // step_us


@dataclass(frozen=True, slots=True)
class Grid:
    """Values on a regular time grid; NaN marks a cell with no data.

    Cell ``i`` covers ``[start_us + i*step_us, start_us + (i+1)*step_us)``.
    """

    start_us: int
    step_us: int
    values: FloatArray

    @property
    def n_cells(self) -> int:
        """Number of grid cells."""
        return int(self.values.shape[0])

    @property
    def step_s(self) -> float:
        """Cell width in seconds."""
        return self.step_us / US_PER_S

    @property
    def valid(self) -> BoolArray:
        """Mask of cells holding a value."""
        return ~np.isnan(self.values)

    def times_us(self) -> IntArray:
        """Start time of every cell, epoch microseconds."""
        return self.start_us + np.arange(self.n_cells, dtype=np.int64) * self.step_us

    def masked(self, keep: BoolArray) -> Grid:
        """Return a copy where cells outside `keep` are NaN."""
        if keep.shape[0] != self.n_cells:
            raise InputShapeError("keep", self.n_cells, keep.shape[0])
        return Grid(self.start_us, self.step_us, np.where(keep, self.values, np.nan))


def resample(
    time_us: IntArray,
    values: FloatArray,
    *,
    start_us: int,
    end_us: int,
    step_s: float = 1.0,
    max_gap_s: float = 15.0,
) -> Grid:
    """Put irregular samples on a regular grid without bridging gaps longer than `max_gap_s`.

    Each cell takes the mean of the samples that fall in it. An empty cell between two
    filled cells ``p < q`` is linearly interpolated when ``(q - p) * step_s <= max_gap_s``
    and left NaN otherwise; cells before the first or after the last sample stay NaN
    (no extrapolation).

    Parameters
    ----------
    time_us
        Sorted sample times, epoch µs.
    values
        Sample values; NaN values are ignored.
    start_us, end_us
        The grid covers ``[start_us, end_us)``; samples outside are ignored.
    step_s
        Cell width in seconds; must divide the span evenly.
    max_gap_s
        Longest distance between filled cells that is bridged by interpolation.
        Use the device's normal sampling interval (1 s straps, ~5–15 s wrist bands).

    Returns
    -------
    Grid
        The resampled values, NaN where there is no data.
    """
    if max_gap_s < 0:
        raise ParameterError("max_gap_s", max_gap_s, "must be >= 0")
    if values.shape[0] != time_us.shape[0]:
        raise InputShapeError("values", time_us.shape[0], values.shape[0])
    step_us, n = grid_cells(start_us, end_us, step_s)
    sl = window_slice(time_us, start_us, end_us)
    t = time_us[sl]
    v = values[sl]
    ok = ~np.isnan(v)
    idx = (t[ok] - start_us) // step_us
    counts = np.bincount(idx, minlength=n)
    sums = np.bincount(idx, weights=v[ok], minlength=n)
    filled = counts > 0
    out = np.full(n, np.nan)
    np.divide(sums, counts, out=out, where=filled)
    pos = np.flatnonzero(filled)
    if pos.size >= 2:
        gap = np.diff(pos)
        bridge = (gap > 1) & (gap * (step_us / US_PER_S) <= max_gap_s)
        if bridge.any():
            left = pos[:-1][bridge]
            right = pos[1:][bridge]
            # Cells strictly between each bridged pair, built without a Python loop.
            lengths = right - left - 1
            owner = np.repeat(np.arange(left.shape[0]), lengths)
            offset = np.arange(owner.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            cells = left[owner] + 1 + offset
            frac = (cells - left[owner]) / (right[owner] - left[owner])
            out[cells] = out[left[owner]] + frac * (out[right[owner]] - out[left[owner]])
    return Grid(start_us, step_us, out)


@dataclass(frozen=True, slots=True)
class Minutes:
    """Per-minute mean of a grid and the fraction of the minute that held data."""

    start_us: int
    mean: FloatArray
    coverage: FloatArray

    @property
    def n_minutes(self) -> int:
        """Number of minutes."""
        return int(self.mean.shape[0])


def per_minute(grid: Grid) -> Minutes:
    """Average a grid into whole minutes (NaN mean where a minute has no data)."""
    if US_PER_MIN % grid.step_us:
        raise ParameterError("grid step", grid.step_s, "must divide one minute evenly")
    per = US_PER_MIN // grid.step_us
    if grid.n_cells % per:
        raise ParameterError("grid length", grid.n_cells, f"must be whole minutes ({per} cells)")
    cells = grid.values.reshape(-1, per)
    valid = ~np.isnan(cells)
    n_valid = valid.sum(axis=1)
    sums = np.where(valid, cells, 0.0).sum(axis=1)
    mean = np.full(n_valid.shape[0], np.nan)
    np.divide(sums, n_valid, out=mean, where=n_valid > 0)
    return Minutes(grid.start_us, mean, n_valid / per)


__all__ = [
    "S_PER_MIN",
    "US_PER_MIN",
    "US_PER_S",
    "BoolArray",
    "FloatArray",
    "Grid",
    "Int8Array",
    "IntArray",
    "Minutes",
    "TimeLike",
    "as_epoch_us",
    "as_float",
    "check_sorted",
    "grid_cells",
    "per_minute",
    "resample",
    "scalar_us",
    "time_order",
    "window_slice",
]
