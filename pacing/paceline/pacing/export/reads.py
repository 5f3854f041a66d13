"""What an export reads: one patient's days, diary entries and questionnaires in a range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import class_row


@dataclass(frozen=True)
class ExportPatient:
    """The patient an export is about."""

    patient_id: int
    external_ref: str
    timezone: str


@dataclass(frozen=True)
class DayRow:
    """One patient-day of `daily_metrics`, as exported."""

    day: date
    wear_min: float
    active_min: float
    steps: int
    mean_hr_bpm: float | None
    resting_hr_bpm: float | None
    rmssd_ms: float | None
    trimp_banister: float | None
    trimp_edwards: float | None
    hr_samples: int
    rr_intervals: int


@dataclass(frozen=True)
class DiaryRow:
    """One diary entry (`self_report`)."""

    reported_at: datetime
    pain_now: int
    pain_average: int | None
    pain_worst: int | None
    fatigue: int | None
    mood: int | None
    sleep_quality: int | None
    fear_of_movement: int | None
    note: str | None


@dataclass(frozen=True)
class QuestionnaireRow:
    """One scored questionnaire (`questionnaire_response`)."""

    response_id: int
    instrument: str
    answered_at: datetime
    items: list[int]
    total: int
    scores: dict[str, Any]


@dataclass(frozen=True)
class ExportData:
    """Everything an export of `patient` for `start` … `end` holds."""

    patient: ExportPatient
    start: date
    end: date
    days: list[DayRow]
    diary: list[DiaryRow]
    questionnaires: list[QuestionnaireRow]

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Local midnight to midnight of `day` in the patient's time zone."""
        tz = ZoneInfo(self.patient.timezone)
        return (
            datetime.combine(day, time(), tzinfo=tz),
            datetime.combine(day + timedelta(days=1), time(), tzinfo=tz),
        )


_DAY_COLS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        (
            "day",
            "wear_min",
            "active_min",
            "steps",
            "mean_hr_bpm",
            "resting_hr_bpm",
            "rmssd_ms",
            "trimp_banister",
            "trimp_edwards",
            "hr_samples",
            "rr_intervals",
        ),
    )
)
_DIARY_COLS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        (
            "reported_at",
            "pain_now",
            "pain_average",
            "pain_worst",
            "fatigue",
            "mood",
            "sleep_quality",
            "fear_of_movement",
            "note",
        ),
    )
)


def read(
    conn: psycopg.Connection[Any], patient: ExportPatient, start: date, end: date
) -> ExportData:
    """Read the export's rows (inside the caller's transaction, so under its row security)."""
    tz = ZoneInfo(patient.timezone)
    lo = datetime.combine(start, time(), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=tz)
    with conn.cursor(row_factory=class_row(DayRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM daily_metrics WHERE patient_id = %s"
                " AND day BETWEEN %s AND %s ORDER BY day"
            ).format(_DAY_COLS),
            (patient.patient_id, start, end),
        )
        days = cur.fetchall()
    with conn.cursor(row_factory=class_row(DiaryRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM self_report WHERE patient_id = %s"
                " AND reported_at >= %s AND reported_at < %s ORDER BY reported_at"
            ).format(_DIARY_COLS),
            (patient.patient_id, lo, hi),
        )
        diary = cur.fetchall()
    with conn.cursor(row_factory=class_row(QuestionnaireRow)) as cur:
        cur.execute(
            "SELECT response_id, instrument, answered_at, items, total, scores"
            " FROM questionnaire_response WHERE patient_id = %s"
            " AND answered_at >= %s AND answered_at < %s ORDER BY answered_at, response_id",
            (patient.patient_id, lo, hi),
        )
        questionnaires = cur.fetchall()
    return ExportData(patient, start, end, days, diary, questionnaires)


def patient(conn: psycopg.Connection[Any], patient_id: int) -> ExportPatient | None:
    """The patient, if this connection may see them."""
    with conn.cursor(row_factory=class_row(ExportPatient)) as cur:
        cur.execute(
            "SELECT patient_id, external_ref, timezone FROM patient WHERE patient_id = %s",
            (patient_id,),
        )
        return cur.fetchone()
