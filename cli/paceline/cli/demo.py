"""`paceline demo`: the whole pipeline on the embedded default, end to end, in about a minute.

1. The database: migrations and status (embedded PostgreSQL unless
   `PACELINE_DATABASE_URL` says otherwise).
2. Live ingest: simulated wearables, accelerated, through the real daemon,
   spool and uploader into the store.
3. Daily metrics: the incremental rollup over what just arrived.
4. The pacing engine: a caseload of five simulated patients (the vignettes of
   the pacing issue) played through six weeks, then what a clinician and each
   patient would see today: plan, quota, flags with their evidence, flare risk.

Everything the demo creates is labelled as simulated (`SIM-…`, `DEMO-…`).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg

from paceline.cli import ingest
from paceline.cli.database import database_dsn
from paceline.cli.db import format_status
from paceline.cli.settings import Settings
from paceline.pacing import records
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.planning import current_plan, plan_history
from paceline.pacing.records import flags_for
from paceline.pacing.replay import play
from paceline.pacing.rollup import rollup
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import registry
from paceline.store.connection import connect
from paceline.store.migrate import migrate
from paceline.store.status import database_status

HISTORY_DAYS = 42
CASELOAD = (
    (Persona.STEADY, "Steady progresser", 40.0),
    (Persona.BOOM_BUST, "Boom-buster", 40.0),
    (Persona.AVOIDER, "Fear-avoider", 30.0),
    (Persona.FLARE_AFTER_SPIKE, "Flare after a spike", 40.0),
    (Persona.MISSING_WEAR, "Patchy wear", 40.0),
)


def register(commands: Any) -> None:
    """Add the `demo` command."""
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on simulated wearables and a simulated caseload"
    )
    demo.add_argument("--wearables", type=int, default=3, help="simulated wearables (default 3)")
    demo.add_argument(
        "--duration", type=float, default=20.0, help="real seconds of live ingest (default 20)"
    )
    demo.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)"
    )
    demo.set_defaults(handler=run_demo)


def _heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


LOG_FILE: Final = "demo.log"
"""The demo's log, in `PACELINE_DATA_DIR`: the terminal gets the story, the file the detail."""


@contextmanager
def logging_to(path: Path, level: int = logging.INFO) -> Iterator[None]:
    """Send log records of `level` and above to `path` (appended) instead of the terminal.

    Only the plain terminal handlers are set aside (what `main`'s basicConfig installs);
    others, such as a test runner's capture, keep receiving records. Everything is
    restored on exit.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    was_level = root.level
    root.setLevel(level)
    terminal = [h for h in root.handlers if type(h) is logging.StreamHandler]
    for handler in terminal:
        root.removeHandler(handler)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    try:
        yield
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler in terminal:
            root.addHandler(handler)
        root.setLevel(was_level)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the four stages of the demo, logging to `LOG_FILE` in the data directory."""
    log_path = settings.data_dir / LOG_FILE
    print(f"log: {log_path} (the daemon's and the engine's log lines go there)", flush=True)
    with logging_to(log_path, logging.DEBUG if getattr(args, "verbose", False) else logging.INFO):
        return _run_demo(args, settings)


def _run_demo(args: argparse.Namespace, settings: Settings) -> int:
    with database_dsn(settings) as dsn:
        _heading("1. Database")
        with connect(dsn, autocommit=True) as conn:
            result = migrate(
                conn, compress_after=settings.compress_after, retention=settings.retention
            )
            print(f"migrations applied now: {list(result.applied) or 'none (up to date)'}")
            print(format_status(database_status(conn)))

        _heading(
            f"2. Live ingest: {args.wearables} simulated wearables for {args.duration:g} s"
            f" at {args.speed:g}x (daemon → spool → uploader → store)"
        )
        live = argparse.Namespace(
            simulate=args.wearables,
            speed=args.speed,
            duration=args.duration,
            progress=max(args.duration / 2, 1.0),
            gateway_id="demo-gateway",
        )
        code = ingest.stream(live, settings, dsn)
        if code:
            return code

        with connect(dsn) as conn:
            _heading("3. Daily metrics (incremental rollup of the days that received samples)")
            done = rollup(conn)
            print(
                f"recomputed {done.days} patient-day(s) from {done.rows_read:,} stored sample rows"
            )
            _show_live_days(conn)

            _heading(f"4. Pacing engine: a simulated caseload over {HISTORY_DAYS} days")
            today = datetime.now(UTC).date()
            # Six weeks of nightly evaluations log every plan change; the
            # summary below says what matters, so keep the replay quiet.
            logging.getLogger("paceline.pacing").setLevel(logging.WARNING)
            for persona, label, tolerance in CASELOAD:
                patient_id, fresh = _caseload_patient(conn, persona, label, today)
                if fresh:
                    play(
                        conn,
                        patient_id,
                        SimPatient(
                            persona, seed=list(Persona).index(persona) + 1, tolerance_min=tolerance
                        ),
                        start=today - timedelta(days=HISTORY_DAYS),
                        days=HISTORY_DAYS,
                        skip_exposures_every=3 if persona is Persona.AVOIDER else None,
                    )
                _show_patient(conn, patient_id, label, today - timedelta(days=1))
        print(
            "\nThe data stays in the database above: run `paceline db status`,"
            " `paceline ingest status`, or the demo again to add the next minutes."
            f"\nLog: {settings.data_dir / LOG_FILE}"
        )
    return 0


def _show_live_days(conn: psycopg.Connection[Any]) -> None:
    for name, day, wear, steps, active, mean_hr, rmssd, n_hr, n_rr in records.live_days(
        conn, ref_prefix="SIM-"
    ):
        hr = f"{mean_hr:.0f} bpm" if mean_hr is not None else "–"
        hrv = f"{rmssd:.0f} ms" if rmssd is not None else "–"
        print(
            f"  {name:<24} {day}  worn {wear:5.0f} min  steps {steps:6d}  active {active:4.0f} min"
            f"  mean HR {hr:>7}  RMSSD {hrv:>6}  ({n_hr:,} HR, {n_rr:,} RR)"
        )


def _caseload_patient(
    conn: psycopg.Connection[Any], persona: Persona, label: str, today: date
) -> tuple[int, bool]:
    """The demo patient for a persona, enrolled on first use; True when it still needs a history."""
    ref = f"DEMO-{persona.value.upper()}"
    known = registry.patient_id_by_ref(conn, ref)
    if known is not None:
        return known, False
    enrolled = datetime.combine(today - timedelta(days=HISTORY_DAYS), datetime.min.time(), UTC)
    patient = registry.create_patient(
        conn, external_ref=ref, display_name=f"{label} (simulated)", enrolled_at=enrolled
    )
    conn.commit()
    return patient.patient_id, True


def _show_patient(conn: psycopg.Connection[Any], patient_id: int, label: str, day: date) -> None:
    evaluation = evaluate_patient(conn, patient_id, day)
    conn.commit()
    plan = current_plan(conn, patient_id)
    history = plan_history(conn, patient_id)
    print(f"\n  {label}")
    if plan is None or plan.quota is None:
        print("    plan: collecting baseline days")
    else:
        quotas = [f"{p.quota:.0f}" for p in history if p.quota is not None]
        print(
            f"    plan v{plan.version}: {plan.measure.value}, baseline {plan.baseline:.0f},"
            f" quota {' → '.join(quotas)}"
        )
    if evaluation.today is not None:
        print(f"    patient view on {day}: {evaluation.today.message}")
    every = flags_for(conn, patient_id, include_resolved=True)
    open_flags = [f for f in every if f.status != "resolved"]
    if not open_flags:
        print("    open flags: none")
    for flag in open_flags[:6]:
        print(
            f"    open flag {flag.rule_id:<22} {flag.severity:<8} {flag.window_start:%Y-%m-%d}"
            f"..{flag.window_end:%Y-%m-%d}"
        )
    resolved = Counter(f.rule_id for f in every if f.status == "resolved")
    if resolved:
        print(
            "    resolved earlier: "
            + ", ".join(f"{rule} ×{n}" for rule, n in sorted(resolved.items()))
        )
    risk = evaluation.flare_risk
    if risk is not None:
        why = "; ".join(f.text for f in risk.contributing[:2]) or "no factor raised it"
        print(f"    flare risk next 48 h: {risk.score:.0%} ({why})")
