"""`paceline flags list [--open] [--patient ID] [--clinician ID]`: flags with their evidence.

Connects as the clinic commands do (see `paceline.cli.patients`); reads through
`paceline.pacing.records.flags_for`, words the evidence as the dashboard does.
"""

from __future__ import annotations

import argparse
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.output import add_json_option, emit_json
from paceline.cli.settings import Settings
from paceline.pacing import overview, records
from paceline.pacing.flag_wording import rule_title, sentences
from paceline.store import registry
from paceline.store.connection import connect


def register(commands: Any) -> None:
    """Add the `flags` command group."""
    group = commands.add_parser("flags", help="the flags the pacing engine raised")
    sub = group.add_subparsers(dest="flags_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="flags, newest window first, with their evidence")
    listing.add_argument("--open", action="store_true", help="only open and acknowledged flags")
    listing.add_argument("--patient", type=int, metavar="ID", help="only this patient's flags")
    listing.add_argument("--clinician", type=int, metavar="ID", help="only this care team's")
    add_json_option(
        listing,
        "an array, one object per flag: flag_id, patient_id, rule_id, title, severity, status,"
        " window_start, window_end, sentences (the evidence in words), evidence (as stored)",
    )
    listing.set_defaults(handler=run_list)


def flag_document(patient_id: int, f: records.FlagView) -> dict[str, Any]:
    """One flag as the listings print it, its evidence in sentences and as stored."""
    return {
        "flag_id": f.flag_id,
        "patient_id": patient_id,
        "rule_id": f.rule_id,
        "title": rule_title(f.rule_id),
        "severity": f.severity,
        "status": f.status,
        "window_start": f.window_start,
        "window_end": f.window_end,
        "sentences": sentences(f.rule_id, f.evidence),
        "evidence": f.evidence,
    }


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print flags of every patient, one patient or one care team."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        if args.patient is not None:
            ids = [registry.get_patient(conn, args.patient).patient_id]
        else:
            ids = sorted(overview.patient_labels(conn))
        if args.clinician is not None:
            registry.get_clinician(conn, args.clinician)
            team = set(registry.patients_of(conn, args.clinician))
            ids = [i for i in ids if i in team]
        found = [
            (pid, f)
            for pid in ids
            for f in records.flags_for(conn, pid, include_resolved=not args.open)
        ]
    if args.json:
        emit_json([flag_document(pid, f) for pid, f in found])
        return 0
    if not found:
        print("no flags")
        return 0
    for pid, f in found:
        print(
            f"{f.flag_id:>6}  patient {pid:<5} {f.status:<12} {f.severity.value:<8}"
            f" {f.window_start:%Y-%m-%d}..{f.window_end:%Y-%m-%d}  {rule_title(f.rule_id)}"
        )
        print(f"        {sentences(f.rule_id, f.evidence)[0]}")
    return 0
