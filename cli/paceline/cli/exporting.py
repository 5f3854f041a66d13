"""`paceline export fhir|csv --patient ID --from D --to D -o PATH`: results out of Paceline."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.pacing.export import ExportError, export_csv, export_fhir
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `export` command group."""
    export = commands.add_parser("export", help="a patient's results as FHIR R4 or CSV")
    sub = export.add_subparsers(dest="export_command", required=True, metavar="FORMAT")
    for name, help_text, out_help in (
        ("fhir", "a FHIR R4 Bundle (JSON) of observations and questionnaire responses", "FILE"),
        ("csv", "daily_metrics.csv, diary.csv and questionnaires.csv", "DIRECTORY"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--patient", type=int, required=True, metavar="ID", help="patient id")
        cmd.add_argument(
            "--from", dest="start", type=date.fromisoformat, required=True, metavar="D"
        )
        cmd.add_argument("--to", dest="end", type=date.fromisoformat, required=True, metavar="D")
        cmd.add_argument("-o", "--output", type=Path, required=True, metavar=out_help)
        cmd.set_defaults(handler=run_export, export_format=name)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write the export; the read is audited as done by this operating-system user."""
    actor = f"cli:{getpass.getuser()}"
    try:
        with database_dsn(settings) as dsn, connect(dsn) as conn:
            if args.export_format == "fhir":
                bundle = export_fhir(conn, args.patient, args.start, args.end, actor=actor)
                args.output.write_text(json.dumps(bundle, indent=1), encoding="utf-8")
                written = [args.output]
            else:
                written = export_csv(
                    conn, args.patient, args.start, args.end, args.output, actor=actor
                )
            conn.commit()
    except ExportError as exc:
        print(f"paceline: export refused: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
