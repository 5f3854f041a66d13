"""`paceline import PATH --patient ID`: an export file into the store, then the daily rollup.

This module wires the layers the importer may not depend on itself: the
signal layer's minute grid for interval step records and pacing's rollup of
the days that received samples. A file uploaded on the dashboard takes the
same path: the queue's ``paceline.import_upload`` job (defined here, run by
`paceline worker` as the worker's role) calls `import_for_patient` on it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import numpy as np
import psycopg
from numpy.typing import NDArray
from procrastinate import JobContext, RetryStrategy

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.ingest.importers import (
    ImportFileError,
    ImportSummary,
    UnknownPatientError,
    import_file,
)
from paceline.pacing.errors import PacingError
from paceline.pacing.jobs.queue import IMPORT_QUEUE, app
from paceline.pacing.jobs.tasks import RESOURCES_KEY, Resources, defer_evaluation
from paceline.pacing.rollup import rollup
from paceline.signal.stepgrid import to_minute_grid
from paceline.store import uploads
from paceline.store.connection import connect
from paceline.store.registry import NotFoundError, get_patient

logger = logging.getLogger(__name__)

#: The queue task that imports a file uploaded on the dashboard.
IMPORT_UPLOAD: Final = "paceline.import_upload"


def register(commands: Any) -> None:
    """Add the `import` command."""
    cmd = commands.add_parser(
        "import",
        help="import a Garmin FIT, Apple Health, Fitbit/Takeout or Health Connect export",
        description="Import heart rate, RR/HRV and steps from an export file; the format is"
        " recognised from the content. Importing the same file again adds nothing.",
    )
    cmd.add_argument("path", type=Path, metavar="PATH", help="the export file (.fit, .zip, .xml …)")
    cmd.add_argument("--patient", type=int, required=True, metavar="ID", help="patient id")
    cmd.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    cmd.set_defaults(handler=run_import)


def _minutes(
    begin_us: NDArray[np.int64], end_us: NDArray[np.int64], steps: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    grid = to_minute_grid(begin_us, end_us, steps)
    return grid.end_us, grid.steps


def import_for_patient(
    conn: psycopg.Connection[Any], path: Path, patient_id: int, *, workdir: Path | None = None
) -> ImportSummary:
    """Import `path` for `patient_id` and roll up the days it touched; errors are typed."""
    try:
        patient = get_patient(conn, patient_id)
    except NotFoundError as exc:
        raise UnknownPatientError(path, f"no patient {patient_id}") from exc
    if not conn.autocommit:
        conn.commit()  # the writer needs a connection outside a transaction
    summary = import_file(
        conn,
        path,
        patient_id=patient_id,
        timezone=patient.timezone,
        birth_year=patient.birth_year,
        split_minutes=_minutes,
        workdir=workdir,
    )
    # As for live data: the days are recomputed and their evaluation queued for the workers.
    rolled = rollup(conn, patient_id=patient_id, after=defer_evaluation)
    if not conn.autocommit:
        conn.commit()
    if rolled.failed:
        summary.notes.append(
            "the daily metrics of the imported days could not be computed (the log says why);"
            " the days stay queued for the next rollup"
        )
    return summary


def format_summary(summary: ImportSummary) -> str:
    """The per-stream summary an operator reads."""
    lines = [f"format: {summary.format}; sources: {', '.join(summary.sources) or 'none'}"]
    for label, n in (
        ("heart rate", summary.hr),
        ("RR intervals", summary.rr),
        ("HRV SDNN", summary.sdnn),
        ("step minutes", summary.steps),
    ):
        lines.append(f"  {label:<13} {n:>10,} new rows")
    lines.append(f"  {'duplicates':<13} {summary.duplicates:>10,} rows already stored")
    lines.append(f"  {'rejected':<13} {sum(summary.rejected.values()):>10,} rows")
    lines.extend(f"    {n:,} × {reason}" for reason, n in sorted(summary.rejected.items()))
    if summary.first and summary.last:
        lines.append(f"  time range    {summary.first.isoformat()} … {summary.last.isoformat()}")
    lines.extend(f"  note: {note}" for note in summary.notes)
    return "\n".join(lines)


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import one file and print the summary."""
    try:
        with database_dsn(settings, announce=not args.json) as dsn, connect(dsn) as conn:
            summary = import_for_patient(conn, args.path, args.patient)
    except ImportFileError as exc:
        print(f"paceline: import refused: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_json()))
    else:
        print(format_summary(summary))
    return 0


def run_upload(
    conn: psycopg.Connection[Any], upload_id: int, *, workdir: Path | None = None
) -> uploads.Status | None:
    """Import one uploaded file and record the outcome; its status, None if it had finished.

    A file the importer refuses (`ImportFileError`: no known format, a zip bomb,
    broken halfway) stores nothing and is recorded as failed with the reason.
    Any other failure is recorded too and raised again, so that the job fails
    visibly; a lost database is only raised (the job is retried, and the import
    adds nothing twice).
    """
    claimed = uploads.claim(conn, upload_id)
    if claimed is None:
        return None
    with tempfile.TemporaryDirectory(prefix="paceline-upload-", dir=workdir) as tmp:
        path = Path(tmp) / "upload"  # the format comes from the content, not the name
        path.write_bytes(claimed.content)
        try:
            summary = import_for_patient(conn, path, claimed.patient_id, workdir=Path(tmp))
        except ImportFileError as exc:
            conn.rollback()
            logger.info("upload %s refused: %s", upload_id, exc.reason)
            return uploads.finish(conn, upload_id, error=f"{claimed.filename}: {exc.reason}")
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            conn.rollback()
            uploads.finish(conn, upload_id, error=f"{type(exc).__name__}: {exc}")
            raise
    return uploads.finish(conn, upload_id, summary=summary.as_json())


@app.task(
    name=IMPORT_UPLOAD,
    queue=IMPORT_QUEUE,
    pass_context=True,
    retry=RetryStrategy(
        max_attempts=8, exponential_wait=2, retry_exceptions={psycopg.OperationalError}
    ),
)
def import_upload(context: JobContext, upload_id: int) -> str:
    """Import a file uploaded on the dashboard (deferred by ``paceline_request_import``)."""
    resources = context.additional_context.get(RESOURCES_KEY)
    if not isinstance(resources, Resources):
        raise PacingError("paceline tasks run in `paceline worker`, which provides a pool")
    with resources.pool.connection() as conn:
        status = run_upload(conn, upload_id)
    return status or "finished before"
