"""Each flag rule on small known histories: it fires when it should and stays quiet otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from paceline.pacing.exposure import SessionRecord, SessionStatus
from paceline.pacing.flags import Flag, RuleSpec, Severity, episodes
from paceline.pacing.history import History, build
from paceline.pacing.progression import PlanSettings
from paceline.pacing.rules import (
    RULES,
    all_flags,
    avoidance,
    contingency,
    cycling,
    dataquality,
    flare,
    overexertion,
)
from tests.pacing.builders import START, day_evidence, history


def flags_of(spec: RuleSpec, h: History) -> list[Flag]:
    rule = next(r for r in RULES if r.spec is spec)
    return rule.flags(h)


def test_over_quota_is_graded_by_how_far_above_the_envelope() -> None:
    # Envelope 1.2 x 30 = 36: 37 is just above (info), 60 is 1.67 x (warning), 75 is 2.08 x.
    h = history([30, 30, 37, 30, 30, 60, 30, 30, 75, 30, 30])
    flags = flags_of(overexertion.OVER_QUOTA, h)
    assert [(f.start.day - START.day, f.severity) for f in flags] == [
        (2, Severity.INFO),
        (5, Severity.WARNING),
        (8, Severity.CRITICAL),
    ]
    assert day_evidence(flags[0], 0)["ratio"] == 1.23
    assert day_evidence(flags[2], 0)["load_over_envelope"] == 2.08


def test_a_patient_doing_their_baseline_in_week_one_is_not_a_warning() -> None:
    # The first quota is 80 % of the baseline: the baseline itself is 1.25 x quota.
    h = history([37.5] * 7, quota=30.0)
    (flag,) = flags_of(overexertion.OVER_QUOTA, h)
    assert flag.severity is Severity.INFO
    assert flag.evidence["episode_days"] == 7


def thresholds(flag: Flag) -> dict[str, Any]:
    value = flag.evidence["thresholds"]
    assert isinstance(value, dict)
    return value


def _with_settings(h: History, settings: PlanSettings) -> History:
    return build(h.days, h.diary, [replace(p, settings=settings) for p in h.plans], h.sessions)


def test_flag_thresholds_are_the_per_plan_settings_the_detector_used() -> None:
    settings = PlanSettings(envelope_fraction=1.5, bust_fraction=0.5, max_above_ceiling_min=10.0)
    over = _with_settings(history([30, 30, 50, 30, 30]), settings)
    (flag,) = flags_of(overexertion.OVER_QUOTA, over)
    assert thresholds(flag)["envelope_fraction"] == 1.5
    assert day_evidence(flag, 0)["envelope"] == 45.0
    under = _with_settings(history([30, 12, 12, 12, 30, 30]), settings)
    (flag,) = flags_of(avoidance.UNDER_QUOTA, under)
    assert thresholds(flag)["bust_fraction"] == 0.5
    # 16 is under the default 0.7 x 30 = 21 but over the plan's 0.5 x 30 = 15.
    assert (
        flags_of(avoidance.UNDER_QUOTA, _with_settings(history([30, 16, 16, 16]), settings)) == []
    )


def test_a_week_at_twice_the_quota_fires_the_acwr_spike() -> None:
    # The EWMA ratio stayed below 1.5 for a whole week at 2x; the rolling ratio reaches 1.6.
    h = history([30.0] * 28 + [60.0] * 7)
    (flag,) = flags_of(overexertion.ACWR_SPIKE, h)
    assert flag.active
    assert day_evidence(flag, -1)["acwr"] == 1.6
    assert flag.evidence["thresholds"] == {"enter_ratio": 1.5, "hold_ratio": 1.3}


def test_a_boom_followed_by_a_two_point_pain_rise_within_48h_is_flagged() -> None:
    h = history([30, 30, 45, 20, 25, 30], pain=[4, 4, 4, 5, 7, 4])
    (flag,) = flags_of(overexertion.PAIN_AFTER_BOOM, h)
    assert flag.start == START + timedelta(days=4)
    latest = day_evidence(flag, -1)
    assert latest["boom_day"] == (START + timedelta(days=2)).isoformat()
    assert latest["rise"] == 3.0


def test_a_pain_rise_three_days_after_the_boom_is_not_attributed_to_it() -> None:
    h = history([30, 30, 45, 20, 25, 30], pain=[4, 4, 4, 4, 4, 7])
    assert flags_of(overexertion.PAIN_AFTER_BOOM, h) == []


def test_acwr_spike_needs_an_established_chronic_load() -> None:
    steady = [30.0] * 28
    h = history([*steady, 100, 100, 100, 100], quota=None)
    (flag,) = flags_of(overexertion.ACWR_SPIKE, h)
    assert flag.start >= START + timedelta(days=28)
    assert day_evidence(flag, -1)["acwr"] >= 1.5
    early = history([30.0] * 5 + [90, 90, 90], quota=None)
    assert flags_of(overexertion.ACWR_SPIKE, early) == []


def test_three_days_under_70_percent_of_quota_is_avoidance() -> None:
    h = history([30, 18, 19, 20, 30, 30])
    (flag,) = flags_of(avoidance.UNDER_QUOTA, h)
    assert (flag.start, flag.end, flag.active) == (
        START + timedelta(days=1),
        START + timedelta(days=3),
        False,
    )


def test_non_wear_days_are_never_avoidance_and_do_not_break_a_run() -> None:
    nonwear = history([30, None, None, None, None, 30, 30])
    assert flags_of(avoidance.UNDER_QUOTA, nonwear) == []
    silent = history([30, 0, 0, 0, 30], silent=[1, 2, 3])
    assert flags_of(avoidance.UNDER_QUOTA, silent) == []
    assert flags_of(avoidance.UNDER_QUOTA, history([18, None, 18, None, 18]))[0].active


def test_high_fear_with_low_activity_is_fear_avoidance() -> None:
    h = history([30, 15, 15, 15, 30], pain=[4] * 5, fear=[3, 8, 8, 8, 3])
    (flag,) = flags_of(avoidance.FEAR_AVOIDANCE, h)
    assert flag.start == START + timedelta(days=1)
    calm = history([30, 15, 15, 15, 30], pain=[4] * 5, fear=[3, 3, 3, 3, 3])
    assert flags_of(avoidance.FEAR_AVOIDANCE, calm) == []


def _session(i: int, day: int, status: SessionStatus) -> SessionRecord:
    planned = datetime.combine(START + timedelta(days=day), time(10), UTC)
    return SessionRecord(
        i, 1, planned, planned.date(), status, None, None, None, None, None, None, None
    )


def test_two_skipped_exposures_in_a_week_are_flagged() -> None:
    sessions = [
        _session(1, 1, SessionStatus.SKIPPED),
        _session(2, 3, SessionStatus.SKIPPED),
        _session(3, 5, SessionStatus.DONE),
    ]
    h = history([30] * 7, sessions=sessions)
    (flag,) = flags_of(avoidance.SKIPPED_EXPOSURE, h)
    assert flag.start == START + timedelta(days=3)
    done = [_session(1, 1, SessionStatus.DONE), _session(2, 3, SessionStatus.DONE)]
    assert flags_of(avoidance.SKIPPED_EXPOSURE, history([30] * 7, sessions=done)) == []


def test_a_session_left_planned_for_more_than_a_day_counts_as_missed() -> None:
    sessions = [_session(1, 0, SessionStatus.PLANNED), _session(2, 1, SessionStatus.PLANNED)]
    h = history([30] * 4, sessions=sessions)
    (flag,) = flags_of(avoidance.SKIPPED_EXPOSURE, h)
    assert flag.start == START + timedelta(days=2)


def test_a_chronic_load_falling_while_below_quota_is_flagged() -> None:
    active = [30.0] * 14 + [12.0] * 21
    (flag,) = flags_of(avoidance.CHRONIC_DECLINE, history(active))
    assert flag.active
    steady = [31.0] * 35
    assert flags_of(avoidance.CHRONIC_DECLINE, history(steady)) == []


def test_activity_that_follows_yesterdays_pain_is_pain_contingent() -> None:
    # Pain alternates in a 3-day pattern; activity drops the day after each high-pain day.
    pain = [3, 3, 7] * 9
    active = [30.0 if pain[i - 1] < 5 else 12.0 for i in range(1, 27)]
    active = [30.0, *active]
    (flag,) = flags_of(contingency.PAIN_CONTINGENT, history(active, pain=pain))
    assert flag.active
    assert flag.severity is Severity.INFO
    assert day_evidence(flag, -1)["fired_at_lag_days"] == [1]


def test_activity_that_drops_on_the_painful_day_itself_is_pain_contingent() -> None:
    # Same-day coupling: the previous day's pain says nothing about the day's load here.
    pain = [3, 3, 7] * 9
    active = [12.0 if p >= 5 else 30.0 for p in pain]
    (flag,) = flags_of(contingency.PAIN_CONTINGENT, history(active, pain=pain))
    assert flag.active
    latest = day_evidence(flag, -1)
    assert latest["fired_at_lag_days"] == [0]
    assert latest["lag_0_day"]["rho"] <= -0.5


def test_activity_steady_whatever_the_pain_is_not_pain_contingent() -> None:
    pain = [3, 3, 7] * 9
    active = [30.0 + (i % 2) for i in range(27)]
    assert flags_of(contingency.PAIN_CONTINGENT, history(active, pain=pain)) == []


def test_alternating_booms_and_busts_are_cycling_but_a_steady_fortnight_is_not() -> None:
    cycle = [55.0, 12.0, 14.0, 30.0] * 4
    (flag,) = flags_of(cycling.BOOM_BUST, history(cycle))
    assert flag.active
    assert day_evidence(flag, -1)["switches"] >= 3
    assert flags_of(cycling.BOOM_BUST, history([31.0, 33.0, 30.0, 34.0] * 4)) == []


def test_a_trend_is_not_cycling() -> None:
    ramp = [12.0 + 3 * i for i in range(16)]
    assert flags_of(cycling.BOOM_BUST, history(ramp)) == []


def test_data_quality_rules_tell_non_wear_silence_and_missing_diaries_apart() -> None:
    h = history(
        [30, None, 30, 0, 0, 30, 30, 30],
        pain=[4, 4, 4, 4, 4, None, None, 4],
        silent=[3, 4],
    )
    assert [f.start for f in flags_of(dataquality.NO_WEAR, h)] == [START + timedelta(days=1)]
    assert [f.start for f in flags_of(dataquality.DEVICE_SILENT, h)] == [START + timedelta(days=3)]
    assert [f.start for f in flags_of(dataquality.MISSING_DIARY, h)] == [START + timedelta(days=5)]


def test_a_flare_is_pain_two_points_above_usual_on_two_days() -> None:
    pain = [3.0] * 10 + [6.0, 6.0, 5.0, 3.0, 3.0, 3.0]
    (flag,) = flags_of(flare.FLARE_EPISODE, history([30] * 16, pain=pain))
    assert flag.start == START + timedelta(days=10)
    assert flag.opened == START + timedelta(days=11)
    assert flag.end == START + timedelta(days=12)
    one_bad_day = [3.0] * 10 + [6.0, 3.0, 3.0, 3.0]
    assert flags_of(flare.FLARE_EPISODE, history([30] * 14, pain=one_bad_day)) == []


def test_a_steady_patient_raises_no_flag_at_all() -> None:
    h = history([31.0, 33.0, 32.0, 34.0] * 7, pain=[4, 4, 5, 4] * 7, fear=[3] * 28)
    assert all_flags(h) == []


def test_every_rule_id_is_unique_and_namespaced() -> None:
    ids = [r.spec.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(
        i.split(".")[0]
        in {"boom", "bust", "pacing", "cycling", "data", "flare", "safety", "exposure", "relapse"}
        for i in ids
    )


def test_episodes_of_a_rule_are_a_pure_function_of_its_signals() -> None:
    h = history([30, 18, 19, 20, 30, 30])
    once = episodes(avoidance.UNDER_QUOTA, avoidance.under_quota(h))
    assert once == episodes(avoidance.UNDER_QUOTA, avoidance.under_quota(h))
