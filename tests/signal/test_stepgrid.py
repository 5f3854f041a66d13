"""Interval step records onto the minute grid: every step once, whole numbers, totals kept."""

from __future__ import annotations

import numpy as np
import pytest

from paceline.signal.errors import ParameterError
from paceline.signal.stepgrid import to_minute_grid

MIN = 60_000_000
T0 = 1_700_000_040 * 1_000_000 // MIN * MIN


def test_a_ten_minute_record_spreads_evenly() -> None:
    grid = to_minute_grid(np.array([T0]), np.array([T0 + 10 * MIN]), np.array([1000.0]))
    assert grid.steps.tolist() == [100] * 10
    assert grid.end_us.tolist() == [T0 + (k + 1) * MIN for k in range(10)]


def test_overlapping_records_of_one_device_count_each_step_once() -> None:
    grid = to_minute_grid(
        np.array([T0, T0 + 5 * MIN]),
        np.array([T0 + 10 * MIN, T0 + 10 * MIN]),
        np.array([1000.0, 500.0]),
    )
    assert int(grid.steps.sum()) == 1000


def test_rounding_keeps_each_runs_total() -> None:
    # 100 steps over 3 minutes: 33.3 a minute; whole minutes must still add to 100.
    grid = to_minute_grid(
        np.array([T0 + 20 * 1_000_000]),
        np.array([T0 + 3 * MIN + 20 * 1_000_000]),
        np.array([100.0]),
    )
    assert int(grid.steps.sum()) == 100
    assert all(s >= 0 for s in grid.steps)


def test_a_record_without_length_goes_to_the_minute_it_ends_in() -> None:
    grid = to_minute_grid(
        np.array([T0 + 30 * 1_000_000]), np.array([T0 + 30 * 1_000_000]), np.array([7.0])
    )
    assert (grid.end_us.tolist(), grid.steps.tolist()) == ([T0 + MIN], [7])


def test_gaps_stay_empty_and_bad_input_is_refused() -> None:
    grid = to_minute_grid(
        np.array([T0, T0 + 60 * MIN]), np.array([T0 + MIN, T0 + 61 * MIN]), np.array([10.0, 20.0])
    )
    assert grid.steps.tolist() == [10, 20]
    with pytest.raises(ParameterError):
        to_minute_grid(np.array([T0 + MIN]), np.array([T0]), np.array([1.0]))
    with pytest.raises(ParameterError):
        to_minute_grid(np.array([T0]), np.array([T0 + MIN]), np.array([-1.0]))
