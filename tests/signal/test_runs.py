"""Run-length encoding, gap bridging and Troiano bouts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paceline.signal.runs import Runs, bouts, bridge, true_runs


def _mask(bits: str) -> npt.NDArray[np.bool_]:
    return np.array([c == "1" for c in bits], dtype=np.bool_)


def test_true_runs_finds_every_stretch_including_the_edges() -> None:
    runs = true_runs(_mask("1100111001"))
    assert runs.start.tolist() == [0, 4, 9]
    assert runs.stop.tolist() == [2, 7, 10]
    assert runs.longest() == 3
    assert runs.total() == 6


def test_to_mask_inverts_true_runs() -> None:
    mask = _mask("0110001111010")
    assert np.array_equal(true_runs(mask).to_mask(mask.shape[0]), mask)
    assert not Runs(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).to_mask(4).any()


def test_bridge_merges_only_gaps_up_to_the_limit() -> None:
    runs = bridge(true_runs(_mask("1100100011")), 2)
    assert list(zip(runs.start.tolist(), runs.stop.tolist(), strict=True)) == [(0, 5), (8, 10)]


def test_bout_allows_two_minute_interruptions_and_needs_ten_minutes() -> None:
    # 4 active, 2 off, 5 active = 11 minutes: one bout (Troiano et al. 2008).
    one = bouts(_mask("1111" + "00" + "11111"), min_length=10, max_interruption=2)
    assert (one.start.tolist(), one.stop.tolist()) == ([0], [11])
    # A three-minute interruption ends it; neither half reaches ten minutes.
    none = bouts(_mask("11111" + "000" + "11111"), min_length=10, max_interruption=2)
    assert len(none) == 0
