"""Running workers: a procrastinate worker with a pool for the clinical work (`paceline worker`).

Any number of workers, on any machine that reaches the database, share the
queue. Within one process `concurrency` jobs run at once, each in a thread of
its own with a connection of its own (the evaluation is numpy and SQL, so to
use more cores run more processes). A worker killed mid-job leaves that job
running in the queue's eyes; once its heartbeats have been missing for
`stalled_after_s`, the clock's `recover_stalled` job puts the job back and
another worker runs it (its transaction rolled back with the dead connection).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import procrastinate
from psycopg_pool import ConnectionPool

from paceline.pacing.alerts import Channels
from paceline.pacing.jobs import tasks
from paceline.pacing.jobs.queue import QUEUES, JobsError, app
from paceline.pacing.jobs.timesource import REAL_TIME, TimeSource

logger = logging.getLogger(__name__)

#: How often a worker tells the queue it is alive (procrastinate's default).
DEFAULT_HEARTBEAT_S: Final = 10.0
#: How often an idle worker looks for jobs when it misses a notification.
POLL_S: Final = 1.0


class WorkerError(JobsError):
    """A worker setting that cannot be honoured."""


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker process runs."""

    concurrency: int = 1
    until_idle: bool = False
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    queues: tuple[str, ...] = QUEUES
    name: str = "paceline-worker"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise WorkerError(f"concurrency must be at least 1; got {self.concurrency}")
        if not self.heartbeat_s > 0:
            raise WorkerError(f"the heartbeat must be longer than zero; got {self.heartbeat_s} s")
        unknown = sorted(set(self.queues) - set(QUEUES))
        if unknown:
            raise WorkerError(f"unknown queue(s) {unknown}; the queues are {list(QUEUES)}")

    @property
    def stalled_after_s(self) -> float:
        """How long without a heartbeat before this worker's jobs count as abandoned."""
        return 3 * self.heartbeat_s


def run_worker(dsn: str, settings: WorkerSettings, *, clock: TimeSource = REAL_TIME) -> None:
    """Run one worker until SIGTERM or Ctrl-C (or, with `until_idle`, until the queue is empty).

    `clock` is what "now" is for the worker's evaluations (the patient's "today"), alerts
    and deliveries (due or not, when to retry); `paceline worker` passes the scheduler's
    clock, so `PACELINE_CLOCK_START` moves the scheduler and the workers alike.
    """
    pool: ConnectionPool = ConnectionPool(
        dsn, min_size=1, max_size=settings.concurrency, open=False, name=settings.name
    )
    pool.open(wait=True)
    try:
        connector = procrastinate.PsycopgConnector(
            conninfo=dsn, min_size=1, max_size=2 + settings.concurrency
        )
        resources = tasks.Resources(
            pool=pool,
            channels=Channels.from_env(),
            stalled_after_s=settings.stalled_after_s,
            clock=clock,
        )
        logger.info(
            "worker %s: %d job(s) at once on queues %s",
            settings.name,
            settings.concurrency,
            ", ".join(settings.queues),
        )
        with app.replace_connector(connector) as worker_app:
            worker_app.run_worker(
                queues=list(settings.queues),
                name=settings.name,
                concurrency=settings.concurrency,
                wait=not settings.until_idle,
                fetch_job_polling_interval=POLL_S,
                update_heartbeat_interval=settings.heartbeat_s,
                stalled_worker_timeout=settings.stalled_after_s,
                additional_context={tasks.RESOURCES_KEY: resources},
                install_signal_handlers=True,
            )
    finally:
        pool.close()
