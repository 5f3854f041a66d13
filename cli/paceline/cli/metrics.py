"""`paceline metrics rollup`: recompute daily metrics for days that received new samples."""

from __future__ import annotations

import argparse
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.pacing.jobs.tasks import defer_evaluation
from paceline.pacing.rollup import rollup
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `metrics` command group."""
    metrics = commands.add_parser("metrics", help="daily metrics from stored samples")
    sub = metrics.add_subparsers(dest="metrics_command", required=True, metavar="SUBCOMMAND")
    sub.add_parser(
        "rollup",
        help="recompute daily_metrics for every patient-day that received new samples"
        " (and queue their evaluation for the workers)",
    ).set_defaults(handler=run_rollup)


def run_rollup(args: argparse.Namespace, settings: Settings) -> int:
    """Run the incremental rollup once; the days it recomputes are queued for evaluation."""
    with database_dsn(settings) as dsn, connect(dsn) as conn:
        result = rollup(conn, after=defer_evaluation)
    print(
        f"recomputed {result.days} patient-day(s) for {result.patients} patient(s)"
        f" from {result.rows_read:,} sample rows"
    )
    return 0
