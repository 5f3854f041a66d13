"""Play simulated personas through the engine day by day, as the nightly job would.

Used by the vignette tests and by `paceline demo` to give a caseload weeks of
history in seconds. Each simulated day is stored as what the real pipeline
would have produced (a daily-metrics row when the wearable reported, a diary
entry when the patient filled it in), then evaluated with `evaluate_patient`;
the next day is simulated against the quota that evaluation set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from paceline.pacing import intake, ladder, records
from paceline.pacing.engine import Evaluation, evaluate_patient
from paceline.pacing.simulate import SimDay, SimPatient

# When simulated patients fill in the diary and when planned exposures are due.
DIARY_TIME = time(20)
EXPOSURE_TIME = time(10)


def store_sim_day(conn: psycopg.Connection[Any], patient_id: int, d: SimDay) -> None:
    """Store one simulated day: its daily-metrics row (unless silent) and its diary entry.

    The row goes through the writer the rollup uses (`records.upsert_daily_metrics`),
    the diary through `intake.submit_diary` with its validation, at 20:00 in the
    patient's time zone.
    """
    if d.reported:
        row = {k: v for k, v in d.metrics_row().items() if k != "day"}
        records.upsert_daily_metrics(conn, patient_id, d.day, row)
    if d.pain is not None:
        ctx = records.patient_context(conn, patient_id)
        when = datetime.combine(d.day, DIARY_TIME, ctx.zone)
        intake.submit_diary(
            conn,
            patient_id,
            reported_at=when,
            pain_now=d.pain,
            pain_average=d.pain,
            pain_worst=d.pain,
            sleep_quality=d.sleep,
            fear_of_movement=d.fear,
            now=when,
        )


def play(
    conn: psycopg.Connection[Any],
    patient_id: int,
    sim: SimPatient,
    *,
    start: date,
    days: int,
    skip_exposures_every: int | None = None,
    feared_activity: str = "bending to load the dishwasher",
) -> list[Evaluation]:
    """Simulate and evaluate `days` days from `start`; optionally plan an exposure every few days and skip it."""
    item_id = None
    if skip_exposures_every is not None:
        item_id = ladder.add_item(
            conn, patient_id, activity=feared_activity, fear_rating=70
        ).item_id
    quota: float | None = None
    out = []
    for i in range(days):
        d = start + timedelta(days=i)
        store_sim_day(conn, patient_id, sim.next_day(d, quota))
        if item_id is not None and skip_exposures_every and i % skip_exposures_every == 0:
            planned = datetime.combine(d, EXPOSURE_TIME, UTC)
            s = ladder.plan_session(conn, patient_id, item_id, planned_at=planned)
            ladder.record_session(
                conn, patient_id, s.session_id, done=False, now=planned + timedelta(hours=2)
            )
        ev = evaluate_patient(conn, patient_id, d)
        conn.commit()
        out.append(ev)
        quota = ev.next_plan.quota if ev.next_plan is not None else None
    return out
