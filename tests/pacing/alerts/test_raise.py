"""Alerts raised in the evaluation's transaction: unique, grouped, repeated, re-armed, resolved."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import records, replay
from paceline.pacing.alerts import acknowledge, list_alerts, raise_alerts
from paceline.pacing.alerts.config import DeliveryConfig
from paceline.pacing.engine import evaluate_patient, persist_flags
from paceline.pacing.flags import DaySignal, Severity, episodes
from paceline.pacing.rules.flare import FLARE_RISK
from paceline.pacing.rules.overexertion import ABOVE_CEILING
from paceline.pacing.simulate import Persona, SimPatient
from tests.pacing.alerts.helpers import CONFIG, START, enrol, evaluation_of, morning_after, play


def alerts_of(conn: psycopg.Connection[Any], pid: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT rule_id, severity, status, notices, episodes FROM alert"
        " WHERE patient_id = %s AND audience = 'care_team' ORDER BY alert_id",
        (pid,),
    ).fetchall()


def pushes(conn: psycopg.Connection[Any], pid: int, channel: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT alert_id, alert_ids, notice, recipient, kind FROM alert_delivery"
        " WHERE patient_id = %s AND channel = %s ORDER BY delivery_id",
        (pid, channel),
    ).fetchall()


def test_a_boom_opens_one_alert_with_one_row_per_channel_and_recipient(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn, clinicians=2)
    _, due = play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20), days=21)
    rows = alerts_of(conn, pid)
    assert [r[:2] for r in rows] == [("boom.over_quota", "warning")]
    found = conn.execute(
        "SELECT alert_id, urgency FROM alert WHERE patient_id = %s AND rule_id = 'boom.over_quota'",
        (pid,),
    ).fetchone()
    assert found is not None and found[1] == "digest"
    alert_id = found[0]
    clinicians = sorted(f"clinician:{c}" for c in team)
    inbox = [r for r in pushes(conn, pid, "inbox") if r[0] == alert_id]
    assert sorted(r[3] for r in inbox) == clinicians
    email = [r for r in pushes(conn, pid, "email") if r[0] == alert_id]
    assert sorted((r[3], r[2], r[4]) for r in email) == [(c, 0, "digest") for c in clinicians]
    assert [r for r in pushes(conn, pid, "webhook") if r[0] == alert_id] == []
    to_patient = [r for r in pushes(conn, pid, "email") if r[3] == f"patient:{pid}"]
    assert len(to_patient) == 2  # two weekly quota raises before the spike: good news
    assert len(due) == len(to_patient)  # the boom waits for tomorrow's digest
    audited = conn.execute(
        "SELECT count(*) FROM audit_log WHERE patient_id = %s AND action = 'alert.open'"
        " AND detail->>'alert_id' = %s",
        (pid, str(alert_id)),
    ).fetchone()
    assert audited == (1,)


def test_one_evaluation_opening_several_flags_sends_one_message_per_recipient_and_channel(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn, clinicians=2)
    ctx = records.patient_context(conn, pid)
    day = START + timedelta(days=5)
    risk = DaySignal(day, enter=True, hold=True, severity=Severity.WARNING, evidence={})
    boom = DaySignal(day, enter=True, hold=True, severity=Severity.CRITICAL, evidence={})
    flags = episodes(FLARE_RISK, [risk]) + episodes(ABOVE_CEILING, [boom])
    outcomes, resolved = persist_flags(conn, ctx, day, flags)
    ev = evaluation_of(pid, day, outcomes, resolved)
    due = raise_alerts(conn, ev, now=morning_after(day), config=CONFIG)
    conn.commit()
    ids = [r[0] for r in conn.execute("SELECT alert_id FROM alert WHERE patient_id = %s", (pid,))]
    assert len(ids) == 2
    messages = conn.execute(
        "SELECT channel, recipient, alert_ids FROM alert_delivery"
        " WHERE patient_id = %s AND channel <> 'inbox' ORDER BY channel, recipient",
        (pid,),
    ).fetchall()
    expected = [("email", f"clinician:{c}") for c in sorted(team)] + [
        ("webhook", "endpoint:webhook")
    ]
    assert [(m[0], m[1]) for m in messages] == expected
    assert all(sorted(m[2]) == sorted(ids) for m in messages)
    assert len(due) == len(messages)
    lead = conn.execute(
        "SELECT DISTINCT d.alert_id, a.severity FROM alert_delivery d JOIN alert a USING"
        " (alert_id) WHERE d.patient_id = %s AND d.channel <> 'inbox'",
        (pid,),
    ).fetchall()
    assert [r[1] for r in lead] == ["critical"], "the most severe alert leads the message"


def test_an_acknowledged_alert_is_not_repeated_and_an_open_one_repeats_once(
    conn: psycopg.Connection[Any],
) -> None:
    sim_args = {"seed": 4, "spike_day": 20}
    pid, _ = enrol(conn)
    play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, **sim_args), days=30)
    (open_pushes,) = conn.execute(
        "SELECT notices FROM alert WHERE patient_id = %s AND rule_id = 'flare.risk_high'", (pid,)
    ).fetchall()
    assert 1 <= open_pushes[0] <= 1 + 1 + 1  # first, one repeat, one escalation

    acked, team = enrol(conn)
    sim = SimPatient(Persona.FLARE_AFTER_SPIKE, **sim_args)
    quota = None
    for i in range(30):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, acked, sim.next_day(d, quota))
        ev = evaluate_patient(conn, acked, d)
        raise_alerts(conn, ev, now=morning_after(d), config=CONFIG)
        conn.commit()
        quota = ev.next_plan.quota if ev.next_plan is not None else None
        for a in list_alerts(conn, patient_id=acked, statuses=("open",)):
            if a.rule_id == "flare.risk_high":
                acknowledge(
                    conn, a.alert_id, clinician_id=team[0], note="called", now=morning_after(d)
                )
                conn.commit()
    (row,) = conn.execute(
        "SELECT alert_id, notices, status FROM alert WHERE patient_id = %s"
        " AND rule_id = 'flare.risk_high'",
        (acked,),
    ).fetchall()
    assert row[1] == 1, "acknowledged on the day it arrived: never pushed again"
    assert row[2] in {"acknowledged", "resolved"}
    email = [r for r in pushes(conn, acked, "email") if r[0] == row[0]]
    assert [r[2] for r in email] == [0]


def test_hovering_at_the_flare_risk_threshold_for_14_days_gives_one_alert_and_bounded_pushes(
    conn: psycopg.Connection[Any],
) -> None:
    """Score at 0.36 every fourth day, 0.20 between: four episodes, one alert, ≤ 2 pushes."""
    pid, _ = enrol(conn)
    ctx = records.patient_context(conn, pid)
    scores = [0.36 if i % 4 == 0 else 0.2 for i in range(14)]
    signals = [
        DaySignal(
            START + timedelta(days=i),
            enter=s >= 0.35,
            hold=s >= 0.25,
            severity=Severity.WARNING,
            evidence={"score": s, "contributing": ["pain rising 0.5 points a day"]},
        )
        for i, s in enumerate(scores)
    ]
    for i in range(14):
        day = START + timedelta(days=i)
        flags = episodes(FLARE_RISK, signals[: i + 1])
        outcomes, resolved = persist_flags(conn, ctx, day, flags)
        raise_alerts(
            conn, evaluation_of(pid, day, outcomes, resolved), now=morning_after(day), config=CONFIG
        )
        conn.commit()
    flags_seen = conn.execute(
        "SELECT count(*) FROM flag WHERE patient_id = %s AND rule_id = 'flare.risk_high'", (pid,)
    ).fetchone()
    assert flags_seen is not None and flags_seen[0] == 4  # the naive policy: four alerts
    rows = alerts_of(conn, pid)
    assert len(rows) == 1
    assert rows[0][3] <= 2  # first push + at most one repeat
    email = pushes(conn, pid, "email")
    assert len(email) == rows[0][3]


def test_rerunning_an_evaluation_writes_nothing_new(conn: psycopg.Connection[Any]) -> None:
    pid, _ = enrol(conn)
    evals, _ = play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20), days=22)
    count = conn.execute("SELECT count(*) FROM alert_delivery WHERE patient_id = %s", (pid,))
    before = count.fetchone()
    again = raise_alerts(conn, evals[-1], now=morning_after(evals[-1].day), config=CONFIG)
    conn.commit()
    assert again == []
    after = conn.execute(
        "SELECT count(*) FROM alert_delivery WHERE patient_id = %s", (pid,)
    ).fetchone()
    assert after == before


def test_quiet_hours_defer_a_warning_push_to_seven_in_the_morning(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    records.set_clinician_contact(conn, team[0], email="night@clinic.example", timezone="UTC")
    ctx = records.patient_context(conn, pid)
    day = START + timedelta(days=3)
    signal = DaySignal(day, enter=True, hold=True, severity=Severity.WARNING, evidence={})
    outcomes, resolved = persist_flags(conn, ctx, day, episodes(FLARE_RISK, [signal]))
    night = datetime.combine(day + timedelta(days=1), time(2), UTC)
    due = raise_alerts(conn, evaluation_of(pid, day, outcomes, resolved), now=night, config=CONFIG)
    conn.commit()
    row = conn.execute(
        "SELECT next_attempt_at FROM alert_delivery WHERE patient_id = %s AND channel = 'email'",
        (pid,),
    ).fetchone()
    assert row == (datetime.combine(day + timedelta(days=1), time(7), UTC),)
    hook = conn.execute(
        "SELECT delivery_id FROM alert_delivery WHERE patient_id = %s AND channel = 'webhook'",
        (pid,),
    ).fetchone()
    assert hook is not None and due == [hook[0]]


def test_without_smtp_or_webhook_settings_only_the_inbox_is_written(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    play(
        conn,
        pid,
        SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20),
        days=22,
        config=DeliveryConfig(),
    )
    channels = conn.execute(
        "SELECT DISTINCT channel FROM alert_delivery WHERE patient_id = %s", (pid,)
    ).fetchall()
    assert channels == [("inbox",)]
    assert list_alerts(conn, patient_id=pid, audience="care_team")


@pytest.mark.parametrize("audience", ["care_team", "patient"])
def test_list_alerts_filters_by_audience(conn: psycopg.Connection[Any], audience: str) -> None:
    pid, _ = enrol(conn)
    play(conn, pid, SimPatient(Persona.STEADY, seed=1), days=14)
    rows = list_alerts(conn, patient_id=pid, audience=audience)
    assert all(r.audience == audience for r in rows)
    if audience == "patient":
        assert [r.rule_id for r in rows] == ["plan.progressed"]


def test_the_dashboard_overview_counts_open_care_team_alerts_and_lists_them(
    conn: psycopg.Connection[Any],
) -> None:
    from paceline.pacing import overview

    pid, _ = enrol(conn)
    play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20), days=22)
    unresolved = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE severity = 'critical') FROM alert"
        " WHERE patient_id = %s AND audience = 'care_team' AND status <> 'resolved'",
        (pid,),
    ).fetchone()
    assert unresolved is not None and unresolved[0] >= 2
    (entry,) = [
        e
        for e in overview.caseload(conn, now=morning_after(START + timedelta(days=22)))
        if e.patient_id == pid
    ]
    assert (entry.open_alerts, entry.critical_alerts) == unresolved
    listed = overview.patient_alerts(conn, pid, since=morning_after(START))
    assert {a["rule_id"] for a in listed} == {
        r[0]
        for r in conn.execute(
            "SELECT rule_id FROM alert WHERE patient_id = %s AND audience = 'care_team'", (pid,)
        ).fetchall()
    }
