"""Graded activity as pure rules: baseline, quota start, quota-contingent steps, flare step-back."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from paceline.pacing.days import DayLoad, Measure
from paceline.pacing.errors import OutOfRangeError, PlanError
from paceline.pacing.progression import (
    Cause,
    FlareOnset,
    PlanVersion,
    TodayState,
    advance,
    baseline_tolerance,
    default_plan,
    revise,
    today,
    version_on,
)

START = date(2026, 3, 2)


def day(i: int, active: float, *, wear: float = 840.0) -> DayLoad:
    """A day `i` after START with `active` minutes."""
    return DayLoad(
        START + timedelta(days=i),
        wear,
        active,
        int(active * 100),
        active * 1.3,
        0.0,
        int(wear * 60),
        reported=wear > 0,
        valid_wear=wear >= 600,
    )


def test_baseline_is_the_mean_of_the_first_valid_days_skipping_non_wear() -> None:
    days = [day(0, 30), day(1, 99, wear=120), day(2, 40), day(3, 50), day(4, 20), day(5, 60)]
    base = baseline_tolerance(days, Measure.ACTIVE_MINUTES, 5)
    assert base.value == pytest.approx((30 + 40 + 50 + 20 + 60) / 5)
    assert START + timedelta(days=1) not in base.days_used


def test_baseline_waits_for_enough_valid_days() -> None:
    base = baseline_tolerance([day(0, 30), day(1, 30)], Measure.ACTIVE_MINUTES, 5)
    assert not base.ready
    assert len(base.days_used) == 2


def test_quota_starts_at_80_percent_of_baseline_the_day_after_it_is_known() -> None:
    days = [day(i, 40) for i in range(5)]
    new = advance([default_plan(START)], days, [], START + timedelta(days=4))
    assert len(new) == 1
    assert new[0].cause is Cause.BASELINE
    assert new[0].baseline == 40
    assert new[0].quota == 32
    assert new[0].valid_from == START + timedelta(days=5)


def _with_quota(quota: float = 32.0, baseline: float = 40.0) -> PlanVersion:
    return replace(
        default_plan(START), version=2, baseline=baseline, quota=quota, cause=Cause.BASELINE
    )


def test_quota_rises_by_a_step_of_baseline_after_a_met_week() -> None:
    plan = _with_quota()
    days = [day(i, 33) for i in range(7)]
    new = advance([plan], days, [], START + timedelta(days=6))
    assert [v.quota for v in new] == [36.0]
    assert new[0].cause is Cause.PROGRESSION
    assert new[0].valid_from == START + timedelta(days=7)
    assert new[0].evidence["met_days"] == 7


def test_quota_holds_after_a_week_met_on_too_few_days() -> None:
    plan = _with_quota()
    days = [day(i, 33 if i < 4 else 20) for i in range(7)]
    assert advance([plan], days, [], START + timedelta(days=6)) == []


def test_each_met_week_raises_the_quota_whatever_the_pain() -> None:
    # Progression reads only load against quota (DayLoad has no pain): quota-contingent.
    plan = _with_quota()
    new = advance([plan], [day(i, 40) for i in range(14)], [], START + timedelta(days=13))
    assert [v.quota for v in new] == [36.0, 40.0]


def test_a_week_mostly_without_wear_decides_nothing() -> None:
    plan = _with_quota()
    days = [day(i, 33, wear=100 if i < 5 else 840) for i in range(7)]
    assert advance([plan], days, [], START + timedelta(days=6)) == []


def test_advance_is_idempotent_once_its_versions_are_stored() -> None:
    plan = _with_quota()
    days = [day(i, 33) for i in range(10)]
    through = START + timedelta(days=9)
    new = advance([plan], days, [], through)
    assert advance([plan, *new], days, [], through) == []


def test_a_confirmed_flare_steps_the_quota_back_to_80_percent_and_rebuilds() -> None:
    plan = replace(_with_quota(quota=40.0))
    flare = FlareOnset(START + timedelta(days=2), START + timedelta(days=3))
    days = [day(i, 41) for i in range(4)] + [day(i, 33) for i in range(4, 11)]
    new = advance([plan], days, [flare], START + timedelta(days=10))
    assert [(v.cause, v.quota) for v in new] == [(Cause.FLARE, 32.0), (Cause.PROGRESSION, 36.0)]
    assert new[0].valid_from == START + timedelta(days=4)
    assert new[0].flare_start == flare.start
    # the rebuilt period counts from the step-back
    assert new[1].valid_from == START + timedelta(days=11)


def test_the_same_flare_is_not_stepped_back_twice() -> None:
    plan = _with_quota(quota=40.0)
    flare = FlareOnset(START + timedelta(days=2), START + timedelta(days=3))
    days = [day(i, 41) for i in range(6)]
    first = advance([plan], days, [flare], START + timedelta(days=5))
    assert advance([plan, *first], days, [flare], START + timedelta(days=5)) == []


def test_repeated_flares_never_go_below_half_the_baseline() -> None:
    plan = _with_quota(quota=21.0, baseline=40.0)
    flare = FlareOnset(START, START + timedelta(days=1))
    new = advance([plan], [day(i, 20) for i in range(3)], [flare], START + timedelta(days=2))
    assert new[0].quota == 20.0


def test_quota_never_passes_the_target() -> None:
    plan = replace(_with_quota(quota=38.0), settings=replace(_with_quota().settings, target=40.0))
    new = advance([plan], [day(i, 50) for i in range(14)], [], START + timedelta(days=13))
    assert [v.quota for v in new] == [40.0]


def test_version_on_takes_the_highest_version_already_in_effect() -> None:
    v1 = default_plan(START)
    v2 = replace(_with_quota(), valid_from=START + timedelta(days=5))
    v3 = replace(_with_quota(quota=36), version=3, valid_from=START + timedelta(days=3))
    assert version_on([v1, v2, v3], START + timedelta(days=2)) is v1
    assert version_on([v1, v2, v3], START + timedelta(days=4)) is v3
    assert version_on([v1, v2, v3], START + timedelta(days=9)) is v3


def test_step_fraction_outside_5_to_20_percent_is_refused() -> None:
    with pytest.raises(OutOfRangeError, match="step_fraction"):
        replace(_with_quota(), step_fraction=0.3)


def test_clinician_revision_of_the_measure_measures_a_new_baseline() -> None:
    new = revise(
        _with_quota(),
        valid_from=START,
        reason="steps suit her better",
        created_by=7,
        measure=Measure.STEPS,
    )
    assert (new.measure, new.baseline, new.quota, new.version) == (Measure.STEPS, None, None, 3)
    assert new.cause is Cause.CLINICIAN


def test_clinician_baseline_sets_the_quota_from_the_start_fraction() -> None:
    new = revise(None, valid_from=START, reason="from clinic tests", created_by=7, baseline=50.0)
    assert (new.baseline, new.quota, new.version) == (50.0, 40.0, 1)


def test_a_quota_without_a_baseline_is_refused() -> None:
    with pytest.raises(PlanError, match="baseline"):
        revise(None, valid_from=START, reason="x", created_by=7, quota=30.0)


def test_today_says_how_much_is_left_in_plain_words() -> None:
    status = today(_with_quota(quota=40), day(0, 14.0), START)
    assert status.state is TodayState.BELOW
    assert status.remaining == pytest.approx(26)
    assert status.message == (
        "You have done 14 of 40 active minutes today; 26 active minutes left in today's plan."
    )


def test_the_patient_view_shows_the_plans_quota_exactly() -> None:
    # The quota was 53 while the view said "55 of 55" (both rounded to fives).
    status = today(_with_quota(quota=53), day(0, 55.0), START)
    assert status.state is TodayState.MET
    assert "55 of 53 active minutes" in status.message
    assert status.quota == 53


def test_the_view_of_a_day_that_is_over_names_its_date_not_today() -> None:
    status = today(
        _with_quota(quota=40), day(0, 14.0), START, local_today=START + timedelta(days=1)
    )
    assert "today" not in status.message
    assert START.isoformat() in status.message
    assert "14 of 40" in status.message


def test_a_floored_step_back_says_the_quota_was_held_at_the_floor() -> None:
    plan = _with_quota(quota=21.0, baseline=40.0)
    flare = FlareOnset(START, START + timedelta(days=1))
    (new,) = advance([plan], [day(i, 20) for i in range(3)], [flare], START + timedelta(days=2))
    assert new.quota == 20.0
    assert "stepped back to 80% of 21 = 20" not in new.reason
    assert "80% of 21 would be 16.8" in new.reason
    assert "below the floor of 50% of the baseline 40 (20)" in new.reason
    assert "quota lowered only to the floor: 20" in new.reason
    assert new.evidence["held_at_floor"] is True


def test_a_step_back_already_at_the_floor_says_the_quota_is_held() -> None:
    plan = _with_quota(quota=20.0, baseline=40.0)
    flare = FlareOnset(START, START + timedelta(days=1))
    (new,) = advance([plan], [day(i, 20) for i in range(3)], [flare], START + timedelta(days=2))
    assert new.quota == 20.0
    assert "already there and is held at 20" in new.reason


def test_an_unfloored_step_back_states_the_fraction_and_the_numbers() -> None:
    plan = _with_quota(quota=40.0, baseline=40.0)
    flare = FlareOnset(START, START + timedelta(days=1))
    (new,) = advance([plan], [day(i, 40) for i in range(3)], [flare], START + timedelta(days=2))
    assert "quota stepped back to 80% of 40 = 32" in new.reason


def test_today_above_the_envelope_says_to_ease_off() -> None:
    status = today(_with_quota(quota=30), day(0, 45.0), START)
    assert status.state is TodayState.ABOVE_ENVELOPE
    assert "ease off" in status.message


def test_today_during_the_baseline_counts_valid_days() -> None:
    status = today(default_plan(START), None, START, baseline_days_seen=3)
    assert status.state is TodayState.BASELINE
    assert "3 of 5" in status.message
