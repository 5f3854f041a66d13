"""The exposure stop rule: a session past the stop threshold, or stopped, holds the rung and tells the clinician."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import ladder, planning, replay
from paceline.pacing.alerts import list_alerts, raise_alerts
from paceline.pacing.alerts.policy import DEFAULT_POLICY, Urgency
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.errors import ExposureError
from paceline.pacing.exposure import SessionStatus, current_item, stop_reason
from paceline.pacing.flags import Severity
from paceline.pacing.progression import PlanSettings
from paceline.pacing.simulate import Persona, SimPatient
from tests.pacing.alerts.helpers import CONFIG, START, enrol, morning_after


def at(i: int, hour: int = 10) -> datetime:
    return datetime.combine(START + timedelta(days=i), time(hour), UTC)


def test_the_stop_reason_names_what_passed_the_threshold() -> None:
    assert (
        stop_reason(
            fear_before=60, peak_distress=80, fear_after=40, threshold=80, stopped_by_patient=False
        )
        is None
    )  # at the threshold is still within it
    why = stop_reason(
        fear_before=60, peak_distress=95, fear_after=40, threshold=80, stopped_by_patient=False
    )
    assert why == "peak distress 95 above the stop threshold 80"
    assert (
        stop_reason(
            fear_before=20,
            peak_distress=None,
            fear_after=None,
            threshold=80,
            stopped_by_patient=True,
        )
        == "the patient stopped the session"
    )
    assert DEFAULT_POLICY.urgency("exposure.stopped", Severity.WARNING) is Urgency.IMMEDIATE


def test_a_stopped_exposure_session_holds_the_rung_and_tells_the_clinician(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    sim = SimPatient(Persona.STEADY, seed=3)
    low = ladder.add_item(conn, pid, activity="carrying a light shopping bag", fear_rating=60)
    ladder.add_item(conn, pid, activity="lifting a box from the floor", fear_rating=80)
    # This patient's clinician set a lower stop threshold than the default 80.
    planning.set_plan(
        conn,
        pid,
        clinician_id=team[0],
        reason="exposure stop threshold 70 for this patient",
        settings=PlanSettings(exposure_stop_distress=70),
        valid_from=START,
    )
    conn.commit()
    quota: float | None = None
    sessions = []
    for i in range(10):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, pid, sim.next_day(d, quota))
        if i in (1, 3, 5, 7):
            s = ladder.plan_session(conn, pid, low.item_id, planned_at=at(i))
            # Three good sessions (fear down, harm expected did not happen), then one
            # in which distress peaked at 85, above this patient's threshold of 70.
            peak = 85 if i == 7 else 40
            sessions.append(
                ladder.record_session(
                    conn,
                    pid,
                    s.session_id,
                    done=True,
                    fear_before=25,
                    peak_distress=peak,
                    fear_after=20,
                    expected_harm=70,
                    actual_harm=10,
                    debrief="my back locked and I panicked" if i == 7 else None,
                    now=at(i, 12),
                )
            )
            if i == 5:
                ready = ladder.item_report(conn, pid, low.item_id).progress.ready_to_move_up
                assert ready, "three good sessions: ready to move up"
        ev = evaluate_patient(conn, pid, d, now=morning_after(d))
        raise_alerts(conn, ev, now=morning_after(d), config=CONFIG)
        conn.commit()
        quota = ev.next_plan.quota if ev.next_plan is not None else None
        assert ("exposure.stopped" in ev.active_rules()) == (i == 7), i

    last = sessions[-1]
    assert last.status is SessionStatus.STOPPED
    assert last.debrief is not None
    assert "peak distress 85 above the stop threshold 70" in last.debrief
    assert "my back locked and I panicked" in last.debrief
    report = ladder.item_report(conn, pid, low.item_id)
    assert report.progress.ready_to_move_up is False, "the rung holds"
    assert report.progress.sessions_done == 3  # the stopped session is not a done one
    assert any("stopped at the stop rule" in r for r in report.progress.reasons)
    current = current_item(ladder.ladder(conn, pid))
    assert current is not None and current.item_id == low.item_id
    alerts = [
        a
        for a in list_alerts(conn, patient_id=pid, statuses=("open", "acknowledged", "resolved"))
        if a.rule_id == "exposure.stopped"
    ]
    assert len(alerts) == 1 and alerts[0].urgency == "immediate"
    audited = conn.execute(
        "SELECT count(*) FROM audit_log WHERE patient_id = %s AND action = 'exposure.stopped'",
        (pid,),
    ).fetchone()
    assert audited == (1,)


def test_a_session_the_patient_stopped_is_stopped_whatever_the_ratings(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    item = ladder.add_item(conn, pid, activity="bending to tie shoes", fear_rating=50)
    s = ladder.plan_session(conn, pid, item.item_id, planned_at=at(1))
    with pytest.raises(ExposureError, match="started"):
        ladder.record_session(conn, pid, s.session_id, done=False, stopped=True, now=at(1, 12))
    out = ladder.record_session(
        conn, pid, s.session_id, done=True, fear_before=30, stopped=True, now=at(1, 12)
    )
    assert out.status is SessionStatus.STOPPED
    assert out.debrief is not None and out.debrief.startswith("Stopped: the patient stopped")
    conn.rollback()
