"""A patient's own load → pain response: how pain 0-48 h later follows load above their norm.

Distributed-lag regression (Almon 1965; Gasparrini et al. 2010 for its use with
daily health series) of each day's pain on the load excess of the same day and
the two days before::

    pain_t = a + b0 * x_t + b1 * x_{t-1} + b2 * x_{t-2} + e_t

where ``x_t = max(load_t / chronic_{t-1} - 1, 0)`` is how far the day's load
rose above the patient's own chronic (28-day EWMA) load (`paceline.pacing.load`).
The 0-48 h response is the mean ``(b0 + b1 + b2) / 3``: how many points higher
pain runs, on average over that day and the next two, after a day at double the
usual load (``x = 1``). Pain diaries are autocorrelated, so standard errors are
heteroskedasticity- and autocorrelation-consistent (Newey & West 1987, Bartlett
weights, 3 lags) and the interval uses Student's t.

References
----------
Almon S. The distributed lag between capital appropriations and expenditures.
Econometrica 1965;33:178-196.
Gasparrini A, Armstrong B, Kenward MG. Distributed lag non-linear models.
Stat Med 2010;29:2224-2234.
Newey WK, West KD. A simple, positive semi-definite, heteroskedasticity and
autocorrelation consistent covariance matrix. Econometrica 1987;55:703-708.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
from scipy.stats import t as student_t

from paceline.pacing.evidence import JSON, num
from paceline.pacing.load import FloatArray

LAGS: Final = 2
#: Days with pain and all three lagged loads known before an estimate is given.
MIN_ROWS: Final = 21
#: Days with load at least this far above chronic (x ≥ 0.1) needed to learn from.
SPIKE_EXCESS: Final = 0.1
MIN_SPIKE_DAYS: Final = 3
HAC_LAGS: Final = 3


class ResponseStatus(StrEnum):
    """Whether the personal response could be estimated yet."""

    NOT_ENOUGH_DATA = "not_enough_data"
    ESTIMATED = "estimated"


@dataclass(frozen=True)
class PainResponse:
    """The estimated 0-48 h pain response to load above the patient's chronic load."""

    status: ResponseStatus
    rows: int
    spike_days: int
    lag_slopes: tuple[float, ...] | None
    cumulative: float | None
    cumulative_se: float | None
    ci95: tuple[float, float] | None
    message: str

    def as_json(self) -> dict[str, JSON]:
        """Evidence form."""
        return {
            "status": self.status.value,
            "rows": self.rows,
            "spike_days": self.spike_days,
            "lag_slopes": None if self.lag_slopes is None else [num(b) for b in self.lag_slopes],
            "cumulative": num(self.cumulative),
            "cumulative_se": num(self.cumulative_se),
            "ci95": None if self.ci95 is None else [num(self.ci95[0]), num(self.ci95[1])],
            "message": self.message,
        }


def design(excess: FloatArray, pain: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Rows ``[1, x_t, x_{t-1}, x_{t-2}]`` and pain ``y_t`` for days where all are known."""
    n = excess.shape[0]
    if n <= LAGS:
        return np.empty((0, LAGS + 2)), np.empty(0)
    cols = [excess[LAGS - k : n - k] for k in range(LAGS + 1)]
    x = np.column_stack([np.ones(n - LAGS), *cols])
    y = pain[LAGS:]
    ok = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    return x[ok], y[ok]


def newey_west(x: FloatArray, resid: FloatArray, lags: int) -> FloatArray:
    """HAC covariance of OLS coefficients with Bartlett weights (Newey & West 1987)."""
    xe = x * resid[:, None]
    s = xe.T @ xe
    for lag in range(1, min(lags, x.shape[0] - 1) + 1):
        w = 1.0 - lag / (lags + 1.0)
        g = xe[lag:].T @ xe[:-lag]
        s += w * (g + g.T)
    bread = np.linalg.pinv(x.T @ x)
    cov: FloatArray = bread @ s @ bread
    return cov


def estimate(excess: FloatArray, pain: FloatArray) -> PainResponse:
    """Estimate the response from aligned daily excess load and pain (NaN where unknown)."""
    x, y = design(excess, pain)
    rows = int(y.shape[0])
    spikes = int(np.sum(excess[~np.isnan(excess)] >= SPIKE_EXCESS))
    short = None
    if rows < MIN_ROWS or spikes < MIN_SPIKE_DAYS:
        short = (
            f"Not enough data yet: {rows} of {MIN_ROWS} days with load and pain,"
            f" {spikes} of {MIN_SPIKE_DAYS} days with load clearly above usual."
        )
    elif np.linalg.matrix_rank(x) < x.shape[1]:
        short = "Not enough data yet: the load has not varied enough to see how pain follows it."
    if short is not None:
        return PainResponse(
            ResponseStatus.NOT_ENOUGH_DATA, rows, spikes, None, None, None, None, short
        )
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    cov = newey_west(x, resid, HAC_LAGS)
    c = np.array([0.0] + [1.0 / (LAGS + 1)] * (LAGS + 1))
    cumulative = float(c @ beta)
    se = math.sqrt(max(float(c @ cov @ c), 0.0))
    q = float(student_t.ppf(0.975, max(rows - x.shape[1], 1)))
    lo, hi = cumulative - q * se, cumulative + q * se
    return PainResponse(
        ResponseStatus.ESTIMATED,
        rows,
        spikes,
        tuple(float(b) for b in beta[1:]),
        cumulative,
        se,
        (lo, hi),
        f"After a day at double your usual load, pain over the next 48 h runs"
        f" {cumulative:+.1f} points from usual (95 % interval {lo:+.1f} to {hi:+.1f};"
        f" {rows} days).",
    )
