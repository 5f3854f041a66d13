"""`paceline worker [--concurrency N]`: run jobs from the queue (any number, on any machine)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.scheduler import SchedulerSettings, schema_pending
from paceline.cli.settings import Settings, help_lines, parse_duration
from paceline.pacing.jobs.queue import QUEUES
from paceline.pacing.jobs.worker import DEFAULT_HEARTBEAT_S, WorkerSettings, run_worker


def _epilog() -> str:
    lines = [
        "A worker runs the jobs the clock and the writes defer: daily-metrics rollups,",
        "evaluations, deliveries. Run as many as the load needs, on any machine that reaches",
        "the database; each patient's jobs still run one at a time, in order. SIGTERM or",
        "Ctrl-C lets running jobs finish, then stops.",
        "",
    ]
    return "\n".join(lines + help_lines(("worker",)))


def register(commands: Any) -> None:
    """Add the `worker` command."""
    parser = commands.add_parser(
        "worker",
        help="run jobs from the queue: rollups, evaluations, deliveries",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="jobs at once in this process (default 1; for more cores, run more processes)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        choices=QUEUES,
        help="take jobs only from this queue (repeatable; default: all)",
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once the queue is empty instead of waiting for new jobs",
    )
    parser.set_defaults(handler=run)


def heartbeat(env: Mapping[str, str] | None = None) -> float:
    """`PACELINE_WORKER_HEARTBEAT` in seconds."""
    env = os.environ if env is None else env
    text = env.get("PACELINE_WORKER_HEARTBEAT", "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_S
    return parse_duration("PACELINE_WORKER_HEARTBEAT", text).total_seconds()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one worker process until stopped (or idle); 0 on a clean stop."""
    own = WorkerSettings(
        concurrency=args.concurrency,
        until_idle=args.until_idle,
        heartbeat_s=heartbeat(),
        queues=tuple(args.queue or QUEUES),
        name=f"paceline-worker-{os.getpid()}",
    )
    with database_dsn(settings) as dsn:
        if schema_pending(dsn):
            return 2
        # Evaluations, deliveries and reminders follow the scheduler's clock
        # (PACELINE_CLOCK_START in replays, demos and tests).
        run_worker(dsn, own, clock=SchedulerSettings.from_env().now())
    return 0
