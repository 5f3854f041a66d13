"""`paceline alerts list|ack|resolve`: the alert life cycle from the command line.

The same functions the dashboard calls (`paceline.pacing.alerts`); the CLI
acts for the clinician given with `--clinician` and is audited as them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.pacing.alerts import (
    AlertError,
    AlertRow,
    acknowledge,
    dead_letters,
    list_alerts,
    resolve,
)
from paceline.store.connection import connect

STATUSES = ("open", "acknowledged", "resolved")


def register(commands: Any) -> None:
    """Add the `alerts` command group."""
    alerts = commands.add_parser("alerts", help="list, acknowledge and resolve alerts")
    sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="alerts, newest first (open and acknowledged by default)")
    ls.add_argument("--patient", type=int, help="only this patient's alerts")
    ls.add_argument("--clinician", type=int, help="only alerts of this clinician's care team")
    ls.add_argument(
        "--status", action="append", choices=STATUSES, help="statuses to show (repeatable)"
    )
    ls.add_argument(
        "--audience", choices=("care_team", "patient"), default="care_team", help="whose alerts"
    )
    ls.add_argument("--dead", action="store_true", help="list dead-lettered deliveries instead")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(handler=run_list)
    for name, text in (("ack", "acknowledge an open alert"), ("resolve", "resolve an alert")):
        p = sub.add_parser(name, help=text)
        p.add_argument("alert_id", type=int)
        p.add_argument("--clinician", type=int, required=True, help="who acts (audited)")
        p.add_argument("--note", default="", help="what was done (required for ack)")
        p.set_defaults(handler=run_ack if name == "ack" else run_resolve)


def _json_row(row: object) -> str:
    return json.dumps(asdict(row), default=str, sort_keys=True)  # type: ignore[call-overload]


def _line(a: AlertRow) -> str:
    window = f"{a.window_start:%Y-%m-%d}"
    return (
        f"{a.alert_id:>6}  patient {a.patient_id:<6} {a.status:<12} {a.severity:<8}"
        f" {a.rule_id:<22} since {window}  {a.summary}"
    )


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print alerts (or dead letters)."""
    with database_dsn(settings, announce=not args.json) as dsn, connect(dsn) as conn:
        if args.dead:
            for d in dead_letters(conn):
                print(
                    _json_row(d)
                    if args.json
                    else f"{d.delivery_id:>6}  alert {d.alert_id:<6} {d.channel:<8}"
                    f" {d.recipient:<18} {d.status:<9} {d.attempts} attempt(s)  {d.last_error}"
                )
            return 0
        rows = list_alerts(
            conn,
            patient_id=args.patient,
            clinician_id=args.clinician,
            statuses=tuple(args.status or ("open", "acknowledged")),
            audience=args.audience,
        )
    for a in rows:
        print(_json_row(a) if args.json else _line(a))
    if not rows and not args.json:
        print("no alerts", file=sys.stderr)
    return 0


def _change(args: argparse.Namespace, settings: Settings, *, ack: bool) -> int:
    now = datetime.now(UTC)
    with database_dsn(settings) as dsn, connect(dsn) as conn:
        try:
            if ack:
                row = acknowledge(
                    conn, args.alert_id, clinician_id=args.clinician, note=args.note, now=now
                )
            else:
                row = resolve(
                    conn, args.alert_id, clinician_id=args.clinician, note=args.note, now=now
                )
            conn.commit()
        except AlertError as exc:
            print(f"paceline: error: {exc}", file=sys.stderr)
            return 2
    print(_line(row))
    return 0


def run_ack(args: argparse.Namespace, settings: Settings) -> int:
    """Acknowledge an alert."""
    return _change(args, settings, ack=True)


def run_resolve(args: argparse.Namespace, settings: Settings) -> int:
    """Resolve an alert."""
    return _change(args, settings, ack=False)
