"""`paceline alerts list|ack|resolve`: the alert life cycle from the command line.

The same functions the dashboard calls (`paceline.pacing.alerts`); the CLI
acts for the clinician given with `--clinician` and is audited as them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.output import add_json_option, emit_json
from paceline.cli.settings import Settings
from paceline.pacing.alerts import (
    AlertRow,
    acknowledge,
    dead_letters,
    list_alerts,
    resolve,
)
from paceline.store.connection import connect
from paceline.store.registry import get_patient

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
    add_json_option(
        ls,
        "an array, one object per alert (alert_id, patient_id, rule_id, flag_id, window_start,"
        " window_end, severity, audience, urgency, status, summary, opened_at, last_notified_at,"
        " repeats, episodes, acknowledged_at, acknowledged_by, ack_note, resolved_at,"
        " resolved_by, resolution), or with --dead one per dead-lettered delivery",
    )
    ls.set_defaults(handler=run_list)
    for name, text in (("ack", "acknowledge an open alert"), ("resolve", "resolve an alert")):
        p = sub.add_parser(name, help=text)
        p.add_argument("alert_id", type=int)
        p.add_argument("--clinician", type=int, required=True, help="who acts (audited)")
        p.add_argument("--note", default="", help="what was done (required for ack)")
        p.add_argument("--json", action="store_true", help="print the alert as one JSON object")
        p.set_defaults(handler=run_ack if name == "ack" else run_resolve)


def _line(a: AlertRow) -> str:
    window = f"{a.window_start:%Y-%m-%d}"
    return (
        f"{a.alert_id:>6}  patient {a.patient_id:<6} {a.status:<12} {a.severity:<8}"
        f" {a.rule_id:<22} since {window}  {a.summary}"
    )


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print alerts (or dead letters)."""
    with database_dsn(settings, announce=not args.json) as dsn, connect(dsn) as conn:
        if args.patient is not None:
            get_patient(conn, args.patient)
        if args.dead:
            dead = dead_letters(conn)
            if args.json:
                emit_json(dead)
            for d in [] if args.json else dead:
                print(
                    f"{d.delivery_id:>6}  alert {d.alert_id:<6} {d.channel:<8}"
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
    if args.json:
        emit_json(rows)
        return 0
    for a in rows:
        print(_line(a))
    if not rows:
        print("no alerts", file=sys.stderr)
    return 0


def _change(args: argparse.Namespace, settings: Settings, *, ack: bool) -> int:
    """Acknowledge or resolve the alert, as the clinician.

    An `AlertError` (unknown alert, wrong state, not on the care team, no note)
    reaches `main`, which prints it and exits 2.
    """
    now = datetime.now(UTC)
    change = acknowledge if ack else resolve
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        row = change(conn, args.alert_id, clinician_id=args.clinician, note=args.note, now=now)
        conn.commit()
    if args.json:
        emit_json(row)
    else:
        print(_line(row))
    return 0


def run_ack(args: argparse.Namespace, settings: Settings) -> int:
    """Acknowledge an alert."""
    return _change(args, settings, ack=True)


def run_resolve(args: argparse.Namespace, settings: Settings) -> int:
    """Resolve an alert."""
    return _change(args, settings, ack=False)
