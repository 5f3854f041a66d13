"""What patients submit: the daily diary and questionnaires, validated, stored once per key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from paceline.pacing import records, wording
from paceline.pacing.diary import DiaryEntry, check_note, check_report_time
from paceline.pacing.errors import ExerciseError, IdempotencyConflictError, PacingError
from paceline.pacing.exercise import ExerciseSession, SessionResponse, respond, version_on
from paceline.pacing.questionnaires import InstrumentName, QuestionnaireScore, score
from paceline.pacing.redflags import WEEKLY_CHECK_DAYS, Care, Screen, Source, pathology, screen
from paceline.store.access import audit, current_person

KEY_MAX_CHARS = 200


@dataclass(frozen=True)
class Submission:
    """The stored id of a submission and whether this call created it."""

    stored_id: int
    created: bool
    #: The diary's red-flag screen, when it carried one.
    red_flag: ScreenOutcome | None = None


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
    red_flags: Mapping[str, bool] | None = None,
    now: datetime | None = None,
) -> Submission:
    """Validate and store a diary entry; the same idempotency key twice stores one entry.

    `red_flags` are the diary's red-flag answers (every question of
    `paceline.pacing.redflags.QUESTIONS`, yes or no); they are stored as a
    screen in the same transaction (`submit_red_flag_screen`), so a positive
    answer pauses progression whether or not the rest of the diary is new.
    """
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
    flags = (
        None if red_flags is None else screen(red_flags, answered_at=reported_at, source="diary")
    )
    with conn.transaction():
        report_id, created, stored = records.insert_self_report(
            conn, patient_id, entry, idempotency_key
        )
        outcome = (
            None
            if flags is None
            else _store_screen(conn, ctx, flags, idempotency_key and f"diary:{idempotency_key}")
        )
    if not created:
        same = stored.get("reported_at") == entry.reported_at and all(
            stored.get(k) == getattr(entry, k) for k in records.REPORT_COLUMNS
        )
        if not same:
            assert idempotency_key is not None
            raise IdempotencyConflictError(idempotency_key, report_id)
    return Submission(report_id, created, outcome)


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


@dataclass(frozen=True)
class ScreenOutcome:
    """A stored red-flag screen and what the patient is told."""

    screen_id: int
    created: bool
    positive: tuple[str, ...]
    #: The progression pause the screen opened or joined (None: a negative screen).
    pause_id: int | None
    #: What the patient reads now (None: nothing to say, the screen was negative).
    message: str | None


def _store_screen(
    conn: psycopg.Connection[Any], ctx: records.PatientContext, s: Screen, key: str | None
) -> ScreenOutcome:
    """Store a screen; a positive one opens the patient's progression pause (audited)."""
    screen_id, created, stored = records.insert_red_flag_screen(conn, ctx.patient_id, s, key)
    if not created:
        same = (
            stored.get("answered_at") == s.answered_at
            and stored.get("source") == s.source.value
            and stored.get("answers") == dict(s.answers)
        )
        if not same:
            assert key is not None
            raise IdempotencyConflictError(key, screen_id)
    if not s.is_positive:
        return ScreenOutcome(screen_id, created, (), None, None)
    pause = records.open_pause(conn, ctx)
    pause_id = pause.pause_id if pause is not None else None
    person = current_person(conn)
    actor = None if person is not None else "pacing-intake"
    if created and person is not None and person.kind == "patient":
        # The critical alert's evaluation is queued with the answer (migration 0031);
        # service sessions (the CLI, imports) leave it to the rollup tick's sweep.
        records.queue_red_flag_evaluation(conn, screen_id)
    if pause_id is None:
        pause_id = records.insert_pause(
            conn,
            ctx,
            started_at=s.answered_at,
            reason=wording.pause_reason(s.positive),
            screen_id=screen_id,
        )
    if created:
        audit(
            conn,
            actor=actor,
            action="progression.pause",
            obj="progression_pause",
            patient_id=ctx.patient_id,
            detail={
                "pause_id": pause_id,
                "screen_id": screen_id,
                "source": s.source.value,
                "positive": list(s.positive),
                "screens_for": [pathology(c) for c in s.positive],
                "joined_open_pause": pause is not None,
            },
        )
    return ScreenOutcome(
        screen_id,
        created,
        s.positive,
        pause_id,
        wording.red_flag_message(s.care is Care.EMERGENCY),
    )


def submit_red_flag_screen(
    conn: psycopg.Connection[Any],
    patient_id: int,
    answers: Mapping[str, bool],
    *,
    answered_at: datetime,
    source: Source | str = Source.WEEKLY,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ScreenOutcome:
    """Store the patient's answers to the red-flag questions (the weekly check, or the diary's).

    A yes to any question pauses progression until a clinician clears it (the
    pause is opened and audited in the same transaction), and the outcome
    carries the sentence telling the patient to seek care; the engine raises
    the critical `safety.red_flag` alert when it next evaluates the patient.
    In a patient's own session that evaluation is queued in this transaction
    (`paceline_queue_red_flag_evaluation`), so a worker takes it at once;
    otherwise the new-data sweep defers it within one rollup tick. A pain
    rating is not an answer here: a high pain score alone never pauses anything.
    """
    s = screen(answers, answered_at=answered_at, source=source)
    _check_key(idempotency_key)
    ctx = records.patient_context(conn, patient_id)
    check_report_time(answered_at, enrolled_at=ctx.enrolled_at, now=now or datetime.now(UTC))
    with conn.transaction():
        return _store_screen(conn, ctx, s, idempotency_key)


def weekly_check_due(
    conn: psycopg.Connection[Any], patient_id: int, *, now: datetime | None = None
) -> bool:
    """Whether the weekly red-flag check is due: no screen answered in the last 7 days."""
    last = records.latest_screen_at(conn, patient_id)
    moment = now or datetime.now(UTC)
    return last is None or moment - last >= timedelta(days=WEEKLY_CHECK_DAYS)
