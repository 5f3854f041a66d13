"""Personal load → pain response and the 48 h flare-risk score, on simulated series."""

from __future__ import annotations

import numpy as np
import pytest

from paceline.pacing.flare import PRIOR_RESPONSE, flare_risk, risk_series, shrunk_response
from paceline.pacing.load import ewma, load_state
from paceline.pacing.response import ResponseStatus, estimate


def _series(n: int, seed: int, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Loads with occasional spikes; pain rises `slope` points the day after excess load."""
    rng = np.random.default_rng(seed)
    loads = 40 * rng.lognormal(0, 0.15, n)
    loads[rng.random(n) < 0.15] *= 2.2
    excess = np.nan_to_num(load_state(loads).excess)
    pain = 4 + slope * np.concatenate(([0.0], excess[:-1])) + rng.normal(0, 0.4, n)
    return loads, pain


def test_ewma_follows_williams_2017_seeded_with_the_first_week() -> None:
    lam = 2 / 8
    loads = [10.0, None, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    out = ewma(loads, 7)
    seed = (10 + 20 + 30 + 40 + 50 + 60 + 70) / 7
    assert out[0] == pytest.approx(lam * 10 + (1 - lam) * seed)
    assert out[1] == out[0]
    assert out[2] == pytest.approx(lam * 20 + (1 - lam) * out[0])


def test_too_little_data_says_not_enough_data_yet() -> None:
    loads, pain = _series(15, seed=1, slope=2.0)
    r = estimate(load_state(loads).excess, pain)
    assert r.status is ResponseStatus.NOT_ENOUGH_DATA
    assert r.message.startswith("Not enough data yet")
    assert r.cumulative is None


def test_the_response_recovers_a_known_lagged_effect_within_its_interval() -> None:
    loads, pain = _series(120, seed=2, slope=3.0)
    r = estimate(load_state(loads).excess, pain)
    assert r.status is ResponseStatus.ESTIMATED
    assert r.lag_slopes is not None and r.ci95 is not None
    assert r.lag_slopes[1] == pytest.approx(3.0, abs=0.6)
    # mean over lags 0, 1, 2 of (0, 3, 0) = 1
    assert r.ci95[0] < 1.0 < r.ci95[1]


def test_a_patient_whose_pain_ignores_load_has_a_response_near_zero() -> None:
    loads, pain = _series(120, seed=3, slope=0.0)
    r = estimate(load_state(loads).excess, pain)
    assert r.ci95 is not None
    assert r.ci95[0] < 0 < r.ci95[1]


def test_the_personal_response_is_shrunk_toward_the_prior_by_its_precision() -> None:
    loads, pain = _series(120, seed=2, slope=3.0)
    r = estimate(load_state(loads).excess, pain)
    assert r.cumulative is not None
    shrunk = shrunk_response(r)
    assert min(PRIOR_RESPONSE, r.cumulative) <= shrunk <= max(PRIOR_RESPONSE, r.cumulative)


def test_flare_risk_rises_in_the_days_after_a_spike_and_names_it_first() -> None:
    n = 40
    loads = np.full(n, 40.0)
    pain = np.full(n, 4.0)
    sleep = np.full(n, 7.0)
    calm = risk_series(loads, pain, sleep)[-1]
    loads[-1] = 100.0
    # Today's spike cannot show in the next 48 h yet (the cohort's flares start 3-4
    # days after one): it counts from the next day, most two days after.
    assert risk_series(loads, pain, sleep)[-1].score == pytest.approx(calm.score)
    after = [
        risk_series(np.append(loads, [40.0] * k), np.full(n + k, 4.0), np.full(n + k, 7.0))[-1]
        for k in (1, 2, 3, 4)
    ]
    assert after[1].score > after[0].score > calm.score
    assert after[2].score > calm.score
    assert after[3].score == pytest.approx(calm.score)
    assert all(a.contributing[0].name == "load_spike" for a in after[:3])
    assert calm.contributing == ()


def test_a_rise_toward_flare_level_raises_the_risk_and_pain_already_there_does_not() -> None:
    n = 30
    loads = np.full(n, 40.0)
    sleep = np.full(n, 7.0)
    excess = load_state(loads).excess
    pain = np.full(n, 4.0)
    calm = flare_risk(excess, pain, sleep, n - 1)
    pain[-1] = 6.0  # 2 points above usual today, after usual days: a flare's build-up
    rising = flare_risk(excess, pain, sleep, n - 1)
    pain[-4:] = 8.0  # 4 points above usual for four days: the flare itself is under way
    under_way = flare_risk(excess, pain, sleep, n - 1)
    assert rising.score > 5 * calm.score
    assert rising.contributing[0].name == "pain_build_up"
    assert under_way.score < rising.score
    build_up = next(f for f in under_way.factors if f.name == "pain_build_up")
    assert build_up.contribution < 0 and "flare under way" in build_up.text


def test_flare_risk_counts_poor_sleep_and_rising_pain() -> None:
    n = 30
    loads = np.full(n, 40.0)
    state = load_state(loads)
    pain = np.full(n, 4.0)
    sleep = np.full(n, 7.0)
    base = flare_risk(state.excess, pain, sleep, n - 1)
    pain[-3:] = [4.0, 5.0, 6.0]
    sleep[-2:] = 3.0
    worse = flare_risk(state.excess, pain, sleep, n - 1)
    names = {f.name for f in worse.contributing}
    assert {"pain_trend", "pain_build_up", "sleep_deficit"} <= names
    assert worse.score > base.score


def test_flare_risk_uses_only_data_up_to_the_day() -> None:
    loads, pain = _series(60, seed=4, slope=2.0)
    sleep = np.full(60, 7.0)
    full = risk_series(loads, pain, sleep, 30)
    cut = risk_series(loads[:41], pain[:41], sleep[:41], 30)
    assert [r.score for r in full[:11]] == [r.score for r in cut]


def test_the_load_spike_counts_more_for_a_patient_whose_pain_follows_load() -> None:
    """The personal response (v4) weighs the same spike: more for a patient whose pain has
    followed load over the last 61 days, and the factor says so in words."""
    n = 70
    loads = np.full(n, 40.0)
    loads[5:n:6] = 90.0  # a spike every sixth day to learn the response from
    loads[-2] = 100.0  # the spike the score is about: yesterday
    loads[-1] = 40.0
    excess = np.nan_to_num(load_state(loads).excess)
    follows = np.array(
        [4.0 + 1.5 * sum(excess[t - k] for k in range(3) if t - k >= 0) for t in range(n)]
    )
    follows[-2:] = follows[-3]  # no pain rise yesterday or today: only the load speaks
    calm = np.full(n, 4.0)
    sleep = np.full(n, 7.0)
    sensitive = risk_series(loads, np.round(follows, 1), sleep)[-1]
    indifferent = risk_series(loads, calm, sleep)[-1]
    assert sensitive.response.status is ResponseStatus.ESTIMATED
    assert sensitive.shrunk_response > 1.0
    spike = {
        r: next(f for f in r.factors if f.name == "load_spike") for r in (sensitive, indifferent)
    }
    assert spike[sensitive].contribution > spike[indifferent].contribution
    assert "your pain follows load" in spike[sensitive].text
    assert "follows load" not in spike[indifferent].text
