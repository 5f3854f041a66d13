"""The benchmarks' own checks: targets that fail on a miss, a row-identity comparison that counts."""

from __future__ import annotations

import json
import math

import pytest

from bench._targets import Target, finish
from bench.ingest_e2e import MATCH_WINDOW_US, compare, compare_rr


def test_a_missed_target_exits_one_and_the_json_is_the_last_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = finish(
        {"ratio": 0.7, "exact": 1.0}, [Target("ratio", ">=", 0.8), Target("exact", "==", 1)]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    last = json.loads(lines[-1])
    assert last["ok"] is False
    assert last["targets"]["ratio"]["met"] is False
    assert last["targets"]["exact"]["met"] is True


@pytest.mark.parametrize("value", [None, math.nan, math.inf, True, "1.0"])
def test_a_missing_or_unusable_figure_never_meets_a_target(value: object) -> None:
    assert not Target("x", "<=", 10).met(value)


def test_all_targets_met_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert finish({"d": 0.2}, [Target("d", "<=", 1.0)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"] is True


def test_row_identity_counts_losses_duplicates_and_wrong_values() -> None:
    second = 1_000_000
    truth = [(k * second, 60 + k) for k in range(5)]
    offset = MATCH_WINDOW_US // 10  # the stamper's constant offset is not a difference
    assert compare(truth, [(t + offset, v) for t, v in truth]) == (0, 0)
    stored = [(t, v) for t, v in truth if t != 2 * second]  # one lost
    stored.append((3 * second, 63))  # one stored twice
    stored.sort()
    assert compare(truth, stored) == (1, 1)
    wrong = [(t, v + (1 if t == 4 * second else 0)) for t, v in truth]
    assert compare(truth, wrong) == (1, 1)
    far = [(t + 2 * MATCH_WINDOW_US, v) for t, v in truth]
    assert compare(truth, far) == (5, 5)


def test_an_rr_sequence_matches_only_whole() -> None:
    assert compare_rr([800.0, 810.0], [800.0, 810.0]) == (0, 0)
    assert compare_rr([800.0, 810.0], [800.0, 810.0, 810.0]) == (2, 3)
    assert compare_rr([800.0, 810.0], [810.0, 800.0]) == (2, 2)
