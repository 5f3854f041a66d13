"""`paceline report --patient ID [--from D --to D] -o report.pdf`: a progress report as PDF."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date
from pathlib import Path
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.pacing.report import ReportError, progress_report
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `report` command."""
    cmd = commands.add_parser(
        "report",
        help="a patient's progress report (PDF) for the record or the primary provider",
        description=(
            "Baseline against now, the quota trajectory, questionnaire trends, the fear ladder,"
            " flags and what was done about them, and clinicians' notes, with charts; A4."
            " The range defaults to the whole programme (enrolment to today). Audited."
        ),
    )
    cmd.add_argument("--patient", type=int, required=True, metavar="ID", help="patient id")
    cmd.add_argument("--from", dest="start", type=date.fromisoformat, metavar="D")
    cmd.add_argument("--to", dest="end", type=date.fromisoformat, metavar="D")
    cmd.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    cmd.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the PDF; the read is audited as done by this operating-system user."""
    try:
        with database_dsn(settings) as dsn, connect(dsn) as conn:
            pdf = progress_report(
                conn, args.patient, args.start, args.end, actor=f"cli:{getpass.getuser()}"
            )
            conn.commit()
    except ReportError as exc:
        print(f"paceline: report refused: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # reportlab or matplotlib: the `report` extra
        print(f"paceline: the report needs the 'report' extra ({exc.name})", file=sys.stderr)
        return 2
    args.output.write_bytes(pdf)
    print(args.output)
    return 0
