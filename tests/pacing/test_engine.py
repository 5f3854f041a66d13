"""The engine entry point: idempotent re-runs, flags that resolve, clinician changes, audit."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import planning, records, rules
from paceline.pacing.days import Measure
from paceline.pacing.engine import Evaluation, evaluate_patient
from paceline.pacing.errors import FutureDayError, PacingError, PlanError, UnknownPatientError
from paceline.pacing.flare import FlareRisk, flare_risk
from paceline.pacing.progression import Cause
from paceline.pacing.replay import store_sim_day as insert_sim_day
from paceline.pacing.simulate import SimDay
from paceline.store import connect, registry
from paceline.store.access import clinician_session
from paceline.store.identity import IdentityKey

START = date(2026, 3, 2)


def enrol(conn: psycopg.Connection[Any]) -> int:
    p = registry.create_patient(
        conn,
        external_ref=f"E-{uuid.uuid4().hex[:10]}",
        display_name="Engine",
        enrolled_at=datetime.combine(START, time(8), UTC),
    )
    conn.commit()
    return p.patient_id


def clinician(conn: psycopg.Connection[Any]) -> int:
    cid = registry.create_clinician(
        conn, username=f"dr{uuid.uuid4().hex[:8]}", display_name="Dr Physio"
    )
    conn.commit()
    return cid


def sim_day(i: int, active: float, *, pain: int | None = 4, reported: bool = True) -> SimDay:
    return SimDay(
        day=START + timedelta(days=i),
        reported=reported,
        wear_min=840.0 if reported else 0.0,
        active_min=active,
        steps=int(1500 + 95 * active),
        trimp=1.3 * active,
        above_ceiling_min=0.0,
        hr_samples=50400 if reported else 0,
        pain=pain,
        sleep=7 if pain is not None else None,
        fear=3 if pain is not None else None,
    )


def run(
    conn: psycopg.Connection[Any], pid: int, actives: Sequence[float], first: int = 0
) -> Evaluation:
    ev = None
    for k, a in enumerate(actives):
        i = first + k
        insert_sim_day(conn, pid, sim_day(i, a))
        ev = evaluate_patient(conn, pid, START + timedelta(days=i))
        conn.commit()
    assert ev is not None
    return ev


def flag_rows(conn: psycopg.Connection[Any], pid: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT flag_id, rule_id, window_start, window_end, severity, status, evidence, updated_at"
        " FROM flag WHERE patient_id = %s ORDER BY flag_id",
        (pid,),
    ).fetchall()


def test_re_running_the_same_day_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    run(conn, pid, [40, 40, 40, 40, 40, 10, 10, 10, 10])
    plans_before = planning.plan_history(conn, pid)
    flags_before = flag_rows(conn, pid)
    assert flags_before, "the bust days should have raised a flag"
    again = evaluate_patient(conn, pid, START + timedelta(days=8))
    conn.commit()
    assert again.plan_changes == ()
    assert not any(f.changed for f in again.flags)
    assert planning.plan_history(conn, pid) == plans_before
    assert flag_rows(conn, pid) == flags_before


def test_a_flag_resolves_once_its_condition_has_cleared(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    ev = run(conn, pid, [40, 40, 40, 40, 40, 10, 10, 10])
    assert "bust.under_quota" in ev.active_rules()
    ev = run(conn, pid, [35], first=8)
    assert "bust.under_quota" in ev.active_rules(), "one good day is not enough (min_off_days=2)"
    ev = run(conn, pid, [35], first=9)
    assert "bust.under_quota" not in ev.active_rules()
    (row,) = [r for r in flag_rows(conn, pid) if r[1] == "bust.under_quota"]
    assert row[5] == "resolved"
    assert row[2].date() == START + timedelta(days=5)
    assert row[3].date() == START + timedelta(days=8)


def test_late_data_that_moves_an_episode_start_continues_the_same_flag(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    run(conn, pid, [40, 40, 40, 40, 40])
    run(conn, pid, [10, 10, 10], first=6)  # day 5 not uploaded yet
    insert_sim_day(conn, pid, sim_day(5, 10.0))  # the gateway catches up
    conn.commit()
    run(conn, pid, [10], first=9)
    rows = [r for r in flag_rows(conn, pid) if r[1] == "bust.under_quota"]
    assert len(rows) == 1
    assert rows[0][5] == "open"
    assert rows[0][6]["first_day"] == (START + timedelta(days=5)).isoformat()


def test_an_acknowledged_flag_stays_acknowledged_while_it_lasts(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    run(conn, pid, [40, 40, 40, 40, 40, 10, 10, 10])
    (flag,) = [f for f in records.flags_for(conn, pid) if f.rule_id == "bust.under_quota"]
    records.acknowledge_flag(conn, flag.flag_id)
    conn.commit()
    run(conn, pid, [10], first=8)
    (again,) = [f for f in records.flags_for(conn, pid) if f.rule_id == "bust.under_quota"]
    assert again.flag_id == flag.flag_id
    assert again.status == "acknowledged"
    assert again.evidence["episode_days"] == 4


def test_each_flag_carries_its_rule_severity_and_the_numbers_behind_it(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    run(conn, pid, [40, 40, 40, 40, 40, 32, 80])
    (boom,) = [f for f in records.flags_for(conn, pid) if f.rule_id == "boom.over_quota"]
    # 80 against an envelope of 1.2 x 32 = 38.4 is 2.08 x the envelope: critical.
    assert boom.severity.value == "critical"
    assert boom.evidence["rule"].startswith("Load above")
    day = boom.evidence["daily"][-1]
    assert (day["load"], day["quota"], day["ratio"]) == (80.0, 32.0, 2.5)
    assert day["load_over_envelope"] == 2.08
    assert boom.evidence["thresholds"]["envelope_fraction"] == 1.2


def test_the_flare_risk_of_the_day_is_stored_with_its_factors(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    # A spike on day 12 raises the risk from day 13 (the next 48 h after it).
    ev = run(conn, pid, [40] * 12 + [95, 40])
    assert ev.flare_risk is not None
    stored = records.flare_risk_history(conn, pid, START, START + timedelta(days=13))
    assert stored[-1][0] == START + timedelta(days=13)
    assert stored[-1][1] == pytest.approx(ev.flare_risk.score, abs=1e-6)
    assert stored[-1][1] > stored[-2][1]
    factors = conn.execute(
        "SELECT factors FROM flare_risk WHERE patient_id = %s AND day = %s",
        (pid, START + timedelta(days=13)),
    ).fetchone()
    assert factors is not None
    assert factors[0]["factors"][0]["name"] == "load_spike"
    assert factors[0]["response"]["status"] == "not_enough_data"


def test_each_decided_day_is_scored_once_and_the_last_score_is_the_one_stored(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = enrol(conn)
    run(conn, pid, [40] * 12 + [95, 40])
    scored: list[FlareRisk] = []

    def noting(*args: Any) -> FlareRisk:
        scored.append(flare_risk(*args))
        return scored[-1]

    monkeypatch.setattr(rules.flare, "flare_risk", noting)
    # Recomputed from enrolment: the rules decide on all 14 days.
    ev = evaluate_patient(conn, pid, START + timedelta(days=13), recompute=True)
    conn.commit()
    assert len(scored) == 14
    assert ev.flare_risk is scored[-1]


def test_a_clinician_override_is_a_new_version_with_who_and_why(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    dr = clinician(conn)
    run(conn, pid, [40] * 6)
    new = planning.set_plan(
        conn,
        pid,
        clinician_id=dr,
        reason="she is ready for more; agreed in clinic",
        quota=38.0,
        step_fraction=0.15,
        valid_from=START + timedelta(days=6),
    )
    conn.commit()
    assert new.cause is Cause.CLINICIAN
    current = planning.current_plan(conn, pid, START + timedelta(days=6))
    assert current is not None
    assert (current.version, current.quota, current.step_fraction) == (3, 38.0, 0.15)
    assert current.created_by == dr
    assert current.baseline == 40.0
    entry = conn.execute(
        "SELECT actor, clinician_id, detail FROM audit_log WHERE patient_id = %s"
        " AND action = 'plan.change' ORDER BY audit_id DESC LIMIT 1",
        (pid,),
    ).fetchone()
    assert entry is not None
    assert entry[0] == f"clinician:{dr}"
    assert entry[1] == dr
    assert entry[2]["reason"] == "she is ready for more; agreed in clinic"
    ev = run(conn, pid, [39] * 7, first=6)
    assert ev.next_plan is not None and ev.next_plan.quota == 44.0


def test_a_clinician_can_switch_the_measure_and_a_new_baseline_is_measured(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    dr = clinician(conn)
    run(conn, pid, [40] * 6)
    planning.set_plan(
        conn,
        pid,
        clinician_id=dr,
        reason="steps are easier to follow",
        measure=Measure.STEPS,
        valid_from=START + timedelta(days=6),
    )
    conn.commit()
    ev = run(conn, pid, [40] * 5, first=6)
    assert ev.next_plan is not None
    assert ev.next_plan.measure is Measure.STEPS
    assert ev.next_plan.baseline == 1500 + 95 * 40
    assert ev.next_plan.quota == 0.8 * (1500 + 95 * 40)


def test_a_declared_flare_steps_the_quota_back_once(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    dr = clinician(conn)
    run(conn, pid, [40] * 6)
    stepped = planning.declare_flare(
        conn,
        pid,
        clinician_id=dr,
        reason="flare reported by phone",
        day=START + timedelta(days=6),
    )
    conn.commit()
    assert stepped.quota == pytest.approx(0.8 * 32.0)
    assert stepped.cause is Cause.FLARE
    with pytest.raises(PlanError):
        planning.set_plan(conn, pid, clinician_id=dr, reason="bad", quota=30.0, baseline=None)
    conn.rollback()


def test_todays_status_for_the_patient_view(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    run(conn, pid, [40] * 6)
    insert_sim_day(conn, pid, sim_day(6, 7.0))
    conn.commit()
    status = planning.today_status(
        conn, pid, now=datetime.combine(START + timedelta(days=6), time(15), UTC)
    )
    assert status is not None
    assert status.message == (
        "You have done 7 of 32 active minutes today; 25 active minutes left in today's plan."
    )


def test_evaluating_an_unknown_patient_or_a_day_before_enrolment_fails(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(UnknownPatientError):
        evaluate_patient(conn, 9_999_999, START)
    pid = enrol(conn)
    with pytest.raises(PacingError, match="enrolled"):
        evaluate_patient(conn, pid, START - timedelta(days=1))


def test_two_workers_evaluating_the_same_patient_day_write_one_outcome(db_dsn: str) -> None:
    with connect(db_dsn) as setup:
        pid = enrol(setup)
        for i in range(9):
            insert_sim_day(setup, pid, sim_day(i, 40.0))
        setup.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            with connect(db_dsn, autocommit=True) as c:
                barrier.wait()
                evaluate_patient(c, pid, START + timedelta(days=8))
        except BaseException as exc:  # noqa: BLE001 - any failure is reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with connect(db_dsn) as c:
        versions = c.execute(
            "SELECT version FROM pacing_plan WHERE patient_id = %s ORDER BY version", (pid,)
        ).fetchall()
    assert versions == [(1,), (2,)]


def test_a_clinician_session_changes_only_plans_of_its_care_team(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, theirs = enrol(conn), enrol(conn)
    dr = clinician(conn)
    registry.assign_care_team(conn, clinician_id=dr, patient_id=mine)
    conn.commit()
    run(conn, mine, [40] * 6)
    run(conn, theirs, [40] * 6)
    with clinician_session(dashboard_conn, dr, key=identity_key) as session:
        new = planning.set_plan(session, mine, clinician_id=dr, reason="review", quota=30.0)
        seen = session.execute("SELECT DISTINCT patient_id FROM flare_risk").fetchall()
    assert new.quota == 30.0
    assert seen == [(mine,)]
    with (
        pytest.raises(UnknownPatientError),
        clinician_session(dashboard_conn, dr, key=identity_key) as session,
    ):
        planning.set_plan(session, theirs, clinician_id=dr, reason="not mine", quota=30.0)


def test_a_nan_metric_skips_the_day_with_a_flag_naming_day_and_metric(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    for i in range(8):
        insert_sim_day(conn, pid, sim_day(i, 40.0))
    conn.execute(
        "UPDATE daily_metrics SET active_min = 'NaN' WHERE patient_id = %s AND day = %s",
        (pid, START + timedelta(days=2)),
    )
    conn.commit()
    for i in range(8):
        ev = evaluate_patient(conn, pid, START + timedelta(days=i))
        conn.commit()
    plans = planning.plan_history(conn, pid)
    assert plans[1].cause is Cause.BASELINE
    assert plans[1].baseline == 40.0
    used = plans[1].evidence["baseline_days"]
    assert isinstance(used, list)
    assert (START + timedelta(days=2)).isoformat() not in used
    assert len(used) == 5
    (bad,) = [
        f
        for f in records.flags_for(conn, pid, include_resolved=True)
        if f.rule_id == "data.bad_metrics"
    ]
    (day,) = bad.evidence["daily"]
    assert day == {"day": (START + timedelta(days=2)).isoformat(), "metrics": ["active_min"]}
    assert "data.no_wear" not in ev.active_rules()


def test_a_day_after_the_patients_local_today_is_refused_and_nothing_is_written(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    now = datetime.combine(START + timedelta(days=3), time(22), UTC)
    with pytest.raises(FutureDayError) as caught:
        evaluate_patient(conn, pid, START + timedelta(days=4), now=now)
    assert caught.value.day == START + timedelta(days=4)
    assert caught.value.local_today == START + timedelta(days=3)
    conn.rollback()
    assert planning.plan_history(conn, pid) == []
    evaluate_patient(conn, pid, START + timedelta(days=3), now=now)


def test_the_patients_local_today_decides_what_is_in_the_future(
    conn: psycopg.Connection[Any],
) -> None:
    p = registry.create_patient(
        conn,
        external_ref=f"E-{uuid.uuid4().hex[:10]}",
        display_name="Auckland",
        enrolled_at=datetime.combine(START, time(8), UTC),
        timezone="Pacific/Auckland",
    )
    conn.commit()
    # 22:00 UTC is already the next morning in Auckland.
    now = datetime.combine(START + timedelta(days=3), time(22), UTC)
    evaluate_patient(conn, p.patient_id, START + timedelta(days=4), now=now)
    with pytest.raises(FutureDayError):
        evaluate_patient(conn, p.patient_id, START + timedelta(days=5), now=now)


def test_plan_numbers_come_back_exactly_as_written(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    cid = clinician(conn)
    planning.set_plan(
        conn,
        pid,
        clinician_id=cid,
        reason="from the clinic's step count",
        measure=Measure.STEPS,
        baseline=4980.6,
        quota=3984.5,
    )
    conn.commit()
    (plan,) = planning.plan_history(conn, pid)
    assert (plan.baseline, plan.quota) == (4980.6, 3984.5)
    row = conn.execute(
        "SELECT detail FROM audit_log WHERE patient_id = %s AND action = 'plan.change'", (pid,)
    ).fetchone()
    assert row is not None
    assert row[0]["baseline"] == 4980.6


def test_the_evaluation_of_a_past_day_names_that_day_in_the_patient_view(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    for i in range(7):
        insert_sim_day(conn, pid, sim_day(i, 40.0 if i < 5 else 20.0))
    conn.commit()
    later = datetime.combine(START + timedelta(days=9), time(9), UTC)
    for i in range(7):
        ev = evaluate_patient(conn, pid, START + timedelta(days=i), now=later)
    assert ev.today is not None and ev.plan is not None
    assert ev.today.day == START + timedelta(days=6)
    assert "today" not in ev.today.message
    assert (START + timedelta(days=6)).isoformat() in ev.today.message
    assert f"20 of {ev.plan.quota:g}" in ev.today.message
