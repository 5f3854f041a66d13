"""Time-domain heart rate variability: mean NN, SDNN, RMSSD, pNN50 — whole, windowed, per night.

Every function computes exactly on the intervals it is given: no cleaning, no
interpolation, no resampling. Clean first with `paceline.signal.clean.clean_rr`, and
pass its ``adjacent`` mask so that successive differences are only taken between
beats that really followed each other.

References
----------
Task Force of the European Society of Cardiology and the North American Society of
Pacing and Electrophysiology. Heart rate variability: standards of measurement,
physiological interpretation and clinical use. Circulation 1996;93(5):1043-1065.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import InputShapeError, InsufficientDataError, ParameterError
from paceline.signal.timebase import (
    BoolArray,
    FloatArray,
    IntArray,
    TimeLike,
    as_epoch_us,
    check_sorted,
    grid_cells,
    scalar_us,
    window_slice,
)

#: Successive-difference threshold of pNN50, in ms (Task Force 1996).
NN50_MS: Final = 50.0
#: Short-term recording length recommended by the Task Force (1996), in seconds.
SHORT_TERM_S: Final = 300.0


def _intervals(rr_ms: npt.ArrayLike) -> FloatArray:
    return np.asarray(rr_ms, dtype=np.float64).reshape(-1)


def _stamped(
    time: npt.ArrayLike, rr_ms: npt.ArrayLike, start: TimeLike, end: TimeLike
) -> tuple[IntArray, FloatArray, int, int]:
    """Checked time stamps (epoch µs, sorted), intervals of the same length, window ends."""
    time_us = as_epoch_us(time)
    rr = _intervals(rr_ms)
    if rr.shape[0] != time_us.shape[0]:
        raise InputShapeError("rr_ms", time_us.shape[0], rr.shape[0])
    check_sorted(time_us)
    return time_us, rr, scalar_us(start, "start"), scalar_us(end, "end")


def _adjacency(adjacent: npt.ArrayLike | None, n_intervals: int) -> BoolArray | None:
    """The adjacency of successive pairs (one fewer than the intervals), checked; None if not given."""
    if adjacent is None:
        return None
    adj = np.asarray(adjacent, dtype=np.bool_).reshape(-1)
    if adj.shape[0] != max(n_intervals - 1, 0):
        raise InputShapeError("adjacent", max(n_intervals - 1, 0), adj.shape[0])
    return adj


def _successive(rr: FloatArray, adjacent: npt.ArrayLike | None) -> FloatArray:
    """Successive differences ``RR_{i+1} - RR_i`` over adjacent pairs only."""
    diff = np.diff(rr)
    adj = _adjacency(adjacent, rr.shape[0])
    return diff if adj is None else diff[adj]


def _segment_sums(values: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """``sum(values[lo_k:hi_k])`` for every k (0 for an empty range), via `np.add.reduceat`."""
    padded = np.append(values, 0.0)
    idx = np.empty(2 * lo.shape[0], dtype=np.intp)
    idx[0::2] = lo
    idx[1::2] = hi
    # Windows after the last value start at len(values) (len(values) + 1 for
    # arrays of successive pairs); the pad element answers for all of them.
    np.minimum(idx, values.shape[0], out=idx)
    out = np.add.reduceat(padded, idx)[0::2]
    out[hi <= lo] = 0.0
    return np.asarray(out, dtype=np.float64)


def mean_nn(rr_ms: npt.ArrayLike) -> float:
    """Mean NN interval in ms: ``mean(RR)`` (Task Force 1996).

    Raises
    ------
    InsufficientDataError
        With no interval.
    """
    rr = _intervals(rr_ms)
    if rr.shape[0] < 1:
        raise InsufficientDataError("mean NN", 1, 0)
    return float(rr.mean())


def sdnn(rr_ms: npt.ArrayLike) -> float:
    """Standard deviation of NN intervals in ms (Task Force 1996).

    ``SDNN = sqrt( sum_i (RR_i - mean(RR))^2 / (N - 1) )`` — the sample standard
    deviation, as Kubios and NeuroKit2 compute it.

    Raises
    ------
    InsufficientDataError
        With fewer than two intervals.
    """
    rr = _intervals(rr_ms)
    if rr.shape[0] < 2:
        raise InsufficientDataError("SDNN", 2, rr.shape[0])
    return float(rr.std(ddof=1))


def rmssd(rr_ms: npt.ArrayLike, *, adjacent: npt.ArrayLike | None = None) -> float:
    """Root mean square of successive NN differences in ms (Task Force 1996).

    ``RMSSD = sqrt( mean_i (RR_{i+1} - RR_i)^2 )`` over the pairs where ``adjacent``
    is True (all pairs when it is None).

    Parameters
    ----------
    rr_ms
        NN intervals, ms.
    adjacent
        Optional boolean of length ``N - 1``: True where interval ``i + 1`` directly
        follows interval ``i``.

    Raises
    ------
    InsufficientDataError
        With no successive pair.
    """
    diff = _successive(_intervals(rr_ms), adjacent)
    if diff.shape[0] < 1:
        raise InsufficientDataError("RMSSD (successive pairs)", 1, 0)
    return float(np.sqrt(np.mean(diff * diff)))


def pnn50(rr_ms: npt.ArrayLike, *, adjacent: npt.ArrayLike | None = None) -> float:
    """Percentage of successive NN differences larger than 50 ms (Task Force 1996).

    ``pNN50 = 100 * NN50 / N`` where ``NN50 = #{i : |RR_{i+1} - RR_i| > 50 ms}`` over
    adjacent pairs and ``N`` is the number of NN intervals — the Task Force's
    definition ("NN50 count divided by the total number of all NN intervals"), which
    NeuroKit2 follows too.

    Raises
    ------
    InsufficientDataError
        With no successive pair.
    """
    rr = _intervals(rr_ms)
    diff = _successive(rr, adjacent)
    if diff.shape[0] < 1:
        raise InsufficientDataError("pNN50 (successive pairs)", 1, 0)
    return float(100.0 * np.count_nonzero(np.abs(diff) > NN50_MS) / rr.shape[0])


@dataclass(frozen=True, slots=True)
class HRVTime:
    """Time-domain HRV of one series of NN intervals (Task Force 1996)."""

    n_intervals: int
    n_successive: int
    mean_nn_ms: float
    sdnn_ms: float
    rmssd_ms: float
    pnn50_pct: float

    @property
    def mean_hr_bpm(self) -> float:
        """Mean heart rate implied by the mean NN interval: ``60000 / mean NN``."""
        return 60_000.0 / self.mean_nn_ms


def time_domain(rr_ms: npt.ArrayLike, *, adjacent: npt.ArrayLike | None = None) -> HRVTime:
    """Mean NN, SDNN, RMSSD and pNN50 of one NN series in a single pass (Task Force 1996).

    Same formulas as `mean_nn`, `sdnn`, `rmssd` and `pnn50`.

    Raises
    ------
    InsufficientDataError
        With fewer than two intervals or no adjacent pair.
    """
    rr = _intervals(rr_ms)
    n = rr.shape[0]
    if n < 2:
        raise InsufficientDataError("HRV time domain", 2, n)
    diff = _successive(rr, adjacent)
    if diff.shape[0] < 1:
        raise InsufficientDataError("HRV time domain (successive pairs)", 1, 0)
    mean = float(rr.mean())
    dev = rr - mean
    sq = diff * diff
    return HRVTime(
        n_intervals=n,
        n_successive=int(diff.shape[0]),
        mean_nn_ms=mean,
        sdnn_ms=math.sqrt(float(np.sum(dev * dev)) / (n - 1)),
        rmssd_ms=math.sqrt(float(sq.mean())),
        pnn50_pct=100.0 * np.count_nonzero(sq > NN50_MS * NN50_MS) / n,
    )


def between(
    time: npt.ArrayLike,
    rr_ms: npt.ArrayLike,
    start: TimeLike,
    end: TimeLike,
    *,
    adjacent: npt.ArrayLike | None = None,
) -> HRVTime:
    """Time-domain HRV of the intervals stamped in ``[start, end)``: a night, a morning.

    Successive pairs count only if both intervals lie in the window (and are adjacent).

    Raises
    ------
    InsufficientDataError
        With fewer than two intervals or no adjacent pair in the window.
    """
    time_us, rr, start_us, end_us = _stamped(time, rr_ms, start, end)
    sl = window_slice(time_us, start_us, end_us)
    full = _adjacency(adjacent, rr.shape[0])
    adj = None if full is None else full[sl.start : max(sl.stop - 1, sl.start)]
    return time_domain(rr[sl], adjacent=adj)


@dataclass(frozen=True, slots=True)
class HRVWindows:
    """Time-domain HRV per fixed window; NaN where a window has too few intervals."""

    start_us: IntArray
    n_intervals: IntArray
    mean_nn_ms: FloatArray
    sdnn_ms: FloatArray
    rmssd_ms: FloatArray
    pnn50_pct: FloatArray


def windows(
    time: npt.ArrayLike,
    rr_ms: npt.ArrayLike,
    *,
    start: TimeLike,
    end: TimeLike,
    window_s: float = SHORT_TERM_S,
    adjacent: npt.ArrayLike | None = None,
    min_intervals: int = 2,
) -> HRVWindows:
    """Time-domain HRV in consecutive fixed windows (5 min by default, Task Force 1996).

    Interval ``i`` belongs to window ``floor((t_i - start) / window_s)``. In each window
    the formulas of `time_domain` apply to its own intervals; a successive pair counts
    only if both intervals lie in the same window. Vectorised with `numpy.bincount`.

    Parameters
    ----------
    time
        Sorted interval time stamps (int64 epoch µs or ``datetime64``).
    rr_ms
        NN intervals, ms.
    start, end
        Epoch µs; windows tile ``[start, end)`` and `window_s` must divide it.
    window_s
        Window length in seconds.
    adjacent
        Optional adjacency of successive intervals (length ``N - 1``).
    min_intervals
        Windows with fewer intervals (or no adjacent pair) get NaN statistics.
    """
    if min_intervals < 2:
        raise ParameterError("min_intervals", min_intervals, "must be >= 2")
    time_us, rr, start_us, end_us = _stamped(time, rr_ms, start, end)
    window_us, n_win = grid_cells(start_us, end_us, window_s)
    given = _adjacency(adjacent, rr.shape[0])
    adj_full = np.ones(max(rr.shape[0] - 1, 0), dtype=np.bool_) if given is None else given
    sl = window_slice(time_us, start_us, end_us)
    t = time_us[sl]
    x = rr[sl]
    adj = adj_full[sl.start : max(sl.stop - 1, sl.start)]
    # t is sorted, so window k holds intervals [lo_k, hi_k) and the successive pairs
    # inside it are [lo_k, hi_k - 1) in pair numbering (pair j joins j and j + 1).
    # Window sums come from one `np.add.reduceat` each.
    bounds = np.searchsorted(t, start_us + np.arange(n_win + 1, dtype=np.int64) * window_us)
    lo, hi = bounds[:-1], bounds[1:]
    count = hi - lo
    total = _segment_sums(x, lo, hi)
    mean = np.full(n_win, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    dev = x - np.repeat(np.where(count > 0, mean, 0.0), count)
    ss = _segment_sums(dev * dev, lo, hi)
    d = np.diff(x)
    sq_d = np.where(adj, d * d, 0.0)
    pair_hi = np.maximum(hi - 1, lo)
    n_pairs = _segment_sums(adj.astype(np.float64), lo, pair_hi)
    sq = _segment_sums(sq_d, lo, pair_hi)
    n50 = _segment_sums((sq_d > NN50_MS * NN50_MS).astype(np.float64), lo, pair_hi)
    ok = (count >= min_intervals) & (n_pairs > 0)
    sd = np.full(n_win, np.nan)
    np.divide(ss, count - 1, out=sd, where=ok)
    rm = np.full(n_win, np.nan)
    np.divide(sq, n_pairs, out=rm, where=ok)
    pn = np.full(n_win, np.nan)
    np.divide(100.0 * n50, count, out=pn, where=ok)
    mean[~ok] = np.nan
    starts = start_us + np.arange(n_win, dtype=np.int64) * window_us
    return HRVWindows(
        start_us=starts,
        n_intervals=np.asarray(count, dtype=np.int64),
        mean_nn_ms=mean,
        sdnn_ms=np.sqrt(sd),
        rmssd_ms=np.sqrt(rm),
        pnn50_pct=pn,
    )


__all__ = [
    "NN50_MS",
    "SHORT_TERM_S",
    "HRVTime",
    "HRVWindows",
    "between",
    "mean_nn",
    "pnn50",
    "rmssd",
    "sdnn",
    "time_domain",
    "windows",
]
