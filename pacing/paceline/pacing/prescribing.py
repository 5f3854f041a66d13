"""Prescribed exercise at the edges: prescribe, set targets, progress them, show adherence.

A clinician prescribes a kind of session with its first target
(`prescribe`), may override the target or end the prescription (`set_target`,
`end_prescription`), each change audited. The patient logs sessions through
`paceline.pacing.intake.submit_exercise`. The engine calls `progress` once per
evaluated day: the pure `paceline.pacing.exercise.advance` decides which
targets rise or step down, and the new versions are stored and audited in the
evaluation's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import psycopg

from paceline.pacing import exercise, records, wording
from paceline.pacing.evidence import JSON
from paceline.pacing.exercise import (
    DEFAULT_CONSISTENT_SESSIONS,
    DEFAULT_STEP_FRACTION,
    Adherence,
    ExerciseSession,
    Kind,
    Prescription,
    SessionResponse,
    Target,
    TargetCause,
    TargetVersion,
)
from paceline.pacing.load import SessionLoad, session_load_state
from paceline.pacing.progression import Cause, FlareOnset, PlanVersion
from paceline.pacing.records import PatientContext
from paceline.store.access import audit

ENGINE_ACTOR: Final = "pacing-engine"
#: Days of sessions the engine reads before the evaluated day: every run of good
#: sessions that could still raise a target lies in it (earlier days were decided
#: by earlier evaluations), and it covers the 28-day chronic window of the load.
LOOKBACK_DAYS: Final = 61


def _actor(clinician_id: int) -> str:
    return f"clinician:{clinician_id}"


def _version_detail(v: TargetVersion) -> dict[str, JSON]:
    return {
        "prescription_id": v.prescription_id,
        "version": v.version,
        "cause": v.cause.value,
        "reason": v.reason,
        "target": v.target.as_json(),
        "valid_from": v.valid_from.isoformat(),
    }


def store_target_versions(
    conn: psycopg.Connection[Any],
    patient_id: int,
    versions: Sequence[TargetVersion],
    *,
    actor: str,
) -> None:
    """Write target versions and audit each."""
    for v in versions:
        target_id = records.insert_target_version(conn, patient_id, v)
        audit(
            conn,
            actor=actor,
            action="exercise.target",
            obj="exercise_target",
            patient_id=patient_id,
            clinician_id=v.created_by,
            detail={"target_id": target_id, **_version_detail(v)},
        )


def prescribe(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    kind: Kind | str,
    name: str,
    sessions_per_week: int,
    target: Target,
    reason: str,
    consistent_sessions: int = DEFAULT_CONSISTENT_SESSIONS,
    step_fraction: float = DEFAULT_STEP_FRACTION,
    valid_from: date | None = None,
    now: datetime | None = None,
) -> tuple[Prescription, TargetVersion]:
    """A clinician prescribes a kind of session with its first target (from `valid_from`), audited."""
    p = Prescription(
        prescription_id=0,
        kind=kind if isinstance(kind, Kind) else exercise.kind(kind),
        name=name.strip(),
        sessions_per_week=sessions_per_week,
        consistent_sessions=consistent_sessions,
        step_fraction=step_fraction,
        created_by=clinician_id,
    )
    ctx = records.patient_context(conn, patient_id)
    start = valid_from or ctx.local_day(now or datetime.now(UTC))
    with conn.transaction():
        stored = records.insert_prescription(conn, patient_id, p)
        first = TargetVersion(
            prescription_id=stored.prescription_id,
            version=1,
            target=target,
            valid_from=start,
            cause=TargetCause.CLINICIAN,
            reason=wording.exercise_clinician_reason(stored.name, target.text, reason),
            created_by=clinician_id,
        )
        audit(
            conn,
            actor=_actor(clinician_id),
            action="exercise.prescribe",
            obj="exercise_prescription",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={
                "prescription_id": stored.prescription_id,
                "kind": stored.kind.value,
                "name": stored.name,
                "sessions_per_week": sessions_per_week,
                "consistent_sessions": consistent_sessions,
                "step_fraction": step_fraction,
            },
        )
        store_target_versions(conn, patient_id, [first], actor=_actor(clinician_id))
    return stored, first


def set_target(
    conn: psycopg.Connection[Any],
    patient_id: int,
    prescription_id: int,
    *,
    clinician_id: int,
    target: Target,
    reason: str,
    valid_from: date | None = None,
    now: datetime | None = None,
) -> TargetVersion:
    """A clinician overrides a session target: a new version with who and why, audited."""
    ctx = records.patient_context(conn, patient_id)
    start = valid_from or ctx.local_day(now or datetime.now(UTC))
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        p = records.prescription(conn, patient_id, prescription_id)
        latest = records.target_versions(conn, patient_id, ends_only=True)[prescription_id][-1]
        new = TargetVersion(
            prescription_id=prescription_id,
            version=latest.version + 1,
            target=target,
            valid_from=start,
            cause=TargetCause.CLINICIAN,
            reason=wording.exercise_clinician_reason(p.name, target.text, reason),
            created_by=clinician_id,
        )
        store_target_versions(conn, patient_id, [new], actor=_actor(clinician_id))
    return new


def end_prescription(
    conn: psycopg.Connection[Any], patient_id: int, prescription_id: int, *, clinician_id: int
) -> Prescription:
    """A clinician ends a prescription (its sessions and targets stay on record), audited."""
    with conn.transaction():
        p = records.prescription(conn, patient_id, prescription_id)
        ended = replace(p, active=False)
        records.update_prescription(conn, patient_id, ended)
        audit(
            conn,
            actor=_actor(clinician_id),
            action="exercise.end",
            obj="exercise_prescription",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={"prescription_id": prescription_id},
        )
    return ended


def paused_through(conn: psycopg.Connection[Any], ctx: PatientContext, day: date) -> date | None:
    """The last day up to `day` on which progression was paused (None: never).

    The pause is the activity plan's (`paceline.pacing.planning.progression_pause`):
    a positive red-flag screen pauses every day from its own until a clinician
    clears it (the clearing day is no longer paused).
    """
    covered = [
        min(day, p.cleared_day - timedelta(days=1)) if p.cleared_day is not None else day
        for p in records.pauses(conn, ctx, ctx.enrolled_day, day)
    ]
    return max(covered, default=None)


def plan_flares(plans: Sequence[PlanVersion]) -> list[FlareOnset]:
    """Flares the activity plan stepped back for (the engine's and those a clinician declared).

    An engine step-back takes effect the day after the flare was confirmed; a
    declared flare on its own day.
    """
    return [
        FlareOnset(p.flare_start, max(p.flare_start, p.valid_from - timedelta(days=1)))
        for p in plans
        if p.cause is Cause.FLARE and p.flare_start is not None
    ]


def progress(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    day: date,
    flares: Sequence[FlareOnset],
) -> list[TargetVersion]:
    """Decide and store the target versions due by the end of `day` (the engine calls this).

    Runs inside the evaluation's transaction, under its per-patient lock. Reads
    each prescription's first and latest target and the sessions of the last
    `LOOKBACK_DAYS`, so its cost does not grow with the history. While
    progression is paused (`paused_through`) targets only step down.
    """
    active = records.prescriptions(conn, ctx.patient_id, active_only=True)
    if not active:
        return []
    paused = paused_through(conn, ctx, day)
    versions = records.target_versions(conn, ctx.patient_id, ends_only=True)
    since = day - timedelta(days=LOOKBACK_DAYS)
    sessions = records.exercise_sessions(conn, ctx, since, day)
    new: list[TargetVersion] = []
    for p in active:
        own = versions.get(p.prescription_id)
        if not own:
            continue
        new += exercise.advance(p, own, sessions, flares, day, paused_through=paused, since=since)
    store_target_versions(conn, ctx.patient_id, new, actor=ENGINE_ACTOR)
    return new


def daily_session_load(
    sessions: Sequence[ExerciseSession], start: date, end: date, first_day: date | None
) -> list[float | None]:
    """Each day's summed session-RPE load (0 without a session, None before `first_day`)."""
    out: list[float | None] = []
    by_day: dict[date, float] = {}
    for s in sessions:
        by_day[s.day] = by_day.get(s.day, 0.0) + s.load
    d = start
    while d <= end:
        out.append(None if first_day is None or d < first_day else by_day.get(d, 0.0))
        d += timedelta(days=1)
    return out


@dataclass(frozen=True)
class PrescriptionView:
    """One prescription as the pages show it: current target, history, adherence, sessions."""

    prescription: Prescription
    current: TargetVersion | None
    versions: tuple[TargetVersion, ...]
    adherence: Adherence
    week: Adherence
    sessions: tuple[SessionResponse, ...]


@dataclass(frozen=True)
class ExerciseOverview:
    """A patient's prescriptions and their session-RPE load from `start` to `end`."""

    start: date
    end: date
    prescriptions: tuple[PrescriptionView, ...]
    #: The session-RPE load model of the days from `load_start` to `end`.
    load: SessionLoad
    load_start: date

    @property
    def daily_load(self) -> list[tuple[date, float]]:
        """(day, session-RPE load) of the range's days since the first prescription."""
        out = []
        for i, v in enumerate(self.load.loads):
            d = self.load_start + timedelta(days=i)
            if d >= self.start and not np.isnan(v):
                out.append((d, float(v)))
        return out


def overview(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> ExerciseOverview:
    """Prescriptions, targets, adherence (over the range and its last week) and load for the pages.

    The load reads 27 days before `start` so the acute:chronic ratio is known from
    the range's first day.
    """
    ctx = records.patient_context(conn, patient_id)
    ps = records.prescriptions(conn, patient_id)
    versions = records.target_versions(conn, patient_id)
    lo = start - timedelta(days=27)
    sessions = records.exercise_sessions(conn, ctx, lo, end)
    views = []
    for p in ps:
        own = versions.get(p.prescription_id, [])
        mine = [s for s in sessions if s.prescription_id == p.prescription_id and s.day >= start]
        responses = []
        for s in mine:
            v = exercise.version_on(own, s.day)
            if v is not None:
                responses.append(exercise.respond(s, v.target))
        views.append(
            PrescriptionView(
                prescription=p,
                current=exercise.version_on(own, end),
                versions=tuple(own),
                adherence=exercise.adherence(p, own, sessions, start, end),
                week=exercise.adherence(p, own, sessions, end - timedelta(days=6), end),
                sessions=tuple(responses),
            )
        )
    firsts = [v[0].valid_from for v in versions.values() if v]
    first_day = min(firsts) if firsts else None
    load = session_load_state(daily_session_load(sessions, lo, end, first_day))
    return ExerciseOverview(start, end, tuple(views), load, lo)
