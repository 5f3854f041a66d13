"""What patients submit: the daily diary and questionnaires, validated, stored once per key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.diary import DiaryEntry, check_note, check_report_time
from paceline.pacing.errors import ExerciseError, IdempotencyConflictError, PacingError
from paceline.pacing.exercise import ExerciseSession, SessionResponse, respond, version_on
from paceline.pacing.questionnaires import InstrumentName, QuestionnaireScore, score

KEY_MAX_CHARS = 200


@dataclass(frozen=True)
class Submission:
    """The stored id of a submission and whether this call created it."""

    stored_id: int
    created: bool


@dataclass(frozen=True)
class ScoredSubmission:
    """A stored questionnaire with its scores."""

    stored_id: int
    created: bool
    score: QuestionnaireScore


@dataclass(frozen=True)
class ExerciseSubmission:
    """A stored exercise session with how it went against its target."""

    stored_id: int
    created: bool
    response: SessionResponse


def _check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= KEY_MAX_CHARS:
        raise PacingError(f"an idempotency key has 1 to {KEY_MAX_CHARS} characters; got {len(key)}")


def submit_diary(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    reported_at: datetime,
    pain_now: int,
    pain_average: int | None = None,
    pain_worst: int | None = None,
    fatigue: int | None = None,
    mood: int | None = None,
    sleep_quality: int | None = None,
    fear_of_movement: int | None = None,
    note: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Submission:
    """Validate and store a diary entry; the same idempotency key twice stores one entry."""
    entry = DiaryEntry(
        reported_at=reported_at,
        pain_now=pain_now,
        pain_average=pain_average,
        pain_worst=pain_worst,
        fatigue=fatigue,
        mood=mood,
        sleep_quality=sleep_quality,
        fear_of_movement=fear_of_movement,
        note=note,
    )
    _check_key(idempotency_key)
    ctx = records.patient_context(conn, patient_id)
    check_report_time(reported_at, enrolled_at=ctx.enrolled_at, now=now or datetime.now(UTC))
    with conn.transaction():
        report_id, created, stored = records.insert_self_report(
            conn, patient_id, entry, idempotency_key
        )
    if not created:
        same = stored.get("reported_at") == entry.reported_at and all(
            stored.get(k) == getattr(entry, k) for k in records.REPORT_COLUMNS
        )
        if not same:
            assert idempotency_key is not None
            raise IdempotencyConflictError(idempotency_key, report_id)
    return Submission(report_id, created)


def submit_questionnaire(
    conn: psycopg.Connection[Any],
    patient_id: int,
    instrument: str | InstrumentName,
    answers: Sequence[int],
    *,
    answered_at: datetime,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ScoredSubmission:
    """Score an answer sheet as published and store answers and scores once per key."""
    scored = score(instrument, answers)
    _check_key(idempotency_key)
    ctx = records.patient_context(conn, patient_id)
    check_report_time(answered_at, enrolled_at=ctx.enrolled_at, now=now or datetime.now(UTC))
    with conn.transaction():
        response_id, created, stored = records.insert_questionnaire(
            conn, patient_id, scored, answered_at, idempotency_key
        )
    if not created:
        same = (
            stored.get("instrument") == scored.instrument.value
            and list(stored.get("items") or []) == list(scored.answers)
            and stored.get("answered_at") == answered_at
        )
        if not same:
            assert idempotency_key is not None
            raise IdempotencyConflictError(idempotency_key, response_id)
    return ScoredSubmission(response_id, created, scored)


def submit_exercise(
    conn: psycopg.Connection[Any],
    patient_id: int,
    prescription_id: int,
    *,
    performed_at: datetime,
    duration_min: float,
    rpe: int,
    pain_before: int,
    pain_after: int,
    repetitions: int | None = None,
    sets: int | None = None,
    note: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ExerciseSubmission:
    """Validate and store a prescribed session: what was done, session RPE (CR-10), pain 0-10.

    The session is logged against the target in effect on its local day; whether
    it reached that target and whether pain worsened are decided from the values
    (`paceline.pacing.exercise.respond`). The same idempotency key twice stores
    one session.
    """
    if note is not None:
        check_note("note", note)
    _check_key(idempotency_key)
    ctx = records.patient_context(conn, patient_id)
    check_report_time(performed_at, enrolled_at=ctx.enrolled_at, now=now or datetime.now(UTC))
    p = records.prescription(conn, patient_id, prescription_id)
    day = ctx.local_day(performed_at)
    current = version_on(records.target_versions(conn, patient_id).get(prescription_id, []), day)
    if current is None:
        raise ExerciseError(f"prescription {prescription_id} has no target on {day.isoformat()}")
    if not p.active:
        raise ExerciseError(f"prescription {prescription_id} ({p.name}) has ended")
    session = ExerciseSession(
        prescription_id=prescription_id,
        day=day,
        performed_at=performed_at,
        target_version=current.version,
        duration_min=float(duration_min),
        rpe=rpe,
        pain_before=pain_before,
        pain_after=pain_after,
        repetitions=repetitions,
        sets=sets,
        note=note,
    )
    with conn.transaction():
        session_id, created, stored = records.insert_exercise_session(
            conn, patient_id, session, idempotency_key
        )
    if not created:
        # The target version is the server's, not the patient's: a replay after a
        # target change is still the same session.
        same = all(
            stored.get(k) == getattr(session, k)
            for k in records.EXERCISE_SESSION_COLUMNS
            if k != "target_version"
        )
        if not same:
            assert idempotency_key is not None
            raise IdempotencyConflictError(idempotency_key, session_id)
    return ExerciseSubmission(
        session_id, created, respond(replace(session, session_id=session_id), current.target)
    )
