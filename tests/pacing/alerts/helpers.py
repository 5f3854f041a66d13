"""Test helpers: a patient with a care team and addresses, and days played through engine and alerts."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from paceline.pacing import records, replay
from paceline.pacing.alerts import raise_alerts
from paceline.pacing.alerts.config import DeliveryConfig
from paceline.pacing.engine import Evaluation, evaluate_patient, persist_flags
from paceline.pacing.flags import DaySignal, Severity, episodes
from paceline.pacing.rules.flare import FLARE_RISK
from paceline.pacing.simulate import SimPatient
from paceline.store import registry

START = date(2026, 3, 2)
SECRET = "whsec_" + base64.b64encode(b"paceline-test-secret-32-bytes-ok").decode()
CONFIG = DeliveryConfig(
    smtp_url="smtp://127.0.0.1:9",
    alert_from="alerts@paceline.test",
    webhook_url="http://127.0.0.1:9/hook",
    webhook_secret=SECRET,
    dashboard_url="https://dash.example",
)


def enrol(conn: psycopg.Connection[Any], *, clinicians: int = 1) -> tuple[int, list[int]]:
    """A patient with an e-mail address and `clinicians` care-team clinicians with addresses."""
    tag = uuid.uuid4().hex[:8]
    p = registry.create_patient(
        conn,
        external_ref=f"A-{tag}",
        display_name="Alert patient",
        enrolled_at=datetime.combine(START, time(8), UTC),
    )
    records.set_patient_contact(
        conn, p.patient_id, email=f"patient-{tag}@example.org", diary_reminder_at=None
    )
    team = []
    for i in range(clinicians):
        cid = registry.create_clinician(conn, username=f"c{i}-{tag}", display_name=f"Dr {i}")
        records.set_clinician_contact(conn, cid, email=f"c{i}-{tag}@clinic.example", timezone="UTC")
        registry.assign_care_team(conn, clinician_id=cid, patient_id=p.patient_id)
        team.append(cid)
    conn.commit()
    return p.patient_id, team


def morning_after(d: date) -> datetime:
    """When the nightly pass's alerts are raised in these tests: 09:00 UTC the next day."""
    return datetime.combine(d + timedelta(days=1), time(9), UTC)


def play(
    conn: psycopg.Connection[Any],
    patient_id: int,
    sim: SimPatient,
    *,
    days: int,
    config: DeliveryConfig = CONFIG,
) -> tuple[list[Evaluation], list[int]]:
    """Simulate, evaluate and raise alerts day by day; return the evaluations and due deliveries."""
    quota: float | None = None
    evals, due = [], []
    for i in range(days):
        d = START + timedelta(days=i)
        replay.store_sim_day(conn, patient_id, sim.next_day(d, quota))
        ev = evaluate_patient(conn, patient_id, d)
        due += raise_alerts(conn, ev, now=morning_after(d), config=config)
        conn.commit()
        evals.append(ev)
        quota = ev.next_plan.quota if ev.next_plan is not None else None
    return evals, due


def evaluation_of(pid: int, day: date, outcomes: Any, resolved: Any) -> Evaluation:
    """An evaluation carrying only flags (what `raise_alerts` reads)."""
    return Evaluation(
        patient_id=pid,
        day=day,
        plan=None,
        next_plan=None,
        plan_changes=(),
        flags=tuple(outcomes),
        resolved_flag_ids=tuple(resolved),
        flare_risk=None,
        response=None,
        today=None,
    )


def raise_flare_risk(
    conn: psycopg.Connection[Any],
    pid: int,
    *,
    day: date = START,
    score: float = 0.42,
    config: DeliveryConfig = CONFIG,
    now: datetime | None = None,
) -> list[int]:
    """Store an open flare-risk flag for `day` through the engine's writer and raise its alert."""
    ctx = records.patient_context(conn, pid)
    signal = DaySignal(
        day,
        enter=True,
        hold=True,
        severity=Severity.CRITICAL if score >= 0.6 else Severity.WARNING,
        evidence={"score": score, "contributing": ["pain 2.5 points above your usual"]},
    )
    outcomes, resolved = persist_flags(conn, ctx, day, episodes(FLARE_RISK, [signal]))
    due = raise_alerts(
        conn,
        evaluation_of(pid, day, outcomes, resolved),
        now=now or morning_after(day),
        config=config,
    )
    conn.commit()
    return due
