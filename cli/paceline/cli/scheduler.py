"""`paceline scheduler run [--once]`: the rollup and evaluation service, leader or standby."""

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
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import psycopg

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings, help_lines, parse_duration, settings_read_by
from paceline.pacing.scheduler import (
    DEFAULT_EVALUATE_EVERY,
    DEFAULT_ROLLUP_EVERY,
    DEFAULT_STANDBY_POLL_S,
    LEADER_LOCK_KEY,
    Scheduler,
    SchedulerStatus,
    run_jobs_once,
)
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
    """The scheduler's own `PACELINE_*` settings."""

    rollup_every: timedelta = DEFAULT_ROLLUP_EVERY
    evaluate_every: timedelta = DEFAULT_EVALUATE_EVERY
    standby_poll: timedelta = timedelta(seconds=DEFAULT_STANDBY_POLL_S)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerSettings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env

        def duration(name: str, default: timedelta) -> timedelta:
            """The duration in `name`, or `default` when it is unset."""
            text = env.get(name, "").strip()
            return parse_duration(name, text) if text else default

        return cls(
            rollup_every=duration("PACELINE_ROLLUP_EVERY", DEFAULT_ROLLUP_EVERY),
            evaluate_every=duration("PACELINE_EVALUATE_EVERY", DEFAULT_EVALUATE_EVERY),
            standby_poll=duration(
                "PACELINE_STANDBY_POLL", timedelta(seconds=DEFAULT_STANDBY_POLL_S)
            ),
        )


def _epilog() -> str:
    """The help text on leadership, signals and the scheduler's own settings."""
    lines = [
        "Several instances may run against one database: the one holding PostgreSQL advisory",
        f"lock {LEADER_LOCK_KEY:#x} runs the jobs, the others wait as standbys. SIGTERM or",
        "Ctrl-C stops an instance cleanly and releases the lock. --once needs no lock: both",
        "jobs are idempotent and serialise themselves.",
        "",
    ]
    lines += help_lines(("scheduler",))
    return "\n".join(lines)


def register(commands: Any) -> None:
    """Add the `scheduler` command group."""
    group = commands.add_parser(
        "scheduler",
        help="the daily-metrics rollup and pacing evaluations, as a leader/standby service",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = group.add_subparsers(dest="scheduler_command", required=True, metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run",
        help="run the scheduler until SIGTERM or Ctrl-C (leader or standby)",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="run the rollup and one evaluation pass now, print a summary and exit",
    )
    run.set_defaults(handler=run_scheduler)


def run_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Run the service (or, with --once, the jobs once); 0 on success."""
    own = SchedulerSettings.from_env()
    with database_dsn(settings) as dsn:
        with connect(dsn, autocommit=True) as conn:
            pending = database_status(conn).pending
        if pending:
            print(
                f"paceline: error: the database schema is not up to date (pending:"
                f" {', '.join(pending)}); run `paceline db migrate` first",
                file=sys.stderr,
            )
            return 2
        if args.once:
            try:
                with connect(dsn, autocommit=True) as conn:
                    report = run_jobs_once(conn, datetime.now(UTC))
            except psycopg.OperationalError as exc:
                print(f"paceline: error: lost the database: {exc}", file=sys.stderr)
                return 2
            print(report.summary())
            for failure in report.evaluation.failures:
                print(
                    f"  patient {failure.patient_id} day {failure.day or '-'}: {failure.error}",
                    file=sys.stderr,
                )
            return 0 if report.ok else 1
        return _serve(dsn, own, verbose=bool(getattr(args, "verbose", False)))


def _serve(dsn: str, own: SchedulerSettings, *, verbose: bool) -> int:
    """Run a `Scheduler` until SIGTERM or SIGINT, then stop it and print its counters."""
    if not verbose:
        # APScheduler logs every run of every job (the heartbeat included) at INFO.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    scheduler = Scheduler(
        dsn,
        rollup_every=own.rollup_every,
        evaluate_every=own.evaluate_every,
        standby_poll_s=own.standby_poll.total_seconds(),
    )
    with _stop_on_signals(stop):
        scheduler.start()
        print(
            f"scheduler {scheduler.name}: rollup every {own.rollup_every},"
            f" evaluation every {own.evaluate_every}; SIGTERM or Ctrl-C stops it",
            flush=True,
        )
        try:
            while not stop.wait(_WAKE_S):
                pass
        finally:
            scheduler.stop()
    print(format_status(scheduler.status()), flush=True)
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


def format_status(status: SchedulerStatus) -> str:
    """The instance's final counters as one line an operator reads."""
    return (
        f"scheduler {status.name} stopped: leader {status.leaderships} time(s);"
        f" rollup {status.rollup.runs} run(s), {status.rollup.failures} failed;"
        f" evaluation {status.evaluation.runs} run(s), {status.evaluation.failures} failed"
    )
