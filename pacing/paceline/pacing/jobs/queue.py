"""The procrastinate app, its queues and locks, and deferring inside the caller's transaction.

Every job that follows from a write is deferred on the connection that makes
the write, inside its transaction (`defer`): procrastinate's job row commits or
rolls back with the write, so a rolled-up day can never lose the evaluation it
made necessary, and a rolled-back write never leaves a job behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from procrastinate import jobs, manager
from procrastinate.types import JSONValue

from paceline.pacing import records
from paceline.pacing.errors import PacingError

logger = logging.getLogger(__name__)

#: Queue of the periodic fan-outs the clock defers (small, quick jobs).
CLOCK_QUEUE: Final = "clock"
#: Queue of the daily-metrics rollups of single patients.
ROLLUP_QUEUE: Final = "rollup"
#: Queue of the evaluations of single patients.
EVALUATE_QUEUE: Final = "evaluate"
#: Queue of single deliveries of alerts.
DELIVER_QUEUE: Final = "deliver"
#: Queue of the imports of files uploaded on the dashboard (`paceline.import_upload`).
IMPORT_QUEUE: Final = "import"
QUEUES: Final = (CLOCK_QUEUE, ROLLUP_QUEUE, EVALUATE_QUEUE, DELIVER_QUEUE, IMPORT_QUEUE)
#: Jobs per insert statement of `defer_batch` (bounds the work a refused batch redoes).
BATCH_SIZE: Final = 1000

#: The modules that define the tasks; a worker imports them before fetching jobs.
#: The import job wires the importers (`paceline.ingest`) to the rollup, which only
#: the CLI layer may see both of, so it is defined beside `paceline import`.
TASK_MODULES: Final = ("paceline.pacing.jobs.tasks", "paceline.cli.importing")


class JobsError(PacingError):
    """A job-queue setting or call that cannot be honoured (clock, worker, task arguments)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# The worker's app. Its connector gets its DSN when a worker opens it
# (`paceline.pacing.jobs.worker`); tasks register on it when `tasks` is imported.
app: Final = procrastinate.App(
    connector=procrastinate.PsycopgConnector(),
    import_paths=list(TASK_MODULES),
)

# Defers only on a connection the caller passes (procrastinate's sync connector
# never opens its pool then), so it needs no DSN and works in any thread.
_IN_TRANSACTION: Final = manager.JobManager(procrastinate.SyncPsycopgConnector())


def patient_lock(patient_id: int) -> str:
    """The procrastinate lock of a patient's rollups and evaluations: one runs at a time, in order."""
    return f"patient:{patient_id}"


@dataclass(frozen=True)
class Deferral:
    """One job to defer: its task, queue, locks, start time and arguments."""

    task: str
    queue: str
    kwargs: Mapping[str, JSONValue]
    lock: str | None = None
    queueing_lock: str | None = None
    schedule_at: datetime | None = None

    def job(self) -> jobs.Job:
        """The job as procrastinate inserts it."""
        return jobs.Job(
            queue=self.queue,
            lock=self.lock,
            queueing_lock=self.queueing_lock,
            task_name=self.task,
            task_kwargs=dict(self.kwargs),
            scheduled_at=self.schedule_at,
        )


def _insert(conn: psycopg.Connection[Any], batch: Sequence[Deferral]) -> list[int]:
    """Insert `batch` in one statement inside a savepoint; the ids of the jobs added.

    A queueing lock taken by a job another transaction committed (or is
    committing) since the caller looked makes the whole statement fail; the
    savepoint keeps the caller's transaction usable, and the batch is halved
    until the refused job stands alone (a few statements per such race, not
    one per job).
    """
    if not batch:
        return []
    try:
        with conn.transaction():
            added = _IN_TRANSACTION.batch_defer_jobs([d.job() for d in batch], connection=conn)
    except queue_errors.AlreadyEnqueued:
        if len(batch) == 1:
            d = batch[0]
            logger.debug("%s not deferred: %s is already pending", d.task, d.queueing_lock)
            return []
        half = len(batch) // 2
        return _insert(conn, batch[:half]) + _insert(conn, batch[half:])
    return [j.id for j in added if j.id is not None]


def defer(
    conn: psycopg.Connection[Any],
    task: str,
    *,
    queue: str,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_at: datetime | None = None,
    **kwargs: JSONValue,
) -> int | None:
    """Defer `task(**kwargs)` in `conn`'s transaction; the job id, or None if already pending.

    With `schedule_at`, no worker takes the job before that instant.

    A job whose `queueing_lock` another pending job holds is not added: that job
    will do the work. The insert runs in a savepoint, so the refusal does not
    abort the caller's transaction.
    """
    ids = _insert(conn, [Deferral(task, queue, kwargs, lock, queueing_lock, schedule_at)])
    return ids[0] if ids else None


def defer_batch(conn: psycopg.Connection[Any], deferrals: Iterable[Deferral]) -> list[int]:
    """Defer many jobs in `conn`'s transaction, `BATCH_SIZE` per statement; the ids added.

    The same promise as `defer` for each job: one whose queueing lock a pending
    job holds (or an earlier job of the same batch) is left out, and the
    caller's transaction stays usable. The pending locks are read first, so the
    usual case is one insert per `BATCH_SIZE` jobs rather than one savepoint
    per job (the nightly pass of 10,000 patients was one round trip and one
    savepoint each).
    """
    wanted = list(deferrals)
    held = records.pending_queueing_locks(
        conn, [d.queueing_lock for d in wanted if d.queueing_lock is not None]
    )
    fresh: list[Deferral] = []
    for d in wanted:
        if d.queueing_lock is not None:
            if d.queueing_lock in held:
                continue
            held.add(d.queueing_lock)
        fresh.append(d)
    if len(fresh) < len(wanted):
        logger.debug("%d of %d jobs already pending", len(wanted) - len(fresh), len(wanted))
    ids: list[int] = []
    for start in range(0, len(fresh), BATCH_SIZE):
        ids += _insert(conn, fresh[start : start + BATCH_SIZE])
    return ids
