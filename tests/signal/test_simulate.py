"""The synthetic day has the shape the benchmark and tests rely on."""

from __future__ import annotations

import numpy as np

from paceline.signal.simulate import SimulatedDay, simulate_day, simulate_rr


def test_day_has_the_design_row_counts(sim_day: SimulatedDay) -> None:
    assert sim_day.hr_time_us.shape[0] == 86_400
    assert sim_day.step_time_us.shape[0] == 1_440
    assert 85_000 < sim_day.rr_ms.shape[0] < 110_000
    assert np.all(np.diff(sim_day.hr_time_us) > 0)
    assert np.all(np.diff(sim_day.rr_time_us) > 0)


def test_same_seed_same_day_other_seed_other_day() -> None:
    a = simulate_day(seed=3)
    b = simulate_day(seed=3)
    c = simulate_day(seed=4)
    assert np.array_equal(a.rr_ms, b.rr_ms)
    assert not np.array_equal(a.hr_bpm, c.hr_bpm)


def test_rr_time_stamps_follow_the_intervals() -> None:
    day = simulate_day(seed=5)
    worn = np.diff(day.rr_time_us) < 3_000_000
    gap_ms = np.diff(day.rr_time_us)[worn] / 1000.0
    assert np.allclose(gap_ms, day.rr_ms[1:][worn], atol=1.0)


def test_simulated_rr_is_reproducible_and_near_the_target_rate() -> None:
    rr = simulate_rr(600, mean_hr_bpm=70, seed=1)
    assert np.array_equal(rr, simulate_rr(600, mean_hr_bpm=70, seed=1))
    assert abs(60_000 / rr.mean() - 70) < 5
