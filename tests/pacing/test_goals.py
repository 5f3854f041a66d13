"""Valued goals and milestones through the real engine on a real database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import goalsetting, intake, ladder, prescribing
from paceline.pacing.days import Measure
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.errors import GoalError, UnknownGoalError
from paceline.pacing.exercise import Kind, Target
from paceline.pacing.exposure import ItemStatus, LadderItem
from paceline.pacing.goals import GoalStatus
from paceline.pacing.milestones import MilestoneKind, milestones
from paceline.pacing.progression import Cause, PlanVersion
from paceline.store import access, registry
from tests.factories import patient_and_clinician

START = date(2026, 3, 2)


def enrol(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    return patient_and_clinician(conn, enrolled=datetime.combine(START, time(8), UTC))


def practise(conn: psycopg.Connection[Any], pid: int, item_id: int, day: int, fear: int) -> None:
    at = datetime.combine(START + timedelta(days=day), time(10), UTC)
    s = ladder.plan_session(conn, pid, item_id, planned_at=at)
    ladder.record_session(
        conn,
        pid,
        s.session_id,
        done=True,
        fear_before=fear,
        fear_after=max(fear - 10, 0),
        expected_harm=60,
        actual_harm=10,
        now=at + timedelta(hours=1),
    )


def test_a_goals_progress_follows_its_linked_rungs_and_exercise_target(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    garden = goalsetting.add_goal(conn, pid, title="Weed the vegetable patch", why="my garden")
    assert garden.created_by is None  # entered by the patient
    kneel = ladder.add_item(conn, pid, activity="kneeling on the lawn", fear_rating=80)
    lift = ladder.add_item(conn, pid, activity="lifting a watering can", fear_rating=60)
    rx, _ = prescribing.prescribe(
        conn,
        pid,
        clinician_id=dr,
        kind=Kind.ENDURANCE,
        name="garden walk",
        sessions_per_week=7,
        target=Target(duration_min=20.0),
        reason="build up to an hour outdoors",
        valid_from=START,
    )
    goalsetting.link_rung(conn, pid, garden.goal_id, kneel.item_id, clinician_id=dr)
    goalsetting.link_rung(conn, pid, garden.goal_id, lift.item_id, clinician_id=dr)
    goalsetting.link_exercise(
        conn, pid, garden.goal_id, rx.prescription_id, clinician_id=dr, needed_duration_min=24.0
    )
    conn.commit()
    (g,) = goalsetting.goal_progress(conn, pid, on=START)
    assert [p.progress for p in g.links] == [0.0, 0.0, 0.0]
    # Fear on the first rung falls from 80 to 60: half way to the move-up level of 40.
    practise(conn, pid, kneel.item_id, 0, 80)
    practise(conn, pid, kneel.item_id, 1, 60)
    (g,) = goalsetting.goal_progress(conn, pid, on=START + timedelta(days=1))
    assert g.links[0].progress == pytest.approx(0.5)
    # Three good walks raise the target to 22 minutes through the engine: half way to 24.
    for i in range(3):
        at = datetime.combine(START + timedelta(days=i), time(17), UTC)
        intake.submit_exercise(
            conn,
            pid,
            rx.prescription_id,
            performed_at=at,
            duration_min=20.0,
            rpe=3,
            pain_before=2,
            pain_after=2,
            now=at,
        )
        evaluate_patient(conn, pid, START + timedelta(days=i), now=at + timedelta(hours=6))
        conn.commit()
    (g,) = goalsetting.goal_progress(conn, pid, on=START + timedelta(days=3))
    assert [p.progress for p in g.links] == pytest.approx([0.5, 0.0, 0.5])
    assert g.progress == pytest.approx(1 / 3)
    assert not g.reached
    # Both rungs mastered and the walk at 24 minutes: the goal is reached, and listed once.
    ladder.edit_item(conn, pid, kneel.item_id, status=ItemStatus.MASTERED, clinician_id=dr)
    practise(conn, pid, lift.item_id, 3, 50)
    ladder.edit_item(conn, pid, lift.item_id, status=ItemStatus.MASTERED, clinician_id=dr)
    prescribing.set_target(
        conn,
        pid,
        rx.prescription_id,
        clinician_id=dr,
        target=Target(duration_min=24.0),
        reason="walked 25 minutes on holiday",
        valid_from=START + timedelta(days=5),
    )
    conn.commit()
    (g,) = goalsetting.goal_progress(conn, pid, on=START + timedelta(days=5))
    assert g.reached and g.progress == 1.0
    found = goalsetting.patient_milestones(conn, pid, on=START + timedelta(days=5))
    kinds = [m.kind for m in found]
    assert kinds.count(MilestoneKind.GOAL_REACHED) == 1
    assert kinds.count(MilestoneKind.RUNG_MASTERED) == 2
    assert kinds.count(MilestoneKind.TARGET_RAISED) == 1
    reached = next(m for m in found if m.kind is MilestoneKind.GOAL_REACHED)
    assert reached.day == START + timedelta(days=5)
    assert "Weed the vegetable patch" in reached.text
    assert len({m.key for m in found}) == len(found)
    audit = conn.execute(
        "SELECT action, actor FROM audit_log WHERE patient_id = %s AND object = 'valued_goal'"
        " ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert audit[0] == ("goal.add", f"patient:{pid}")
    assert [a for a, _ in audit[1:]] == ["goal.link"] * 3


def test_goals_reject_bad_input_and_links_to_another_patients_rung(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    other, _ = enrol(conn)
    theirs = ladder.add_item(conn, other, activity="carrying shopping", fear_rating=70)
    with pytest.raises(GoalError):
        goalsetting.add_goal(conn, pid, title="  ")
    g = goalsetting.add_goal(conn, pid, title="A shopping trip", clinician_id=dr)
    with pytest.raises(GoalError):
        goalsetting.link_rung(conn, pid, g.goal_id, theirs.item_id, clinician_id=dr)
    with pytest.raises(UnknownGoalError):
        goalsetting.edit_goal(conn, other, g.goal_id, status=GoalStatus.REACHED)
    done = goalsetting.edit_goal(conn, pid, g.goal_id, status="reached", clinician_id=dr)
    assert done.status is GoalStatus.REACHED and done.reached_day is not None
    conn.commit()


def test_people_see_and_enter_only_their_own_goals_and_exercise(
    conn: psycopg.Connection[Any], dashboard_conn: psycopg.Connection[Any], identity_key: Any
) -> None:
    mine, dr = enrol(conn)
    theirs, other_dr = enrol(conn)
    registry.assign_care_team(conn, clinician_id=dr, patient_id=mine)
    registry.assign_care_team(conn, clinician_id=other_dr, patient_id=theirs)
    for pid, cid in ((mine, dr), (theirs, other_dr)):
        goalsetting.add_goal(conn, pid, title="Play with the grandchildren", clinician_id=cid)
        prescribing.prescribe(
            conn,
            pid,
            clinician_id=cid,
            kind=Kind.MOBILITY,
            name="hip circles",
            sessions_per_week=5,
            target=Target(repetitions=10),
            reason="mobility",
            valid_from=START,
        )
    conn.commit()
    with access.patient_session(dashboard_conn, mine, key=identity_key) as c:
        own = goalsetting.add_goal(c, mine, title="A shopping trip")
        assert [g.goal.title for g in goalsetting.goal_progress(c, mine, on=START)] == [
            "Play with the grandchildren",
            "A shopping trip",
        ]
        (rx,) = prescribing.overview(c, mine, START, START).prescriptions
        at = datetime.combine(START, time(12), UTC)
        intake.submit_exercise(
            c,
            mine,
            rx.prescription.prescription_id,
            performed_at=at,
            duration_min=5.0,
            repetitions=10,
            rpe=2,
            pain_before=1,
            pain_after=1,
            now=at,
        )
        assert c.execute("SELECT count(*) FROM valued_goal").fetchone() == (2,)
        assert c.execute("SELECT count(*) FROM exercise_prescription").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(
                "INSERT INTO goal_link (goal_id, patient_id, prescription_id, needed_repetitions)"
                " VALUES (%s, %s, %s, 12)",
                (own.goal_id, mine, rx.prescription.prescription_id),
            )
    with (
        access.patient_session(dashboard_conn, mine, key=identity_key) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        c.execute("INSERT INTO valued_goal (patient_id, title) VALUES (%s, 'not mine')", (theirs,))
    with access.clinician_session(dashboard_conn, other_dr, key=identity_key) as c:
        assert c.execute("SELECT DISTINCT patient_id FROM valued_goal").fetchall() == [(theirs,)]
        assert c.execute("SELECT count(*) FROM exercise_session").fetchone() == (0,)


def test_milestones_come_from_the_data_once_each_newest_first() -> None:
    week = PlanVersion(
        3,
        Measure.ACTIVE_MINUTES,
        40.0,
        36.0,
        START + timedelta(days=12),
        Cause.PROGRESSION,
        "quota met",
        evidence={"met_days": 6, "valid_days": 7},
    )
    clinician = replace(week, version=4, cause=Cause.CLINICIAN, evidence={})
    rung = LadderItem(5, "bending to the dishwasher", 70, 0, ItemStatus.MASTERED)
    practised = LadderItem(6, "carrying a bag", 80, 1, ItemStatus.ACTIVE)
    found = milestones(
        items=[(rung, START + timedelta(days=3)), (practised, START + timedelta(days=20))],
        goals=[],
        targets=[],
        plans=[week, clinician, week],
    )
    assert [(m.kind, m.day) for m in found] == [
        (MilestoneKind.WEEK_ON_PLAN, START + timedelta(days=11)),
        (MilestoneKind.RUNG_MASTERED, START + timedelta(days=3)),
    ]
    assert found[0].text == "A week on plan: you met your activity plan on 6 of 7 days."
