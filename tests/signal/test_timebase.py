"""Time stamps, gap-aware resampling and minute aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paceline.signal.errors import ParameterError, TimeTypeError, UnsortedTimeError
from paceline.signal.timebase import (
    Grid,
    as_epoch_us,
    check_sorted,
    per_minute,
    resample,
    scalar_us,
    time_order,
)

S = 1_000_000
T0 = 1_700_000_000 * S


def test_datetime64_and_int_microseconds_give_the_same_epoch() -> None:
    dt = np.array(["2023-11-14T22:13:20", "2023-11-14T22:13:21.5"], dtype="datetime64[ms]")
    assert as_epoch_us(dt).tolist() == [T0, T0 + 1_500_000]
    assert as_epoch_us(np.array([T0], dtype=np.int64)).tolist() == [T0]
    assert scalar_us(np.datetime64("2023-11-14T22:13:20")) == T0


def test_float_or_nat_times_are_rejected() -> None:
    with pytest.raises(TimeTypeError):
        as_epoch_us(np.array([1.5, 2.5]))
    with pytest.raises(TimeTypeError):
        as_epoch_us(np.array(["NaT"], dtype="datetime64[us]"))


def test_unsorted_times_are_reported_with_their_index() -> None:
    with pytest.raises(UnsortedTimeError) as err:
        check_sorted(np.array([1, 2, 5, 3], dtype=np.int64))
    assert err.value.index == 3
    assert time_order(np.array([1, 2, 3], dtype=np.int64)) is None
    order = time_order(np.array([3, 1, 2], dtype=np.int64))
    assert order is not None
    assert order.tolist() == [1, 2, 0]


def test_resample_averages_samples_in_a_cell() -> None:
    t = np.array([T0, T0 + 200_000, T0 + S], dtype=np.int64)
    g = resample(t, np.array([60.0, 62.0, 70.0]), start_us=T0, end_us=T0 + 2 * S)
    assert g.values.tolist() == [61.0, 70.0]


def test_resample_interpolates_short_gaps_but_never_long_ones() -> None:
    t = T0 + np.array([0, 4, 30], dtype=np.int64) * S
    g = resample(t, np.array([60.0, 68.0, 90.0]), start_us=T0, end_us=T0 + 40 * S, max_gap_s=5)
    assert g.values[:5].tolist() == [60.0, 62.0, 64.0, 66.0, 68.0]
    assert np.isnan(g.values[5:30]).all()  # 26 s gap: not bridged
    assert g.values[30] == 90.0
    assert np.isnan(g.values[31:]).all()  # no extrapolation after the last sample


def test_resample_ignores_nan_values_and_samples_outside_the_window() -> None:
    t = T0 + np.array([-5, 0, 1, 10], dtype=np.int64) * S
    g = resample(t, np.array([100.0, np.nan, 70.0, 80.0]), start_us=T0, end_us=T0 + 10 * S)
    assert np.isnan(g.values[0])
    assert g.values[1] == 70.0
    assert np.count_nonzero(~np.isnan(g.values)) == 1


def test_resample_rejects_a_step_that_does_not_divide_the_span() -> None:
    with pytest.raises(ParameterError):
        resample(np.array([T0]), np.array([60.0]), start_us=T0, end_us=T0 + 10 * S, step_s=3)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 299), min_size=1, max_size=60, unique=True),
    st.floats(0, 20),
)
def test_resampled_cells_are_either_data_or_between_two_samples_close_enough(
    seconds: list[int], max_gap: float
) -> None:
    sec = np.sort(np.asarray(seconds, dtype=np.int64))
    vals = 50.0 + sec.astype(np.float64)  # strictly increasing: interpolation is checkable
    g = resample(T0 + sec * S, vals, start_us=T0, end_us=T0 + 300 * S, max_gap_s=max_gap)
    for cell in np.flatnonzero(~np.isnan(g.values)):
        if cell in sec:
            assert g.values[cell] == 50.0 + cell
        else:
            before = sec[sec < cell].max()
            after = sec[sec > cell].min()
            assert after - before <= max_gap
            assert g.values[cell] == pytest.approx(50.0 + cell)
    for cell in np.flatnonzero(np.isnan(g.values)):
        earlier, later = sec[sec < cell], sec[sec > cell]
        assert earlier.size == 0 or later.size == 0 or later.min() - earlier.max() > max_gap


def test_per_minute_means_and_coverage() -> None:
    vals = np.full(180, np.nan)
    vals[:60] = 60.0
    vals[60:90] = 90.0
    m = per_minute(Grid(T0, S, vals))
    assert m.mean[:2].tolist() == [60.0, 90.0]
    assert np.isnan(m.mean[2])
    assert m.coverage.tolist() == [1.0, 0.5, 0.0]
