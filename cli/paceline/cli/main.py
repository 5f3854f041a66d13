"""The `paceline` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from paceline.cli import (
    accounts,
    alerts,
    audit,
    dashboard,
    db,
    devices,
    diary,
    exporting,
    flags,
    importing,
    ingest,
    metrics,
    patients,
    report,
    scheduler,
    worker,
)
from paceline.cli.errors import CliError
from paceline.cli.settings import Settings, SettingsError, help_lines
from paceline.pacing.errors import PacingError
from paceline.store.errors import StoreError

Handler = Callable[[argparse.Namespace, Settings], int]


def _epilog() -> str:
    return "\n".join(help_lines())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="paceline",
        description="Paceline: wearables, pacing and graded exposure for chronic pain.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    alerts.register(commands)
    db.register(commands)
    devices.register(commands)
    ingest.register(commands)
    metrics.register(commands)
    scheduler.register(commands)
    accounts.register(commands)
    worker.register(commands)
    dashboard.register(commands)
    importing.register(commands)
    exporting.register(commands)
    report.register(commands)
    audit.register(commands)
    patients.register(commands)
    flags.register(commands)
    diary.register(commands)
    from paceline.cli import demo  # noqa: PLC0415 - the demo pulls in every component

    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `paceline` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        settings = Settings.from_env()
        return handler(args, settings)
    except (SettingsError, StoreError, PacingError, CliError) as exc:
        print(f"paceline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("paceline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
