"""Steps per minute, totals, cadence bands and step load."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paceline.signal.errors import ParameterError
from paceline.signal.steps import cadence_band, per_minute, step_load, total

S = 1_000_000
MIN = 60 * S
T0 = 1_700_006_400 * S


def test_a_row_counts_for_the_interval_ending_at_its_time() -> None:
    t = np.array([T0 + MIN, T0 + 2 * MIN, T0 + 2 * MIN + 30 * S, T0 + 3 * MIN], dtype=np.int64)
    spm = per_minute(t, np.array([10, 20, 5, 7]), start_us=T0, n_minutes=4)
    # 00:01 closes minute 0; 00:02 closes minute 1; 00:02:30 and 00:03 fall in minute 2.
    assert spm[:3].tolist() == [10.0, 20.0, 12.0]
    assert np.isnan(spm[3])


def test_rows_outside_the_day_are_ignored() -> None:
    t = np.array([T0, T0 + 5 * MIN], dtype=np.int64)  # closes the previous day's last minute
    spm = per_minute(t, np.array([99, 4]), start_us=T0, n_minutes=5)
    assert spm[4] == 4.0
    assert total(spm) == 4


def test_cadence_bands_follow_the_issue() -> None:
    spm = np.array([0, 1, 59, 60, 99, 100, 140, np.nan])
    assert cadence_band(spm).tolist() == [0, 1, 1, 2, 2, 3, 3, -1]


def test_step_load_by_hand() -> None:
    # 30 min at 110 (band 3), 20 min at 70 (band 2), 60 min at 10 (band 1), zeros, no data.
    spm = np.concatenate(
        [np.full(30, 110.0), np.full(20, 70.0), np.full(60, 10.0), np.zeros(100), [np.nan] * 10]
    )
    assert step_load(spm) == pytest.approx(30 * 3 + 20 * 2 + 60 * 1)
    assert step_load(spm, weights=(0.5, 1.0, 4.0)) == pytest.approx(30 * 4 + 20 + 30)


def test_step_load_weights_must_match_the_bands() -> None:
    with pytest.raises(ParameterError):
        step_load(np.zeros(3), weights=(1.0, 2.0))


def _rows(first_end_s: float, n: int, steps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` back-to-back one-second intervals ending at T0 + first_end_s, each with `steps`."""
    end = T0 + np.round((first_end_s + np.arange(n)) * S).astype(np.int64)
    return end - S, end, np.full(n, steps)


def test_two_reports_of_the_same_seconds_count_their_steps_once() -> None:
    # The demo run twice: 20 minutes of 1.5 steps/s, then the same minutes again at a
    # 0.3 s offset. One device counts each step once, so this is 90 steps/min, not 180.
    b1, e1, s1 = _rows(1.0, 1200, 1.5)
    b2, e2, s2 = _rows(1.3, 1200, 1.5)
    order = np.argsort(np.concatenate((e1, e2)), kind="stable")
    begin = np.concatenate((b1, b2))[order]
    end = np.concatenate((e1, e2))[order]
    steps = np.concatenate((s1, s2))[order]
    spm = per_minute(end, steps, start_us=T0, n_minutes=21, interval_start=begin)
    assert spm[:20] == pytest.approx(np.full(20, 90.0))
    assert spm[20] == pytest.approx(0.3 * 1.5)  # the second run's last 0.3 s
    assert total(spm) == 1800


def test_partly_overlapping_reports_are_averaged_where_they_overlap() -> None:
    # (0, 60 s] with 60 steps and (30 s, 90 s] with 90 steps: the union is 90 s long;
    # (30, 60] carries the mean of 1 and 1.5 steps/s.
    begin = np.array([T0, T0 + 30 * S])
    end = np.array([T0 + 60 * S, T0 + 90 * S])
    spm = per_minute(end, np.array([60, 90]), start_us=T0, n_minutes=2, interval_start=begin)
    assert spm[0] == pytest.approx(30 * 1.0 + 30 * 1.25)
    assert spm[1] == pytest.approx(30 * 1.5)


def test_without_overlap_intervals_keep_every_step() -> None:
    # A row longer than a minute shares its steps between the minutes it spans.
    begin = np.array([T0 + 30 * S, T0 + 90 * S, T0 + 4 * MIN])
    end = np.array([T0 + 90 * S, T0 + 2 * MIN, T0 + 4 * MIN])
    spm = per_minute(end, np.array([60, 12, 7]), start_us=T0, n_minutes=5, interval_start=begin)
    assert spm[:2] == pytest.approx([30.0, 42.0])
    assert np.isnan(spm[2])
    assert spm[3] == 7.0  # a row of no known length counts whole where it ends
    assert np.isnan(spm[4])


def test_an_interval_crossing_midnight_keeps_only_its_share_of_the_day() -> None:
    begin = np.array([T0 - 30 * S])
    spm = per_minute(
        np.array([T0 + 30 * S]), np.array([60]), start_us=T0, n_minutes=1, interval_start=begin
    )
    assert spm[0] == pytest.approx(30.0)


def test_an_interval_that_starts_after_it_ends_is_refused() -> None:
    with pytest.raises(ParameterError, match="interval_start"):
        per_minute(
            np.array([T0 + S]), np.array([1]), start_us=T0, n_minutes=1, interval_start=[T0 + 2 * S]
        )


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=40),
    counts=st.lists(st.integers(0, 400), min_size=40, max_size=40),
    copies=st.integers(2, 3),
)
def test_reporting_the_same_intervals_again_changes_nothing(
    lengths: list[int], counts: list[int], copies: int
) -> None:
    end = T0 + np.cumsum(np.asarray(lengths, dtype=np.int64)) * S
    begin = end - np.asarray(lengths, dtype=np.int64) * S
    steps = np.asarray(counts[: len(lengths)], dtype=np.float64)
    n_min = int((end[-1] - T0) // MIN) + 1
    once = per_minute(end, steps, start_us=T0, n_minutes=n_min, interval_start=begin)
    again = per_minute(
        np.tile(end, copies),
        np.tile(steps, copies),
        start_us=T0,
        n_minutes=n_min,
        interval_start=np.tile(begin, copies),
    )
    np.testing.assert_allclose(again, once, equal_nan=True, atol=1e-6)
    assert np.nansum(once) == pytest.approx(steps.sum())
