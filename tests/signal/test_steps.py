"""Steps per minute, totals, cadence bands and step load."""

from __future__ import annotations

import numpy as np
import pytest

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
