"""HRmax, resting HR, zone boundaries, hysteresis, time in zone, pacing ceiling."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paceline.signal.clean import clean_hr
from paceline.signal.errors import InsufficientDataError, ParameterError, UnknownMethodError
from paceline.signal.timebase import Minutes, per_minute, resample
from paceline.signal.zones import (
    ZoneModel,
    above,
    calibrate_ceiling,
    ceiling_from_reserve,
    classify,
    hr_max,
    hrr_zones,
    percent_hrmax_zones,
    resting_hr,
    time_in_zones,
)
from tests.signal.conftest import FitbitHR

S = 1_000_000
T0 = 1_700_006_400 * S


@pytest.mark.parametrize(
    ("method", "expected"),
    [("tanaka", 208 - 0.7 * 40), ("fox", 220 - 40), ("gellish", 207 - 0.7 * 40)],
)
def test_hr_max_formulas_at_forty(method: str, expected: float) -> None:
    assert hr_max(40, method=method) == pytest.approx(expected)  # type: ignore[arg-type]


def test_measured_hr_max_wins_and_tanaka_is_the_default() -> None:
    assert hr_max(40, measured_bpm=191) == 191
    assert hr_max(60) == pytest.approx(166.0)


def test_hr_max_errors_name_the_problem() -> None:
    with pytest.raises(UnknownMethodError, match="'tanaka', 'fox', 'gellish'"):
        hr_max(40, method="astrand")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="age_years"):
        hr_max(None)


def test_tanaka_is_above_fox_after_forty_and_all_formulas_fall_with_age() -> None:
    for method in ("tanaka", "fox", "gellish"):
        assert hr_max(30, method=method) > hr_max(60, method=method)
    assert hr_max(60, method="tanaka") > hr_max(60, method="fox")


def test_percent_hrmax_and_karvonen_boundaries() -> None:
    assert percent_hrmax_zones(200).bounds_bpm == pytest.approx((100, 120, 140, 160, 180))
    # Karvonen: resting 60 plus the fraction of the reserve (180 minus 60).
    assert hrr_zones(180, 60, (0.5, 0.7)).bounds_bpm == pytest.approx((120, 144))
    with pytest.raises(ParameterError):
        hrr_zones(150, 160)
    with pytest.raises(ParameterError):
        ZoneModel((120.0, 110.0))


def test_karvonen_zones_sit_higher_for_a_high_resting_heart_rate() -> None:
    calm = hrr_zones(180, 55)
    tense = hrr_zones(180, 85)
    assert all(t > c for t, c in zip(tense.bounds_bpm, calm.bounds_bpm, strict=True))


def test_hovering_at_a_boundary_flips_without_hysteresis_and_holds_with_it() -> None:
    model = ZoneModel((100.0,))
    rng = np.random.default_rng(1)
    bpm = 100 + rng.uniform(-1.5, 1.5, 600)  # sitting right on the boundary
    plain = classify(bpm, model, hysteresis_bpm=0)
    held = classify(bpm, model, hysteresis_bpm=2)
    assert np.count_nonzero(np.diff(plain)) > 100
    assert np.count_nonzero(np.diff(held)) == 0


def test_hysteresis_switches_only_past_the_dead_band() -> None:
    model = ZoneModel((100.0,))
    bpm = np.array([95, 101, 101.9, 102, 101, 99, 98.0, 97.9, 99])
    assert classify(bpm, model, hysteresis_bpm=2).tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0]


def test_missing_samples_are_minus_one_and_restart_the_state() -> None:
    model = ZoneModel((100.0,))
    bpm = np.array([105, 101, np.nan, 101, 99])
    # After the gap 101 starts a new segment, classified plainly (>= 100 → zone 1).
    assert classify(bpm, model, hysteresis_bpm=2).tolist() == [1, 1, -1, 1, 1]


def test_hysteresis_wider_than_half_a_zone_is_rejected() -> None:
    with pytest.raises(ParameterError):
        classify(np.array([100.0]), ZoneModel((100.0, 103.0)), hysteresis_bpm=2)


def _sequential(
    bpm: npt.NDArray[np.float64], bounds: npt.NDArray[np.float64], h: float
) -> list[int]:
    """Reference: z_t = clip(z_{t-1}, zone(x - h), zone(x + h)), restart after NaN."""
    out: list[int] = []
    state: int | None = None
    for x in bpm:
        if np.isnan(x):
            out.append(-1)
            state = None
            continue
        plain = int(np.searchsorted(bounds, x, side="right"))
        if state is None:
            state = plain
        lo = int(np.searchsorted(bounds, x - h, side="right"))
        hi = int(np.searchsorted(bounds, x + h, side="right"))
        state = min(max(state, lo), hi)
        out.append(state)
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31), st.floats(0, 4), st.integers(5, 300))
def test_vectorised_hysteresis_equals_the_sequential_rule(seed: int, h: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    bpm = 110 + np.cumsum(rng.normal(0, 6, n))  # a random walk across several zones
    bpm[rng.random(n) < 0.05] = np.nan
    bpm = np.round(bpm, 1)
    model = percent_hrmax_zones(180)
    expected = _sequential(bpm, np.asarray(model.bounds_bpm), h)
    assert classify(bpm, model, hysteresis_bpm=h).tolist() == expected


def test_time_in_zones_counts_minutes() -> None:
    zones = np.array([0] * 120 + [1] * 60 + [-1] * 30 + [3] * 30, dtype=np.int8)
    assert time_in_zones(zones, 4, step_s=1.0).tolist() == [2.0, 1.0, 0.0, 0.5]
    assert time_in_zones(zones, 4, step_s=5.0).tolist() == [10.0, 5.0, 0.0, 2.5]


def test_above_ceiling_uses_the_same_hysteresis() -> None:
    bpm = np.array([110, 116, 118, 117, 115, 113, 112])
    assert above(bpm, 115, hysteresis_bpm=2).tolist() == [
        False,
        False,
        True,
        True,
        True,
        True,
        False,
    ]


def test_ceiling_from_reserve_and_from_the_patients_own_baseline() -> None:
    assert ceiling_from_reserve(180, 60, 0.5) == 120
    minutes = np.concatenate((np.full(950, 70.0), np.full(50, 120.0), [np.nan] * 50))
    assert calibrate_ceiling(minutes, percentile=90) == pytest.approx(70.0)
    assert calibrate_ceiling(minutes, percentile=97) == pytest.approx(120.0)
    with pytest.raises(InsufficientDataError):
        calibrate_ceiling(minutes[:300])


def test_resting_hr_is_the_lowest_sustained_ten_minutes_not_a_single_dip() -> None:
    mean = np.full(120, 75.0)
    mean[10] = 40.0  # one artefactual minute
    mean[60:70] = 58.0  # ten calm minutes
    rest = resting_hr(Minutes(T0, mean, np.ones(120)))
    assert rest is not None
    assert rest.bpm == pytest.approx(58.0)
    assert rest.start_us == T0 + 60 * 60 * S


def test_resting_hr_needs_a_full_window_of_data() -> None:
    cover = np.zeros(30)
    cover[::2] = 1.0  # every other minute only
    assert resting_hr(Minutes(T0, np.full(30, 60.0), cover)) is None


def test_resting_hr_of_real_fitbit_days_is_physiological(fitbit: FitbitHR) -> None:
    hr = clean_hr(fitbit.time_us, fitbit.bpm)
    for day in ("2016-05-10", "2016-05-11"):
        start = fitbit.day_start_us(day)
        grid = resample(hr.time_us, hr.bpm, start_us=start, end_us=start + 86_400 * S)
        minutes = per_minute(grid)
        rest = resting_hr(minutes)
        assert rest is not None
        day_mean = float(np.nanmean(grid.values))
        assert 45 <= rest.bpm <= 75
        assert rest.bpm < day_mean - 5
        assert rest.bpm >= float(np.nanmin(minutes.mean))
