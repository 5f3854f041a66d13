"""Red-flag screening: the screen, the progression pause, the critical alert, the clinician's clearing.

The vignettes run the real engine (`evaluate_patient`) and the real alert
path (`raise_alerts`) on a migrated database, day by day, as the nightly job
and the new-data sweep would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import intake, planning, records, replay, wording
from paceline.pacing.alerts import Channels, acknowledge, deliver, list_alerts, raise_alerts
from paceline.pacing.alerts.policy import (
    DEFAULT_POLICY,
    AlertState,
    Episode,
    Reason,
    Status,
    Urgency,
    decide,
)
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.errors import IdempotencyConflictError, PlanError
from paceline.pacing.flags import Severity
from paceline.pacing.jobs import tasks
from paceline.pacing.progression import Cause
from paceline.pacing.records import deliveries_of
from paceline.pacing.redflags import CODES, Care, RedFlagError, Source, screen
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store.migrate import load_migrations
from tests.pacing.alerts.helpers import CONFIG, SECRET, START, enrol, morning_after
from tests.pacing.alerts.servers import smtp_server, webhook_receiver

NO = dict.fromkeys(CODES, False)


def yes(*codes: str) -> dict[str, bool]:
    return {**NO, **dict.fromkeys(codes, True)}


def at(i: int, hour: int = 20, minute: int = 30) -> datetime:
    return datetime.combine(START + timedelta(days=i), time(hour, minute), UTC)


# The screen itself ---------------------------------------------------------------------------


def test_a_screen_answers_every_question_yes_or_no() -> None:
    with pytest.raises(RedFlagError, match="unanswered"):
        screen({"fever": True}, answered_at=at(0), source="weekly")
    with pytest.raises(RedFlagError, match="unknown"):
        screen({**NO, "headache": True}, answered_at=at(0), source="weekly")
    with pytest.raises(RedFlagError, match="true or false"):
        screen({**NO, "fever": 1}, answered_at=at(0), source="weekly")  # type: ignore[dict-item]
    with pytest.raises(RedFlagError, match="source"):
        screen(NO, answered_at=at(0), source="phone")
    s = screen(yes("night_pain", "bladder_bowel"), answered_at=at(0), source="diary")
    assert s.positive == ("bladder_bowel", "night_pain")  # in the order asked
    assert s.care is Care.EMERGENCY
    assert screen(yes("weight_loss"), answered_at=at(0), source=Source.WEEKLY).care is Care.URGENT
    assert screen(NO, answered_at=at(0), source="weekly").care is None
    assert set(wording.RED_FLAG_QUESTIONS) == set(CODES)


def test_the_red_flag_route_is_immediate_pushed_in_quiet_hours_and_has_no_hysteresis() -> None:
    route = DEFAULT_POLICY.route("safety.red_flag")
    assert route.critical is Urgency.IMMEDIATE and not route.hysteresis
    night = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)
    assert DEFAULT_POLICY.quiet(night, UTC)  # type: ignore[arg-type]
    assert DEFAULT_POLICY.push_at(night, UTC, Severity.CRITICAL) == night  # type: ignore[arg-type]
    # A clinician cleared the last red flag yesterday; a new positive screen is a new,
    # pushed alert (the 3-day re-arm of other rules would have continued the old one).
    old = AlertState(
        alert_id=7,
        rule_id="safety.red_flag",
        flag_id=1,
        window_start=night - timedelta(days=3),
        severity=Severity.CRITICAL,
        status=Status.RESOLVED,
        urgency=Urgency.IMMEDIATE,
        notified_severity=Severity.CRITICAL,
        last_notified_at=night - timedelta(days=3),
        repeats=0,
        resolved_at=night - timedelta(days=1),
    )
    new = Episode(2, "safety.red_flag", Severity.CRITICAL, night, night, True, "red flag")
    d = decide(DEFAULT_POLICY, [new], {"safety.red_flag": old}, now=night)
    assert len(d.opens) == 1 and not d.continues
    assert [n.reason for n in d.notices] == [Reason.NEW]
    # Another rule's new episode within the re-arm time continues the old alert silently.
    other = Episode(2, "bust.under_quota", Severity.CRITICAL, night, night, True, "bust")
    d = decide(
        DEFAULT_POLICY,
        [other],
        {"bust.under_quota": AlertState(**{**old.__dict__, "rule_id": "bust.under_quota"})},
        now=night,
    )
    assert not d.opens and not d.notices


# Intake ---------------------------------------------------------------------------------------


def test_a_negative_screen_pauses_nothing_and_a_positive_one_pauses_once_audited(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    now = at(3, 21)
    neg = intake.submit_red_flag_screen(conn, pid, NO, answered_at=at(1), now=now)
    assert neg.positive == () and neg.pause_id is None and neg.message is None
    assert planning.progression_pause(conn, pid) is None
    assert not intake.weekly_check_due(conn, pid, now=at(3))
    assert intake.weekly_check_due(conn, pid, now=at(8, 21))
    first = intake.submit_red_flag_screen(
        conn, pid, yes("fever"), answered_at=at(2), idempotency_key="k1", now=now
    )
    assert first.message == wording.RED_FLAG_URGENT
    again = intake.submit_red_flag_screen(
        conn, pid, yes("fever"), answered_at=at(2), idempotency_key="k1", now=now
    )
    assert (again.screen_id, again.created) == (first.screen_id, False)
    with pytest.raises(IdempotencyConflictError):
        intake.submit_red_flag_screen(
            conn, pid, NO, answered_at=at(2), idempotency_key="k1", now=now
        )
    emergency = intake.submit_diary(
        conn,
        pid,
        reported_at=at(3),
        pain_now=3,
        red_flags=yes("saddle_numbness"),
        now=now,
    ).red_flag
    assert emergency is not None and emergency.message == wording.RED_FLAG_EMERGENCY
    assert emergency.pause_id == first.pause_id  # one open pause, joined
    conn.commit()
    audits = conn.execute(
        "SELECT action, detail->>'source' FROM audit_log WHERE patient_id = %s"
        " AND action LIKE 'progression.%%' ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert audits == [("progression.pause", "weekly"), ("progression.pause", "diary")]


def test_the_new_data_sweep_defers_the_evaluation_of_a_positive_screen(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    intake.submit_red_flag_screen(conn, pid, NO, answered_at=at(1), now=at(1, 21))
    intake.submit_red_flag_screen(conn, pid, yes("trauma"), answered_at=at(2), now=at(2, 21))
    assert tasks.defer_red_flag_evaluations(conn) >= 1
    assert [d for _, d in records.due_evaluations(conn, pid)] == [START + timedelta(days=2)]
    replay.store_sim_day(conn, pid, SimPatient(Persona.STEADY, seed=1).next_day(START, None))
    evaluate_patient(conn, pid, START + timedelta(days=2), now=at(2, 21))
    assert (pid, START + timedelta(days=2)) not in records.unevaluated_red_flags(conn)
    conn.rollback()


# Vignettes through the engine --------------------------------------------------------------


def test_a_red_flag_pauses_a_progressing_patient_alerts_once_and_a_clinician_clears_it(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    sim = SimPatient(Persona.STEADY, seed=1)
    quota: float | None = None
    red_day, clear_day = 15, 17
    for i in range(27):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, pid, sim.next_day(d, quota))
        now = morning_after(d)
        if i == red_day:
            # Answered in the diary at 22:40: quiet hours, and still pushed at once.
            now = at(i, 22, 45)
            out = intake.submit_red_flag_screen(
                conn, pid, yes("limb_weakness"), answered_at=at(i, 22, 40), now=now
            )
            assert out.message == wording.RED_FLAG_EMERGENCY
        if i == clear_day:
            planning.clear_pause(
                conn, pid, clinician_id=team[0], note="seen in clinic: no deficit", now=at(i, 11)
            )
        ev = evaluate_patient(conn, pid, d, now=now)
        raise_alerts(conn, ev, now=now, config=CONFIG)
        conn.commit()
        quota = ev.next_plan.quota if ev.next_plan is not None else None
        active = "safety.red_flag" in ev.active_rules()
        assert active == (red_day <= i < clear_day), i

    plans = planning.plan_history(conn, pid)
    rises = [(p.valid_from - START).days for p in plans if p.cause is Cause.PROGRESSION]
    # Steady progression would rise on days 12, 19 and 26; the periods 12-18 (paused on
    # days 15 and 16) does not rise, the clean period 19-25 after the clearing does.
    assert rises == [12, 26]

    red = [
        a
        for a in list_alerts(conn, patient_id=pid, statuses=("open", "acknowledged", "resolved"))
        if a.rule_id == "safety.red_flag"
    ]
    assert len(red) == 1, "one alert for one red flag"
    alert = red[0]
    assert alert.severity == "critical" and alert.status == "resolved"
    pushes = [x for x in deliveries_of(conn, alert.alert_id) if x.channel != "inbox"]
    assert {x.channel for x in pushes} == {"email", "webhook"}
    assert len(pushes) == 2, "pushed once per channel"
    assert all(x.next_attempt_at == at(red_day, 22, 45) for x in pushes), "not held by quiet hours"
    cleared = conn.execute(
        "SELECT actor, detail->>'note' FROM audit_log WHERE patient_id = %s"
        " AND action = 'progression.resume'",
        (pid,),
    ).fetchall()
    assert cleared == [(f"clinician:{team[0]}", "seen in clinic: no deficit")]
    assert planning.progression_pause(conn, pid) is None
    with pytest.raises(PlanError, match="no progression pause"):
        planning.clear_pause(conn, pid, clinician_id=team[0], note="again", now=at(20))


def test_a_high_pain_score_alone_never_raises_a_red_flag(conn: psycopg.Connection[Any]) -> None:
    pid, _ = enrol(conn)
    sim = SimPatient(Persona.STEADY, seed=2)
    quota: float | None = None
    for i in range(14):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, pid, sim.next_day(d, quota))
        # The worst pain on the scale, every day, with every red-flag answer "no".
        intake.submit_diary(
            conn,
            pid,
            reported_at=at(i, 21),
            pain_now=10,
            pain_average=10,
            pain_worst=10,
            red_flags=NO,
            now=at(i, 21),
        )
        ev = evaluate_patient(conn, pid, d, now=morning_after(d))
        conn.commit()
        quota = ev.next_plan.quota if ev.next_plan is not None else None
        assert "safety.red_flag" not in ev.active_rules()
    rows = conn.execute(
        "SELECT count(*) FROM flag WHERE patient_id = %s AND rule_id = 'safety.red_flag'", (pid,)
    ).fetchone()
    assert rows == (0,)
    assert planning.progression_pause(conn, pid) is None


def test_a_clinician_cannot_clear_without_a_note(conn: psycopg.Connection[Any]) -> None:
    pid, team = enrol(conn)
    intake.submit_red_flag_screen(conn, pid, yes("fever"), answered_at=at(1), now=at(1, 21))
    with pytest.raises(PlanError, match="note"):
        planning.clear_pause(conn, pid, clinician_id=team[0], note="  ", now=at(2))
    assert planning.progression_pause(conn, pid) is not None
    conn.rollback()


def test_a_second_yes_while_the_pause_is_open_is_pushed_again_once_per_channel(
    conn: psycopg.Connection[Any],
) -> None:
    """The second yes re-notifies the one open alert (acknowledged or not); one pause."""
    pid, team = enrol(conn)
    sim = SimPatient(Persona.STEADY, seed=3)
    quota: float | None = None
    first_day, second_day = 10, 12
    with smtp_server() as (smtp_url, box), webhook_receiver(SECRET) as (hook_url, receiver):
        config = replace(CONFIG, smtp_url=smtp_url, webhook_url=hook_url)
        channels = Channels.from_config(config)
        for i in range(15):
            d = START + timedelta(days=i)
            replay.store_sim_day(conn, pid, sim.next_day(d, quota))
            now = morning_after(d)
            if i == first_day:
                now = at(i, 21)
                intake.submit_red_flag_screen(
                    conn, pid, yes("night_pain"), answered_at=at(i, 20, 50), now=now
                )
            if i == second_day:
                now = at(i, 21)
                second = intake.submit_diary(
                    conn,
                    pid,
                    reported_at=at(i, 20, 50),
                    pain_now=4,
                    red_flags=yes("saddle_numbness"),
                    now=now,
                ).red_flag
            for _ in range(2 if i == second_day else 1):  # evaluated twice: pushed once
                ev = evaluate_patient(conn, pid, d, now=now)
                due = raise_alerts(conn, ev, now=now, config=config)
                conn.commit()
                for did in due:
                    assert deliver(conn, did, channels=channels, now=now).status == "delivered"
                    conn.commit()
            quota = ev.next_plan.quota if ev.next_plan is not None else None
            if i == first_day:
                (red,) = list_alerts(conn, patient_id=pid, statuses=("open",))
                acknowledge(conn, red.alert_id, clinician_id=team[0], note="rang her", now=now)
                conn.commit()

    alerts = [
        a
        for a in list_alerts(conn, patient_id=pid, statuses=("open", "acknowledged", "resolved"))
        if a.rule_id == "safety.red_flag"
    ]
    assert len(alerts) == 1, "one alert per episode"
    (alert,) = alerts
    assert alert.status == "open", "the new answer needs attention again"
    assert second is not None and second.pause_id is not None
    assert conn.execute(
        "SELECT count(*) FROM progression_pause WHERE patient_id = %s", (pid,)
    ).fetchone() == (1,)
    pushes = [x for x in deliveries_of(conn, alert.alert_id) if x.channel != "inbox"]
    assert sorted((x.notice, x.channel) for x in pushes) == [
        (0, "email"),
        (0, "webhook"),
        (1, "email"),
        (1, "webhook"),
    ]
    assert all(x.status == "delivered" and x.attempts == 1 for x in pushes)
    again = [x for x in pushes if x.notice == 1]
    assert all(x.delivered_at == at(second_day, 21) for x in again), "at once, in quiet hours"
    # What the care team received: two e-mails, the second saying what is new in the
    # minimum necessary (the screen, its day, the care it asks for; no symptom).
    assert len(box.messages) == 2
    mail = box.messages[1]
    assert mail["Subject"].endswith("(new answer)")
    raw = mail.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode()
    assert "New since the last notice: positive red-flag answer: " in body
    assert f"screen {second.screen_id} answered {START + timedelta(days=second_day)}" in body
    assert "emergency care" in body
    for secret in ("saddle", "numb", "cauda", "night"):
        assert secret not in body.lower()
    assert len(receiver.accepted) == 2
    payload = json.loads(receiver.accepted[1].body)
    assert payload["notice"] == 1 and str(second.screen_id) in payload["news"]
    audits = conn.execute(
        "SELECT action FROM audit_log WHERE patient_id = %s AND action LIKE 'alert.%%' ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert ("alert.new_finding",) in audits and ("alert.reopen",) in audits


def test_the_upgrade_counts_the_screens_already_pushed_as_notified(
    conn: psycopg.Connection[Any],
) -> None:
    """The back-fill of migration alert_findings: an alert pushed before it is not pushed again for old screens."""
    pid, _ = enrol(conn)
    replay.store_sim_day(conn, pid, SimPatient(Persona.STEADY, seed=6).next_day(START, None))
    first = intake.submit_red_flag_screen(conn, pid, yes("fever"), answered_at=at(0), now=at(0, 21))
    ev = evaluate_patient(conn, pid, START, now=at(0, 21))
    raise_alerts(conn, ev, now=at(0, 21), config=CONFIG)
    # As the alert stood before the upgrade: pushed, with no findings recorded.
    conn.execute("UPDATE alert SET notified_findings = '{}' WHERE patient_id = %s", (pid,))
    (sql_text,) = [m.sql for m in load_migrations() if m.name == "alert_findings"]
    backfill = sql_text[sql_text.index("UPDATE alert a") :]
    conn.execute(backfill.encode())
    row = conn.execute(
        "SELECT notified_findings FROM alert WHERE patient_id = %s AND rule_id = 'safety.red_flag'",
        (pid,),
    ).fetchone()
    assert row == ([first.screen_id],)
    again = evaluate_patient(conn, pid, START, now=at(0, 22))
    assert raise_alerts(conn, again, now=at(0, 22), config=CONFIG) == []
    conn.rollback()
