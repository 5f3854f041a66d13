"""Load over days: EWMA load, the rolling acute:chronic ratio, and Foster's monotony and strain.

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
# More than half the acute week and half the chronic window known before a ratio
# is given: fewer days make the means too noisy to compare.
MIN_ACUTE_DAYS: Final = 4
MIN_CHRONIC_DAYS: Final = 14
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
    """Rolling acute and chronic load per day and the acute:chronic workload ratio."""

    acute: FloatArray
    chronic: FloatArray
    ratio: FloatArray


def acute_chronic(
    load: npt.ArrayLike,
    *,
    acute_days: int = ACUTE_DAYS,
    chronic_days: int = CHRONIC_DAYS,
    min_acute_days: int = MIN_ACUTE_DAYS,
    min_chronic_days: int = MIN_CHRONIC_DAYS,
) -> AcuteChronic:
    """Acute:chronic workload ratio from rolling averages, as its thresholds were defined.

    ``acute_t`` is the mean load of the `acute_days` (7) days ending on day t,
    ``chronic_t`` the mean of the `chronic_days` (28) days ending on day t (the
    acute week included, the "coupled" ratio), and ``ACWR_t = acute_t /
    chronic_t``. The danger zone ACWR ≥ 1.5 and the 0.8-1.3 "sweet spot" come
    from this rolling-average form (Hulin et al. 2016; Gabbett 2016). The EWMA
    ratio of Williams et al. (2017) answers a jump more slowly (it needs about a
    2.6× sustained jump to reach 1.5), so those thresholds do not carry over to
    it. Here a week at twice the usual load reaches ``2 / (1 + 7/28) = 1.6``. Unknown (NaN) days are left out of both means,
    never counted as rest; a window with fewer than `min_acute_days` /
    `min_chronic_days` known days, or a chronic mean of 0, gives NaN.

    References
    ----------
    Hulin BT, Gabbett TJ, Lawson DW, Caputi P, Sampson JA. The acute:chronic workload
    ratio predicts injury: high chronic workload may decrease injury risk in elite
    rugby league players. Br J Sports Med 2016;50:231-236.
    Gabbett TJ. The training-injury prevention paradox: should athletes be training
    smarter and harder? Br J Sports Med 2016;50:273-280.
    """
    if acute_days >= chronic_days:
        raise ParameterError("acute_days", acute_days, f"must be shorter than {chronic_days}")
    if not 1 <= min_acute_days <= acute_days or not 1 <= min_chronic_days <= chronic_days:
        raise ParameterError(
            "min_acute_days/min_chronic_days",
            (min_acute_days, min_chronic_days),
            "each must be from 1 to its window",
        )
    x = _daily(load)
    acute = _rolling_mean(x, acute_days, min_acute_days)
    chronic = _rolling_mean(x, chronic_days, min_chronic_days)
    ratio = np.full(x.shape[0], np.nan)
    np.divide(acute, chronic, out=ratio, where=(chronic > 0) & ~np.isnan(acute))
    return AcuteChronic(acute=acute, chronic=chronic, ratio=ratio)


def _rolling_mean(x: FloatArray, window: int, min_known: int) -> FloatArray:
    """Mean of the known values of the `window` days ending on each day (NaN below `min_known`)."""
    # Each window is summed on its own (not as a difference of running sums), so a
    # day's value depends only on the days in its window, wherever the series
    # starts: an evaluation that reads a bounded window gets the same bits as one
    # that reads the whole history.
    padded = np.concatenate((np.full(window - 1, np.nan), x))
    windows = sliding_window_view(padded, window)
    known = ~np.isnan(windows)
    n = known.sum(axis=1)
    total = np.where(known, windows, 0.0).sum(axis=1)
    out = np.full(x.shape[0], np.nan)
    np.divide(total, n, out=out, where=n >= min_known)
    return out


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
    "MIN_ACUTE_DAYS",
    "MIN_CHRONIC_DAYS",
    "AcuteChronic",
    "Foster",
    "acute_chronic",
    "ewma",
    "monotony_strain",
]
