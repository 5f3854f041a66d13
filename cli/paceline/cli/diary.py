"""`paceline diary add`: a clinician types in a patient's paper diary.

The entry goes through `paceline.pacing.intake.submit_diary`, the intake the
patient's own page uses (same validation, same storage), and in the same
transaction the audit log records that clinician `--clinician` entered it.
The clinician must be on the patient's care team. Entering the same sheet
twice (same patient and time) stores it once; the same time with other
ratings is refused (`IdempotencyConflictError`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.errors import CliError
from paceline.cli.output import emit_json
from paceline.cli.settings import Settings
from paceline.pacing import intake, records
from paceline.pacing.records import on_care_team
from paceline.store import access, registry
from paceline.store.connection import connect

RATINGS = (
    ("pain-average", "pain_average", "average pain of the day (0-10)"),
    ("pain-worst", "pain_worst", "worst pain of the day (0-10)"),
    ("fatigue", "fatigue", "fatigue (0-10)"),
    ("mood", "mood", "mood (0-10)"),
    ("sleep", "sleep_quality", "last night's sleep (0 very poor - 10 very good)"),
    ("fear", "fear_of_movement", "worry about moving (0-10)"),
)


def register(commands: Any) -> None:
    """Add the `diary` command group."""
    group = commands.add_parser("diary", help="enter a patient's paper diary")
    sub = group.add_subparsers(dest="diary_command", required=True, metavar="SUBCOMMAND")
    add = sub.add_parser("add", help="enter one diary sheet for a patient (audited as you)")
    add.add_argument("--patient", type=int, required=True, metavar="ID")
    add.add_argument(
        "--clinician", type=int, required=True, metavar="ID", help="who enters it (audited)"
    )
    add.add_argument("--pain", type=int, required=True, help="pain right now (0-10)")
    for flag, _field, text in RATINGS:
        add.add_argument(f"--{flag}", type=int, help=text)
    add.add_argument("--note", help="the patient's own words")
    add.add_argument(
        "--at",
        metavar="TIME",
        help="when the patient filled it in: ISO 8601, e.g. 2026-12-01T20:00; without an"
        " offset it is the patient's local time (default: now)",
    )
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(handler=run_add)


def _when(text: str | None, zone: Any) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(text, f"--at {text!r} is not an ISO 8601 time (2026-12-01T20:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Store one diary entry through the patient intake, audited as the clinician."""
    ratings = {name: getattr(args, name.replace("-", "_")) for name, _f, _t in RATINGS}
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        registry.get_clinician(conn, args.clinician)
        ctx = records.patient_context(conn, args.patient)
        if not on_care_team(conn, args.clinician, args.patient):
            raise CliError(
                args.clinician,
                f"clinician {args.clinician} is not on patient {args.patient}'s care team"
                " (paceline care-team add)",
            )
        reported_at = _when(args.at, ctx.zone)
        with conn.transaction():
            done = intake.submit_diary(
                conn,
                args.patient,
                reported_at=reported_at,
                pain_now=args.pain,
                note=args.note,
                # One paper sheet per patient and minute: typing it in twice stores it once.
                idempotency_key=f"paper:{args.patient}:{reported_at.astimezone(UTC):%Y%m%dT%H%M}",
                **{field: ratings[flag] for flag, field, _t in RATINGS},
            )
            if done.created:
                access.audit(
                    conn,
                    actor=f"clinician:{args.clinician}",
                    action="diary.entered",
                    obj="self_report",
                    patient_id=args.patient,
                    clinician_id=args.clinician,
                    detail={"report_id": done.stored_id, "source": "paper"},
                )
    if args.json:
        emit_json(
            {
                "report_id": done.stored_id,
                "created": done.created,
                "patient_id": args.patient,
                "reported_at": reported_at,
            }
        )
    elif done.created:
        print(
            f"diary entry {done.stored_id} for patient {args.patient} at {reported_at:%Y-%m-%d %H:%M %Z} stored"
        )
    else:
        print(f"diary entry {done.stored_id} was entered before; nothing changed")
    return 0
