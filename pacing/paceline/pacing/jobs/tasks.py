"""The units of work on the queue, and the periodic fan-outs the clock defers.

Per-patient work:

- `rollup_patient(patient_id)`: recompute the patient's days that received new
  samples; in the same transaction, list those days as due for evaluation and
  defer `evaluate` for the patient;
- `evaluate(patient_id)`: evaluate every day listed as due for the patient,
  oldest first, raise its alerts (`paceline.pacing.alerts.raise_alerts`) and
  defer a `deliver` job for each delivery due now, in one transaction, and
  clear the list;
- `deliver(delivery_id)`: one attempt (`paceline.pacing.alerts.deliver`); a
  retry is deferred for the time the outcome names, in the attempt's
  transaction.

Both share the procrastinate lock `patient:<id>` (one runs at a time per
patient, in the order they were deferred) and take a queueing lock of their own
(`rollup:<id>`, `evaluate:<id>`): at most one of each is pending per patient,
and a pending job reads its work list when it starts, so it also does the work
listed after it was deferred.

Periodic fan-outs (deferred by `paceline.pacing.jobs.clock`, one per slot):

- `rollup_tick(since, until)`: defer `rollup_patient` for every patient with new samples;
- `nightly(since, until)`: for every patient whose local nightly time
  (`NIGHTLY_AT`) fell in `(since, until]`, list the local day that just ended
  as due and defer `evaluate`;
- `deliveries(since, until)`: defer `deliver` for deliveries and digests due
  (first tries held by quiet hours, retries whose job was lost);
- `reminders(since, until)`: open today's diary and questionnaire reminders, defer their deliveries;
- `recover_stalled()`: put back jobs whose worker stopped sending heartbeats
  (killed, or its machine lost), so another worker runs them;
- `housekeeping()`: forget jobs that succeeded more than `KEEP_SUCCEEDED_H`
  hours ago (failed ones stay until an operator looks at them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from procrastinate import JobContext, RetryStrategy
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Status
from psycopg_pool import ConnectionPool

from paceline.pacing import alerts, records
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.errors import PacingError
from paceline.pacing.jobs.queue import (
    CLOCK_QUEUE,
    DELIVER_QUEUE,
    EVALUATE_QUEUE,
    ROLLUP_QUEUE,
    Deferral,
    app,
    defer_batch,
    patient_lock,
)
from paceline.pacing.jobs.timesource import REAL_TIME, TimeSource
from paceline.pacing.rollup import rollup

logger = logging.getLogger(__name__)

#: The local wall time of a patient's nightly pass: the day before has ended, and
#: 01:00 exists on every day in the zones that shift at 02:00 or 03:00 (a time in a
#: DST gap would still map to one instant; see `nightly_instant`).
NIGHTLY_AT: Final = time(1, 0)
#: Where the worker puts its `Resources` in procrastinate's additional context.
RESOURCES_KEY: Final = "paceline"
#: How long without a heartbeat before a worker's running jobs are put back: three
#: missed heartbeats at procrastinate's default interval of 10 s.
DEFAULT_STALLED_AFTER_S: Final = 30.0

# The database away (a restart, a failover) is worth retrying; bad data is not.
_RETRY_ON_OUTAGE: Final = RetryStrategy(
    max_attempts=8, exponential_wait=2, retry_exceptions={psycopg.OperationalError}
)

#: How long succeeded jobs stay in the queue's tables (for `procrastinate` inspection
#: and the event log) before `housekeeping` deletes them.
KEEP_SUCCEEDED_H: Final = 7 * 24

ROLLUP_PATIENT: Final = "paceline.rollup_patient"
EVALUATE: Final = "paceline.evaluate"
ROLLUP_TICK: Final = "paceline.rollup_tick"
NIGHTLY: Final = "paceline.nightly"
RECOVER_STALLED: Final = "paceline.recover_stalled"
HOUSEKEEPING: Final = "paceline.housekeeping"
DELIVER: Final = "paceline.deliver"
DELIVERIES: Final = "paceline.deliveries"
REMINDERS: Final = "paceline.reminders"


@dataclass(frozen=True)
class Resources:
    """What a worker gives its tasks: a pool of connections, the clinical work's own."""

    pool: ConnectionPool[psycopg.Connection[Any]]
    channels: alerts.Channels
    stalled_after_s: float = DEFAULT_STALLED_AFTER_S
    clock: TimeSource = REAL_TIME
    """What "now" is for evaluations, alerts and delivery retries: the scheduler's clock."""

    @property
    def delivery(self) -> alerts.DeliveryConfig:
        """Which channels deliveries are written for, and how much messages may say."""
        return self.channels.config


def _resources(context: JobContext) -> Resources:
    """The worker's `Resources`, or a `PacingError` when the task runs outside a worker."""
    found = context.additional_context.get(RESOURCES_KEY)
    if not isinstance(found, Resources):
        raise PacingError("paceline tasks run in `paceline worker`, which provides a pool")
    return found


def _instant(text: str) -> datetime:
    """An ISO 8601 instant from a job's arguments, in UTC."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise PacingError(f"job argument {text!r} must carry a time zone")
    return value.astimezone(UTC)


def _for_patient(task: str, queue: str, kind: str, patient_id: int) -> Deferral:
    """A per-patient job under the patient's lock and its own queueing lock."""
    return Deferral(
        task,
        queue,
        {"patient_id": patient_id},
        lock=patient_lock(patient_id),
        queueing_lock=f"{kind}:{patient_id}",
    )


def _delivery(delivery_id: int, at: datetime | None) -> Deferral:
    """A `deliver` job for one delivery, at `at` (or now).

    The lock `delivery:<id>` keeps one attempt at a time; the queueing lock keeps one
    pending job per delivery, so the periodic sweep never doubles a scheduled retry.
    """
    return Deferral(
        DELIVER,
        DELIVER_QUEUE,
        {"delivery_id": delivery_id},
        lock=f"delivery:{delivery_id}",
        queueing_lock=f"deliver:{delivery_id}",
        schedule_at=at,
    )


def defer_evaluations(conn: psycopg.Connection[Any], due: Mapping[int, Sequence[date]]) -> int:
    """List each patient's days as due and defer their `evaluate` jobs, in `conn`'s transaction.

    One insert for the work list and one per `BATCH_SIZE` jobs, however many
    patients; a patient whose evaluation is already pending gets no second job
    (the pending one reads the list when it starts). How many patients had days.
    """
    pairs = [(pid, d) for pid, days in due.items() for d in days]
    records.queue_evaluations(conn, pairs)
    patients = sorted({pid for pid, _ in pairs})
    defer_batch(conn, [_for_patient(EVALUATE, EVALUATE_QUEUE, "evaluate", p) for p in patients])
    return len(patients)


def defer_evaluation(conn: psycopg.Connection[Any], patient_id: int, days: list[date]) -> None:
    """List the patient's `days` as due and defer `evaluate`, in `conn`'s transaction."""
    if days:
        defer_evaluations(conn, {patient_id: days})


def defer_deliveries(
    conn: psycopg.Connection[Any], delivery_ids: Iterable[int], *, at: datetime | None = None
) -> None:
    """Defer one `deliver` job per delivery (at `at`, or now), in `conn`'s transaction."""
    defer_batch(conn, [_delivery(d, at) for d in delivery_ids])


def defer_rollups(conn: psycopg.Connection[Any], patient_ids: Iterable[int]) -> None:
    """Defer `rollup_patient` for each patient, in `conn`'s transaction."""
    defer_batch(
        conn, [_for_patient(ROLLUP_PATIENT, ROLLUP_QUEUE, "rollup", p) for p in patient_ids]
    )


# Per-patient work ------------------------------------------------------------------------


@app.task(name=ROLLUP_PATIENT, queue=ROLLUP_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def rollup_patient(context: JobContext, patient_id: int) -> int:
    """Recompute one patient's days with new samples and defer their evaluation; days done."""
    with _resources(context).pool.connection() as conn:
        result = rollup(conn, patient_id=patient_id, after=defer_evaluation)
    if result.failed:
        raise PacingError(f"the daily metrics of patient {patient_id} could not be computed")
    return result.days


def evaluate_due(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    config: alerts.DeliveryConfig,
    now: datetime | None = None,
) -> list[date]:
    """Evaluate every day listed as due for the patient and raise its alerts; the days done.

    One transaction: the evaluations, their alerts, the `deliver` jobs of the
    deliveries due now and the cleared work list commit together. A day the
    engine refuses (before enrolment, in the future) is logged and cleared; any
    other failure rolls everything back and leaves the list for the job's retry.
    """
    done: list[date] = []
    with conn.transaction():
        due = records.due_evaluations(conn, patient_id)
        for day in sorted({d for _, d in due}):
            at = now or datetime.now(UTC)
            try:
                with conn.transaction():
                    evaluation = evaluate_patient(conn, patient_id, day, now=at)
                    due_now = alerts.raise_alerts(conn, evaluation, now=at, config=config)
                    defer_deliveries(conn, due_now)
            except PacingError as exc:
                logger.error("patient %s day %s not evaluated: %s", patient_id, day, exc)
                continue
            done.append(day)
        records.clear_evaluations(conn, [due_id for due_id, _ in due])
    return done


@app.task(name=EVALUATE, queue=EVALUATE_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def evaluate(context: JobContext, patient_id: int) -> int:
    """Evaluate the patient's due days (the job the rollup and the nightly pass defer)."""
    resources = _resources(context)
    with resources.pool.connection() as conn:
        return len(
            evaluate_due(conn, patient_id, config=resources.delivery, now=resources.clock.now())
        )


def deliver_once(
    conn: psycopg.Connection[Any],
    delivery_id: int,
    *,
    channels: alerts.Channels,
    clock: TimeSource = REAL_TIME,
) -> alerts.DeliveryOutcome:
    """One attempt at a delivery on `clock`'s time, and its retry deferred in the same transaction.

    Whether the delivery is due and when it is retried are decided on `clock`
    (the scheduler's, so `PACELINE_CLOCK_START` moves them with the sweep that
    finds due deliveries); the retry job is scheduled at the real instant at
    which `clock` shows the retry time, since the queue runs on real time. A crash after the channel accepted the message and before this commits
    leaves the delivery pending: the attempt is made again (the documented
    duplicate, with the same Message-ID or webhook-id).
    """
    with conn.transaction():
        outcome = alerts.deliver(conn, delivery_id, channels=channels, now=clock.now())
        if outcome.retry_at is not None:
            defer_deliveries(conn, [delivery_id], at=clock.real(outcome.retry_at))
    return outcome


@app.task(name=DELIVER, queue=DELIVER_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def deliver(context: JobContext, delivery_id: int) -> str:
    """Deliver one alert on one channel to one recipient; the delivery's status after."""
    resources = _resources(context)
    with resources.pool.connection() as conn:
        outcome = deliver_once(
            conn, delivery_id, channels=resources.channels, clock=resources.clock
        )
    return outcome.status


# Periodic fan-outs -----------------------------------------------------------------------


@app.task(name=ROLLUP_TICK, queue=CLOCK_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def rollup_tick(context: JobContext, since: str, until: str) -> int:
    """Defer one `rollup_patient` per patient with new samples; how many patients.

    Also defers the evaluation of every positive red-flag screen no evaluation
    has read yet, so its critical alert goes out within one tick, not at night.
    """
    with _resources(context).pool.connection() as conn, conn.transaction():
        patients = records.patients_with_new_samples(conn)
        defer_rollups(conn, patients)
        defer_red_flag_evaluations(conn)
    return len(patients)


def defer_red_flag_evaluations(conn: psycopg.Connection[Any]) -> int:
    """List the day of each positive red-flag screen not yet evaluated as due; how many patients."""
    by_patient: dict[int, list[date]] = {}
    for patient_id, day in records.unevaluated_red_flags(conn):
        by_patient.setdefault(patient_id, []).append(day)
    return defer_evaluations(conn, by_patient)


def nightly_instant(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of local `NIGHTLY_AT` on `day`.

    One instant per local day, increasing from day to day: across a DST change
    the wall time keeps its meaning (01:00 is 01:00 whatever the offset), and a
    wall time that falls in a gap or a fold resolves as PEP 495 says (`fold=0`:
    the offset before the change).
    """
    return datetime.combine(day, NIGHTLY_AT, tzinfo=tz).astimezone(UTC)


def nightly_days(since: datetime, until: datetime, tz: ZoneInfo) -> Iterator[date]:
    """The local days whose nightly instant lies in `(since, until]`, in order."""
    day = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        if since < nightly_instant(day, tz) <= until:
            yield day
        day += timedelta(days=1)


def nightly_pass(conn: psycopg.Connection[Any], since: datetime, until: datetime) -> int:
    """List, for every patient whose nightly time fell in `(since, until]`, the day that ended."""
    zones: dict[str, ZoneInfo] = {}
    due: dict[int, list[date]] = {}
    with conn.transaction():
        for p in records.enrolled_patients(conn, until):
            try:
                tz = zones.get(p.timezone) or zones.setdefault(p.timezone, ZoneInfo(p.timezone))
            except (ZoneInfoNotFoundError, ValueError):
                logger.error("patient %s has an unknown time zone %r", p.patient_id, p.timezone)
                continue
            enrolled = p.enrolled_at.astimezone(tz).date()
            days = [
                d - timedelta(days=1)
                for d in nightly_days(since, until, tz)
                if d - timedelta(days=1) >= enrolled
            ]
            if days:
                due[p.patient_id] = days
        return defer_evaluations(conn, due)


@app.task(name=NIGHTLY, queue=CLOCK_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def nightly(context: JobContext, since: str, until: str) -> int:
    """The nightly pass for the slots `(since, until]`; how many patients it queued."""
    with _resources(context).pool.connection() as conn:
        return nightly_pass(conn, _instant(since), _instant(until))


@app.task(name=RECOVER_STALLED, queue=CLOCK_QUEUE, pass_context=True)
async def recover_stalled(context: JobContext, since: str, until: str) -> int:
    """Put back the running jobs of workers that stopped sending heartbeats; how many."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=_resources(context).stalled_after_s
    )
    count = 0
    for job in stalled:
        assert job.id is not None  # jobs read from the queue have ids
        try:
            await manager.retry_job(job)
        except queue_errors.UniqueViolation:
            # Another job with its queueing lock was deferred while it hung (the rollup,
            # the nightly pass or the delivery sweep asked again): that one does the
            # work, which the dead job's rolled-back transaction left in place. Ending
            # the dead one frees the patient's lock for it.
            logger.warning(
                "job %s (%s) lost its worker and a newer one waits with its queueing lock"
                " %s; ending it as failed",
                job.id,
                job.task_name,
                job.queueing_lock,
            )
            await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
        else:
            logger.warning("job %s (%s) lost its worker; put back", job.id, job.task_name)
        count += 1
    return count


@app.task(name=HOUSEKEEPING, queue=CLOCK_QUEUE, pass_context=True)
async def housekeeping(context: JobContext, since: str, until: str) -> None:
    """Delete jobs that succeeded more than `KEEP_SUCCEEDED_H` hours ago."""
    await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_SUCCEEDED_H)


@app.task(name=DELIVERIES, queue=CLOCK_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def deliveries(context: JobContext, since: str, until: str) -> int:
    """Defer `deliver` for every delivery and digest due by `until`; how many."""
    with _resources(context).pool.connection() as conn, conn.transaction():
        now = _instant(until)
        due = alerts.due_deliveries(conn, now) + alerts.due_digests(conn, now)
        defer_deliveries(conn, due)
    return len(due)


@app.task(name=REMINDERS, queue=CLOCK_QUEUE, pass_context=True, retry=_RETRY_ON_OUTAGE)
def reminders(context: JobContext, since: str, until: str) -> int:
    """Open the diary and questionnaire reminders due by `until`, defer their deliveries; how many."""
    resources = _resources(context)
    with resources.pool.connection() as conn, conn.transaction():
        due = alerts.due_reminders(conn, _instant(until), config=resources.delivery)
        due += alerts.due_questionnaire_reminders(conn, _instant(until), config=resources.delivery)
        defer_deliveries(conn, due)
    return len(due)
