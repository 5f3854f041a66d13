"""Step records with intervals onto the one-minute grid the daily metrics read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import InputShapeError, ParameterError
from paceline.signal.steps import overlap_density
from paceline.signal.timebase import US_PER_MIN, IntArray, as_epoch_us


@dataclass(frozen=True, slots=True)
class MinuteSteps:
    """Whole steps per minute: ``steps[k]`` were taken in the minute ending at ``end_us[k]``."""

    end_us: IntArray
    steps: npt.NDArray[np.int64]


def to_minute_grid(
    begin_us: npt.ArrayLike, end_us: npt.ArrayLike, steps: npt.ArrayLike
) -> MinuteSteps:
    """Split step records of one device, each counting ``(begin, end]``, into whole minutes.

    The steps of a record are spread evenly over its interval and overlapping
    records of the device count each step once (`paceline.signal.steps.overlap_density`,
    the rule the daily metrics use). A record with ``begin == end`` (no known length)
    goes whole to the minute it ends in, like `paceline.signal.steps.per_minute`. Only
    minutes some record covers are returned, stamped at their end, as the step rows of
    live devices are.

    Minutes get whole steps by rounding the running total within each run of
    consecutive covered minutes and differencing it (largest-remainder style), so a
    run's total is its records' total rounded once, never the sum of per-minute
    roundings; a run cut off by an export's end cannot shift the minutes before it.
    """
    b = as_epoch_us(begin_us, "begin")
    e = as_epoch_us(end_us, "end")
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    if not (b.shape[0] == e.shape[0] == s.shape[0]):
        raise InputShapeError("steps", b.shape[0], s.shape[0])
    if np.any(b > e):
        row = int(np.argmax(b > e))
        raise ParameterError("begin", int(b[row]), f"after its record's end {e[row]}")
    if np.any(~np.isfinite(s) | (s < 0)):
        row = int(np.argmax(~np.isfinite(s) | (s < 0)))
        raise ParameterError("steps", float(s[row]), "must be a finite count >= 0")
    if b.size == 0:
        return MinuteSteps(np.empty(0, np.int64), np.empty(0, np.int64))
    start = (int(b.min()) // US_PER_MIN) * US_PER_MIN
    n = int(-(-(int(e.max()) - start) // US_PER_MIN)) or 1
    edges = start + np.arange(n + 1, dtype=np.int64) * US_PER_MIN
    point = b == e
    idx = (e[point] - start - 1) // US_PER_MIN
    per_minute = np.asarray(
        np.bincount(np.clip(idx, 0, n - 1), weights=s[point], minlength=n), dtype=np.float64
    )
    covered = np.bincount(np.clip(idx, 0, n - 1), minlength=n) > 0
    spread = ~point
    if spread.any():
        density = overlap_density(b[spread], e[spread], s[spread], edges)
        per_minute = per_minute + density.per_bin(n)
        covered |= np.add.reduceat(density.covered_us, density.minute_index)[:n] > 0
    minutes = np.flatnonzero(covered)
    values = per_minute[minutes]
    # Runs of consecutive covered minutes: round each run's running total.
    new_run = np.concatenate(([True], np.diff(minutes) > 1))
    run_id = np.cumsum(new_run) - 1
    running = np.cumsum(values)
    run_base = np.concatenate(([0.0], running))[np.flatnonzero(new_run)][run_id]
    rounded = np.round(running - run_base)
    previous = np.concatenate(([0.0], rounded[:-1]))
    previous[new_run] = 0.0
    whole = (rounded - previous).astype(np.int64)
    return MinuteSteps(end_us=edges[minutes + 1], steps=whole)


__all__ = ["MinuteSteps", "to_minute_grid"]
