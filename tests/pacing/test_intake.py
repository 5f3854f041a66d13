"""The daily diary and questionnaires through the store: validation, idempotency, stored scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import intake
from paceline.pacing.errors import (
    IdempotencyConflictError,
    InconsistentReportError,
    NotAnIntegerError,
    NoteError,
    OutOfRangeError,
    ReportTimeError,
    UnknownPatientError,
)
from paceline.store import registry

ENROLLED = datetime(2026, 3, 1, 9, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 20, tzinfo=UTC)


@pytest.fixture
def patient(conn: psycopg.Connection[Any]) -> int:
    p = registry.create_patient(
        conn,
        external_ref=f"I-{datetime.now(UTC).timestamp()}",
        display_name="Diary patient",
        enrolled_at=ENROLLED,
    )
    conn.commit()
    return p.patient_id


def _diary(conn: psycopg.Connection[Any], patient_id: int, **kw: Any) -> intake.Submission:
    args: dict[str, Any] = {
        "reported_at": NOW - timedelta(hours=1),
        "pain_now": 4,
        "pain_average": 4,
        "pain_worst": 6,
        "fatigue": 5,
        "mood": 6,
        "sleep_quality": 7,
        "fear_of_movement": 3,
        "now": NOW,
    }
    args.update(kw)
    return intake.submit_diary(conn, patient_id, **args)


def test_a_diary_entry_is_stored_with_every_rating(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    sub = _diary(conn, patient, note="walked to the shop")
    assert sub.created
    row = conn.execute(
        "SELECT pain_now, pain_worst, fear_of_movement, note FROM self_report WHERE report_id = %s",
        (sub.stored_id,),
    ).fetchone()
    assert row == (4, 6, 3, "walked to the shop")


def test_a_double_submission_with_the_same_key_stores_one_entry(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    first = _diary(conn, patient, idempotency_key="phone-123")
    second = _diary(conn, patient, idempotency_key="phone-123")
    assert first.created and not second.created
    assert first.stored_id == second.stored_id
    count = conn.execute(
        "SELECT count(*) FROM self_report WHERE idempotency_key = 'phone-123'"
    ).fetchone()
    assert count == (1,)


def test_the_same_key_with_different_ratings_is_a_conflict(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    _diary(conn, patient, idempotency_key="phone-456")
    with pytest.raises(IdempotencyConflictError):
        _diary(conn, patient, idempotency_key="phone-456", pain_now=5)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"pain_now": 11}, OutOfRangeError),
        ({"fatigue": -1}, OutOfRangeError),
        ({"mood": 5.5}, NotAnIntegerError),
        ({"sleep_quality": True}, NotAnIntegerError),
        ({"note": "x" * 2001}, NoteError),
        ({"note": "bad\x00note"}, NoteError),
        ({"reported_at": NOW + timedelta(hours=2)}, ReportTimeError),
        ({"reported_at": ENROLLED - timedelta(days=1)}, ReportTimeError),
        ({"reported_at": datetime(2026, 3, 5, 12)}, ReportTimeError),
        ({"pain_now": 7, "pain_worst": 5}, InconsistentReportError),
    ],
)
def test_invalid_diaries_are_refused_with_a_clear_error(
    conn: psycopg.Connection[Any], patient: int, kw: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _diary(conn, patient, **kw)


def test_an_out_of_range_rating_says_which_and_what_is_allowed(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    with pytest.raises(OutOfRangeError, match=r"fear_of_movement must be from 0 to 10; got 12"):
        _diary(conn, patient, fear_of_movement=12)


def test_a_diary_for_a_patient_that_does_not_exist_is_refused(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(UnknownPatientError, match="no patient 987654"):
        _diary(conn, 987654)


def test_a_questionnaire_is_stored_with_items_and_scores(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    answers = [2, 3, 1, 2, 3, 0, 1, 4, 4, 3, 2, 1, 0]
    sub = intake.submit_questionnaire(
        conn,
        patient,
        "PCS",
        answers,
        answered_at=NOW - timedelta(hours=1),
        now=NOW,
        idempotency_key="pcs-1",
    )
    again = intake.submit_questionnaire(
        conn,
        patient,
        "PCS",
        answers,
        answered_at=NOW - timedelta(hours=1),
        now=NOW,
        idempotency_key="pcs-1",
    )
    assert not again.created and again.stored_id == sub.stored_id
    row = conn.execute(
        "SELECT instrument, items, total, scores FROM questionnaire_response"
        " WHERE response_id = %s",
        (sub.stored_id,),
    ).fetchone()
    assert row is not None
    assert row[:3] == ("PCS", answers, 26)
    assert row[3]["subscales"] == {"rumination": 13, "magnification": 1, "helplessness": 12}


def test_a_tsk17_is_stored_with_its_reverse_keyed_total(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    sub = intake.submit_questionnaire(
        conn, patient, "TSK-17", [4] * 17, answered_at=NOW - timedelta(hours=1), now=NOW
    )
    assert sub.score.total == 56
    row = conn.execute(
        "SELECT total FROM questionnaire_response WHERE response_id = %s", (sub.stored_id,)
    ).fetchone()
    assert row == (56,)
