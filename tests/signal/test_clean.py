"""Heart-rate and RR cleaning: what is dropped, what is kept, and the counts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from paceline.signal.clean import (
    HRFlag,
    RRFlag,
    clean_hr,
    clean_rr,
    local_median,
    window_extrema,
)
from paceline.signal.errors import InputShapeError, ParameterError, UnknownMethodError
from paceline.signal.simulate import simulate_rr
from tests.signal.conftest import FitbitHR

S = 1_000_000
T0 = 1_700_000_000 * S


def _times(n: int, step_s: float = 1.0) -> npt.NDArray[np.int64]:
    return T0 + (np.arange(n) * step_s * S).astype(np.int64)


def test_no_contact_and_out_of_range_samples_are_dropped_and_counted() -> None:
    bpm = np.array([70, 0, 71, 250, 72, 20, 73, np.nan], dtype=np.float64)
    contact = np.array([1, 0, -1, 1, 1, 1, 1, 1], dtype=np.int8)
    out = clean_hr(_times(8), bpm, contact)
    assert out.bpm.tolist() == [70, 71, 72, 73]
    assert (out.n_no_contact, out.n_out_of_range, out.n_jumps) == (1, 3, 0)
    assert out.flag.tolist() == [0, 1, 0, 2, 0, 2, 0, 2]


def test_isolated_spikes_are_jumps_but_a_fast_real_rise_is_kept() -> None:
    rest = np.full(60, 70.0)
    ramp = np.linspace(70, 150, 40)  # 80 bpm in 40 s: steep onset of hard exercise
    plateau = np.full(60, 150.0)
    bpm = np.concatenate((rest, ramp, plateau))
    bpm[30] = 120.0  # artefact: +50 bpm for one second
    bpm[130] = 95.0  # dropout artefact: -55 bpm
    out = clean_hr(_times(bpm.shape[0]), bpm)
    assert out.n_jumps == 2
    assert np.flatnonzero(out.flag == HRFlag.JUMP).tolist() == [30, 130]


def test_a_sustained_step_is_not_a_jump() -> None:
    bpm = np.concatenate((np.full(30, 60.0), np.full(30, 100.0)))
    assert clean_hr(_times(60), bpm).n_jumps == 0


def test_contact_length_must_match() -> None:
    with pytest.raises(InputShapeError):
        clean_hr(_times(3), np.array([60.0, 61.0, 62.0]), np.array([1, 1], dtype=np.int8))


def test_real_fitbit_heart_rate_keeps_almost_everything(fitbit: FitbitHR) -> None:
    out = clean_hr(fitbit.time_us, fitbit.bpm)
    assert out.n_out_of_range == 0  # the export holds 48-180 bpm
    assert out.n_jumps / out.n_input < 0.005
    assert out.n_kept + out.n_jumps == out.n_input


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.sampled_from([3, 4, 5, 11, 15]), st.integers(0, 2**31))
def test_fast_window_helpers_equal_scipy_filters(n: int, size: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(70, 15, n).round()
    hi, lo = window_extrema(x, size)
    assert np.array_equal(hi, ndimage.maximum_filter1d(x, size, mode="nearest"))
    assert np.array_equal(lo, ndimage.minimum_filter1d(x, size, mode="nearest"))
    if size % 2:
        idx = np.arange(n)
        expected = ndimage.median_filter(x, size=size, mode="nearest")
        assert np.array_equal(local_median(x, size, idx), expected)


def _with_premature_beat() -> npt.NDArray[np.float64]:
    rr: npt.NDArray[np.float64] = np.full(40, 1000.0) + np.tile([10.0, -10.0], 20)
    rr[20] = 650.0  # premature beat
    rr[21] = 1350.0  # compensatory pause
    return rr


def test_malik_rule_flags_the_premature_beat_and_its_pause_but_not_the_next_beat() -> None:
    out = clean_rr(_with_premature_beat())
    assert np.flatnonzero(out.flag == RRFlag.REMOVED_ECTOPIC).tolist() == [20, 21]
    assert (out.n_ectopic, out.n_removed, out.n_corrected, out.n_kept) == (2, 2, 0, 38)
    # The pair (19, 22) straddles the removed beats: not a successive difference.
    assert out.adjacent.tolist().count(False) == 1
    assert not out.adjacent[19]


def test_karlsson_rule_flags_the_same_premature_beat() -> None:
    out = clean_rr(_with_premature_beat(), method="karlsson")
    assert 20 in np.flatnonzero(out.flag == RRFlag.REMOVED_ECTOPIC).tolist()


def test_interpolation_keeps_the_beat_sequence_and_counts_corrections() -> None:
    out = clean_rr(_with_premature_beat(), action="interpolate")
    assert out.n_kept == 40
    assert out.n_corrected == 2
    assert out.n_touched == 2
    assert out.adjacent.all()
    # Neighbours of the corrected pair are 1010 (index 19 is odd: 990) and 1010.
    assert out.rr_ms[20] == pytest.approx(990 + (1010 - 990) * 1 / 3)
    assert out.rr_ms[21] == pytest.approx(990 + (1010 - 990) * 2 / 3)


def test_out_of_range_intervals_are_removed_whatever_the_action() -> None:
    rr = np.array([900.0, 910, 250, 905, 2500, 915, 900, 905])
    for action in ("remove", "interpolate"):
        out = clean_rr(rr, action=action)
        assert out.n_out_of_range == 2
        assert 250 not in out.rr_ms and 2500 not in out.rr_ms


def test_a_time_gap_breaks_adjacency() -> None:
    rr = np.full(10, 800.0)
    t = T0 + np.cumsum(rr * 1000).astype(np.int64)
    t[5:] += 60 * S  # a minute of lost beats
    out = clean_rr(rr, time=t)
    assert out.n_kept == 10
    assert np.flatnonzero(~out.adjacent).tolist() == [4]


def test_a_clean_synthetic_series_is_barely_touched() -> None:
    rr = simulate_rr(600, seed=3)
    out = clean_rr(rr)
    assert out.n_touched / out.n_input < 0.01


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownMethodError, match="'malik', 'karlsson'"):
        clean_rr([800.0, 810.0, 790.0], method="kubios")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        clean_rr([800.0, 810.0, 790.0], threshold=20)
