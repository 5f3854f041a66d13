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

from paceline.pacing import records
from paceline.pacing.errors import PacingError
from paceline.pacing.localday import day_bounds, days_touched
from paceline.signal.daily import DailyMetrics, PatientPhysiology, daily_metrics
from paceline.signal.errors import SignalError

logger = logging.getLogger(__name__)


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


def _zone(name: str, patient_id: int) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PacingError(f"patient {patient_id} has an unknown time zone {name!r}") from exc


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
    hr = records.hr_samples(conn, patient_id, start, end)
    rr = records.rr_intervals(conn, patient_id, start, end)
    steps = records.steps_per_minute(conn, patient_id, start, end)
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
    row = records.physiology_row(
        conn, patient_id, datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    )
    if row is None:
        raise PacingError(f"no patient {patient_id}")
    return PatientPhysiology(
        age_years=float(day.year - row.birth_year) if row.birth_year else None,
        sex=row.sex,
        hr_max_bpm=float(row.hr_max_bpm) if row.hr_max_bpm else None,
        hr_rest_bpm=float(row.hr_rest_bpm) if row.hr_rest_bpm else None,
        hr_ceiling_bpm=float(row.hr_ceiling_bpm) if row.hr_ceiling_bpm else None,
    )


def compute_day(
    conn: psycopg.Connection[Any], patient_id: int, day: date, tz: ZoneInfo
) -> tuple[DailyMetrics, int]:
    """Compute one patient-day from its stored samples; return the metrics and rows read."""
    start, end = day_bounds(day, tz)
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
    records.upsert_daily_metrics(conn, patient_id, day, metrics.to_row())


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
            records.lock_rollup(conn)
            queued_patients = records.patients_with_spans(conn)
        else:
            queued_patients = records.patient_zone(conn, patient_id)
        for pid, tz_name in queued_patients:
            try:
                with conn.transaction():
                    records.lock_rollup_of(conn, pid)
                    queued = records.take_spans(conn, pid)
                    if not queued:
                        continue
                    tz = _zone(tz_name, pid)
                    todo = sorted({d for _, f, t in queued for d in days_touched(f, t, tz)})
                    for day in todo:
                        metrics, read = compute_day(conn, pid, day, tz)
                        upsert_day(conn, pid, day, metrics)
                        rows += read
                    records.drop_spans(conn, [span_id for span_id, _, _ in queued])
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
