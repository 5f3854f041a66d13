"""Flares: detecting a flare episode in the diary, and the flare-risk score for the next 48 h.

A flare is pain at least 2 points (the clinically important change, Farrar et
al. 2001) above the patient's usual level — the median of days t-16 … t-3, so
the last two days cannot hide their own rise — on 2 consecutive diary days; it
lasts while pain stays at least 1 point above usual.

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
Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes
in chronic pain intensity measured on an 11-point numerical pain rating scale.
Pain 2001;94:149-158.
Affleck G, Urrows S, Tennen H, Higgins P, Abeles M. Sequential daily relations of
sleep, pain intensity, and attention to pain among women with fibromyalgia.
Pain 1996;68:363-368.
Gabbett TJ. The training-injury prevention paradox: should athletes be training
smarter and harder? Br J Sports Med 2016;50:273-280.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np

from paceline.pacing.evidence import JSON, num
from paceline.pacing.flags import DaySignal, Flag, RuleSpec, Severity
from paceline.pacing.history import History
from paceline.pacing.load import FloatArray, load_state
from paceline.pacing.plan import FlareOnset
from paceline.pacing.response import PainResponse, ResponseStatus, estimate

# Flare detection.
FLARE_RISE: Final = 2.0
FLARE_HOLD_RISE: Final = 1.0
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
MODEL: Final = "flare-risk-v1"

RISK_ENTER: Final = 0.35
RISK_HOLD: Final = 0.25
RISK_CRITICAL: Final = 0.6

FLARE_EPISODE = RuleSpec(
    "flare.episode",
    "Pain flare: pain ≥ 2 points above the usual level on consecutive days",
    min_on_days=2,
    min_off_days=2,
)
FLARE_RISK = RuleSpec(
    "flare.risk_high",
    "Flare risk over the next 48 h above threshold",
    min_on_days=1,
    min_off_days=2,
)


def usual(series: FloatArray, t: int, *, last_lag: int = USUAL_LAST_LAG) -> float:
    """Median of days t-16 … t-`last_lag` (NaN with fewer than 5 known days)."""
    window = series[max(0, t - USUAL_FIRST_LAG) : max(0, t - last_lag + 1)]
    known = window[~np.isnan(window)]
    return float(np.median(known)) if known.size >= MIN_USUAL_DAYS else math.nan


def flare_signals(pain: FloatArray, days: Sequence[date], first: int = 0) -> list[DaySignal]:
    """Each diary day's pain (from day `first` on) against the usual level."""
    out = []
    for t in range(first, len(days)):
        d = days[t]
        ref = usual(pain, t)
        if math.isnan(pain[t]) or math.isnan(ref):
            out.append(DaySignal(d, None))
            continue
        rise = float(pain[t] - ref)
        out.append(
            DaySignal(
                d,
                enter=bool(rise >= FLARE_RISE),
                hold=bool(rise >= FLARE_HOLD_RISE),
                evidence={"pain": num(pain[t], 1), "usual": num(ref, 1), "rise": num(rise, 1)},
                thresholds={
                    "rise": FLARE_RISE,
                    "hold_rise": FLARE_HOLD_RISE,
                    "usual": f"median pain of days t-{USUAL_FIRST_LAG} to t-{USUAL_LAST_LAG}",
                },
            )
        )
    return out


def flare_episode(h: History) -> list[DaySignal]:
    """The flare rule over the days of a history the rules decide on."""
    return flare_signals(h.pain, [d.day for d in h.days], h.first)


def onsets(flags: Sequence[Flag]) -> list[FlareOnset]:
    """Flare episodes as the plan sees them: when each began and when it was confirmed."""
    return [FlareOnset(f.start, f.opened) for f in flags if f.rule_id == FLARE_EPISODE.rule_id]


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


def risk_high(h: History) -> list[DaySignal]:
    """The flare-risk rule on the days of a history the rules decide on."""
    excess, ratio = h.load.excess, h.load.ratio
    out = []
    for t, day in h.evaluated():
        r = flare_risk(excess, ratio, h.pain, h.sleep, t)
        d = day.day
        out.append(
            DaySignal(
                d,
                enter=r.score >= RISK_ENTER,
                hold=r.score >= RISK_HOLD,
                severity=Severity.CRITICAL if r.score >= RISK_CRITICAL else Severity.WARNING,
                evidence={
                    "score": num(r.score, 3),
                    "contributing": [f.text for f in r.contributing[:3]],
                },
                thresholds={"enter": RISK_ENTER, "hold": RISK_HOLD, "critical": RISK_CRITICAL},
            )
        )
    return out
