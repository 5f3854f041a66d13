"""`paceline scheduler run [--once]`: the clock that defers periodic jobs, leader or standby."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import psycopg

from paceline.cli.database import database_dsn
from paceline.cli.settings import (
    Settings,
    SettingsError,
    help_lines,
    parse_duration,
    settings_read_by,
)
from paceline.pacing.jobs.clock import (
    DEFAULT_NIGHTLY_EVERY,
    DEFAULT_RECOVER_EVERY,
    DEFAULT_ROLLUP_EVERY,
    DEFAULT_STANDBY_POLL_S,
    Clock,
    ClockStatus,
    Deferred,
    default_periodic,
    defer_due,
)
from paceline.pacing.jobs.leader import LEADER_LOCK_KEY
from paceline.pacing.jobs.timesource import TimeSource
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.status import database_status

SCHEDULER_SETTINGS: tuple[tuple[str, str, str], ...] = tuple(
    (s.name, s.default, s.meaning) for s in settings_read_by("scheduler")
)
"""The scheduler's own rows of the settings table, as (name, default, meaning)."""
#: How often the main thread wakes while waiting for a signal (only to stay responsive).
_WAKE_S = 1.0


@dataclass(frozen=True)
class SchedulerSettings:
    """The clock's own `PACELINE_*` settings."""

    rollup_every: timedelta = DEFAULT_ROLLUP_EVERY
    nightly_every: timedelta = DEFAULT_NIGHTLY_EVERY
    recover_every: timedelta = DEFAULT_RECOVER_EVERY
    standby_poll: timedelta = timedelta(seconds=DEFAULT_STANDBY_POLL_S)
    clock_start: datetime | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerSettings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env

        def duration(name: str, default: timedelta) -> timedelta:
            """The duration in `name`, or `default` when it is unset."""
            text = env.get(name, "").strip()
            return parse_duration(name, text) if text else default

        start_text = env.get("PACELINE_CLOCK_START", "").strip()
        start = None
        if start_text:
            try:
                start = datetime.fromisoformat(start_text)
            except ValueError as exc:
                raise SettingsError("PACELINE_CLOCK_START", start_text, str(exc)) from exc
            if start.tzinfo is None:
                raise SettingsError(
                    "PACELINE_CLOCK_START", start_text, "must carry a time zone (Z or +hh:mm)"
                )
        return cls(
            rollup_every=duration("PACELINE_ROLLUP_EVERY", DEFAULT_ROLLUP_EVERY),
            nightly_every=duration("PACELINE_NIGHTLY_EVERY", DEFAULT_NIGHTLY_EVERY),
            recover_every=duration("PACELINE_RECOVER_EVERY", DEFAULT_RECOVER_EVERY),
            standby_poll=duration(
                "PACELINE_STANDBY_POLL", timedelta(seconds=DEFAULT_STANDBY_POLL_S)
            ),
            clock_start=start,
        )

    def now(self) -> TimeSource:
        """The clock's time: real, or `clock_start` advancing with the real time elapsed.

        The one source of "now" for the scheduler, `paceline worker` (evaluations,
        deliveries, reminders), `paceline demo` and `ingest run --simulate`.
        """
        return TimeSource.starting_at(self.clock_start)


def _epilog() -> str:
    """The help text on leadership, signals and the scheduler's own settings."""
    lines = [
        "The scheduler is only the clock: it defers periodic jobs (the rollup tick, the",
        "nightly pass at each patient's local time, recovery of jobs whose worker died) onto",
        "the job queue; `paceline worker` processes run them. Several instances may run",
        f"against one database: the one holding PostgreSQL advisory lock {LEADER_LOCK_KEY:#x}",
        "defers, the others wait as standbys. A slot is deferred once whichever instance",
        "leads, and after downtime each missed job is deferred once, covering the gap.",
        "SIGTERM or Ctrl-C stops an instance cleanly and releases the lock. --once defers",
        "what is due now and exits.",
        "",
    ]
    return "\n".join(lines + help_lines(("scheduler",)))


def register(commands: Any) -> None:
    """Add the `scheduler` command group."""
    group = commands.add_parser(
        "scheduler",
        help="the clock that defers periodic jobs onto the queue, as a leader/standby service",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = group.add_subparsers(dest="scheduler_command", required=True, metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run",
        help="run the clock until SIGTERM or Ctrl-C (leader or standby)",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="defer the periodic jobs that are due now, print them and exit",
    )
    run.set_defaults(handler=run_scheduler)


def schema_pending(dsn: str) -> bool:
    """Print an error and return True when the database needs `paceline db migrate`."""
    with connect(dsn, autocommit=True) as conn:
        pending = database_status(conn).pending
    if pending:
        print(
            f"paceline: error: the database schema is not up to date (pending:"
            f" {', '.join(pending)}); run `paceline db migrate` first",
            file=sys.stderr,
        )
    return bool(pending)


def _periodic(own: SchedulerSettings) -> Any:
    return default_periodic(
        rollup_every=own.rollup_every,
        nightly_every=own.nightly_every,
        recover_every=own.recover_every,
    )


def run_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Run the clock (or, with --once, defer what is due once); 0 on success."""
    own = SchedulerSettings.from_env()
    with database_dsn(settings, role=roles.WORKER) as dsn:
        if schema_pending(dsn):
            return 2
        if args.once:
            try:
                with connect(dsn, autocommit=True) as conn:
                    done = defer_due(conn, _periodic(own), own.now()())
            except psycopg.OperationalError as exc:
                print(f"paceline: error: lost the database: {exc}", file=sys.stderr)
                return 2
            print(format_deferred(done))
            return 0
        return _serve(dsn, own, verbose=bool(getattr(args, "verbose", False)))


def format_deferred(done: list[Deferred]) -> str:
    """What one `--once` run deferred, one line per job."""
    if not done:
        return "nothing due: every periodic job's latest slot was already deferred"
    return "\n".join(
        f"deferred {d.job} for ({d.since.isoformat()}, {d.until.isoformat()}] as job {d.job_id}"
        for d in done
    )


def _serve(dsn: str, own: SchedulerSettings, *, verbose: bool) -> int:
    """Run a `Clock` until SIGTERM or SIGINT, then stop it and print its counters."""
    if not verbose:
        # APScheduler logs every run of every job (the heartbeat included) at INFO.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    clock = Clock(
        dsn,
        periodic=_periodic(own),
        standby_poll_s=own.standby_poll.total_seconds(),
        now=own.now(),
    )
    with _stop_on_signals(stop):
        clock.start()
        print(
            f"scheduler {clock.name}: rollup every {own.rollup_every}, nightly pass every"
            f" {own.nightly_every}; SIGTERM or Ctrl-C stops it",
            flush=True,
        )
        try:
            while not stop.wait(_WAKE_S):
                pass
        finally:
            clock.stop()
    print(format_status(clock.status()), flush=True)
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGTERM and SIGINT for the duration; restore the old handlers after."""

    def handle(signum: int, frame: FrameType | None) -> None:
        """Ask the main loop to stop."""
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def format_status(status: ClockStatus) -> str:
    """The instance's final counters as one line an operator reads."""
    return (
        f"scheduler {status.name} stopped: leader {status.leaderships} time(s);"
        f" {status.deferred} periodic job(s) deferred, {status.failures} deferral(s) failed"
    )
