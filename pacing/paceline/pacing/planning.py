"""The pacing plan at the edges: read it, let a clinician change it, and today's patient view.

Also the progression pause a positive red-flag screen opens
(`paceline.pacing.intake.submit_red_flag_screen`): `progression_pause` reads
it (protocol modules that progress other targets, such as exercise, respect
it through this function) and `clear_pause` is the clinician's audited
clearing, after which the quota may rise again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.days import Measure, from_row
from paceline.pacing.diary import check_note
from paceline.pacing.engine import store_plan_versions
from paceline.pacing.errors import PlanError
from paceline.pacing.progression import (
    UNSET,
    PlannedDay,
    PlanSettings,
    PlanVersion,
    TodayStatus,
    Unset,
    revise,
    schedule,
    step_back,
    today,
    version_on,
)
from paceline.pacing.redflags import Pause
from paceline.store.access import audit


def plan_history(conn: psycopg.Connection[Any], patient_id: int) -> list[PlanVersion]:
    """Every version of the patient's plan, oldest first (with who and why)."""
    return records.plan_versions(conn, records.patient_context(conn, patient_id))


def current_plan(
    conn: psycopg.Connection[Any], patient_id: int, day: date | None = None
) -> PlanVersion | None:
    """The plan in effect on `day` (default: the patient's today), or None before any plan."""
    ctx = records.patient_context(conn, patient_id)
    when = day or ctx.local_day(datetime.now(UTC))
    return version_on(records.plan_versions(conn, ctx), when)


def set_plan(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    reason: str,
    measure: Measure | None = None,
    baseline: float | Unset | None = UNSET,
    quota: float | Unset | None = UNSET,
    start_fraction: float | None = None,
    step_fraction: float | None = None,
    period_days: int | None = None,
    hr_ceiling_bpm: int | Unset | None = UNSET,
    settings: PlanSettings | None = None,
    valid_from: date | None = None,
    now: datetime | None = None,
) -> PlanVersion:
    """A clinician sets or overrides the plan: a new version with who and why, audited."""
    ctx = records.patient_context(conn, patient_id)
    moment = now or datetime.now(UTC)
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        versions = records.plan_versions(conn, ctx)
        new = revise(
            versions[-1] if versions else None,
            valid_from=valid_from or ctx.local_day(moment),
            reason=reason,
            created_by=clinician_id,
            measure=measure,
            baseline=baseline,
            quota=quota,
            start_fraction=start_fraction,
            step_fraction=step_fraction,
            period_days=period_days,
            hr_ceiling_bpm=hr_ceiling_bpm,
            settings=settings,
        )
        store_plan_versions(
            conn,
            ctx,
            [new],
            actor=f"clinician:{clinician_id}",
            valid_from_at=None if valid_from else moment,
        )
    return new


def declare_flare(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    reason: str,
    day: date | None = None,
    now: datetime | None = None,
) -> PlanVersion:
    """A clinician records a flare: the quota steps back from `day` (default today)."""
    ctx = records.patient_context(conn, patient_id)
    moment = now or datetime.now(UTC)
    flare_day = day or ctx.local_day(moment)
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        versions = records.plan_versions(conn, ctx)
        if not versions:
            raise PlanError(f"patient {patient_id} has no plan yet")
        new = step_back(
            versions[-1],
            flare_day=flare_day,
            valid_from=flare_day,
            reason=reason,
            created_by=clinician_id,
        )
        store_plan_versions(conn, ctx, [new], actor=f"clinician:{clinician_id}")
    return new


def today_status(
    conn: psycopg.Connection[Any], patient_id: int, *, now: datetime | None = None
) -> TodayStatus | None:
    """Where today stands against the plan, for the patient view (None before any plan)."""
    ctx = records.patient_context(conn, patient_id)
    day = ctx.local_day(now or datetime.now(UTC))
    versions = records.plan_versions(conn, ctx)
    plan = version_on(versions, day)
    if plan is None:
        return None
    rows = records.metrics_rows(conn, patient_id, plan.valid_from, day)
    so_far = next((from_row(r) for r in rows if r.day == day), None)
    seen = sum(1 for r in rows if r.day < day and from_row(r).value(plan.measure) is not None)
    return today(plan, so_far, day, baseline_days_seen=seen, local_today=day)


def progression_pause(conn: psycopg.Connection[Any], patient_id: int) -> Pause | None:
    """The patient's progression pause not yet cleared by a clinician (None: progressing)."""
    return records.open_pause(conn, records.patient_context(conn, patient_id))


def clear_pause(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    note: str,
    now: datetime | None = None,
) -> Pause:
    """A clinician clears the progression pause (having assessed the red flag), audited.

    The note says what was found and done (seen in clinic, referred, nothing
    serious found); progression resumes from the local day of the clearing.
    """
    if not note.strip():
        raise PlanError("clearing a pause needs a note of what was found and done")
    check_note("note", note)
    ctx = records.patient_context(conn, patient_id)
    moment = now or datetime.now(UTC)
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        pause = records.open_pause(conn, ctx)
        if pause is None:
            raise PlanError(f"patient {patient_id} has no progression pause to clear")
        if moment < pause.started_at:
            raise PlanError("a pause cannot be cleared before it started")
        records.clear_pause(
            conn, ctx, pause.pause_id, cleared_at=moment, cleared_by=clinician_id, note=note
        )
        audit(
            conn,
            actor=f"clinician:{clinician_id}",
            action="progression.resume",
            obj="progression_pause",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={"pause_id": pause.pause_id, "reason": pause.reason, "note": note},
        )
    cleared = [p for p in records.pauses(conn, ctx, pause.start_day, ctx.local_day(moment))]
    return next(p for p in cleared if p.pause_id == pause.pause_id)


#: How far ahead the plan page shows the schedule.
SCHEDULE_DAYS = 28


def upcoming(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    days: int = SCHEDULE_DAYS,
    now: datetime | None = None,
) -> list[PlannedDay]:
    """The schedule from the patient's today: each day's kind (rest, lighter week) and target."""
    ctx = records.patient_context(conn, patient_id)
    start = ctx.local_day(now or datetime.now(UTC))
    return schedule(records.plan_versions(conn, ctx), start, days)


def start_maintenance(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    reason: str,
    day: date | None = None,
    now: datetime | None = None,
) -> PlanVersion:
    """A clinician ends the structured programme: maintenance from `day` (default today).

    A new plan version (audited like every change) with `maintenance_from`
    set: the quota no longer rises, and the relapse flags take over from the
    programme's bust and boom-bust flags. A programme length set ahead is the
    same setting given a future day.
    """
    ctx = records.patient_context(conn, patient_id)
    moment = now or datetime.now(UTC)
    start = day or ctx.local_day(moment)
    current = current_plan(conn, patient_id, start) or current_plan(conn, patient_id)
    if current is None or current.quota is None:
        raise PlanError("maintenance follows a programme: there is no quota yet")
    return set_plan(
        conn,
        patient_id,
        clinician_id=clinician_id,
        reason=reason,
        settings=replace(current.settings, maintenance_from=start),
        now=moment,
    )
