"""The red-flag queueing function (migration 0031): the patient queues their own evaluation, only.

`paceline_queue_red_flag_evaluation` runs with the owner's rights so that a
patient's positive answer gets its evaluation queued in the same
transaction. These attacks show what a patient session (or SQL injected into
one) can do with it: queue the evaluation of their own unread positive
screen, once, and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from paceline.pacing import intake
from paceline.pacing.jobs import tasks
from paceline.pacing.jobs.queue import EVALUATE_QUEUE
from paceline.pacing.redflags import CODES
from tests.security.conftest import Session, World

NO = dict.fromkeys(CODES, False)


def _queued(conn: psycopg.Connection[Any], patient_id: int) -> tuple[list[Any], int]:
    """The patient's pending evaluate jobs (queue, task, locks, args) and due days."""
    jobs = conn.execute(
        "SELECT queue_name, task_name, lock, queueing_lock, args FROM procrastinate_jobs"
        " WHERE status = 'todo' AND args ->> 'patient_id' = %s",
        (str(patient_id),),
    ).fetchall()
    due = conn.execute(
        "SELECT count(*) FROM evaluation_due WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    conn.rollback()
    assert due is not None
    return jobs, int(due[0])


def _clear(conn: psycopg.Connection[Any], *patients: int) -> None:
    for pid in patients:
        conn.execute("DELETE FROM procrastinate_jobs WHERE args ->> 'patient_id' = %s", (str(pid),))
        conn.execute("DELETE FROM evaluation_due WHERE patient_id = %s", (pid,))
    conn.commit()


def _screen(conn: psycopg.Connection[Any], patient_id: int, positive: bool) -> int:
    """A screen stored by the owner (no job queued: not a patient session)."""
    out = intake.submit_red_flag_screen(
        conn, patient_id, {**NO, "fever": positive}, answered_at=datetime.now(UTC)
    )
    conn.commit()
    return out.screen_id


def test_a_patients_positive_answer_queues_their_evaluation_in_the_same_transaction(
    conn: psycopg.Connection[Any], as_patient: Session, world: World
) -> None:
    _clear(conn, world.mine)
    with as_patient() as c:
        intake.submit_red_flag_screen(
            c, world.mine, {**NO, "limb_weakness": True}, answered_at=datetime.now(UTC)
        )
        # Uncommitted, nothing is queued yet: the job commits with the answer.
        assert _queued(conn, world.mine) == ([], 0)
    expected = tasks._for_patient(tasks.EVALUATE, EVALUATE_QUEUE, "evaluate", world.mine)
    jobs, due = _queued(conn, world.mine)
    assert jobs == [
        (expected.queue, expected.task, expected.lock, expected.queueing_lock, expected.kwargs)
    ]
    assert due == 1
    # A second answer while the evaluation waits: one more due day, still one job.
    with as_patient() as c:
        intake.submit_red_flag_screen(
            c, world.mine, {**NO, "fever": True}, answered_at=datetime.now(UTC)
        )
    assert _queued(conn, world.mine) == (jobs, 2)
    _clear(conn, world.mine)


def test_the_function_queues_nothing_for_another_patient_or_any_other_screen(
    conn: psycopg.Connection[Any], as_patient: Session, world: World
) -> None:
    _clear(conn, world.mine, world.theirs)
    theirs = _screen(conn, world.theirs, positive=True)
    negative = _screen(conn, world.mine, positive=False)
    evaluated = _screen(conn, world.mine, positive=True)
    conn.execute(
        "UPDATE red_flag_screen SET evaluated_at = now() WHERE screen_id = %s", (evaluated,)
    )
    conn.commit()
    for screen_id in (theirs, negative, evaluated, -1, None):
        with as_patient() as c:
            row = c.execute("SELECT paceline_queue_red_flag_evaluation(%s)", (screen_id,))
            assert row.fetchone() == (False,), screen_id
    assert _queued(conn, world.theirs) == ([], 0)
    assert _queued(conn, world.mine) == ([], 0)


def test_only_a_verified_patient_may_call_it_and_nobody_may_queue_directly(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    as_patient: Session,
    as_clinician: Session,
    world: World,
) -> None:
    _clear(conn, world.mine)
    mine = _screen(conn, world.mine, positive=True)
    # The dashboard's own role and a clinician have no EXECUTE; a patient role without a
    # verified identity (SET ROLE inside the dashboard's session) is refused in the body.
    for attempt in (dashboard_conn, None):
        if attempt is None:
            with as_clinician() as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT paceline_queue_red_flag_evaluation(%s)", (mine,))
            continue
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            attempt.execute("SELECT paceline_queue_red_flag_evaluation(%s)", (mine,))
        attempt.rollback()
    dashboard_conn.execute("SET ROLE paceline_patient")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="verified patient"):
        dashboard_conn.execute("SELECT paceline_queue_red_flag_evaluation(%s)", (mine,))
    dashboard_conn.rollback()
    # The queue itself stays out of a patient's reach: no other task, patient or day.
    for statement in (
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
        " VALUES ('deliver', 'paceline.deliver', '{\"delivery_id\": 1}')",
        "SELECT procrastinate_defer_jobs_v1(ARRAY[]::procrastinate_job_to_defer_v1[])",
        "INSERT INTO evaluation_due (patient_id, day) VALUES (%s, current_date)",
        "SELECT count(*) FROM procrastinate_jobs",
    ):
        with as_patient() as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(statement, (world.theirs,) if "%s" in statement else None)
    assert _queued(conn, world.mine) == ([], 0)
