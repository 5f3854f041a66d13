"""`paceline patients add|list|show` and `paceline care-team add|remove`: a clinic's caseload.

Who these commands are. Like `paceline accounts`, they are the clinic
administrator's tools: on the embedded server they connect as its superuser,
with `PACELINE_DATABASE_URL` as the role that URL names (an administrator's, or
`paceline_migrate`). They read through the dashboard's read models
(`paceline.pacing.overview`, `records`, `planning`) outside a person session, so
row-level security does not narrow them; `--clinician ID` narrows a listing to
that clinician's care team. Every `show` of a patient is audited as
`cli:<operating-system user>`, as the exports are.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg

from paceline.cli.database import database_dsn
from paceline.cli.flags import flag_document
from paceline.cli.output import add_json_option, emit_json
from paceline.cli.settings import Settings
from paceline.pacing import overview, planning, records
from paceline.pacing.alerts import list_alerts
from paceline.pacing.progression import PlanVersion
from paceline.store import access, registry
from paceline.store.connection import connect

RECENT_DAYS: Final = 14
"""Days of daily metrics `patients show` prints."""

SEXES: Final = ("female", "male", "unspecified")


def register(commands: Any) -> None:
    """Add the `patients` and `care-team` command groups."""
    group = commands.add_parser("patients", help="enrol, list and look at patients")
    sub = group.add_subparsers(dest="patients_command", required=True, metavar="SUBCOMMAND")

    add = sub.add_parser("add", help="enrol a patient")
    add.add_argument("--ref", required=True, help="the clinic's own reference (unique)")
    add.add_argument("--name", required=True, help="the name clinicians see")
    add.add_argument("--birth-year", type=int, help="year of birth (for the HR zones)")
    add.add_argument("--sex", choices=SEXES, default="unspecified")
    add.add_argument("--timezone", default="UTC", help="IANA time zone (default UTC)")
    add.add_argument("--hr-max", type=int, metavar="BPM", help="measured maximum heart rate")
    add.add_argument("--hr-rest", type=int, metavar="BPM", help="measured resting heart rate")
    add.add_argument(
        "--clinician", type=int, metavar="ID", help="put this clinician on the care team"
    )
    add.add_argument(
        "--enrolled",
        type=date.fromisoformat,
        metavar="DAY",
        help="the day the programme started, in the patient's time zone (default: now)",
    )
    add_json_option(add, "the patient as an object (patient_id, external_ref, display_name, …)")
    add.set_defaults(handler=run_add)

    listing = sub.add_parser("list", help="every patient with plan, flags and alerts")
    listing.add_argument("--clinician", type=int, metavar="ID", help="only this care team")
    add_json_option(
        listing,
        "an array, one object per patient: patient_id, external_ref, display_name, measure,"
        " quota, load_yesterday, open_flags (rule ids), open_alerts, critical_alerts,"
        " flare_risk, last_wear_day, last_upload",
    )
    listing.set_defaults(handler=run_list)

    show = sub.add_parser(
        "show", help="one patient: plan, today, open flags with their evidence, recent days"
    )
    show.add_argument("patient_id", type=int, metavar="ID")
    add_json_option(
        show,
        "an object: patient, care_team, plan, plan_history, today, flags (each with its"
        " evidence as sentences), alerts, days, flare_risk",
    )
    show.set_defaults(handler=run_show)

    team = commands.add_parser("care-team", help="who may see and act for a patient")
    team_sub = team.add_subparsers(dest="care_team_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        ("add", "put a clinician on a patient's care team"),
        ("remove", "take a clinician off it"),
    ):
        p = team_sub.add_parser(name, help=text)
        p.add_argument("--patient", type=int, required=True, metavar="ID")
        p.add_argument("--clinician", type=int, required=True, metavar="ID")
        if name == "add":
            p.add_argument("--role", choices=registry.CARE_TEAM_ROLES, default="physiotherapist")
        p.set_defaults(handler=run_team_add if name == "add" else run_team_remove)


def _patient_doc(p: registry.Patient) -> dict[str, Any]:
    return {
        "patient_id": p.patient_id,
        "external_ref": p.external_ref,
        "display_name": p.display_name,
        "birth_year": p.birth_year,
        "sex": p.sex,
        "hr_max_bpm": p.hr_max_bpm,
        "hr_rest_bpm": p.hr_rest_bpm,
        "timezone": p.timezone,
        "enrolled_at": p.enrolled_at,
    }


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Enrol a patient (and put a clinician on the care team), all or nothing."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        if args.clinician is not None:
            registry.get_clinician(conn, args.clinician)
        if registry.patient_id_by_ref(conn, args.ref) is not None:
            raise registry.DuplicateError(f"a patient with reference {args.ref!r} exists already")
        try:
            patient = registry.create_patient(
                conn,
                external_ref=args.ref,
                display_name=args.name,
                birth_year=args.birth_year,
                sex=args.sex,
                hr_max_bpm=args.hr_max,
                hr_rest_bpm=args.hr_rest,
                timezone=args.timezone,
                enrolled_at=None if args.enrolled is None else _day_start(args),
            )
        except psycopg.errors.CheckViolation as exc:
            raise registry.InvalidPatientError(
                f"the patient was not enrolled: {exc.diag.constraint_name} refuses the values"
                " (birth year 1900-2100, max HR 100-250, resting HR 25-120 bpm, name 1-200"
                " and reference 1-64 characters)"
            ) from None
        if args.clinician is not None:
            registry.assign_care_team(
                conn, clinician_id=args.clinician, patient_id=patient.patient_id
            )
        conn.commit()
    if args.json:
        emit_json(_patient_doc(patient))
    else:
        team = f", care team: clinician {args.clinician}" if args.clinician is not None else ""
        print(
            f"patient {patient.patient_id} ({patient.external_ref}, {patient.display_name}){team}"
        )
    return 0


def _day_start(args: argparse.Namespace) -> datetime:
    """Local midnight of `--enrolled` in the patient's zone (checked before it is used)."""
    registry.check_timezone(args.timezone)
    return datetime.combine(args.enrolled, time(0), ZoneInfo(args.timezone))


def _list_doc(e: overview.CaseloadEntry) -> dict[str, Any]:
    return {
        "patient_id": e.patient_id,
        "external_ref": e.external_ref,
        "display_name": e.display_name,
        "measure": e.measure,
        "quota": e.plan.quota if e.plan is not None else None,
        "load_yesterday": e.load_yesterday,
        "open_flags": [f.rule_id for f in e.flags],
        "open_alerts": e.open_alerts,
        "critical_alerts": e.critical_alerts,
        "flare_risk": e.flare_risk,
        "last_wear_day": e.last_wear_day,
        "last_upload": e.last_upload,
    }


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the caseload (every patient, or one clinician's care team)."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        entries = overview.caseload(conn, now=datetime.now(UTC))
        if args.clinician is not None:
            registry.get_clinician(conn, args.clinician)
            team = set(registry.patients_of(conn, args.clinician))
            entries = [e for e in entries if e.patient_id in team]
    if args.json:
        emit_json([_list_doc(e) for e in entries])
        return 0
    if not entries:
        print("no patients")
        return 0
    print(f"{'ID':>5}  {'REF':<16} {'NAME':<28} {'QUOTA':>9} {'ALERTS':>6}  OPEN FLAGS")
    for e in entries:
        quota = "-" if e.quota_yesterday is None else f"{e.quota_yesterday:.0f}"
        flags = ", ".join(f.rule_id for f in e.flags) or "-"
        print(
            f"{e.patient_id:>5}  {e.external_ref:<16} {e.display_name[:28]:<28} {quota:>9}"
            f" {e.open_alerts:>6}  {flags}"
        )
    return 0


def _plan_doc(p: PlanVersion | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "version": p.version,
        "measure": p.measure,
        "baseline": p.baseline,
        "quota": p.quota,
        "valid_from": p.valid_from,
        "cause": p.cause,
        "reason": p.reason,
        "hr_ceiling_bpm": p.hr_ceiling_bpm,
        "step_fraction": p.step_fraction,
        "period_days": p.period_days,
        "created_by": p.created_by,
    }


def patient_document(conn: psycopg.Connection[Any], patient_id: int) -> dict[str, Any]:
    """What `patients show` prints, as one JSON-ready document (raises for an unknown patient)."""
    patient = registry.get_patient(conn, patient_id)
    now = datetime.now(UTC)
    ctx_today = records.patient_context(conn, patient_id).local_day(now)
    t = overview.timeline(conn, patient_id, ctx_today - timedelta(days=RECENT_DAYS - 1), ctx_today)
    status = planning.today_status(conn, patient_id, now=now)
    open_flags = [f for f in t.flags if f.status != "resolved"]
    alerts = list_alerts(conn, patient_id=patient_id, audience="care_team")
    return {
        "patient": _patient_doc(patient),
        "care_team": registry.care_team_of(conn, patient_id),
        "plan": _plan_doc(t.plan_on(ctx_today)),
        "plan_history": [_plan_doc(p) for p in t.plans],
        "today": status,
        "flags": [flag_document(patient_id, f) for f in open_flags],
        "alerts": alerts,
        "days": list(t.days),
        "flare_risk": ({"day": t.risk[-1].day, "score": t.risk[-1].score} if t.risk else None),
    }


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print one patient's plan, today, open flags with their evidence and recent days."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        doc = patient_document(conn, args.patient_id)
        _audit(conn, "cli.patient.show", "patient", patient_id=args.patient_id)
        conn.commit()
    if args.json:
        emit_json(doc)
        return 0
    print(_show_text(doc))
    return 0


def _show_text(doc: dict[str, Any]) -> str:
    p = doc["patient"]
    lines = [
        f"patient {p['patient_id']}: {p['display_name']} ({p['external_ref']}, {p['timezone']})"
    ]
    team = ", ".join(
        f"{m.display_name} ({m.role}, clinician {m.clinician_id})" for m in doc["care_team"]
    )
    lines.append(f"care team: {team or 'nobody yet (paceline care-team add)'}")
    plan = doc["plan"]
    if plan is None:
        lines.append("plan: none yet (the first valid days set the baseline)")
    else:
        quota = "collecting baseline days" if plan["quota"] is None else f"quota {plan['quota']:g}"
        lines.append(
            f"plan v{plan['version']} from {plan['valid_from']}: {plan['measure'].value}, {quota}"
            f" ({plan['reason']})"
        )
    today = doc["today"]
    lines.append(f"today: {today.message if today is not None else 'no plan yet'}")
    if doc["flare_risk"] is not None:
        lines.append(
            f"flare risk (48 h, {doc['flare_risk']['day']}): {doc['flare_risk']['score']:.0%}"
        )
    if not doc["flags"]:
        lines.append("open flags: none")
    for f in doc["flags"]:
        lines.append(
            f"flag {f['flag_id']} {f['severity'].value} {f['title']} ({f['rule_id']}, {f['status']})"
        )
        lines.extend(f"    {s}" for s in f["sentences"])
    for a in doc["alerts"]:
        lines.append(f"alert {a.alert_id} {a.status}: {a.summary}")
    lines.append(f"last {RECENT_DAYS} days:")
    lines.append(f"  {'DAY':<10} {'WORN':>6} {'ACTIVE':>7} {'STEPS':>7} {'TRIMP':>6} {'RMSSD':>6}")
    for d in doc["days"]:
        trimp = "-" if d.trimp is None else f"{d.trimp:.0f}"
        rmssd = "-" if d.rmssd_ms is None else f"{d.rmssd_ms:.0f}"
        lines.append(
            f"  {d.day}  {d.wear_min:>5.0f}m {d.active_min:>6.0f}m {d.steps:>7} {trimp:>6}"
            f" {rmssd:>6}"
        )
    if not doc["days"]:
        lines.append("  no daily metrics yet")
    return "\n".join(lines)


def _audit(conn: psycopg.Connection[Any], action: str, obj: str, **fields: Any) -> None:
    """An audit entry naming the operating-system user who ran the command."""
    access.audit(conn, actor=f"cli:{getpass.getuser()}", action=action, obj=obj, **fields)


def run_team_add(args: argparse.Namespace, settings: Settings) -> int:
    """Put a clinician on a patient's care team (idempotent; a second add changes the role)."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        registry.get_patient(conn, args.patient)
        registry.get_clinician(conn, args.clinician)
        registry.assign_care_team(
            conn, clinician_id=args.clinician, patient_id=args.patient, role=args.role
        )
        _audit(
            conn,
            "care_team.add",
            "care_team",
            patient_id=args.patient,
            clinician_id=args.clinician,
            detail={"role": args.role},
        )
        conn.commit()
    print(f"clinician {args.clinician} is on patient {args.patient}'s care team ({args.role})")
    return 0


def run_team_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Take a clinician off a patient's care team; an error when they were not on it."""
    with database_dsn(settings, announce=False) as dsn, connect(dsn) as conn:
        registry.get_patient(conn, args.patient)
        if not registry.remove_care_team(
            conn, clinician_id=args.clinician, patient_id=args.patient
        ):
            raise registry.NotFoundError(
                f"clinician {args.clinician} is not on patient {args.patient}'s care team"
            )
        _audit(
            conn,
            "care_team.remove",
            "care_team",
            patient_id=args.patient,
            clinician_id=args.clinician,
        )
        conn.commit()
    print(f"clinician {args.clinician} is no longer on patient {args.patient}'s care team")
    return 0
