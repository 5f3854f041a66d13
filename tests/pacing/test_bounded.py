"""Bounded evaluation: continuing from stored state gives what a full recomputation gives.

A cohort of the five personas is played for 85 days twice over the same
simulated data: one twin evaluated as the scheduler does (each day continues
from the state stored before it, reading a bounded window; three days are
skipped, as when the scheduler is down), the other recomputed from enrolment
every day. Every flag, plan version and flare-risk row must be the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import ladder
from paceline.pacing.engine import MIN_WINDOW_DAYS, REDECIDE_DAYS, evaluate_patient
from paceline.pacing.replay import EXPOSURE_TIME, store_sim_day
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import registry

START = date(2026, 1, 5)
DAYS = 85
WINDOW = MIN_WINDOW_DAYS
#: Days the bounded twin is not evaluated (its later evaluations step over them).
GAP = range(70, 73)
PERSONAS = (
    (Persona.STEADY, 1),
    (Persona.BOOM_BUST, 2),
    (Persona.AVOIDER, 3),
    (Persona.FLARE_AFTER_SPIKE, 4),
    (Persona.MISSING_WEAR, 5),
)


def enrol(conn: psycopg.Connection[Any]) -> int:
    p = registry.create_patient(
        conn,
        external_ref=f"B-{uuid.uuid4().hex[:10]}",
        display_name="Bounded",
        enrolled_at=datetime.combine(START, time(8), UTC),
    )
    conn.commit()
    return p.patient_id


def _sessions_by_time(evidence: dict[str, Any], planned: dict[int, datetime]) -> dict[str, Any]:
    """Evidence with exposure-session ids replaced by when they were planned (ids differ by twin)."""
    daily = [
        {**d, "sessions": [planned[s] for s in d["sessions"]]} if "sessions" in d else d
        for d in evidence["daily"]
    ]
    return {**evidence, "daily": daily}


def rows(conn: psycopg.Connection[Any], pid: int) -> dict[str, list[tuple[Any, ...]]]:
    planned = dict(
        conn.execute(
            "SELECT session_id, planned_at FROM exposure_session WHERE patient_id = %s", (pid,)
        ).fetchall()
    )
    flags = [
        (*r[:5], _sessions_by_time(r[5], planned))
        for r in conn.execute(
            "SELECT rule_id, window_start, window_end, severity, status, evidence FROM flag"
            " WHERE patient_id = %s ORDER BY rule_id, window_start",
            (pid,),
        ).fetchall()
    ]
    plans = conn.execute(
        "SELECT version, measure, baseline, quota, start_fraction, step_fraction, period_days,"
        " hr_ceiling_bpm, valid_from, params, created_by, reason FROM pacing_plan"
        " WHERE patient_id = %s ORDER BY version",
        (pid,),
    ).fetchall()
    risks = conn.execute(
        "SELECT day, score, model, factors FROM flare_risk WHERE patient_id = %s ORDER BY day",
        (pid,),
    ).fetchall()
    gap_days = {START + timedelta(days=i) for i in GAP}
    return {
        "flags": flags,
        "plans": plans,
        "flare_risk": [r for r in risks if r[0] not in gap_days],
    }


def play_twins(conn: psycopg.Connection[Any], persona: Persona, seed: int) -> tuple[int, int]:
    """Play one persona into a bounded twin and a recomputed twin; return (bounded, full)."""
    bounded, full = enrol(conn), enrol(conn)
    items = {}
    if persona is Persona.AVOIDER:
        for pid in (bounded, full):
            items[pid] = ladder.add_item(conn, pid, activity="lifting", fear_rating=70).item_id
    sim = SimPatient(persona, seed=seed, spike_day=76)
    quota: float | None = None
    for i in range(DAYS):
        d = START + timedelta(days=i)
        day = sim.next_day(d, quota)
        for pid in (bounded, full):
            store_sim_day(conn, pid, day)
            if pid in items and i % 3 == 0:
                planned = datetime.combine(d, EXPOSURE_TIME, UTC)
                s = ladder.plan_session(conn, pid, items[pid], planned_at=planned)
                ladder.record_session(
                    conn, pid, s.session_id, done=False, now=planned + timedelta(hours=2)
                )
        ev = evaluate_patient(conn, full, d, recompute=True, window_days=WINDOW)
        if i not in GAP:
            evaluate_patient(conn, bounded, d, window_days=WINDOW)
        conn.commit()
        quota = ev.next_plan.quota if ev.next_plan is not None else None
    return bounded, full


@pytest.mark.slow
def test_a_cohort_evaluated_from_stored_state_matches_a_full_recomputation_row_for_row(
    conn: psycopg.Connection[Any],
) -> None:
    for persona, seed in PERSONAS:
        bounded, full = play_twins(conn, persona, seed)
        assert (
            conn.execute("SELECT count(*) FROM flag WHERE patient_id = %s", (full,)).fetchone()
            != (0,)
            or persona is Persona.STEADY
        )
        got, want = rows(conn, bounded), rows(conn, full)
        assert got["plans"] == want["plans"], persona
        assert got["flags"] == want["flags"], persona
        assert got["flare_risk"] == want["flare_risk"], persona

        # The bounded twin continued from stored state with a window that no longer
        # reaches enrolment (its chronic load continued from a stored base) …
        (state,) = conn.execute(
            "SELECT state FROM pacing_state WHERE patient_id = %s AND day = %s",
            (bounded, START + timedelta(days=DAYS - 1 - REDECIDE_DAYS)),
        ).fetchone() or (None,)
        assert state is not None
        assert state["bases"]["active_minutes"] is not None
        # … and it reads nothing older than its window: without those rows, the last
        # day evaluates to the same outcome.
        oldest = START + timedelta(days=DAYS - 1 - REDECIDE_DAYS - WINDOW)
        conn.execute(
            "DELETE FROM daily_metrics WHERE patient_id = %s AND day < %s", (bounded, oldest)
        )
        conn.execute(
            "DELETE FROM self_report WHERE patient_id = %s AND reported_at < %s",
            (bounded, datetime.combine(oldest, time(), UTC)),
        )
        conn.commit()
        evaluate_patient(conn, bounded, START + timedelta(days=DAYS - 1), window_days=WINDOW)
        conn.commit()
        again = rows(conn, bounded)
        assert again == got, persona
