"""The daily-metrics rollup: stored samples → `paceline.signal.daily` → `daily_metrics`.

Incremental: the batch writer queues, per patient, the time span each batch
added samples to (`sample_span`). The rollup takes those spans, turns them
into the patient's local calendar days (a day is midnight to midnight in the
patient's time zone, so 23 or 25 hours across a DST change), recomputes only
those days from all their samples, upserts one `daily_metrics` row per day and
removes the spans, all in one transaction. Days that received nothing new are
never recomputed; a failed rollup leaves its spans queued for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg.types.json import Jsonb

from paceline.pacing.errors import PacingError
from paceline.signal.daily import DailyMetrics, PatientPhysiology, daily_metrics
from paceline.signal.errors import SignalError

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key for the rollup ("roll"): two schedulers or a
# scheduler and a manual run must not compute the same day twice at once.
ROLLUP_LOCK_KEY = 0x726F6C6C
_COPY_HEADER_BYTES = 19
_COPY_TRAILER_BYTES = 2
_HR = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"),
        ("t", ">i8"),
        ("l1", ">i4"),
        ("bpm", ">i2"),
        ("l2", ">i4"),
        ("contact", ">i2"),
    ]
)
_RR = np.dtype([("n", ">i2"), ("l0", ">i4"), ("t", ">i8"), ("l1", ">i4"), ("rr", ">f8")])
_STEPS = np.dtype([("n", ">i2"), ("l0", ">i4"), ("t", ">i8"), ("l1", ">i4"), ("steps", ">i4")])
_EPOCH_US = "(extract(epoch FROM time) * 1000000)::int8"


@dataclass(frozen=True)
class DaySamples:
    """Every stored sample of one patient in `[start, end)`, as numpy columns (epoch µs times)."""

    hr_time: NDArray[np.int64]
    hr_bpm: NDArray[np.int16]
    hr_contact: NDArray[np.int8]
    rr_time: NDArray[np.int64]
    rr_ms: NDArray[np.float64]
    step_time: NDArray[np.int64]
    step_count: NDArray[np.int32]

    @property
    def rows(self) -> int:
        """How many sample rows were read."""
        return int(self.hr_time.size + self.rr_time.size + self.step_time.size)


@dataclass(frozen=True)
class RollupResult:
    """What one rollup run did."""

    patients: int
    days: int
    rows_read: int
    failed: tuple[int, ...] = ()


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of a local calendar day (23 or 25 hours long across DST changes)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def days_in_span(first: datetime, last: datetime, tz: ZoneInfo) -> list[date]:
    """The local calendar days that the instants `first`..`last` fall on."""
    d, last_day = first.astimezone(tz).date(), last.astimezone(tz).date()
    days = []
    while d <= last_day:
        days.append(d)
        d += timedelta(days=1)
    return days


def _zone(name: str, patient_id: int) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PacingError(f"patient {patient_id} has an unknown time zone {name!r}") from exc


def _copy_out(
    conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...], dtype: np.dtype[Any]
) -> NDArray[Any]:
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    body = data[_COPY_HEADER_BYTES:-_COPY_TRAILER_BYTES] if data else b""
    return np.frombuffer(body, dtype=dtype)


def load_day(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime
) -> DaySamples:
    """Read one patient's samples of `[start, end)` with binary COPY straight into numpy.

    A patient may wear two devices at once (a band and a watch). Heart rate
    comes from all of them (the signal layer averages samples that share a
    grid cell). RR intervals come from the one device with the most beats
    that day, because interleaving two beat series would make every
    successive difference, and so RMSSD, meaningless. Steps are taken per
    minute as the largest count any device reported for that minute, because
    two devices count the same steps and adding them would double the load.
    """
    window = "patient_id = %s AND time >= %s AND time < %s"
    params = (patient_id, start, end)
    hr = _copy_out(
        conn,
        f"SELECT {_EPOCH_US}, bpm, coalesce(sensor_contact::int, -1)::int2"
        f" FROM hr_sample WHERE {window}",
        params,
        _HR,
    )
    rr = _copy_out(
        conn,
        f"SELECT {_EPOCH_US}, rr_ms FROM rr_interval WHERE {window} AND device_id = ("
        f" SELECT device_id FROM rr_interval WHERE {window}"
        " GROUP BY device_id ORDER BY count(*) DESC, device_id LIMIT 1)",
        params + params,
        _RR,
    )
    # A step row counts the interval that ends at its time, so the row stamped
    # at midnight belongs to the day that midnight ends; each row is placed in
    # the minute that ends at or after its time.
    steps = _copy_out(
        conn,
        "SELECT (extract(epoch FROM minute_end) * 1000000)::int8, max(steps)::int4 FROM ("
        " SELECT device_id, date_bin('1 minute', time - interval '1 microsecond', %s)"
        "   + interval '1 minute' AS minute_end, sum(steps) AS steps"
        " FROM step_sample WHERE patient_id = %s AND time > %s AND time <= %s"
        " GROUP BY device_id, minute_end) per_device GROUP BY minute_end",
        (start, patient_id, start, end),
        _STEPS,
    )
    return DaySamples(
        hr_time=hr["t"].astype(np.int64),
        hr_bpm=hr["bpm"].astype(np.int16),
        hr_contact=hr["contact"].astype(np.int8),
        rr_time=rr["t"].astype(np.int64),
        rr_ms=rr["rr"].astype(np.float64),
        step_time=steps["t"].astype(np.int64),
        step_count=steps["steps"].astype(np.int32),
    )


def physiology(conn: psycopg.Connection[Any], patient_id: int, day: date) -> PatientPhysiology:
    """The anchors for one patient-day: age that year, sex, measured HRmax/rest, the plan's ceiling."""
    row = conn.execute(
        "SELECT p.birth_year, p.sex, p.hr_max_bpm, p.hr_rest_bpm,"
        " (SELECT pp.hr_ceiling_bpm FROM pacing_plan pp WHERE pp.patient_id = p.patient_id"
        "   AND pp.valid_from < %s ORDER BY pp.version DESC LIMIT 1)"
        " FROM patient p WHERE p.patient_id = %s",
        (datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC), patient_id),
    ).fetchone()
    if row is None:
        raise PacingError(f"no patient {patient_id}")
    birth_year, sex, hr_max, hr_rest, ceiling = row
    return PatientPhysiology(
        age_years=float(day.year - birth_year) if birth_year else None,
        sex=sex,
        hr_max_bpm=float(hr_max) if hr_max else None,
        hr_rest_bpm=float(hr_rest) if hr_rest else None,
        hr_ceiling_bpm=float(ceiling) if ceiling else None,
    )


def compute_day(
    conn: psycopg.Connection[Any], patient_id: int, day: date, tz: ZoneInfo
) -> tuple[DailyMetrics, int]:
    """Compute one patient-day from its stored samples; return the metrics and rows read."""
    start, end = local_day_bounds(day, tz)
    samples = load_day(conn, patient_id, start, end)
    metrics = daily_metrics(
        start=np.datetime64(start.replace(tzinfo=None), "us"),
        end=np.datetime64(end.replace(tzinfo=None), "us"),
        profile=physiology(conn, patient_id, day),
        hr_time=samples.hr_time,
        hr_bpm=samples.hr_bpm,
        hr_contact=samples.hr_contact,
        rr_time=samples.rr_time,
        rr_ms=samples.rr_ms,
        step_time=samples.step_time,
        step_count=samples.step_count,
    )
    return metrics, samples.rows


def upsert_day(
    conn: psycopg.Connection[Any], patient_id: int, day: date, metrics: DailyMetrics
) -> None:
    """Insert or replace the `daily_metrics` row of one patient-day."""
    row = metrics.to_row()
    columns = list(row)
    values = [Jsonb(row[c]) if c == "extra" else row[c] for c in columns]
    placeholders = ", ".join(["%s"] * (len(columns) + 2))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    conn.execute(
        f"INSERT INTO daily_metrics (patient_id, day, {', '.join(columns)}) VALUES ({placeholders})"
        f" ON CONFLICT (patient_id, day) DO UPDATE SET {updates}, computed_at = now()",
        (patient_id, day, *values),
    )


#: What `rollup` calls inside a patient's savepoint once that patient's days are upserted:
#: the connection, the patient and the days recomputed. The job queue defers the
#: evaluation those days make necessary here, so it commits or rolls back with them.
AfterPatient = Callable[[psycopg.Connection[Any], int, list[date]], None]


def rollup(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int | None = None,
    after: AfterPatient | None = None,
) -> RollupResult:
    """Recompute every patient-day (of one patient, if given) that received new samples.

    Each patient is done in a savepoint of its own, under a per-patient
    transaction lock, re-reading that patient's queued spans once it holds the
    lock: a patient whose days cannot be computed (an invalid time zone, say)
    is logged and keeps its spans queued, everyone else's days are still
    computed, and two rollups running at once (two workers, or a worker and
    `paceline metrics rollup`) never compute the same spans twice.
    """
    patients = days = rows = 0
    failed: list[int] = []
    with conn.transaction():
        if patient_id is None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))
            queued_patients = conn.execute(
                "SELECT DISTINCT s.patient_id, p.timezone FROM sample_span s"
                " JOIN patient p USING (patient_id) ORDER BY s.patient_id"
            ).fetchall()
        else:
            queued_patients = conn.execute(
                "SELECT patient_id, timezone FROM patient WHERE patient_id = %s", (patient_id,)
            ).fetchall()
        for pid, tz_name in queued_patients:
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)", (ROLLUP_LOCK_KEY, pid % 2**31)
                    )
                    # Locked so that the rollup tick skips them while this runs.
                    queued = conn.execute(
                        "SELECT span_id, first_time, last_time FROM sample_span"
                        " WHERE patient_id = %s FOR UPDATE",
                        (pid,),
                    ).fetchall()
                    if not queued:
                        continue
                    tz = _zone(tz_name, pid)
                    todo = sorted({d for _, f, t in queued for d in days_in_span(f, t, tz)})
                    for day in todo:
                        metrics, read = compute_day(conn, pid, day, tz)
                        upsert_day(conn, pid, day, metrics)
                        rows += read
                    conn.execute(
                        "DELETE FROM sample_span WHERE span_id = ANY(%s)",
                        ([span_id for span_id, _, _ in queued],),
                    )
                    if after is not None:
                        after(conn, pid, todo)
            except (PacingError, SignalError) as exc:
                logger.error("daily metrics of patient %s left queued: %s", pid, exc)
                failed.append(pid)
                continue
            except psycopg.Error:
                if conn.broken:
                    raise
                # A statement timeout or an out-of-memory on one patient's
                # days must not cancel everyone else's: the savepoint undid
                # this patient's work and kept their spans queued.
                logger.exception("daily metrics of patient %s left queued", pid)
                failed.append(pid)
                continue
            patients += 1
            days += len(todo)
    result = RollupResult(patients=patients, days=days, rows_read=rows, failed=tuple(failed))
    if result.days:
        logger.info("daily metrics: %d day(s) of %d patient(s) recomputed", days, patients)
    return result
