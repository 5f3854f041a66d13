"""Rest days, lighter weeks and the maintenance phase: the schedule ahead, the flags, progression.

The vignettes run the real engine day by day in a closed loop: each day the
simulated patient does what the plan asks of that day (its actual target), as
a patient keeping to the plan would.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import planning
from paceline.pacing.engine import Evaluation, evaluate_patient
from paceline.pacing.errors import OutOfRangeError, PlanError
from paceline.pacing.progression import (
    Cause,
    DayKind,
    PlanSettings,
    PlanVersion,
    day_target,
    default_plan,
    schedule,
    today,
)
from paceline.pacing.replay import store_sim_day
from paceline.pacing.simulate import SimDay
from paceline.store import registry

START = date(2026, 3, 2)  # a Monday
SUNDAY = 6


def enrol(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    p = registry.create_patient(
        conn,
        external_ref=f"C-{uuid.uuid4().hex[:10]}",
        display_name="Calendar",
        enrolled_at=datetime.combine(START, time(8), UTC),
    )
    cid = registry.create_clinician(conn, username=f"dr{uuid.uuid4().hex[:8]}", display_name="Dr")
    conn.commit()
    return p.patient_id, cid


def sim_day(i: int, active: float, *, fear: int = 3) -> SimDay:
    return SimDay(
        day=START + timedelta(days=i),
        reported=True,
        wear_min=840.0,
        active_min=active,
        steps=int(1500 + 95 * active),
        trimp=1.3 * active,
        above_ceiling_min=0.0,
        hr_samples=50400,
        pain=4,
        sleep=7,
        fear=fear,
    )


def play(
    conn: psycopg.Connection[Any],
    pid: int,
    days: range,
    doing: Any,
    plan: PlanVersion | None = None,
) -> tuple[list[Evaluation], PlanVersion | None]:
    """Each day: the patient does `doing(i, day's target or None)`; the day is evaluated."""
    out = []
    for i in days:
        d = START + timedelta(days=i)
        target = None if plan is None else day_target(plan, d)
        store_sim_day(conn, pid, sim_day(i, doing(i, target)))
        ev = evaluate_patient(conn, pid, d, now=datetime.combine(d, time(23), UTC))
        conn.commit()
        out.append(ev)
        plan = ev.next_plan
    return out, plan


def flagged(evs: list[Evaluation]) -> set[str]:
    return {r for ev in evs for r in ev.active_rules()}


def test_settings_validate_and_round_trip_through_the_plan_params() -> None:
    s = PlanSettings(
        rest_weekdays=(SUNDAY,),
        rest_fraction=0.25,
        lighter_every_weeks=4,
        lighter_fraction=0.6,
        lighter_anchor=START,
        maintenance_from=START + timedelta(weeks=12),
    )
    assert PlanSettings.from_json(s.as_json()) == s
    with pytest.raises(PlanError, match="lighter_anchor"):
        PlanSettings(lighter_every_weeks=4)
    with pytest.raises(OutOfRangeError):
        PlanSettings(rest_weekdays=(7,))
    with pytest.raises(OutOfRangeError):
        PlanSettings(lighter_fraction=0.1, lighter_every_weeks=4, lighter_anchor=START)
    # Every fourth week from the anchor is lighter; Sundays are rest days.
    kinds = [s.day_kind(START + timedelta(days=k)) for k in range(28)]
    assert kinds[6] is DayKind.REST
    assert kinds[21:27] == [DayKind.LIGHTER] * 6 and kinds[27] is DayKind.REST
    assert kinds[0:6] == [DayKind.NORMAL] * 6


def test_the_schedule_shows_rest_days_and_lighter_weeks_ahead() -> None:
    plan = replace(
        default_plan(START),
        baseline=40.0,
        quota=40.0,
        settings=PlanSettings(
            rest_weekdays=(SUNDAY,),
            lighter_every_weeks=2,
            lighter_fraction=0.5,
            lighter_anchor=START,
        ),
    )
    days = schedule([plan], START, 14)
    assert [(d.kind, d.target) for d in days[5:9]] == [
        (DayKind.NORMAL, 40.0),
        (DayKind.REST, 0.0),
        (DayKind.LIGHTER, 20.0),
        (DayKind.LIGHTER, 20.0),
    ]
    sunday = START + timedelta(days=6)
    rest = today(plan, None, sunday, local_today=sunday)
    assert rest.quota == 0.0 and "rest day" in rest.message
    lighter = today(plan, None, START + timedelta(days=7), local_today=START + timedelta(days=7))
    assert lighter.quota == 20.0 and "lighter week" in lighter.message


def test_a_lighter_week_and_rest_days_raise_no_avoidance_flag_and_no_rise_on_their_shortfall(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    # Lighter weeks every second week at half the quota, counted from the first quota day
    # (day 5, after the 5-day baseline); Sundays are rest days with no quota.
    settings = PlanSettings(
        rest_weekdays=(SUNDAY,),
        lighter_every_weeks=2,
        lighter_fraction=0.5,
        lighter_anchor=START + timedelta(days=5),
    )
    planning.set_plan(
        conn, pid, clinician_id=dr, reason="pattern", settings=settings, valid_from=START
    )
    conn.commit()

    def keeps_to_plan(i: int, target: float | None) -> float:
        if target is None:
            return 40.0
        return 5.0 if target == 0 else 1.05 * target

    evs, _ = play(conn, pid, range(33), keeps_to_plan)
    assert not {r for r in flagged(evs) if r.startswith(("bust.", "cycling.", "relapse."))}
    plans = planning.plan_history(conn, pid)
    assert Cause.FLARE not in {p.cause for p in plans}, "no step-back"
    rises = [(p.valid_from - START).days for p in plans if p.cause is Cause.PROGRESSION]
    # Periods 5-11 (normal) and 19-25 (normal) rise; 12-18 and 26-32 are lighter weeks.
    assert rises == [12, 26]
    upcoming = planning.upcoming(
        conn, pid, now=datetime.combine(START + timedelta(days=33), time(9), UTC)
    )
    # From Saturday of day 33: Sunday is a rest day, days 40-46 the next lighter week.
    assert upcoming[0].kind is DayKind.NORMAL and upcoming[1].kind is DayKind.REST
    lighter, rest = DayKind.LIGHTER, DayKind.REST
    assert [d.kind for d in upcoming[7:14]] == [lighter, rest, *[lighter] * 5]
    assert upcoming[7].target == round(0.5 * 40.0, 1)


def test_the_same_patient_without_the_pattern_is_flagged_for_the_lighter_weeks_load(
    conn: psycopg.Connection[Any],
) -> None:
    # The control: the same half-quota days without a lighter week in the plan are avoidance.
    pid, _ = enrol(conn)

    def half_in_week_two(i: int, target: float | None) -> float:
        if target is None:
            return 40.0
        return 0.5 * 1.05 * target if 12 <= i <= 18 else 1.05 * target

    evs, _ = play(conn, pid, range(19), half_in_week_two)
    assert "bust.under_quota" in flagged(evs)


def test_a_maintenance_patient_drifting_into_avoidance_is_flagged_as_relapse(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)

    def drifting(i: int, target: float | None) -> float:
        if target is None:
            return 40.0
        return 0.4 * target if i >= 35 else 1.05 * target

    _, plan = play(conn, pid, range(28), drifting)
    assert plan is not None and plan.quota is not None
    maintained = planning.start_maintenance(
        conn,
        pid,
        clinician_id=dr,
        reason="programme complete after four weeks",
        day=START + timedelta(days=28),
        now=datetime.combine(START + timedelta(days=27), time(23, 30), UTC),
    )
    conn.commit()
    assert maintained.settings.maintenance_from == START + timedelta(days=28)
    quota = maintained.quota
    more, _ = play(conn, pid, range(28, 48), drifting, maintained)
    assert "relapse.avoidance" in flagged(more)
    assert "bust.under_quota" not in flagged(more), "the programme's daily flag stands down"
    first = next(
        i for i, ev in enumerate(more, start=28) if "relapse.avoidance" in ev.active_rules()
    )
    assert 35 < first <= 42, "flagged within a week of the drift"
    plans = planning.plan_history(conn, pid)
    assert all(p.quota == quota for p in plans if p.valid_from >= START + timedelta(days=28))
    assert plans[-1].cause is Cause.CLINICIAN, "no rise in maintenance"
    with pytest.raises(PlanError, match="no quota"):
        other, _ = enrol(conn)
        planning.start_maintenance(conn, other, clinician_id=dr, reason="too early")
