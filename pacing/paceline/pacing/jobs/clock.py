"""The clock: one leader defers the periodic jobs onto the queue; it does no clinical work.

Each periodic job (`Periodic`) has slots at whole multiples of its interval
since the epoch. When a slot comes, the leader claims it in `clock_slot` and,
in the same transaction, defers the job's task with the window
`(previous slot, this slot]`. So:

- two instances that both believe they lead (a handover) never defer a slot
  twice: the claim is a row lock and a comparison;
- a clock that was down (six hours, say) defers, when it comes back, one
  catch-up job per periodic job covering everything it missed: each missed job
  runs once, never zero times and never once per missed slot. The nightly pass
  then evaluates each patient whose local nightly time fell in the gap once;
- APScheduler only says *when* to look; a missed or coalesced firing loses
  nothing, because what is due is computed from the database, not from memory.

Leadership (`paceline.pacing.jobs.leader`): every `standby_poll_s` a standby
tries the advisory lock and the leader checks with `SELECT 1` that its lock
connection lives (and again before each deferral). A leader whose lock
connection fails steps down at once: it removes its jobs, drops the connection
and sits out `rejoin_delay_s` so a healthy standby gets the first chance.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from paceline.pacing import records
from paceline.pacing.errors import PacingError
from paceline.pacing.jobs import tasks
from paceline.pacing.jobs.leader import LEADER_LOCK_KEY, LeaderLock
from paceline.pacing.jobs.queue import CLOCK_QUEUE, JobsError, defer
from paceline.pacing.jobs.timesource import REAL_TIME
from paceline.store.connection import connect
from paceline.store.errors import StoreError

logger = logging.getLogger(__name__)

DEFAULT_ROLLUP_EVERY: Final = timedelta(minutes=5)
#: The nightly pass looks for patients whose local nightly time has come this often;
#: a quarter of an hour also catches the zones at :30 and :45 offsets promptly.
DEFAULT_NIGHTLY_EVERY: Final = timedelta(minutes=15)
#: How often jobs of dead workers are looked for (they are put back after
#: `tasks.DEFAULT_STALLED_AFTER_S` without a heartbeat).
DEFAULT_RECOVER_EVERY: Final = timedelta(minutes=1)
#: How often due deliveries (held by quiet hours, retries, digests) are looked for.
DEFAULT_DELIVERIES_EVERY: Final = timedelta(minutes=1)
#: How often diary reminders are looked for (patients choose their local time).
DEFAULT_REMINDERS_EVERY: Final = timedelta(minutes=15)
#: How often old succeeded jobs are deleted.
HOUSEKEEPING_EVERY: Final = timedelta(days=1)
#: How long a leader may be gone before a standby takes over; tiny next to the jobs'
#: intervals, and cheap (one query per poll).
DEFAULT_STANDBY_POLL_S: Final = 10.0
#: How many polls an instance that just lost its lock connection sits out: the
#: instance that lost its connection is the likelier one to be unhealthy.
REJOIN_POLLS: Final = 3
#: How long `stop()` lets a running deferral finish before it cancels its query.
DEFAULT_STOP_TIMEOUT_S: Final = 10.0
#: How long `stop()` waits for the server to confirm a cancellation.
CANCEL_GRACE_S: Final = 2.0
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_instances = itertools.count(1)


class ClockError(JobsError):
    """A clock setting or lifecycle call that cannot be honoured."""


@dataclass(frozen=True)
class Periodic:
    """One periodic job: its `clock_slot` name, the task it defers and its interval."""

    name: str
    task: str
    every: timedelta

    def slot(self, now: datetime) -> datetime:
        """The latest slot at or before `now` (whole multiples of `every` since the epoch)."""
        step = self.every // timedelta(microseconds=1)
        elapsed = (now - _EPOCH) // timedelta(microseconds=1)
        return _EPOCH + timedelta(microseconds=elapsed - elapsed % step)


def default_periodic(
    *,
    rollup_every: timedelta = DEFAULT_ROLLUP_EVERY,
    nightly_every: timedelta = DEFAULT_NIGHTLY_EVERY,
    recover_every: timedelta = DEFAULT_RECOVER_EVERY,
) -> tuple[Periodic, ...]:
    """The periodic jobs of a Paceline deployment."""
    return (
        Periodic("rollup", tasks.ROLLUP_TICK, _positive("rollup_every", rollup_every)),
        Periodic("nightly", tasks.NIGHTLY, _positive("nightly_every", nightly_every)),
        Periodic("recover", tasks.RECOVER_STALLED, _positive("recover_every", recover_every)),
        Periodic("deliveries", tasks.DELIVERIES, DEFAULT_DELIVERIES_EVERY),
        Periodic("reminders", tasks.REMINDERS, DEFAULT_REMINDERS_EVERY),
        Periodic("housekeeping", tasks.HOUSEKEEPING, HOUSEKEEPING_EVERY),
    )


@dataclass(frozen=True)
class Deferred:
    """One periodic job the clock deferred: which, for which window, as which queue job."""

    job: str
    since: datetime
    until: datetime
    job_id: int | None


def defer_due(
    conn: psycopg.Connection[Any], periodic: Sequence[Periodic], now: datetime
) -> list[Deferred]:
    """Claim each job's latest slot at `now` and defer it, each in its own transaction."""
    if now.tzinfo is None:
        raise ClockError(f"now must carry a time zone; got {now.isoformat()}")
    out = []
    for p in periodic:
        until = p.slot(now)
        with conn.transaction():
            since = records.claim_slot(conn, p.name, until, first_since=until - p.every)
            if since is None:
                continue
            job_id = defer(
                conn, p.task, queue=CLOCK_QUEUE, since=since.isoformat(), until=until.isoformat()
            )
        out.append(Deferred(p.name, since, until, job_id))
        logger.info("deferred %s for (%s, %s] as job %s", p.name, since, until, job_id)
    return out


@dataclass(frozen=True)
class ClockStatus:
    """A snapshot of one clock instance."""

    name: str
    leader: bool
    stopped: bool
    lock_attempts: int = 0
    leaderships: int = 0
    step_downs: int = 0
    deferred: int = 0
    failures: int = 0
    last_error: str | None = None
    last_deferred: tuple[Deferred, ...] = field(default_factory=tuple)


def _describe(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _positive(name: str, value: timedelta) -> timedelta:
    """`value`, or `ClockError` naming the setting unless it is longer than zero."""
    if not value > timedelta(0):
        raise ClockError(f"{name} must be greater than zero; got {value}")
    return value


class Clock:
    """One instance of the clock: competes for leadership and, while leader, defers periodic jobs."""

    # APScheduler's BackgroundScheduler: the deferrals are short blocking psycopg calls,
    # and the main thread stays free to wait for SIGTERM. Each job has max_instances=1
    # and coalesce=True; what a firing defers is computed from `clock_slot`, so a
    # missed firing loses nothing. Each firing opens a fresh connection, so the clock
    # recovers by itself once a lost database is back.

    def __init__(
        self,
        dsn: str,
        *,
        periodic: Sequence[Periodic] | None = None,
        standby_poll_s: float = DEFAULT_STANDBY_POLL_S,
        rejoin_delay_s: float | None = None,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        lock_key: int = LEADER_LOCK_KEY,
        now: Callable[[], datetime] = REAL_TIME,
        name: str | None = None,
    ) -> None:
        self._dsn = dsn
        self._periodic = tuple(default_periodic() if periodic is None else periodic)
        if not standby_poll_s > 0:
            raise ClockError(f"standby_poll_s must be greater than zero; got {standby_poll_s!r} s")
        self._poll_s = standby_poll_s
        self._rejoin_s = (
            REJOIN_POLLS * self._poll_s if rejoin_delay_s is None else max(0.0, rejoin_delay_s)
        )
        self._stop_timeout_s = max(0.0, stop_timeout_s)
        self._now = now
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{next(_instances)}"
        self._lock = LeaderLock(dsn, key=lock_key, name=self.name)
        # `_state` guards every field below.
        self._state = threading.Condition()
        self._job_conns: set[psycopg.Connection[Any]] = set()
        self._in_flight = 0
        self._started = False
        self._rejoin_at = 0.0
        self._unreachable = False
        self._announced_standby = False
        self._status = ClockStatus(name=self.name, leader=False, stopped=False)
        self._aps: Any = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            timezone=UTC,
        )

    @property
    def periodic(self) -> tuple[Periodic, ...]:
        """The periodic jobs this clock defers."""
        return self._periodic

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start competing for leadership in the background (returns at once)."""
        with self._state:
            if self._status.stopped:
                raise ClockError("a stopped clock cannot start again; create a new one")
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
            "clock %s started: lock %#x, polling every %g s",
            self.name,
            self._lock.key,
            self._poll_s,
        )

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop deferring, let a running deferral finish (cancelled after `timeout_s`), unlock."""
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
                "clock %s: %d deferral(s) still running after %g s; cancelling their queries",
                self.name,
                len(running),
                budget,
            )
            for conn in running:
                try:
                    conn.cancel_safe(timeout=CANCEL_GRACE_S)
                except psycopg.Error:
                    logger.warning("could not cancel a running deferral's query", exc_info=True)
            with self._state:
                self._state.wait_for(lambda: self._in_flight == 0, timeout=CANCEL_GRACE_S)
        self._lock.release(unlock=True, final=True)
        if was_leader:
            logger.info("clock %s stopped and released the leader lock", self.name)
        else:
            logger.info("clock %s stopped", self.name)

    def __enter__(self) -> Clock:
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
        """Whether this instance holds the leader lock and defers the periodic jobs."""
        with self._state:
            return self._status.leader

    @property
    def lock_backend_pid(self) -> int | None:
        """The server process id of the lock connection (leader or standby), if connected."""
        return self._lock.backend_pid

    def status(self) -> ClockStatus:
        """A snapshot of this instance's role and counters."""
        with self._state:
            return self._status

    def wait_for(self, predicate: Callable[[ClockStatus], bool], timeout_s: float) -> bool:
        """Block until `predicate(status)` holds (True) or `timeout_s` passes (False)."""
        with self._state:
            return self._state.wait_for(lambda: predicate(self._status), timeout=timeout_s)

    def defer_pass(
        self, conn: psycopg.Connection[Any], periodic: Periodic, now: datetime
    ) -> list[Deferred]:
        """Defer `periodic` if its slot at `now` is due (overridable: tests script failures)."""
        return defer_due(conn, [periodic], now)

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
            logger.exception("clock %s: leadership check failed", self.name)
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()

    def _confirm_leadership(self) -> bool:
        """`SELECT 1` on the lock connection; step down if it fails."""
        if not self._lock.confirm():
            logger.warning("clock %s lost its lock connection; stepping down", self.name)
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
        for p in self._periodic:
            with contextlib.suppress(JobLookupError):
                self._aps.remove_job(p.name)
        self._lock.release()

    def _try_to_lead(self) -> None:
        """Try the lock; on success schedule the periodic jobs and defer what is due now."""
        with self._state:
            if self._status.stopped or time.monotonic() < self._rejoin_at:
                return
            self._set(lock_attempts=self._status.lock_attempts + 1)
        try:
            won = self._lock.try_acquire()
        except (psycopg.Error, StoreError) as exc:
            if not self._unreachable:
                logger.warning(
                    "clock %s cannot reach the database (%s); retrying every %g s",
                    self.name,
                    exc,
                    self._poll_s,
                )
            self._unreachable = True
            return
        self._unreachable = False
        if not won:
            if not self._announced_standby:
                foreign = self._lock.foreign_holder()
                logger.log(
                    logging.WARNING if foreign else logging.INFO,
                    "clock %s is a standby: %s holds lock %#x",
                    self.name,
                    f"{foreign.describe()}, not a Paceline clock,"
                    if foreign
                    else "another instance",
                    self._lock.key,
                )
                self._announced_standby = True
            return
        self._announced_standby = False
        with self._state:
            stopped = self._status.stopped
            if not stopped:
                self._set(leader=True, leaderships=self._status.leaderships + 1)
        if stopped:
            self._lock.release(unlock=True)
            return
        logger.info(
            "clock %s is the leader (lock %#x, backend %s)",
            self.name,
            self._lock.key,
            self._lock.backend_pid,
        )
        now = datetime.now(UTC)
        for p in self._periodic:
            # A new leader looks at once: the slots it (or its predecessor) missed are due.
            self._aps.add_job(
                self._run,
                "interval",
                args=(p,),
                seconds=p.every.total_seconds(),
                start_date=_EPOCH,  # firings at the slots themselves
                id=p.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
                replace_existing=True,
            )

    def _run(self, periodic: Periodic) -> None:
        """Defer `periodic` if its slot is due, on a fresh connection, if still leader."""
        with self._state:
            if not (self._status.leader and not self._status.stopped):
                return
            self._in_flight += 1
        error: str | None = None
        done: list[Deferred] = []
        try:
            if not self._confirm_leadership():
                return
            with connect(self._dsn, autocommit=True) as conn:
                with self._state:
                    self._job_conns.add(conn)
                try:
                    done = self.defer_pass(conn, periodic, self._now())
                finally:
                    with self._state:
                        self._job_conns.discard(conn)
        except (psycopg.Error, StoreError, PacingError) as exc:
            error = _describe(exc)
            logger.warning(
                "clock %s: deferring %s failed; it is due again at the next firing",
                self.name,
                periodic.name,
                exc_info=True,
            )
        finally:
            with self._state:
                self._in_flight -= 1
                self._set(
                    deferred=self._status.deferred + len(done),
                    failures=self._status.failures + (error is not None),
                    last_error=error if error is not None else self._status.last_error,
                    last_deferred=tuple(done) or self._status.last_deferred,
                )
