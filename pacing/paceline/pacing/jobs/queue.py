"""The procrastinate app, its queues and locks, and deferring inside the caller's transaction.

Every job that follows from a write is deferred on the connection that makes
the write, inside its transaction (`defer`): procrastinate's job row commits or
rolls back with the write, so a rolled-up day can never lose the evaluation it
made necessary, and a rolled-back write never leaves a job behind.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from procrastinate import manager, tasks

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


def defer(
    conn: psycopg.Connection[Any],
    task: str,
    *,
    queue: str,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_at: datetime | None = None,
    **kwargs: Any,
) -> int | None:
    """Defer `task(**kwargs)` in `conn`'s transaction; the job id, or None if already pending.

    With `schedule_at`, no worker takes the job before that instant.

    A job whose `queueing_lock` another pending job holds is not added: that job
    will do the work. The insert runs in a savepoint, so the refusal does not
    abort the caller's transaction.
    """
    deferrer = tasks.configure_task(
        name=task,
        job_manager=_IN_TRANSACTION,
        queue=queue,
        lock=lock,
        queueing_lock=queueing_lock,
        schedule_at=schedule_at,
        connection=conn,
    )
    try:
        with conn.transaction():
            return deferrer.defer(**kwargs)
    except queue_errors.AlreadyEnqueued:
        logger.debug("%s not deferred: %s is already pending", task, queueing_lock)
        return None
