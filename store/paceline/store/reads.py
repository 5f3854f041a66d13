"""What a person reads about patients, each read audited (the query layer of the dashboard and exports).

Every function here reads through row-level security, so inside a person
session (`paceline.store.access`) it returns only what that person may see,
and it writes one `read` row per patient it returned to the audit log in the
same transaction. Called by a service outside a person session, nothing is
audited. Pages and exports read patient data through these functions, never
with their own SQL, so that no view of a patient's data goes unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

from paceline.store.access import current_person, record_reads

T = TypeVar("T")


@dataclass(frozen=True)
class CaseloadPatient:
    """One patient the reader may see."""

    patient_id: int
    display_name: str
    timezone: str
    enrolled_at: datetime
    last_metrics_day: date | None


@dataclass(frozen=True)
class MetricsDay:
    """One patient-day of daily metrics."""

    patient_id: int
    day: date
    wear_min: float
    zone_min: list[float]
    active_min: float
    steps: int
    trimp_banister: float | None
    resting_hr_bpm: float | None
    rmssd_ms: float | None


@dataclass(frozen=True)
class HrBucket:
    """Heart rate over one time bucket (`date_bin`), never the raw samples."""

    start: datetime
    samples: int
    mean_bpm: float
    min_bpm: int
    max_bpm: int


@dataclass(frozen=True)
class DiaryEntry:
    """One self-report."""

    report_id: int
    patient_id: int
    reported_at: datetime
    pain_now: int
    pain_average: int | None
    pain_worst: int | None
    fatigue: int | None
    mood: int | None
    sleep_quality: int | None
    fear_of_movement: int | None
    note: str | None


def caseload(conn: psycopg.Connection[Any]) -> list[CaseloadPatient]:
    """Every patient the reader may see, by name."""
    rows = _fetch(
        conn,
        CaseloadPatient,
        "SELECT p.patient_id, p.display_name, p.timezone, p.enrolled_at,"
        " (SELECT max(m.day) FROM daily_metrics m WHERE m.patient_id = p.patient_id)"
        " AS last_metrics_day FROM patient p ORDER BY p.display_name, p.patient_id",
    )
    record_reads(conn, obj="caseload", patient_ids=(r.patient_id for r in rows))
    return rows


def daily_metrics(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[MetricsDay]:
    """The patient's daily metrics from `start` to `end` inclusive."""
    rows = _fetch(
        conn,
        MetricsDay,
        "SELECT patient_id, day, wear_min, zone_min, active_min, steps, trimp_banister,"
        " resting_hr_bpm, rmssd_ms FROM daily_metrics"
        " WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day",
        (patient_id, start, end),
    )
    _audit_one(conn, "daily_metrics", patient_id, start=start.isoformat(), end=end.isoformat())
    return rows


def hr_buckets(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: datetime,
    end: datetime,
    bucket: timedelta = timedelta(minutes=1),
) -> list[HrBucket]:
    """Heart rate of the patient in `date_bin(bucket)` buckets over [start, end)."""
    rows = _fetch(
        conn,
        HrBucket,
        "SELECT date_bin(%(bucket)s, time, %(start)s) AS start, count(*)::int AS samples,"
        " avg(bpm)::float8 AS mean_bpm, min(bpm)::int AS min_bpm, max(bpm)::int AS max_bpm"
        " FROM clinician_hr_sample"
        " WHERE patient_id = %(pid)s AND time >= %(start)s AND time < %(end)s"
        " GROUP BY 1 ORDER BY 1",
        {"bucket": bucket, "start": start, "end": end, "pid": patient_id},
    )
    _audit_one(
        conn,
        "hr_sample",
        patient_id,
        start=start.isoformat(),
        end=end.isoformat(),
        bucket_s=bucket.total_seconds(),
    )
    return rows


def diary(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime
) -> list[DiaryEntry]:
    """The patient's self-reports over [start, end)."""
    rows = _fetch(
        conn,
        DiaryEntry,
        "SELECT report_id, patient_id, reported_at, pain_now, pain_average, pain_worst,"
        " fatigue, mood, sleep_quality, fear_of_movement, note FROM self_report"
        " WHERE patient_id = %s AND reported_at >= %s AND reported_at < %s"
        " ORDER BY reported_at",
        (patient_id, start, end),
    )
    _audit_one(conn, "self_report", patient_id, start=start.isoformat(), end=end.isoformat())
    return rows


def _fetch(conn: psycopg.Connection[Any], cls: type[T], query: str, params: Any = None) -> list[T]:
    with conn.cursor(row_factory=class_row(cls)) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _audit_one(conn: psycopg.Connection[Any], obj: str, patient_id: int, **detail: Any) -> None:
    if current_person(conn) is None:
        return  # a service's read
    # A read the person may not make returns no rows and is still recorded
    # when the patient is theirs; one they may not see is refused by the
    # audit policy, so only the attempt on a visible patient is written.
    visible = conn.execute("SELECT 1 FROM patient WHERE patient_id = %s", (patient_id,)).fetchone()
    if visible is not None:
        record_reads(conn, obj=obj, patient_ids=[patient_id], detail=detail)
