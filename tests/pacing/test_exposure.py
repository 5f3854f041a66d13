"""Graded exposure: the fear ladder, sessions linked to objective data, progress and moving up."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from paceline.pacing import ladder
from paceline.pacing.errors import ExposureError, OutOfRangeError, UnknownExposureError
from paceline.pacing.exposure import (
    ItemStatus,
    LadderItem,
    SessionRecord,
    SessionStatus,
    current_item,
    item_progress,
)
from paceline.store import Batch, HrRows, StepRows, access, write_batch
from paceline.store.identity import IdentityKey
from tests.factories import patient_with_device

DAY = date(2026, 3, 2)


def _item(item_id: int, position: int, fear: int = 70) -> LadderItem:
    return LadderItem(item_id, f"activity {item_id}", fear, position, ItemStatus.ACTIVE)


def _done(i: int, before: int, after: int, expected: int, actual: int) -> SessionRecord:
    at = datetime.combine(DAY + timedelta(days=i), time(10), UTC)
    return SessionRecord(
        i,
        1,
        at,
        at.date(),
        SessionStatus.DONE,
        at,
        at + timedelta(minutes=20),
        before,
        after,
        expected,
        actual,
        None,
    )


def test_fear_falling_to_half_over_three_sessions_is_ready_to_move_up() -> None:
    ladder_ = [_item(1, 0), _item(2, 1, fear=85)]
    sessions = [_done(0, 70, 50, 80, 20), _done(1, 40, 25, 60, 20), _done(2, 30, 15, 40, 20)]
    p = item_progress(ladder_[0], sessions, ladder_)
    assert p.ready_to_move_up
    assert (p.initial_fear, p.latest_fear, p.fear_reduction) == (70, 30, 40)
    assert p.fear_slope_per_session == pytest.approx(-20.0)
    assert p.mean_expectancy_violation == pytest.approx((60 + 40 + 20) / 3)
    assert p.next_item_id == 2


def test_clear_expectancy_violations_are_enough_even_if_fear_has_not_halved() -> None:
    ladder_ = [_item(1, 0)]
    sessions = [_done(0, 70, 60, 90, 10), _done(1, 65, 55, 90, 20), _done(2, 60, 50, 80, 30)]
    p = item_progress(ladder_[0], sessions, ladder_)
    assert p.ready_to_move_up
    assert p.next_item_id is None


def test_too_few_sessions_or_harm_worse_than_expected_hold_the_patient_on_the_rung() -> None:
    ladder_ = [_item(1, 0)]
    two = [_done(0, 70, 20, 80, 10), _done(1, 20, 10, 80, 10)]
    assert not item_progress(ladder_[0], two, ladder_).ready_to_move_up
    hurt = [*two, _done(2, 20, 30, 20, 60)]
    p = item_progress(ladder_[0], hurt, ladder_)
    assert not p.ready_to_move_up
    assert any("hurt more than expected" in r for r in p.reasons)


def test_the_current_rung_is_the_lowest_active_one() -> None:
    items = [
        LadderItem(1, "a", 40, 0, ItemStatus.MASTERED),
        _item(2, 1),
        _item(3, 2),
    ]
    current = current_item(items)
    assert current is not None and current.item_id == 2


@pytest.fixture
def patient(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    return patient_with_device(conn)


def test_a_clinician_builds_and_edits_the_ladder_with_an_audit_trail(
    conn: psycopg.Connection[Any], patient: tuple[int, int]
) -> None:
    pid, _ = patient
    a = ladder.add_item(conn, pid, activity="bend to pick up a sock", fear_rating=40)
    b = ladder.add_item(conn, pid, activity="carry shopping bags", fear_rating=75)
    assert (a.position, b.position) == (0, 1)
    ladder.edit_item(conn, pid, b.item_id, fear_rating=60, position=0)
    ladder.edit_item(conn, pid, a.item_id, position=1)
    conn.commit()
    assert [i.activity for i in ladder.ladder(conn, pid)] == [
        "carry shopping bags",
        "bend to pick up a sock",
    ]
    actions = conn.execute(
        "SELECT action FROM audit_log WHERE patient_id = %s ORDER BY audit_id", (pid,)
    ).fetchall()
    assert [r[0] for r in actions] == ["ladder.add", "ladder.add", "ladder.edit", "ladder.edit"]


def test_ladder_changes_made_for_the_patient_are_audited_as_that_patient(
    conn: psycopg.Connection[Any],
    patient: tuple[int, int],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    pid, _ = patient
    a = ladder.add_item(conn, pid, activity="kneel to weed", fear_rating=50)
    ladder.edit_item(conn, pid, a.item_id, fear_rating=45)
    ladder.rerate(conn, pid, {a.item_id: 40})
    ladder.retire_item(conn, pid, a.item_id, reason="moved house, no garden")
    conn.commit()
    actors = conn.execute(
        "SELECT action, actor FROM audit_log WHERE patient_id = %s AND object = 'exposure_item'"
        " ORDER BY audit_id",
        (pid,),
    ).fetchall()
    me = f"patient:{pid}"
    assert actors == [
        ("ladder.add", me),
        ("ladder.edit", me),
        ("ladder.rerate", me),
        ("ladder.retire", me),
    ]
    # The actor is the one the audit log's row policy accepts from the patient's own
    # session; that session cannot change the ladder at all (clinicians set it).
    with access.patient_session(dashboard_conn, pid, key=identity_key) as c:
        assert c.execute("SELECT paceline_identity_actor()").fetchone() == (
            access.editor_actor(pid, None),
        )
    with (
        access.patient_session(dashboard_conn, pid, key=identity_key) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        ladder.add_item(c, pid, activity="dig the beds", fear_rating=60)


def test_ladder_edits_are_validated(
    conn: psycopg.Connection[Any], patient: tuple[int, int]
) -> None:
    pid, _ = patient
    with pytest.raises(OutOfRangeError):
        ladder.add_item(conn, pid, activity="run", fear_rating=101)
    with pytest.raises(ExposureError):
        ladder.add_item(conn, pid, activity="  ", fear_rating=50)
    with pytest.raises(UnknownExposureError):
        ladder.edit_item(conn, pid, 123456, fear_rating=10)
    conn.rollback()


def test_a_done_session_is_linked_to_the_heart_rate_and_steps_of_its_window(
    conn: psycopg.Connection[Any], patient: tuple[int, int]
) -> None:
    pid, did = patient
    item = ladder.add_item(conn, pid, activity="vacuum the living room", fear_rating=65)
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    s = ladder.plan_session(conn, pid, item.item_id, planned_at=start)
    conn.commit()
    seconds = np.arange(-600, 1800, 1)
    times = [start + timedelta(seconds=int(x)) for x in seconds]
    bpm = np.where((seconds >= 0) & (seconds < 1200), 110, 70)
    write_batch(
        conn,
        Batch(
            f"exp-{uuid.uuid4().hex[:8]}",
            hr=HrRows.of(
                patient_id=[pid] * len(times),
                device_id=[did] * len(times),
                time=times,
                bpm=bpm.tolist(),
            ),
            steps=StepRows.of(
                patient_id=[pid] * 40,
                device_id=[did] * 40,
                time=[start + timedelta(minutes=m) for m in range(-9, 31)],
                steps=[50] * 40,
            ),
        ),
    )
    ladder.record_session(
        conn,
        pid,
        s.session_id,
        done=True,
        started_at=start,
        ended_at=start + timedelta(minutes=20),
        fear_before=65,
        fear_after=40,
        expected_harm=70,
        actual_harm=15,
        note="easier than I thought",
        now=start + timedelta(hours=1),
    )
    conn.commit()
    report = ladder.item_report(conn, pid, item.item_id)
    (view,) = report.sessions
    assert view.load is not None
    assert view.load.hr_samples == 1200
    assert view.load.mean_hr_bpm == pytest.approx(110)
    assert view.load.steps == 20 * 50
    assert view.session.expectancy_violation == 55
    assert report.progress.sessions_done == 1
    assert not report.progress.ready_to_move_up


def test_a_session_cannot_end_before_it_starts_or_be_rated_out_of_range(
    conn: psycopg.Connection[Any], patient: tuple[int, int]
) -> None:
    pid, _ = patient
    item = ladder.add_item(conn, pid, activity="lift a toddler", fear_rating=90)
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    s = ladder.plan_session(conn, pid, item.item_id, planned_at=at)
    with pytest.raises(ExposureError):
        ladder.record_session(
            conn,
            pid,
            s.session_id,
            done=True,
            started_at=at,
            ended_at=at - timedelta(minutes=1),
            now=at + timedelta(hours=1),
        )
    with pytest.raises(OutOfRangeError):
        ladder.record_session(conn, pid, s.session_id, done=True, fear_before=140)
    with pytest.raises(UnknownExposureError):
        ladder.record_session(conn, pid, 99999999, done=False)
    conn.rollback()
