"""The flare-risk score for the next 48 h, and the usual pain level it and flares are measured by.

The usual level is the median pain of days t-16 … t-3, so that the last two
days cannot hide their own rise. The flag rules built on it (a flare episode,
flare risk above threshold) are `paceline.pacing.rules.flare`.

The risk score (model v4) is a logistic model whose weights were fitted (then
rounded) on a development cohort (`simulate.cohort`, seed 11, every day from
day 28, `bench/flare_risk.py --fit`) and are validated on a different seed by
`bench/flare_risk.py`, which fails unless every factor adds to the AUC. Its
log-odds are the intercept (-4.34, about 1.3 % over 48 h with no factor) plus
five factors, each the sum of its terms' contributions:

=================  ===================================================================
factor             its terms (weights in `W_PAIN`, `W_LOAD_SPIKE` ...)
=================  ===================================================================
pain build-up      pain above the usual level today, yesterday and the day before,
                   piecewise linear per point (0-1, 1-2, 2-3, above 3): today +1.15,
                   +0.82, then -1.09 and -1.33; yesterday and the day before lower
                   it, most at 2-3 points. Today's pain above usual beyond what the
                   patient's own load response expects from the last three days'
                   loads, in the same pieces (+0.60 for its first point). The
                   highest pain above usual 3-6 days ago, in the same pieces
                   (-0.93 to -0.66 a point above 1): a flare just past. A rise of
                   1-2 points from the usual level after usual days is a flare's
                   build-up; pain at flare level already, or on the days before, is
                   a flare under way or just past, not one about to start (its
                   contribution is then negative)
pain trend         least-squares slope of pain over the last 5 days, 2.01 per
                   point a day (negative when pain falls)
no diary           no pain reported today (+1.11: the build-up cannot be seen)
sleep deficit      usual sleep quality minus that of the last four nights (0.53,
                   0.24, then -0.26 and -0.30: poor sleep three and four nights ago
                   is more often a flare's own, just past)
load spike         load excess over chronic load 1, 2 and 3 days ago (0.82, 1.70,
                   0.89 per unit of excess), and the larger excess of 1-2 days ago
                   times the patient's own load response (0.77); today's load
                   cannot show in the next 48 h yet (in the cohort a spike's flares
                   start 3-4 days later)
=================  ===================================================================

Poor sleep precedes next-day pain in people with chronic pain (Affleck et al.
1996), and a flare's pain builds up over the days before it (the cohort's
flares do). The acute:chronic ratio (Gabbett 2016) was a term of an earlier
model; with the lagged load excess in the model its fitted weight was
negative (collinear with the excess), so it is not scored. The patient's
personal load → pain response (`paceline.pacing.response`, over the last
`LOAD_RESPONSE_DAYS` days, shrunk toward a prior of 1 point per doubling of
load by the normal-normal posterior mean) is a term since v4: the same spike
weighs more for someone whose pain follows load closely, and pain that the
day's loads explain says less about a flare than pain they do not. It is
reported with the score for the clinician.

What v4 changed, on the development cohorts of `bench/alerts.py` (seeds
11-13, with the flag at 0.19/0.14/0.45 and the default alert policy): 84.3,
84.7 and 82.9 % of flare onsets preceded by a push within 48 h at 0.097-0.100
pushes per patient-day, where v3 (0.20) caught 80.9, 81.5 and 79.0 % at
0.091-0.094.

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

# Risk model: weights fitted on a development cohort (see the module docstring).
INTERCEPT: Final = -4.34
#: Log-odds per point of pain above the usual level on today, yesterday and the day
#: before, piecewise linear between 0, 1, 2 and 3 points (the last slope goes on above
#: 3): a rise of 1-2 points from the usual level is a flare's build-up, pain already at
#: flare level on the days before is a flare under way, not one about to start.
PAIN_KNOTS: Final = (0.0, 1.0, 2.0, 3.0)
W_PAIN: Final = (
    (1.15, 0.82, -1.09, -1.33),  # today
    (-0.42, -0.39, -1.87, -0.05),  # yesterday
    (-0.75, -1.34, -2.67, 0.70),  # the day before
)
#: Today's pain above the usual level beyond what the last three days' loads explain by
#: the patient's own response (`LOAD_RESPONSE_DAYS`), in the same pieces.
W_PAIN_UNEXPLAINED: Final = (0.60, -0.54, -0.93, 0.29)
#: The highest pain above usual 3-6 days ago, in the same pieces: a flare just past (a
#: new one rarely starts in the days after one).
W_RECENT_FLARE: Final = (0.12, -0.93, -0.66, -0.89)
RECENT_FLARE_LAGS: Final = range(3, 7)
W_PAIN_TREND: Final = 2.01
W_NO_DIARY: Final = 1.11
#: Sleep below the usual on the last four nights (most recent first).
W_SLEEP: Final = (0.53, 0.24, -0.26, -0.30)
#: Load excess over chronic load 1, 2 and 3 days ago (today's load cannot yet show in
#: the next 48 h: in the cohort a spike's flares start 3-4 days later).
W_LOAD_SPIKE: Final = (0.82, 1.70, 0.89)
#: The larger load excess of 1 and 2 days ago times the patient's own load -> pain
#: response: the same spike weighs more in someone whose pain follows load closely.
W_LOAD_RESPONSE: Final = 0.77
#: The personal response is estimated over the last 61 days, the engine's look-back, so
#: that a day scores the same from a stored state as from enrolment.
LOAD_RESPONSE_DAYS: Final = 61
#: A personal response from which the load-spike factor says that pain follows load
#: (half a point a day after a day at double the usual load).
FOLLOWS: Final = 0.5
PRIOR_RESPONSE: Final = 1.0
PRIOR_RESPONSE_SD: Final = 1.0
SPIKE_LAGS: Final = len(W_LOAD_SPIKE)
TREND_DAYS: Final = 5
MODEL: Final = "flare-risk-v4"


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
    #: The personal load -> pain response the score used, and its shrunk value.
    response: PainResponse
    shrunk_response: float

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


def _slope(series: FloatArray, t: int, n: int) -> float:
    lo = max(0, t - n + 1)
    y = series[lo : t + 1]
    x = np.arange(y.shape[0], dtype=float)
    ok = ~np.isnan(y)
    if ok.sum() < 3:
        return 0.0
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def _pain_terms(above: float) -> tuple[float, float, float, float]:
    """Pain above usual as the four pieces of `PAIN_KNOTS` (0 when unknown or below usual)."""
    lo = PAIN_KNOTS
    last = len(lo) - 1
    return tuple(  # type: ignore[return-value]
        max(above - k, 0.0) if i == last else min(max(above - k, 0.0), lo[i + 1] - k)
        for i, k in enumerate(lo)
    )


def _known(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def day_response(excess: FloatArray, pain: FloatArray, t: int) -> tuple[PainResponse, float]:
    """The personal response known on day `t` (its last `LOAD_RESPONSE_DAYS` days), and shrunk."""
    lo = max(0, t - LOAD_RESPONSE_DAYS + 1)
    return personal_response(excess[lo : t + 1], pain[lo : t + 1])


def _above(pain: FloatArray, t: int, k: int, usual_pain: float) -> float:
    """Pain above the usual level `k` days before `t` (NaN when unknown)."""
    return math.nan if t - k < 0 else float(pain[t - k]) - usual_pain


def _pieces(above: float) -> list[float]:
    return [0.0] * len(PAIN_KNOTS) if math.isnan(above) else list(_pain_terms(above))


def design(
    excess: FloatArray,
    pain: FloatArray,
    sleep: FloatArray,
    t: int,
    response: float,
    *,
    usual_pain: float | None = None,
) -> list[float]:
    """The model's inputs on day `t`, in the order of its weights (what `--fit` regresses on).

    Pain above usual today, yesterday and the day before as `PAIN_KNOTS` pieces
    (zeros when unknown); today's pain above usual beyond what `response` (the
    shrunk personal response, points per unit of excess on each of the three
    days after it) expects from the excess of today and the two days before; the
    highest pain above usual 3-6 days ago; the 5-day pain slope; no diary today;
    sleep below usual on the last four nights; load excess 1-3 days ago; and the
    larger excess of 1-2 days ago times `response`. `usual_pain` is `usual(pain, t)`
    when the caller has it already.
    """
    if usual_pain is None:
        usual_pain = usual(pain, t)
    pieces: list[float] = []
    for k in range(len(W_PAIN)):
        pieces += _pieces(_above(pain, t, k, usual_pain))
    lags = [0.0 if t - k < 0 else _known(float(excess[t - k])) for k in range(SPIKE_LAGS + 1)]
    expected = response * sum(lags[:3])
    pieces += _pieces(_above(pain, t, 0, usual_pain) - expected)
    past = [_above(pain, t, k, usual_pain) for k in RECENT_FLARE_LAGS]
    known_past = [a for a in past if not math.isnan(a)]
    pieces += _pieces(max(known_past) if known_past else math.nan)
    usual_sleep = usual(sleep, t, last_lag=2)
    below = [
        0.0 if t - k < 0 or math.isnan(usual_sleep) else _known(usual_sleep - float(sleep[t - k]))
        for k in range(len(W_SLEEP))
    ]
    no_diary = 1.0 if math.isnan(pain[t]) else 0.0
    spike = max(lags[1], lags[2])
    return [
        *pieces,
        _slope(pain, t, TREND_DAYS),
        no_diary,
        *below,
        *lags[1:],
        response * spike,
    ]


#: The weights in `design` order.
WEIGHTS: Final = (
    *(w for row in W_PAIN for w in row),
    *W_PAIN_UNEXPLAINED,
    *W_RECENT_FLARE,
    W_PAIN_TREND,
    W_NO_DIARY,
    *W_SLEEP,
    *W_LOAD_SPIKE,
    W_LOAD_RESPONSE,
)
#: Where each factor's inputs sit in `design` (the pain pieces are the build-up).
_N_PAIN: Final = (len(W_PAIN) + 2) * len(PAIN_KNOTS)
_TREND: Final = _N_PAIN
_NO_DIARY: Final = _N_PAIN + 1
_SLEEP: Final = slice(_N_PAIN + 2, _N_PAIN + 2 + len(W_SLEEP))
_LOAD: Final = slice(_N_PAIN + 2 + len(W_SLEEP), len(WEIGHTS))


def flare_risk(excess: FloatArray, pain: FloatArray, sleep: FloatArray, t: int) -> FlareRisk:
    """Flare risk for the 48 h after day `t`, from data up to and including day `t`.

    `excess` is `LoadState.excess` (causal: day t uses loads up to day t only).
    """
    response, shrunk = day_response(excess, pain, t)
    usual_pain = usual(pain, t)
    x = design(excess, pain, sleep, t, shrunk, usual_pain=usual_pain)
    c = [w * v for w, v in zip(WEIGHTS, x, strict=True)]
    today, yesterday = (_known(_above(pain, t, k, usual_pain)) for k in (0, 1))
    build_up = sum(c[:_N_PAIN])
    peak = max(x[_LOAD][:SPIKE_LAGS])
    trend, no_diary, below = x[_TREND], x[_NO_DIARY], x[_SLEEP]
    factors = [
        Factor(
            "load_spike",
            peak,
            sum(c[_LOAD]),
            f"load 1-{SPIKE_LAGS} days ago up to {1 + max(peak, 0.0):.1f}× your usual"
            + (
                f"; your pain follows load ({shrunk:+.1f} points after double your usual)"
                if peak > 0 and response.status is ResponseStatus.ESTIMATED and shrunk >= FOLLOWS
                else ""
            ),
        ),
        Factor(
            "pain_build_up",
            today,
            build_up,
            f"pain {today:+.1f} points against your usual today, {yesterday:+.1f} yesterday"
            + (" (already at flare level: a flare under way)" if build_up < 0 else ""),
        ),
        Factor(
            "pain_trend",
            trend,
            c[_TREND],
            f"pain {'rising' if trend >= 0 else 'falling'} {abs(trend):.1f} points a day",
        ),
        Factor("no_diary", no_diary, c[_NO_DIARY], "no diary today: pain unknown"),
        Factor(
            "sleep_deficit",
            below[0],
            sum(c[_SLEEP]),
            f"sleep {below[0]:.1f} points below your usual last night",
        ),
    ]
    factors.sort(key=lambda f: f.contribution, reverse=True)
    z = INTERCEPT + sum(c)
    return FlareRisk(1.0 / (1.0 + math.exp(-z)), z, tuple(factors), response, shrunk)


def risk_series(
    loads: FloatArray, pain: FloatArray, sleep: FloatArray, first: int = 0
) -> list[FlareRisk]:
    """Flare risk for each day from `first` on, each from the data known on that day only."""
    excess = load_state(loads).excess
    return [flare_risk(excess, pain, sleep, t) for t in range(first, loads.shape[0])]


def personal_response(excess: FloatArray, pain: FloatArray) -> tuple[PainResponse, float]:
    """The patient's load → pain response over the days given, and its shrunk value."""
    r = estimate(excess, pain)
    return r, shrunk_response(r)
