"""Steps: per-minute counts (cadence), daily totals and a cadence-band step load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import InputShapeError, ParameterError
from paceline.signal.timebase import (
    US_PER_MIN,
    FloatArray,
    as_epoch_us,
    check_sorted,
)

#: Cadence band edges in steps/min: < 60, 60-99 and >= 100 (Tudor-Locke et al. 2018).
CADENCE_BANDS: Final = (60.0, 100.0)
#: Step-load weight of a minute in each band (1-59, 60-99, >= 100 steps/min).
CADENCE_WEIGHTS: Final = (1.0, 2.0, 3.0)


def per_minute(
    time: npt.ArrayLike,
    steps: npt.ArrayLike,
    *,
    start_us: int,
    n_minutes: int,
) -> FloatArray:
    """Steps in each minute of ``[start_us, start_us + n_minutes min)``; NaN for no row.

    A step row holds the steps of the interval *ending* at its time stamp, so a row at
    ``t`` goes to minute ``ceil((t - start) / 1 min) - 1``: a row stamped exactly on a
    minute boundary closes the minute before it. Several rows in one minute add up.
    Rows coarser than a minute put their whole count in the minute they end in, so
    cadence needs rows at one-minute resolution or finer.
    """
    if n_minutes < 1:
        raise ParameterError("n_minutes", n_minutes, "must be >= 1")
    t = as_epoch_us(time)
    check_sorted(t)
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    if s.shape[0] != t.shape[0]:
        raise InputShapeError("steps", t.shape[0], s.shape[0])
    idx = (t - start_us - 1) // US_PER_MIN
    inside = (idx >= 0) & (idx < n_minutes) & ~np.isnan(s) & (s >= 0)
    idx = idx[inside]
    out = np.asarray(np.bincount(idx, weights=s[inside], minlength=n_minutes), dtype=np.float64)
    seen = np.bincount(idx, minlength=n_minutes) > 0
    out[~seen] = np.nan
    return out


def total(steps_per_minute: npt.ArrayLike) -> int:
    """Total steps, ignoring minutes without data."""
    x = np.asarray(steps_per_minute, dtype=np.float64)
    return round(float(np.nansum(x)))


def cadence_band(
    steps_per_minute: npt.ArrayLike, bands: Sequence[float] = CADENCE_BANDS
) -> npt.NDArray[np.int8]:
    """Cadence band of each minute: 0 no steps, 1 below ``bands[0]``, 2 …, -1 no data.

    With the default edges: 0 = 0 steps, 1 = 1-59, 2 = 60-99, 3 = >= 100 steps/min.
    Around 100 steps/min walking reaches moderate intensity (about 3 METs) in adults
    (Tudor-Locke et al. 2018); 60-99 steps/min is purposeful but slow walking.

    References
    ----------
    Tudor-Locke C et al. Walking cadence (steps/min) and intensity in 21-40 year olds:
    CADENCE-adults. Int J Behav Nutr Phys Act 2019;16:8. Tudor-Locke C et al. How fast is
    fast enough? Walking cadence (steps/min) as a practical estimate of intensity in
    adults: a narrative review. Br J Sports Med 2018;52(12):776-788.
    """
    edges = np.asarray(bands, dtype=np.float64)
    if edges.shape[0] < 1 or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
        raise ParameterError("bands", tuple(bands), "need ascending positive cadences")
    x = np.asarray(steps_per_minute, dtype=np.float64).reshape(-1)
    band = (np.searchsorted(edges, x, side="right") + 1).astype(np.int8)
    band[x <= 0] = 0
    band[np.isnan(x)] = -1
    return band


def step_load(
    steps_per_minute: npt.ArrayLike,
    *,
    bands: Sequence[float] = CADENCE_BANDS,
    weights: Sequence[float] = CADENCE_WEIGHTS,
) -> float:
    """Step-based load for bands that count steps but measure no heart rate.

    ``load = sum_k w_k * minutes in cadence band k`` — the structure of Edwards' zone
    TRIMP (Edwards 1993) with cadence bands (Tudor-Locke et al. 2018) standing in for
    heart-rate zones: by default 1-59 steps/min weighs 1, 60-99 weighs 2 and >= 100
    weighs 3; minutes without steps or without data weigh 0.

    Parameters
    ----------
    steps_per_minute
        Steps in each minute (NaN where no data), e.g. from `per_minute`.
    bands
        Ascending cadence edges, steps/min.
    weights
        One weight per band above zero (``len(bands) + 1`` values).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[0] != len(bands) + 1:
        raise ParameterError("weights", tuple(weights), f"need {len(bands) + 1} values")
    band = cadence_band(steps_per_minute, bands)
    table = np.concatenate(([0.0], w))
    return float(table[band[band >= 0]].sum())


__all__ = [
    "CADENCE_BANDS",
    "CADENCE_WEIGHTS",
    "cadence_band",
    "per_minute",
    "step_load",
    "total",
]
