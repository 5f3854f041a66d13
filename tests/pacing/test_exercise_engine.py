"""Exercise vignettes through the real engine on a real database: rise, hold, step down, pause."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import intake, planning, prescribing, records, replay
from paceline.pacing.engine import Evaluation, evaluate_patient
from paceline.pacing.errors import ExerciseError, IdempotencyConflictError, OutOfRangeError
from paceline.pacing.exercise import Kind, Prescription, Target, TargetCause, TargetVersion
from paceline.pacing.planning import plan_history
from paceline.pacing.progression import Cause
from paceline.pacing.redflags import CODES
from paceline.pacing.simulate import Persona, SimPatient
from tests.factories import patient_and_clinician

START = date(2026, 3, 2)


def enrol(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    return patient_and_clinician(conn, enrolled=datetime.combine(START, time(8), UTC))


def prescribe(
    conn: psycopg.Connection[Any],
    pid: int,
    dr: int,
    kind: Kind,
    name: str,
    *,
    per_week: int,
    target: Target,
) -> Prescription:
    rx, _ = prescribing.prescribe(
        conn,
        pid,
        clinician_id=dr,
        kind=kind,
        name=name,
        sessions_per_week=per_week,
        target=target,
        reason="first prescription",
        valid_from=START,
    )
    conn.commit()
    return rx


def log(
    conn: psycopg.Connection[Any],
    pid: int,
    rx: int,
    i: int,
    *,
    minutes: float = 30.0,
    reps: int | None = None,
    sets: int | None = None,
    before: int = 3,
    after: int = 3,
) -> intake.ExerciseSubmission:
    at = datetime.combine(START + timedelta(days=i), time(11), UTC)
    return intake.submit_exercise(
        conn,
        pid,
        rx,
        performed_at=at,
        duration_min=minutes,
        repetitions=reps,
        sets=sets,
        rpe=4,
        pain_before=before,
        pain_after=after,
        now=at + timedelta(minutes=30),
    )


def evaluate(conn: psycopg.Connection[Any], pid: int, i: int) -> Evaluation:
    d = START + timedelta(days=i)
    ev = evaluate_patient(conn, pid, d, now=datetime.combine(d, time(23), UTC))
    conn.commit()
    return ev


def targets(conn: psycopg.Connection[Any], pid: int, rx: int) -> list[TargetVersion]:
    return records.target_versions(conn, pid)[rx]


def test_a_target_holds_after_a_session_that_worsened_pain_and_rises_after_three_good_ones(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    rx = prescribe(
        conn, pid, dr, Kind.STRENGTH, "sit to stand", per_week=5, target=Target(repetitions=10)
    )
    conn.commit()
    rid = rx.prescription_id
    plan: dict[int, tuple[int, int]] = {1: (3, 3), 2: (3, 4), 3: (2, 4), 4: (3, 3), 5: (3, 2)}
    plan[6] = (3, 4)
    changes: dict[int, tuple[TargetVersion, ...]] = {}
    for i in range(8):
        if i in plan:
            before, after = plan[i]
            submitted = log(conn, pid, rid, i, reps=10, before=before, after=after)
            assert submitted.response.completed
            assert submitted.response.worsened == (i == 3)
        changes[i] = evaluate(conn, pid, i).exercise_changes
    # Sessions 1 and 2 were good, 3 worsened pain (2 -> 4): no rise on day 3, nor
    # on days 4 and 5 (only two good sessions since). Day 6 completes three.
    assert all(changes[i] == () for i in range(6))
    (raised,) = changes[6]
    assert raised.cause is TargetCause.PROGRESSION
    assert raised.target.repetitions == 11
    assert raised.valid_from == START + timedelta(days=7)
    assert raised.evidence["pain_after"] == [3, 2, 4]
    assert changes[7] == ()
    assert [v.version for v in targets(conn, pid, rid)] == [1, 2]
    # Re-running an evaluated day changes nothing; the rise was audited by the engine.
    assert evaluate(conn, pid, 6).exercise_changes == ()
    rows = conn.execute(
        "SELECT actor FROM audit_log WHERE patient_id = %s AND action = 'exercise.target'"
        " ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert rows == [(f"clinician:{dr}",), ("pacing-engine",)]
    # A session on day 7 is logged against the new target.
    assert log(conn, pid, rid, 7, reps=10).response.completed is False


def test_a_flare_steps_the_exercise_target_down_with_the_quota(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    rx = prescribe(
        conn,
        pid,
        dr,
        Kind.ENDURANCE,
        "brisk walk",
        per_week=3,
        target=Target(duration_min=20.0, hr_zone=(2, 3)),
    )
    conn.commit()
    rid = rx.prescription_id
    sim = SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20)
    quota: float | None = None
    step_downs = []
    for i in range(26):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, pid, sim.next_day(d, quota))
        if i % 2 == 0 and i <= 18:
            log(conn, pid, rid, i, minutes=30.0)
        ev = evaluate(conn, pid, i)
        quota = ev.next_plan.quota if ev.next_plan is not None else None
        step_downs += [(i, v) for v in ev.exercise_changes if v.cause is TargetCause.FLARE]
    versions = targets(conn, pid, rid)
    assert [v.cause for v in versions] == [TargetCause.CLINICIAN] + [
        TargetCause.PROGRESSION
    ] * 3 + [TargetCause.FLARE]
    assert [v.target.duration_min for v in versions] == [20.0, 22.0, 24.0, 26.5, 21.0]
    assert all(v.target.hr_zone == (2, 3) for v in versions)
    plan_flare = next(p for p in plan_history(conn, pid) if p.cause is Cause.FLARE)
    ((day, down),) = step_downs
    assert down.valid_from == plan_flare.valid_from == START + timedelta(days=23)
    assert day == 22
    assert down.flare_start == plan_flare.flare_start


def test_an_open_red_flag_pauses_the_rise_and_a_clinician_override_is_logged_against(
    conn: psycopg.Connection[Any],
) -> None:
    pid, dr = enrol(conn)
    rx = prescribe(
        conn,
        pid,
        dr,
        Kind.BALANCE,
        "single-leg stance",
        per_week=7,
        target=Target(duration_min=2.0, sets=3),
    )
    rid = rx.prescription_id
    morning = datetime.combine(START, time(9), UTC)
    intake.submit_red_flag_screen(
        conn, pid, {**dict.fromkeys(CODES, False), "fever": True}, answered_at=morning, now=morning
    )
    conn.commit()
    for i in range(4):
        log(conn, pid, rid, i, minutes=2.0, sets=3, before=2, after=2)
        assert evaluate(conn, pid, i).exercise_changes == ()
    # A clinician clears the pause on the morning of day 4: it covered days 0 to 3.
    planning.clear_pause(
        conn,
        pid,
        clinician_id=dr,
        note="seen: no infection",
        now=datetime.combine(START + timedelta(days=4), time(7), UTC),
    )
    conn.commit()
    log(conn, pid, rid, 4, minutes=2.0, sets=3, before=2, after=2)
    (raised,) = evaluate(conn, pid, 4).exercise_changes
    assert raised.valid_from == START + timedelta(days=5)
    # A clinician changes the target; a session is logged once per idempotency key.
    prescribing.set_target(
        conn,
        pid,
        rid,
        clinician_id=dr,
        target=Target(duration_min=1.0, sets=3),
        reason="easier after the review",
        valid_from=START + timedelta(days=5),
    )
    conn.commit()
    at = datetime.combine(START + timedelta(days=5), time(11), UTC)
    kw: dict[str, Any] = {"performed_at": at, "duration_min": 1.0, "sets": 3, "rpe": 3}
    one = intake.submit_exercise(
        conn, pid, rid, **kw, pain_before=2, pain_after=2, idempotency_key="k1", now=at
    )
    again = intake.submit_exercise(
        conn, pid, rid, **kw, pain_before=2, pain_after=2, idempotency_key="k1", now=at
    )
    assert (one.created, again.created, again.stored_id) == (True, False, one.stored_id)
    assert one.response.completed
    with pytest.raises(IdempotencyConflictError):
        intake.submit_exercise(
            conn, pid, rid, **kw, pain_before=2, pain_after=5, idempotency_key="k1", now=at
        )
    with pytest.raises(OutOfRangeError):
        intake.submit_exercise(conn, pid, rid, **kw, pain_before=2, pain_after=12, now=at)
    prescribing.end_prescription(conn, pid, rid, clinician_id=dr)
    conn.commit()
    with pytest.raises(ExerciseError):
        intake.submit_exercise(conn, pid, rid, **kw, pain_before=2, pain_after=2, now=at)
    view = prescribing.overview(conn, pid, START, START + timedelta(days=5))
    (p,) = view.prescriptions
    assert p.current is not None and p.current.target.duration_min == 1.0
    assert (p.adherence.logged, p.adherence.completed) == (6, 6)
    assert view.daily_load[-1] == (START + timedelta(days=5), 3.0)
