"""`paceline import PATH --patient ID`: an export file into the store, then the daily rollup.

This module wires the layers the importer may not depend on itself: the
signal layer's minute grid for interval step records and pacing's rollup of
the days that received samples. The dashboard's upload calls
`import_for_patient` too, so both take the same path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.ingest.importers import (
    ImportFileError,
    ImportSummary,
    UnknownPatientError,
    import_file,
)
from paceline.pacing.jobs.tasks import defer_evaluation
from paceline.pacing.rollup import rollup
from paceline.signal.stepgrid import to_minute_grid
from paceline.store.connection import connect
from paceline.store.registry import NotFoundError, get_patient


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
    rollup(conn, patient_id=patient_id, after=defer_evaluation)
    if not conn.autocommit:
        conn.commit()
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
