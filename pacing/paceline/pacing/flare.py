"""The flare-risk score for the next 48 h, and the usual pain level it and flares are measured by.

The usual level is the median pain of days t-16 … t-3, so that the last two
days cannot hide their own rise. The flag rules built on it (a flare episode,
flare risk above threshold) are `paceline.pacing.rules.flare`.

The risk score is a logistic model whose weights were fitted (then rounded) on
a development cohort (`simulate.cohort`, seed 11, `bench/flare_risk.py --fit`)
and are validated on a different seed by `bench/flare_risk.py`, which fails
unless every term adds to the AUC. Its log-odds add, each only when positive:

=====================  ==============================================================  ======
factor                 value                                                           weight
=====================  ==============================================================  ======
load spike             the largest load excess over chronic load of the last 3 days     0.9
                       (the spikes whose 0-48 h response can still reach the next day)
acute:chronic ratio    rolling 7-day over 28-day mean load minus 1 (Gabbett 2016)       2.3
pain trend             least-squares slope of pain over the last 5 days, points/day    4.7
pain above usual       mean pain of the last 2 days minus the usual level              0.8
sleep deficit          usual sleep quality minus the mean of the last 2 nights         1.2
=====================  ==============================================================  ======

with an intercept of -4.6 (about 1 % over 48 h with no factor present). Poor
sleep precedes next-day pain in people with chronic pain (Affleck et al. 1996),
and a flare's pain builds up over the days before it (the cohort's flares do).
The patient's personal load → pain response (`paceline.pacing.response`,
shrunk toward a prior of 1 point per doubling of load by the normal-normal
posterior mean) is reported with the score for the clinician, but it is not a
term of the score: multiplied into the load spike it lowered the validation
AUC (0.892 against 0.894), so it has not earned a weight.

References
----------
Affleck G, Urrows S, Tennen H, Higgins P, Abeles M. Sequential daily relations of
sleep, pain intensity, and attention to pain among women with fibromyalgia.
Pain 1996;68:363-368.
Gabbett TJ. The training-injury prevention paradox: should athletes be training
smarter and harder? Br J Sports Med 2016;50:273-280.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from paceline.pacing.evidence import JSON, num
from paceline.pacing.load import FloatArray, load_state
from paceline.pacing.response import PainResponse, ResponseStatus, estimate

# The usual pain level (also what a flare is measured against).
USUAL_FIRST_LAG: Final = 16
USUAL_LAST_LAG: Final = 3
MIN_USUAL_DAYS: Final = 5

# Risk model: weights fixed a priori (see the module docstring).
INTERCEPT: Final = -4.6
W_LOAD_SPIKE: Final = 0.9
W_ACWR: Final = 2.3
W_PAIN_TREND: Final = 4.7
W_PAIN_ABOVE_USUAL: Final = 0.8
W_SLEEP_DEFICIT: Final = 1.2
PRIOR_RESPONSE: Final = 1.0
PRIOR_RESPONSE_SD: Final = 1.0
SPIKE_DAYS: Final = 3
TREND_DAYS: Final = 5
RECENT_DAYS: Final = 2
MODEL: Final = "flare-risk-v2"


def usual(series: FloatArray, t: int, *, last_lag: int = USUAL_LAST_LAG) -> float:
    """Median of days t-16 … t-`last_lag` (NaN with fewer than 5 known days)."""
    window = series[max(0, t - USUAL_FIRST_LAG) : max(0, t - last_lag + 1)]
    known = window[~np.isnan(window)]
    return float(np.median(known)) if known.size >= MIN_USUAL_DAYS else math.nan


@dataclass(frozen=True)
class Factor:
    """One contribution to the flare-risk log-odds, with the number behind it."""

    name: str
    value: float
    contribution: float
    text: str


@dataclass(frozen=True)
class FlareRisk:
    """The probability of a flare starting in the next 48 h, and why."""

    score: float
    log_odds: float
    factors: tuple[Factor, ...]

    @property
    def contributing(self) -> tuple[Factor, ...]:
        """Factors that raised the risk, largest first."""
        return tuple(f for f in self.factors if f.contribution > 0)

    def as_json(self) -> dict[str, JSON]:
        """Evidence form (stored with the flag and the daily score)."""
        return {
            "model": MODEL,
            "score": num(self.score, 3),
            "log_odds": num(self.log_odds, 3),
            "factors": [
                {
                    "name": f.name,
                    "value": num(f.value),
                    "contribution": num(f.contribution, 3),
                    "text": f.text,
                }
                for f in self.factors
            ],
        }


def shrunk_response(r: PainResponse) -> float:
    """Personal response shrunk toward the prior by precision (normal-normal posterior mean)."""
    if r.status is not ResponseStatus.ESTIMATED or r.cumulative is None or not r.cumulative_se:
        return PRIOR_RESPONSE
    w_data, w_prior = 1.0 / r.cumulative_se**2, 1.0 / PRIOR_RESPONSE_SD**2
    return (w_data * r.cumulative + w_prior * PRIOR_RESPONSE) / (w_data + w_prior)


def _last(series: FloatArray, t: int, n: int) -> FloatArray:
    window = series[max(0, t - n + 1) : t + 1]
    return window[~np.isnan(window)]


def _slope(series: FloatArray, t: int, n: int) -> float:
    lo = max(0, t - n + 1)
    y = series[lo : t + 1]
    x = np.arange(y.shape[0], dtype=float)
    ok = ~np.isnan(y)
    if ok.sum() < 3:
        return 0.0
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def flare_risk(
    excess: FloatArray,
    ratio_series: FloatArray,
    pain: FloatArray,
    sleep: FloatArray,
    t: int,
) -> FlareRisk:
    """Flare risk for the 48 h after day `t`, from data up to and including day `t`.

    `excess` and `ratio_series` are `LoadState.excess` and `LoadState.ratio`
    (both causal: day t uses loads up to day t only).
    """
    spikes = _last(excess, t, SPIKE_DAYS)
    spike = float(spikes.max()) if spikes.size else 0.0
    ratio = float(ratio_series[t])
    acwr_excess = 0.0 if math.isnan(ratio) else max(ratio - 1.0, 0.0)
    trend = max(_slope(pain, t, TREND_DAYS), 0.0)
    usual_pain = usual(pain, t)
    recent_pain = _last(pain, t, RECENT_DAYS)
    above = (
        max(float(recent_pain.mean()) - usual_pain, 0.0)
        if recent_pain.size and not math.isnan(usual_pain)
        else 0.0
    )
    usual_sleep = usual(sleep, t, last_lag=RECENT_DAYS)
    recent_sleep = _last(sleep, t, RECENT_DAYS)
    deficit = (
        max(usual_sleep - float(recent_sleep.mean()), 0.0)
        if recent_sleep.size and not math.isnan(usual_sleep)
        else 0.0
    )
    factors = [
        Factor(
            "load_spike",
            spike,
            W_LOAD_SPIKE * spike,
            f"load in the last {SPIKE_DAYS} days up to {1 + spike:.1f}× your usual",
        ),
        Factor(
            "acute_chronic_ratio",
            acwr_excess,
            W_ACWR * acwr_excess,
            "not yet known"
            if math.isnan(ratio)
            else f"last week's load {ratio:.2f}× your 4-week load",
        ),
        Factor("pain_trend", trend, W_PAIN_TREND * trend, f"pain rising {trend:.1f} points a day"),
        Factor(
            "pain_above_usual",
            above,
            W_PAIN_ABOVE_USUAL * above,
            f"pain {above:.1f} points above your usual",
        ),
        Factor(
            "sleep_deficit",
            deficit,
            W_SLEEP_DEFICIT * deficit,
            f"sleep {deficit:.1f} points below your usual",
        ),
    ]
    factors.sort(key=lambda f: f.contribution, reverse=True)
    z = INTERCEPT + sum(f.contribution for f in factors)
    return FlareRisk(1.0 / (1.0 + math.exp(-z)), z, tuple(factors))


def risk_series(
    loads: FloatArray, pain: FloatArray, sleep: FloatArray, first: int = 0
) -> list[FlareRisk]:
    """Flare risk for each day from `first` on, each from the data known on that day only."""
    state = load_state(loads)
    excess, ratio = state.excess, state.ratio
    return [flare_risk(excess, ratio, pain, sleep, t) for t in range(first, loads.shape[0])]


def personal_response(excess: FloatArray, pain: FloatArray) -> tuple[PainResponse, float]:
    """The patient's load → pain response and its shrunk value (shown, not scored)."""
    r = estimate(excess, pain)
    return r, shrunk_response(r)
