"""EWMA acute and chronic load, ACWR, Foster monotony and strain."""

from __future__ import annotations

import numpy as np
import pytest

from paceline.signal.errors import ParameterError
from paceline.signal.ewma import acute_chronic, ewma, monotony_strain


def _reference_ewma(load: list[float], n: int) -> list[float]:
    lam = 2 / (n + 1)
    out: list[float] = []
    value = load[0]
    for x in load:
        value = lam * x + (1 - lam) * value
        out.append(value)
    return out


def test_ewma_uses_lambda_two_over_n_plus_one() -> None:
    load = [100.0, 0.0, 50.0, 200.0, 80.0, 0.0, 120.0, 90.0]
    assert ewma(load, span_days=7).tolist() == pytest.approx(_reference_ewma(load, 7))
    # First steps by hand: λ = 0.25 → 100, 75, 68.75.
    assert ewma(load, span_days=7)[:3].tolist() == pytest.approx([100.0, 75.0, 68.75])


def test_a_day_without_data_is_not_a_rest_day() -> None:
    with_gap = ewma([100.0, 100.0, np.nan, np.nan, 40.0], span_days=7)
    as_rest = ewma([100.0, 100.0, 0.0, 0.0, 40.0], span_days=7)
    assert with_gap[2] == with_gap[3] == 100.0
    assert with_gap[4] == pytest.approx(0.25 * 40 + 0.75 * 100)
    assert as_rest[4] < with_gap[4]
    assert np.isnan(ewma([np.nan, 5.0], span_days=7)[0])


def test_acwr_rises_when_load_jumps() -> None:
    load = np.concatenate((np.full(28, 100.0), np.full(7, 200.0)))
    ac = acute_chronic(load)
    assert ac.ratio[27] == pytest.approx(1.0)
    assert ac.ratio[-1] > 1.3
    assert ac.acute[-1] > ac.chronic[-1]
    assert np.isnan(acute_chronic([0.0, 0.0]).ratio).all()


def test_a_week_at_twice_the_usual_load_reaches_the_rolling_danger_zone() -> None:
    # Gabbett 2016: ACWR >= 1.5 from rolling averages; a week at 2x gives 2 / 1.25 = 1.6.
    load = np.concatenate((np.full(28, 100.0), np.full(7, 200.0)))
    assert acute_chronic(load).ratio[-1] == pytest.approx(1.6)


def test_rolling_means_leave_unknown_days_out() -> None:
    load = np.concatenate((np.full(28, 100.0), [np.nan, np.nan], np.full(5, 100.0)))
    ac = acute_chronic(load)
    assert ac.acute[-1] == pytest.approx(100.0)
    assert ac.ratio[-1] == pytest.approx(1.0)
    assert np.isnan(acute_chronic(np.full(10, 50.0)).ratio).all()


def test_monotony_and_strain_by_hand() -> None:
    week = [100.0, 200.0, 100.0, 200.0, 100.0, 200.0, 150.0]
    f = monotony_strain(week)
    mean = np.mean(week)
    sd = np.std(week)  # population SD, ddof=0
    assert np.isnan(f.monotony[:6]).all()
    assert f.monotony[6] == pytest.approx(mean / sd)
    assert f.weekly_load[6] == pytest.approx(sum(week))
    assert f.strain[6] == pytest.approx(sum(week) * mean / sd)


def test_monotony_tolerates_missing_days_only_when_asked() -> None:
    week = [100.0, np.nan, 100.0, 200.0, 100.0, 200.0, 150.0]
    assert np.isnan(monotony_strain(week).monotony[6])
    f = monotony_strain(week, min_days=6)
    known = [x for x in week if not np.isnan(x)]
    assert f.weekly_load[6] == pytest.approx(np.mean(known) * 7)
    assert f.monotony[6] == pytest.approx(np.mean(known) / np.std(known))


def test_identical_days_are_infinitely_monotonous_and_zero_weeks_undefined() -> None:
    assert np.isinf(monotony_strain([50.0] * 7).monotony[6])
    assert np.isnan(monotony_strain([0.0] * 7).monotony[6])


def test_load_must_not_be_negative() -> None:
    with pytest.raises(ParameterError):
        ewma([10.0, -1.0], span_days=7)
