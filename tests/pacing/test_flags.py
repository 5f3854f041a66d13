"""Flag episodes: minimum durations and hysteresis keep flags from flickering."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from paceline.pacing.flags import DaySignal, RuleSpec, Severity, episodes
from tests.pacing.builders import day_evidence

D0 = date(2026, 4, 1)


def signals(pattern: str, hold: str | None = None) -> list[DaySignal]:
    """`pattern`: one char per day, '1' condition, '0' clear, '?' unknown; `hold` likewise."""
    conv = {"1": True, "0": False, "?": None}
    return [
        DaySignal(
            D0 + timedelta(days=i),
            conv[c],
            None if hold is None else conv[hold[i]],
            evidence={"i": i},
        )
        for i, c in enumerate(pattern)
    ]


def test_an_episode_opens_only_after_the_minimum_run() -> None:
    spec = RuleSpec("t.rule", "test", min_on_days=3, min_off_days=2)
    assert episodes(spec, signals("1101100")) == []
    (flag,) = episodes(spec, signals("0111000"))
    assert flag.start == D0 + timedelta(days=1)
    assert flag.opened == D0 + timedelta(days=3)
    assert flag.end == D0 + timedelta(days=3)
    assert not flag.active


def test_unknown_days_neither_count_nor_break_a_run() -> None:
    spec = RuleSpec("t.rule", "test", min_on_days=3, min_off_days=2)
    (flag,) = episodes(spec, signals("11??1"))
    assert flag.active
    assert flag.start == D0
    assert flag.evidence["episode_days"] == 3


def test_a_looser_hold_threshold_keeps_one_flag_through_borderline_days() -> None:
    # A patient hovering around the entry threshold: enters, then only meets the hold test.
    spec = RuleSpec("t.rule", "test", min_on_days=3, min_off_days=2)
    enter = "1110101010"
    hold_ = "1111111111"
    flags = episodes(spec, signals(enter, hold_))
    assert len(flags) == 1
    assert flags[0].active
    assert flags[0].end == D0 + timedelta(days=9)


def test_without_hysteresis_the_same_days_would_flicker() -> None:
    spec = RuleSpec("t.rule", "test", min_on_days=1, min_off_days=1)
    assert len(episodes(spec, signals("1010101"))) == 4


def test_one_clear_day_does_not_close_a_flag_that_needs_two() -> None:
    spec = RuleSpec("t.rule", "test", min_on_days=1, min_off_days=2)
    flags = episodes(spec, signals("1101100"))
    assert [(f.start, f.end, f.active) for f in flags] == [(D0, D0 + timedelta(days=4), False)]


def test_severity_escalates_with_the_length_of_an_episode() -> None:
    spec = RuleSpec("t.rule", "test", min_on_days=1, escalate_after_days=4)
    (short,) = episodes(spec, signals("111"))
    (long,) = episodes(spec, signals("1111"))
    assert short.severity is Severity.WARNING
    assert long.severity is Severity.CRITICAL


def test_evidence_lists_the_rule_the_window_and_the_days() -> None:
    spec = RuleSpec("t.rule", "what it means")
    days = [replace(s, thresholds={"x": 1}) for s in signals("11")]
    (flag,) = episodes(spec, days)
    assert flag.evidence["rule"] == "what it means"
    assert flag.evidence["thresholds"] == {"x": 1}
    assert [day_evidence(flag, k)["i"] for k in (0, 1)] == [0, 1]


def test_evidence_thresholds_are_those_the_days_were_decided_with() -> None:
    spec = RuleSpec("t.rule", "test")
    first, second = signals("11")
    days = [replace(first, thresholds={"x": 1}), replace(second, thresholds={"x": 2})]
    (flag,) = episodes(spec, days)
    assert flag.evidence["thresholds"] == {"x": 2}
    assert day_evidence(flag, 0)["thresholds"] == {"x": 1}
    assert "thresholds" not in day_evidence(flag, 1)
