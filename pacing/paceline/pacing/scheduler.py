"""The scheduler service: one leader runs the rollup and the evaluations, standbys wait.

Leader election uses a PostgreSQL session advisory lock (`LEADER_LOCK_KEY`) held
on a connection of its own. An instance that gets the lock runs two jobs:

- the daily-metrics rollup (`paceline.pacing.rollup.rollup`) every `rollup_every`;
- an evaluation pass (`evaluate_patients`) every `evaluate_every`: every enrolled
  patient, for yesterday and today in the patient's own time zone.

Every `standby_poll_s` a standby tries the lock again, and the leader checks
with `SELECT 1` that its lock connection is still alive (it checks again before
each job run). A leader whose lock connection fails steps down at once: it
removes its jobs, drops the connection and waits `rejoin_delay_s` before
competing again, so a healthy standby gets the first chance. The server releases
the lock when it notices the session is gone; only then can a standby win it.

Handing over can let one last run of the old leader overlap the first run of
the new one. That is harmless by construction: the rollup serialises itself
with its own transaction-level advisory lock and `evaluate_patient` with a
per-patient one, and both are idempotent.

A failing job (the database away, say) is logged and runs again at its next
tick; a patient whose evaluation fails is logged and skipped, the others go on.
The lock must live in a real server session: behind PgBouncer in transaction
mode, point the scheduler at the server (or a session-mode pool) directly.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from paceline.pacing.engine import Evaluation, evaluate_patient
from paceline.pacing.errors import PacingError
from paceline.pacing.rollup import RollupResult, rollup
from paceline.store.connection import connect
from paceline.store.errors import StoreError

logger = logging.getLogger(__name__)

#: `pg_try_advisory_lock` key of the leader: the ASCII of "schd". It lives in the
#: single-bigint key space, apart from the engine's two-key per-patient locks, and
#: differs from the rollup's ("roll") and the migrations' ("pace") keys.
LEADER_LOCK_KEY: Final = 0x73636864

DEFAULT_ROLLUP_EVERY: Final = timedelta(minutes=5)
DEFAULT_EVALUATE_EVERY: Final = timedelta(hours=1)
#: How long a leader may be gone before a standby takes over; tiny next to the jobs'
#: five-minute and hourly intervals, and cheap (one query per poll).
DEFAULT_STANDBY_POLL_S: Final = 10.0
#: How many polls an instance that just lost its lock connection sits out: the
#: instance that lost its connection is the likelier one to be unhealthy.
REJOIN_POLLS: Final = 3
#: How long `stop()` lets running jobs finish before it cancels their queries.
DEFAULT_STOP_TIMEOUT_S: Final = 10.0
#: How long `stop()` waits for the server to confirm a cancellation, and then for
#: the cancelled job to return.
CANCEL_GRACE_S: Final = 2.0
#: TCP keepalive of the lock connection: a leader behind a dead network must notice
#: (and the server must drop its session, releasing the lock) within about 20 s,
#: rather than after the kernel's two-hour default.
LOCK_KEEPALIVE: Final[dict[str, int]] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
_APPLICATION_NAME_MAX = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)

_instances = itertools.count(1)


class SchedulerError(PacingError):
    """A scheduler setting or lifecycle call that cannot be honoured."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class PatientDay:
    """One patient-day the evaluation pass evaluated."""

    patient_id: int
    day: date


@dataclass(frozen=True)
class PatientFailure:
    """One patient (and day, when known) whose evaluation failed, with the error."""

    patient_id: int
    day: date | None
    error: str


@dataclass(frozen=True)
class EvaluationReport:
    """What one evaluation pass over every enrolled patient did."""

    patients: int
    days: tuple[PatientDay, ...]
    active_flags: int
    plan_changes: int
    failures: tuple[PatientFailure, ...]
    complete: bool

    @property
    def evaluated(self) -> int:
        """How many patient-days were evaluated."""
        return len(self.days)


@dataclass(frozen=True)
class JobReport:
    """What one rollup and one evaluation pass did (`run_jobs_once`)."""

    rollup: RollupResult | None
    rollup_error: str | None
    evaluation: EvaluationReport

    @property
    def ok(self) -> bool:
        """Whether the rollup and every patient's evaluation succeeded."""
        return self.rollup_error is None and not self.evaluation.failures

    def summary(self) -> str:
        """One line for an operator."""
        if self.rollup is not None:
            r = self.rollup
            rolled = (
                f"rollup: {r.days} patient-day(s) of {r.patients} patient(s)"
                f" from {r.rows_read:,} sample rows"
            )
        else:
            rolled = f"rollup failed: {self.rollup_error}"
        e = self.evaluation
        return (
            f"{rolled}; evaluation: {e.evaluated} patient-day(s) of {e.patients} patient(s),"
            f" {e.active_flags} active flag(s), {e.plan_changes} plan change(s),"
            f" {len(e.failures)} failure(s)"
        )


@dataclass(frozen=True)
class JobStats:
    """How often one of the leader's jobs ran and failed on this instance."""

    runs: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class SchedulerStatus:
    """A snapshot of one scheduler instance."""

    name: str
    leader: bool
    stopped: bool
    lock_attempts: int = 0
    leaderships: int = 0
    step_downs: int = 0
    rollup: JobStats = field(default_factory=JobStats)
    evaluation: JobStats = field(default_factory=JobStats)
    last_rollup: RollupResult | None = None
    last_evaluation: EvaluationReport | None = None


def _describe(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _finish(conn: psycopg.Connection[Any], *, commit: bool) -> None:
    """End the caller's implicit transaction on a non-autocommit connection."""
    if conn.autocommit or conn.closed:
        return
    if commit:
        conn.commit()
    else:
        conn.rollback()


def _always() -> bool:
    """Never interrupt (the default of `keep_going`)."""
    return True


def evaluate_patients(
    conn: psycopg.Connection[Any],
    now: datetime,
    *,
    keep_going: Callable[[], bool] = _always,
) -> EvaluationReport:
    """Evaluate every patient enrolled by `now` for yesterday and today in their own time zone."""
    if now.tzinfo is None:
        raise SchedulerError(f"now must carry a time zone; got {now.isoformat()}")
    patients = conn.execute(
        "SELECT patient_id, timezone, enrolled_at FROM patient"
        " WHERE enrolled_at <= %s ORDER BY patient_id",
        (now,),
    ).fetchall()
    _finish(conn, commit=True)
    done: list[PatientDay] = []
    failures: list[PatientFailure] = []
    active = changes = 0
    complete = True
    for patient_id, tz_name, enrolled_at in patients:
        if not keep_going():
            complete = False
            logger.info("evaluation pass interrupted before patient %s", patient_id)
            break
        day: date | None = None
        try:
            tz = ZoneInfo(tz_name)
            today = now.astimezone(tz).date()
            enrolled = enrolled_at.astimezone(tz).date()
            for day in (today - timedelta(days=1), today):
                if day < enrolled:
                    continue
                result: Evaluation = evaluate_patient(conn, patient_id, day)
                _finish(conn, commit=True)
                done.append(PatientDay(patient_id, day))
                active += len(result.active_flags)
                changes += len(result.plan_changes)
        except Exception as exc:
            if conn.broken:
                raise  # the database is gone: the whole pass fails and runs again next tick
            _finish(conn, commit=False)
            logger.exception(
                "evaluation of patient %s (day %s) failed; the other patients go on",
                patient_id,
                day,
            )
            failures.append(PatientFailure(patient_id, day, _describe(exc)))
    report = EvaluationReport(
        patients=len(patients),
        days=tuple(done),
        active_flags=active,
        plan_changes=changes,
        failures=tuple(failures),
        complete=complete,
    )
    logger.info(
        "evaluation: %d patient-day(s) of %d patient(s), %d failure(s)",
        report.evaluated,
        report.patients,
        len(report.failures),
    )
    return report


def run_jobs_once(conn: psycopg.Connection[Any], now: datetime) -> JobReport:
    """Run one rollup and then one evaluation pass at `now` (what the leader's jobs do)."""
    result: RollupResult | None = None
    error: str | None = None
    try:
        result = rollup(conn)
        _finish(conn, commit=True)
    except Exception as exc:
        if conn.broken:
            raise
        _finish(conn, commit=False)
        # Evaluations still run: they read whatever metrics exist and are redone next time.
        logger.exception("daily-metrics rollup failed; evaluating with the metrics stored so far")
        error = _describe(exc)
    return JobReport(rollup=result, rollup_error=error, evaluation=evaluate_patients(conn, now))


def _utc_now() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)


def _positive(name: str, seconds: float) -> float:
    """`seconds`, or `SchedulerError` naming the setting unless it is greater than zero."""
    if not seconds > 0:
        raise SchedulerError(f"{name} must be greater than zero; got {seconds!r} s")
    return seconds


class Scheduler:
    """One instance of the service: competes for leadership and, while leader, runs the jobs."""

    # APScheduler's BackgroundScheduler, not AsyncIOScheduler: the jobs are blocking
    # psycopg calls and numpy work and nothing else in the process runs an event loop,
    # so a thread pool runs them as they are while the main thread stays free to wait
    # for SIGTERM. Each job has max_instances=1 and coalesce=True: a slow run is never
    # overlapped by the next one, and a backlog of missed ticks runs once. Each run opens
    # a fresh connection, so a job recovers by itself once a lost database is back.
    # Subclasses may override `rollup_pass` and `evaluation_pass` (tests script
    # failures that way).

    def __init__(
        self,
        dsn: str,
        *,
        rollup_every: timedelta = DEFAULT_ROLLUP_EVERY,
        evaluate_every: timedelta = DEFAULT_EVALUATE_EVERY,
        standby_poll_s: float = DEFAULT_STANDBY_POLL_S,
        rejoin_delay_s: float | None = None,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        lock_key: int = LEADER_LOCK_KEY,
        clock: Callable[[], datetime] = _utc_now,
        name: str | None = None,
    ) -> None:
        self._dsn = dsn
        self._rollup_s = _positive("rollup_every", rollup_every.total_seconds())
        self._evaluate_s = _positive("evaluate_every", evaluate_every.total_seconds())
        self._poll_s = _positive("standby_poll_s", standby_poll_s)
        self._rejoin_s = (
            REJOIN_POLLS * self._poll_s if rejoin_delay_s is None else max(0.0, rejoin_delay_s)
        )
        self._stop_timeout_s = max(0.0, stop_timeout_s)
        self._lock_key = lock_key
        self._clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{next(_instances)}"
        # `_state` guards every field below; `_lock_io` serialises use of the lock connection.
        self._state = threading.Condition()
        self._lock_io = threading.Lock()
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._job_conns: set[psycopg.Connection[Any]] = set()
        self._in_flight = 0
        self._started = False
        self._rejoin_at = 0.0
        self._unreachable = False
        self._announced_standby = False
        self._status = SchedulerStatus(name=self.name, leader=False, stopped=False)
        self._aps: Any = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            timezone=UTC,
        )

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start competing for leadership in the background (returns at once)."""
        with self._state:
            if self._status.stopped:
                raise SchedulerError("a stopped scheduler cannot start again; create a new one")
            if self._started:
                return
            self._started = True
        self._aps.add_job(
            self._tick,
            "interval",
            seconds=self._poll_s,
            id="leadership",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        self._aps.start()
        logger.info(
            "scheduler %s started: lock %#x, polling every %g s",
            self.name,
            self._lock_key,
            self._poll_s,
        )

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the jobs, let running ones finish (cancelled after `timeout_s`), release the lock."""
        # Bounded whatever the jobs or the network do: about `timeout_s` plus a few
        # `CANCEL_GRACE_S` for cancelling stuck queries and closing the lock connection.
        budget = self._stop_timeout_s if timeout_s is None else max(0.0, timeout_s)
        deadline = time.monotonic() + budget
        with self._state:
            if self._status.stopped:
                return
            was_leader = self._status.leader
            self._set(leader=False, stopped=True)
        if self._aps.running:
            self._aps.shutdown(wait=False)
        with self._state:
            idle = self._state.wait_for(
                lambda: self._in_flight == 0, timeout=max(0.0, deadline - time.monotonic())
            )
            running = list(self._job_conns)
        if not idle:
            logger.warning(
                "scheduler %s: %d job(s) still running after %g s; cancelling their queries",
                self.name,
                len(running),
                budget,
            )
            for conn in running:
                try:
                    conn.cancel_safe(timeout=CANCEL_GRACE_S)
                except Exception:
                    logger.warning("could not cancel a running job's query", exc_info=True)
            with self._state:
                self._state.wait_for(lambda: self._in_flight == 0, timeout=CANCEL_GRACE_S)
        self._drop_lock_connection(unlock=True)
        if was_leader:
            logger.info("scheduler %s stopped and released the leader lock", self.name)
        else:
            logger.info("scheduler %s stopped", self.name)

    def __enter__(self) -> Scheduler:
        """Start; `stop()` on leaving the block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop (bounded in time)."""
        self.stop()

    # What tests and operators look at --------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this instance holds the leader lock and runs the jobs."""
        with self._state:
            return self._status.leader

    @property
    def lock_backend_pid(self) -> int | None:
        """The server process id of the lock connection (leader or standby), if connected."""
        conn = self._lock_conn
        if conn is None or conn.closed:
            return None
        return int(conn.info.backend_pid)

    def status(self) -> SchedulerStatus:
        """A snapshot of this instance's role, job counters and last results."""
        with self._state:
            return self._status

    def wait_for(self, predicate: Callable[[SchedulerStatus], bool], timeout_s: float) -> bool:
        """Block until `predicate(status)` holds (True) or `timeout_s` passes (False)."""
        with self._state:
            return self._state.wait_for(lambda: predicate(self._status), timeout=timeout_s)

    # The jobs (overridable) ------------------------------------------------------------

    def rollup_pass(self, conn: psycopg.Connection[Any]) -> RollupResult:
        """One incremental daily-metrics rollup."""
        return rollup(conn)

    def evaluation_pass(self, conn: psycopg.Connection[Any], now: datetime) -> EvaluationReport:
        """One evaluation pass; it stops early if this instance steps down or stops."""
        return evaluate_patients(conn, now, keep_going=self._leading)

    # Internals -------------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        """Replace fields of the status snapshot and wake waiters (caller holds `_state`)."""
        self._status = replace(self._status, **changes)
        self._state.notify_all()

    def _leading(self) -> bool:
        """Whether this instance is the leader and not stopping."""
        with self._state:
            return self._status.leader and not self._status.stopped

    def _tick(self) -> None:
        """Leadership heartbeat: a leader checks its lock connection, a standby tries the lock."""
        with self._state:
            if self._status.stopped:
                return
            self._in_flight += 1  # so that `stop()` waits for a tick that is connecting
        try:
            if self._leading():
                self._confirm_leadership()
            else:
                self._try_to_lead()
        except Exception:
            # Never let the heartbeat die: the next poll tries again.
            logger.exception("scheduler %s: leadership check failed", self.name)
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()

    def _confirm_leadership(self) -> bool:
        """`SELECT 1` on the lock connection; step down if it fails."""
        conn = self._lock_conn
        try:
            if conn is None:
                raise psycopg.OperationalError("no lock connection")
            with self._lock_io:
                conn.execute("SELECT 1")
        except psycopg.Error:
            logger.warning(
                "scheduler %s lost its lock connection; stepping down", self.name, exc_info=True
            )
            self._step_down()
            return False
        return self._leading()

    def _step_down(self) -> None:
        """Stop leading: remove the jobs, drop the lock connection, sit out `rejoin_delay_s`."""
        with self._state:
            if not self._status.leader:
                return
            self._rejoin_at = time.monotonic() + self._rejoin_s
            self._set(leader=False, step_downs=self._status.step_downs + 1)
        for job_id in ("rollup", "evaluate"):
            with contextlib.suppress(JobLookupError):
                self._aps.remove_job(job_id)
        self._drop_lock_connection()

    def _try_to_lead(self) -> None:
        """Try the lock (connecting first if needed); on success schedule the jobs."""
        with self._state:
            if self._status.stopped or time.monotonic() < self._rejoin_at:
                return
            self._set(lock_attempts=self._status.lock_attempts + 1)
        conn = self._lock_conn
        if conn is None or conn.closed:
            try:
                conn = connect(
                    self._dsn,
                    autocommit=True,
                    application_name=f"paceline-scheduler {self.name}"[:_APPLICATION_NAME_MAX],
                    **LOCK_KEEPALIVE,
                )
            except (psycopg.Error, StoreError) as exc:
                if not self._unreachable:
                    logger.warning(
                        "scheduler %s cannot reach the database (%s); retrying every %g s",
                        self.name,
                        exc,
                        self._poll_s,
                    )
                self._unreachable = True
                return
            self._unreachable = False
            with self._state:
                # `stop()` may have run while this tick was connecting.
                stopped = self._status.stopped
                if not stopped:
                    self._lock_conn = conn
            if stopped:
                conn.close()
                return
        try:
            with self._lock_io:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
        except psycopg.Error:
            logger.warning("scheduler %s: lock attempt failed", self.name, exc_info=True)
            self._drop_lock_connection()
            return
        if not (row and row[0]):
            if not self._announced_standby:
                logger.info(
                    "scheduler %s is a standby: another instance holds lock %#x",
                    self.name,
                    self._lock_key,
                )
                self._announced_standby = True
            return
        self._announced_standby = False
        with self._state:
            if self._status.stopped:
                won = False
            else:
                won = True
                self._set(leader=True, leaderships=self._status.leaderships + 1)
        if not won:
            self._drop_lock_connection(unlock=True)
            return
        logger.info(
            "scheduler %s is the leader (lock %#x, backend %s)",
            self.name,
            self._lock_key,
            conn.info.backend_pid,
        )
        now = datetime.now(UTC)
        for job_id, func, every_s in (
            ("rollup", self._run_rollup, self._rollup_s),
            ("evaluate", self._run_evaluation, self._evaluate_s),
        ):
            # A new leader runs both jobs at once: it may be taking over from one that died
            # with work queued, and both jobs are idempotent.
            self._aps.add_job(
                func,
                "interval",
                seconds=every_s,
                id=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(every_s)),
                next_run_time=now,
                replace_existing=True,
            )

    def _drop_lock_connection(self, *, unlock: bool = False) -> None:
        """Close the lock connection, unlocking first if asked and the connection is usable."""
        # Closing the session releases the lock too, but only once the server has processed
        # the disconnection; the explicit unlock makes the release visible before `stop()`
        # returns. It is skipped when a heartbeat stuck on a dead network holds `_lock_io`:
        # closing the socket is then what unblocks that heartbeat.
        with self._state:
            conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        got = self._lock_io.acquire(timeout=CANCEL_GRACE_S)
        try:
            if got and unlock and not conn.closed:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
                except psycopg.Error:
                    logger.debug("unlock before closing failed", exc_info=True)
            conn.close()
        finally:
            if got:
                self._lock_io.release()

    def _run_job(self, job: str, body: Callable[[psycopg.Connection[Any]], object]) -> None:
        """Run one job body on a fresh connection if still leader; log and count a failure."""
        with self._state:
            if not (self._status.leader and not self._status.stopped):
                return
            self._in_flight += 1
        ran = False
        error: str | None = None
        result: object = None
        try:
            if not self._confirm_leadership():
                return
            ran = True
            with connect(self._dsn, autocommit=True) as conn:
                with self._state:
                    self._job_conns.add(conn)
                try:
                    result = body(conn)
                finally:
                    with self._state:
                        self._job_conns.discard(conn)
        except Exception as exc:
            error = _describe(exc)
            logger.warning(
                "scheduler %s: %s job failed; it runs again at its next tick",
                self.name,
                job,
                exc_info=True,
            )
        finally:
            with self._state:
                self._in_flight -= 1
                if ran:
                    old: JobStats = getattr(self._status, job)
                    new = JobStats(
                        runs=old.runs + 1,
                        failures=old.failures + (error is not None),
                        last_error=error if error is not None else old.last_error,
                    )
                    changes: dict[str, object] = {job: new}
                    if error is None:
                        changes[f"last_{job}"] = result
                    self._set(**changes)
                else:
                    self._state.notify_all()

    def _run_rollup(self) -> None:
        """The rollup job."""
        self._run_job("rollup", self.rollup_pass)

    def _run_evaluation(self) -> None:
        """The evaluation job."""
        self._run_job("evaluation", lambda conn: self.evaluation_pass(conn, self._clock()))
