"""Load over days: EWMA acute and chronic load, their ratio, and Foster's monotony and strain.

Days without data are NaN and are *not* rest days: an unworn band says nothing about
activity, so a missing day leaves every moving average where it was instead of
pulling it toward zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as scipy_signal

from paceline.signal.errors import ParameterError
from paceline.signal.timebase import FloatArray

ACUTE_DAYS: Final = 7
CHRONIC_DAYS: Final = 28
FOSTER_WINDOW_DAYS: Final = 7


def _daily(load: npt.ArrayLike) -> FloatArray:
    x = np.asarray(load, dtype=np.float64).reshape(-1)
    if np.any(x[~np.isnan(x)] < 0):
        raise ParameterError("load", "negative values", "daily load must be >= 0 or NaN")
    return x


def ewma(load: npt.ArrayLike, *, span_days: int, initial: float | None = None) -> FloatArray:
    """Exponentially weighted moving average of daily load (Williams et al. 2017).

    ``EWMA_t = lambda * L_t + (1 - lambda) * EWMA_{t-1}`` with
    ``lambda = 2 / (N + 1)`` and ``N = span_days``. ``EWMA`` starts at `initial`
    (default: the first known day's load, so the average starts neutral). A NaN day
    (no data) skips the update and carries the previous value; days before the first
    known one are NaN. Computed with `scipy.signal.lfilter` over the known days.

    References
    ----------
    Williams S, West S, Cross MJ, Stokes KA. Better way to determine the acute:chronic
    workload ratio? Br J Sports Med 2017;51(3):209-210.
    """
    if span_days < 1:
        raise ParameterError("span_days", span_days, "must be >= 1")
    x = _daily(load)
    out = np.full(x.shape[0], np.nan)
    known = np.flatnonzero(~np.isnan(x))
    if known.shape[0] == 0:
        return out
    lam = 2.0 / (span_days + 1.0)
    values = x[known]
    start = float(values[0]) if initial is None else float(initial)
    smoothed, _ = scipy_signal.lfilter(
        [lam], [1.0, -(1.0 - lam)], values, zi=np.array([(1.0 - lam) * start])
    )
    # Carry each known day's value forward over the unknown days after it.
    owner = np.searchsorted(known, np.arange(x.shape[0]), side="right") - 1
    has = owner >= 0
    out[has] = np.asarray(smoothed, dtype=np.float64)[owner[has]]
    return out


@dataclass(frozen=True, slots=True)
class AcuteChronic:
    """EWMA acute and chronic load per day and the acute:chronic workload ratio."""

    acute: FloatArray
    chronic: FloatArray
    ratio: FloatArray


def acute_chronic(
    load: npt.ArrayLike,
    *,
    acute_days: int = ACUTE_DAYS,
    chronic_days: int = CHRONIC_DAYS,
) -> AcuteChronic:
    """Acute (7-day) and chronic (28-day) EWMA load and their ratio (Williams et al. 2017).

    ``ACWR_t = EWMA_acute_t / EWMA_chronic_t``; NaN where the chronic load is 0 or
    unknown. A ratio well above 1 means load is rising faster than the person has been
    used to — the "boom" side of a boom-bust cycle.

    References
    ----------
    Williams S et al. Br J Sports Med 2017;51(3):209-210.
    """
    if acute_days >= chronic_days:
        raise ParameterError("acute_days", acute_days, f"must be shorter than {chronic_days}")
    acute = ewma(load, span_days=acute_days)
    chronic = ewma(load, span_days=chronic_days)
    ratio = np.full(acute.shape[0], np.nan)
    np.divide(acute, chronic, out=ratio, where=chronic > 0)
    return AcuteChronic(acute=acute, chronic=chronic, ratio=ratio)


@dataclass(frozen=True, slots=True)
class Foster:
    """Foster's weekly load, monotony and strain, per day (window ending that day)."""

    weekly_load: FloatArray
    monotony: FloatArray
    strain: FloatArray


def monotony_strain(
    load: npt.ArrayLike,
    *,
    window_days: int = FOSTER_WINDOW_DAYS,
    min_days: int | None = None,
    ddof: int = 0,
) -> Foster:
    """Training monotony and strain over a rolling week (Foster 1998).

    ``monotony = mean(L) / sd(L)`` and ``strain = weekly load * monotony`` over the
    `window_days` days ending on each day, where ``weekly load = sum(L)``. With
    `min_days` below the window, missing days are allowed and the weekly load is
    estimated as ``mean(L) * window_days``; windows with fewer known days are NaN.
    ``sd`` uses `ddof` (0: the week is the whole population). Monotony is ``inf`` when
    every known day carries the same positive load and NaN when they are all zero.

    References
    ----------
    Foster C. Monitoring training in athletes with reference to overtraining syndrome.
    Med Sci Sports Exerc 1998;30(7):1164-1168.
    """
    need = window_days if min_days is None else min_days
    if window_days < 2 or not 2 <= need <= window_days or ddof not in (0, 1):
        raise ParameterError(
            "window_days/min_days/ddof",
            (window_days, min_days, ddof),
            "need window_days >= 2, 2 <= min_days <= window_days, ddof 0 or 1",
        )
    x = _daily(load)
    n = x.shape[0]
    weekly = np.full(n, np.nan)
    mono = np.full(n, np.nan)
    strain = np.full(n, np.nan)
    if n < window_days:
        return Foster(weekly, mono, strain)
    win = sliding_window_view(x, window_days)
    known = (~np.isnan(win)).sum(axis=1)
    ok = known >= need
    w = win[ok]
    k = known[ok]
    mean = np.nansum(w, axis=1) / k
    var = np.nansum((w - mean[:, None]) ** 2, axis=1) / (k - ddof)
    sd = np.sqrt(var)
    m = np.full(mean.shape[0], np.nan)
    np.divide(mean, sd, out=m, where=sd > 0)
    m[(sd == 0) & (mean > 0)] = np.inf
    wl = mean * window_days
    idx = np.flatnonzero(ok) + window_days - 1
    weekly[idx] = wl
    mono[idx] = m
    with np.errstate(invalid="ignore"):
        strain[idx] = wl * m
    return Foster(weekly, mono, strain)


__all__ = [
    "ACUTE_DAYS",
    "CHRONIC_DAYS",
    "FOSTER_WINDOW_DAYS",
    "AcuteChronic",
    "Foster",
    "acute_chronic",
    "ewma",
    "monotony_strain",
]
