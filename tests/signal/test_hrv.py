"""Time-domain HRV: hand-computed values, adjacency, windows, and NeuroKit2 agreement."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import pytest

from paceline.signal import hrv
from paceline.signal.clean import clean_rr
from paceline.signal.errors import InputShapeError, InsufficientDataError
from paceline.signal.simulate import ipfm_beats, simulate_rr

S = 1_000_000
T0 = 1_700_006_400 * S
RR = [800.0, 860.0, 790.0, 850.0, 900.0]


def test_small_series_by_hand() -> None:
    # differences 60, -70, 60, 50; squares 3600, 4900, 3600, 2500
    assert hrv.mean_nn(RR) == pytest.approx(840.0)
    assert hrv.sdnn(RR) == pytest.approx(math.sqrt((40**2 + 20**2 + 50**2 + 10**2 + 60**2) / 4))
    assert hrv.rmssd(RR) == pytest.approx(math.sqrt((3600 + 4900 + 3600 + 2500) / 4))
    # |diff| > 50: 60, 70, 60 → 3 of N = 5 intervals (Task Force: divide by N).
    assert hrv.pnn50(RR) == pytest.approx(60.0)
    td = hrv.time_domain(RR)
    assert (td.mean_nn_ms, td.sdnn_ms, td.rmssd_ms, td.pnn50_pct) == pytest.approx(
        (hrv.mean_nn(RR), hrv.sdnn(RR), hrv.rmssd(RR), hrv.pnn50(RR))
    )
    assert td.mean_hr_bpm == pytest.approx(60_000 / 840)


def test_exact_on_the_given_intervals_no_hidden_cleaning() -> None:
    with_artefact = [*RR, 2500.0]
    assert hrv.rmssd(with_artefact) == pytest.approx(
        math.sqrt((3600 + 4900 + 3600 + 2500 + 1600**2) / 5)
    )


def test_adjacency_excludes_pairs_across_a_removed_beat() -> None:
    adjacent = [True, False, True, True]
    assert hrv.rmssd(RR, adjacent=adjacent) == pytest.approx(math.sqrt((3600 + 3600 + 2500) / 3))
    assert hrv.pnn50(RR, adjacent=adjacent) == pytest.approx(100 * 2 / 5)
    with pytest.raises(InputShapeError):
        hrv.rmssd(RR, adjacent=[True])


def test_too_few_intervals_raise_a_typed_error() -> None:
    with pytest.raises(InsufficientDataError):
        hrv.sdnn([800.0])
    with pytest.raises(InsufficientDataError):
        hrv.rmssd([800.0, 810.0], adjacent=[False])


def _neurokit_time(rr: npt.NDArray[np.float64]) -> dict[str, float]:
    nk = pytest.importorskip("neurokit2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = nk.hrv_time({"RRI": rr})
    return {k: float(out[f"HRV_{k}"].iloc[0]) for k in ("MeanNN", "SDNN", "RMSSD", "pNN50")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agrees_with_neurokit2_on_a_realistic_rr_series(seed: int) -> None:
    rr = simulate_rr(1800, mean_hr_bpm=62 + seed, seed=seed)  # 30 min at rest
    nk = _neurokit_time(rr)
    ours = hrv.time_domain(rr)
    assert ours.mean_nn_ms == pytest.approx(nk["MeanNN"], abs=1e-9)
    assert ours.sdnn_ms == pytest.approx(nk["SDNN"], abs=1e-9)
    assert ours.rmssd_ms == pytest.approx(nk["RMSSD"], abs=1e-9)
    assert ours.pnn50_pct == pytest.approx(nk["pNN50"], abs=1e-9)


def test_agrees_with_neurokit2_on_integer_millisecond_intervals() -> None:
    rr = np.round(simulate_rr(900, seed=9))  # what most straps actually send (1/1024 s → ms)
    nk = _neurokit_time(rr)
    assert hrv.rmssd(rr) == pytest.approx(nk["RMSSD"], abs=1e-9)
    assert hrv.pnn50(rr) == pytest.approx(nk["pNN50"], abs=1e-9)


def test_simulated_rest_has_healthy_adult_values() -> None:
    td = hrv.time_domain(simulate_rr(300, mean_hr_bpm=65, seed=4))
    assert 55 < td.mean_hr_bpm < 75
    assert 15 < td.rmssd_ms < 80  # Nunan et al. 2010: 42 ± 15 ms
    assert td.sdnn_ms > 10


def test_exercise_lowers_rmssd() -> None:
    rng = np.random.default_rng(5)
    _, rest = ipfm_beats(np.full(600, 62.0), rng=rng)
    _, work = ipfm_beats(np.full(600, 135.0), rng=rng)
    assert hrv.rmssd(work) < 0.5 * hrv.rmssd(rest)


def test_windows_equal_time_domain_on_each_window() -> None:
    rr = simulate_rr(1200, seed=6)
    t = T0 + np.round(np.cumsum(rr) * 1000).astype(np.int64)
    cleaned = clean_rr(rr, time=t)
    assert cleaned.time_us is not None
    end = T0 + 1200 * S
    win = hrv.windows(
        cleaned.time_us, cleaned.rr_ms, start=T0, end=end, window_s=300, adjacent=cleaned.adjacent
    )
    assert win.start_us.tolist() == [T0 + k * 300 * S for k in range(4)]
    for k in range(4):
        lo = T0 + k * 300 * S
        ref = hrv.between(
            cleaned.time_us, cleaned.rr_ms, lo, lo + 300 * S, adjacent=cleaned.adjacent
        )
        assert win.n_intervals[k] == ref.n_intervals
        assert win.mean_nn_ms[k] == pytest.approx(ref.mean_nn_ms, rel=1e-12)
        assert win.sdnn_ms[k] == pytest.approx(ref.sdnn_ms, rel=1e-9)
        assert win.rmssd_ms[k] == pytest.approx(ref.rmssd_ms, rel=1e-12)
        assert win.pnn50_pct[k] == pytest.approx(ref.pnn50_pct, rel=1e-12)


def test_windows_without_enough_beats_are_nan() -> None:
    t = T0 + np.array([1, 2, 3, 700, 701], dtype=np.int64) * S
    win = hrv.windows(t, [800.0, 810, 790, 805, 795], start=T0, end=T0 + 900 * S, min_intervals=3)
    assert win.n_intervals.tolist() == [3, 0, 2]
    assert not np.isnan(win.rmssd_ms[0])
    assert np.isnan(win.rmssd_ms[1:]).all()


def test_windows_after_the_last_beat_are_empty_not_an_error() -> None:
    """A partial day (a gateway that started mid-afternoon) leaves trailing windows empty."""
    rr = simulate_rr(1200, seed=8)
    t = T0 + np.round(np.cumsum(rr) * 1000).astype(np.int64)
    end = T0 + 86_400 * S
    win = hrv.windows(t, rr, start=T0, end=end, window_s=300)
    filled = int(np.count_nonzero(win.n_intervals))
    assert filled == int(np.ceil((t[-1] - T0) / (300 * S)))
    assert win.n_intervals.sum() == rr.size
    assert np.isnan(win.rmssd_ms[filled:]).all()
    ref = hrv.between(t, rr, T0, T0 + 300 * S)
    assert win.rmssd_ms[0] == pytest.approx(ref.rmssd_ms, rel=1e-12)


def test_between_selects_a_night() -> None:
    rr = np.concatenate((np.full(100, 1000.0), np.full(100, 600.0)))
    t = T0 + np.round(np.cumsum(rr) * 1000).astype(np.int64)
    night = hrv.between(t, rr, T0, T0 + 100 * S)
    assert night.n_intervals == 99  # the 100th beat ends exactly at T0 + 100 s
    assert night.mean_nn_ms == 1000.0
    assert night.rmssd_ms == 0.0
