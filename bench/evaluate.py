"""Benchmark the evaluation: its cost against history length, and a nightly pass on the queue.

1. Cost against history: three simulated patients played day by day through the
   engine (`paceline.pacing.replay.play`, as the nightly job would) for 30, 180
   and 365 days; then each is given new days, and the evaluation of each new day
   is timed (median of `NEW_DAYS` per patient, interleaved across the three).
   `cost_365_over_30` is the reference measured in the same run: target <= 1.5
   (an evaluation must read a bounded window plus stored state, not the whole
   history).
2. A nightly pass over `--patients` (default 10,000) simulated patients, the same
   work timed with 1 and with 2 `paceline worker --until-idle` processes:

   - set-up, once: `HISTORY_DAYS` days of daily metrics and diary per patient
     loaded with COPY; the night before the measured one evaluated through the
     queue by 2 workers (each patient's first evaluation, from enrolment: it
     leaves the stored state a nightly pass continues from, as in production);
     then the measured night's fan-out (`paceline.pacing.jobs.tasks.nightly_pass`:
     one `evaluate` job and one work-list row per patient);
   - that database is the template of two copies (`CREATE DATABASE ... TEMPLATE`,
     made just before each pass): the same patients, night, stored state and
     queued jobs, down to the job ids. Each copy is drained by 1 or 2 workers
     whose clock (`PACELINE_CLOCK_START`) starts at the same instant, the
     measured night's 01:00 UTC;
   - the time from the first job's start to the last one's end (procrastinate's
     event log: process start-up is not per patient) gives `patients_per_s_1` and
     `patients_per_s_2`; `scaling` is their ratio (target >= 1.6 on 2 cores);
   - the two copies must then hold the same flags, alerts, deliveries, plans,
     flare risk, stored state and audit rows (compared as row sets without
     surrogate ids and the instants rows were written at); a difference fails
     the run, since the passes would not have done the same work.

The last line is one JSON object; the exit status is 1 if a target is missed.

Run: ``.venv/bin/python bench/evaluate.py [--patients N] [--dsn DSN]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from paceline.pacing.engine import evaluate_patient
from paceline.pacing.jobs import tasks
from paceline.pacing.replay import DIARY_TIME, play, store_sim_day
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import registry
from paceline.store.connection import connect
from paceline.store.testing import temporary_database, temporary_server

ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)
HISTORIES = (30, 180, 365)
NEW_DAYS = 7
HISTORY_DAYS = 30
COST_TARGET = 1.5
SCALING_TARGET = 1.6
#: A nightly pass for one time zone has to fit in this window (01:00 to 02:00 local).
NIGHTLY_WINDOW_S = 3600
PERSONAS = tuple(Persona)


def _patient(conn: psycopg.Connection[Any], label: str) -> int:
    """Enrol one simulated patient on `START` (UTC)."""
    p = registry.create_patient(
        conn,
        external_ref=f"BENCH-{label}",
        display_name=f"Bench {label}",
        birth_year=1975,
        sex="female",
        enrolled_at=datetime.combine(START, dtime(0), UTC),
    )
    conn.commit()
    return p.patient_id


def cost_against_history(dsn: str) -> dict[str, float]:
    """Median ms of evaluating one new day after 30, 180 and 365 days of history."""
    with connect(dsn) as conn:
        sims = {n: SimPatient(Persona.STEADY, seed=n) for n in HISTORIES}
        pids = {n: _patient(conn, f"history-{n}") for n in HISTORIES}
        for n in HISTORIES:
            play(conn, pids[n], sims[n], start=START, days=n)
            print(f"history of {n} days played", file=sys.stderr, flush=True)
        timings: dict[int, list[float]] = {n: [] for n in HISTORIES}
        for i in range(NEW_DAYS):
            for n in HISTORIES:
                day = START + timedelta(days=n + i)
                store_sim_day(conn, pids[n], sims[n].next_day(day, None))
                conn.commit()
                t0 = time.perf_counter()
                evaluate_patient(conn, pids[n], day)
                conn.commit()
                timings[n].append((time.perf_counter() - t0) * 1000.0)
    return {f"cost_{n}_ms": round(statistics.median(timings[n]), 2) for n in HISTORIES}


def _copy_rows(conn: psycopg.Connection[Any], statement: str, rows: list[tuple[Any, ...]]) -> None:
    """COPY `rows` with `statement` (text format: the rows are plain numbers and dates)."""
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def seed_cohort(conn: psycopg.Connection[Any], n_patients: int, days: int) -> list[int]:
    """`n_patients` patients with `days` days of metrics and diary each, loaded with COPY."""
    enrolled = datetime.combine(START, dtime(0), UTC)
    _copy_rows(
        conn,
        "COPY patient (external_ref, display_name, birth_year, sex, timezone, enrolled_at)"
        " FROM STDIN",
        [
            (f"COHORT-{i}", f"Cohort {i}", 1950 + i % 50, "female", "UTC", enrolled)
            for i in range(n_patients)
        ],
    )
    pids = [
        int(r[0])
        for r in conn.execute(
            "SELECT patient_id FROM patient WHERE external_ref LIKE 'COHORT-%' ORDER BY patient_id"
        ).fetchall()
    ]
    metrics: list[tuple[Any, ...]] = []
    diary: list[tuple[Any, ...]] = []
    for k, pid in enumerate(pids):
        sim = SimPatient(PERSONAS[k % len(PERSONAS)], seed=k)
        for i in range(days):
            d = sim.next_day(START + timedelta(days=i), None)
            if d.reported:
                row = d.metrics_row()
                zones = "{" + ",".join(str(z) for z in row["zone_min"]) + "}"  # type: ignore[attr-defined]
                metrics.append(
                    (
                        pid,
                        d.day,
                        d.wear_min,
                        zones,
                        d.above_ceiling_min,
                        d.trimp,
                        d.steps,
                        d.active_min,
                        d.hr_samples,
                    )
                )
            if d.pain is not None:
                at = datetime.combine(d.day, DIARY_TIME, UTC)
                diary.append((pid, at, d.pain, d.pain, d.pain, d.sleep, d.fear))
    _copy_rows(
        conn,
        "COPY daily_metrics (patient_id, day, wear_min, zone_min, above_ceiling_min,"
        " trimp_banister, steps, active_min, hr_samples) FROM STDIN",
        metrics,
    )
    _copy_rows(
        conn,
        "COPY self_report (patient_id, reported_at, pain_now, pain_average, pain_worst,"
        " sleep_quality, fear_of_movement) FROM STDIN",
        diary,
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    return pids


def nightly_for(conn: psycopg.Connection[Any], day: date) -> tuple[int, float]:
    """Run the nightly fan-out that lists `day` for every (UTC) patient; how many, in seconds."""
    night = night_of(day)
    t0 = time.perf_counter()
    queued = tasks.nightly_pass(conn, night - timedelta(minutes=15), night)
    conn.commit()
    print(f"nightly pass for {day}: {queued} patients queued", file=sys.stderr, flush=True)
    return queued, time.perf_counter() - t0


def night_of(day: date) -> datetime:
    """The instant `day`'s nightly pass comes for a UTC patient (01:00 the next day)."""
    return tasks.nightly_instant(day + timedelta(days=1), ZoneInfo("UTC"))


def last_job(conn: psycopg.Connection[Any]) -> int:
    """The id of the newest job in the queue (0 when empty)."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs").fetchone()
    conn.commit()
    return int(row[0]) if row else 0


@contextmanager
def database_copy(server: str, template_dsn: str, label: str) -> Iterator[str]:
    """A copy of the database at `template_dsn` (which nobody may be connected to); dropped after."""
    template = str(conninfo_to_dict(template_dsn)["dbname"])
    name = f"{template}_{label}"
    with connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        with connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def drain(dsn: str, workers: int, log: Path, *, after_job: int, clock_start: datetime) -> float:
    """Run `workers` `paceline worker --until-idle` processes; seconds of work they did.

    Their clock starts at `clock_start` (`PACELINE_CLOCK_START`), so that passes over
    copies of one database see the same "now" at their start. Measured in the queue's
    own event log over the jobs after `after_job`, from the first one's start to the
    last one's end, so that the processes' start-up (seconds of imports on a loaded
    machine, once per process, not per patient) is left out.
    """
    env = {
        **os.environ,
        "PACELINE_DATABASE_URL": dsn,
        "PACELINE_CLOCK_START": clock_start.isoformat(),
    }
    argv = [sys.executable, "-m", "paceline.cli.main", "worker", "--until-idle"]
    with log.open("ab") as out:
        procs = [
            subprocess.Popen(
                [*argv, "--queue", "evaluate"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for _ in range(workers)
        ]
        codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}); see {log}")
    with connect(dsn) as conn:
        span = conn.execute(
            "SELECT extract(epoch FROM max(e.at) - min(e.at)) FROM procrastinate_events e"
            " WHERE e.job_id IN (SELECT id FROM procrastinate_jobs WHERE id > %s)"
            " AND e.type IN ('started', 'succeeded')",
            (after_job,),
        ).fetchone()
        left = leftover(conn)
    if left:
        raise SystemExit(f"{left} jobs or work-list rows left after the pass; see {log}")
    return float(span[0]) if span and span[0] is not None else 0.0


def leftover(conn: psycopg.Connection[Any]) -> int:
    """Evaluations not succeeded, failed jobs and work-list rows left after a pass (must be 0)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
        "  AND (queue_name = 'evaluate' OR status = 'failed'))"
        " + (SELECT count(*) FROM evaluation_due)"
    ).fetchone()
    conn.commit()
    return int(row[0]) if row else -1


#: What an evaluation writes, and the columns left out when two passes are compared:
#: surrogate ids (and the references made of them: rows are inserted in a different
#: order by one worker than by two) and the instants rows were written at (the real
#: time, or the clock a few seconds further on in one pass than in the other).
OUTCOME: Final[dict[str, tuple[str, ...]]] = {
    "flag": ("flag_id", "created_at", "updated_at"),
    "alert": (
        "alert_id",
        "flag_id",
        "created_at",
        "opened_at",
        "last_notified_at",
        "updated_at",
        "acknowledged_at",
        "resolved_at",
    ),
    "alert_delivery": (
        "delivery_id",
        "alert_id",
        "alert_ids",
        "digest_of",
        "message_key",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "created_at",
    ),
    "pacing_plan": ("plan_id", "created_at"),
    "flare_risk": ("computed_at",),
    "pacing_state": ("computed_at",),
    "audit_log": ("audit_id", "at", "seq", "prev_hash", "row_hash", "detail"),
}


def outcome(dsn: str) -> dict[str, Counter[str]]:
    """Each `OUTCOME` table's rows (as JSON, without the columns left out), counted."""
    out: dict[str, Counter[str]] = {}
    with connect(dsn) as conn:
        for table, skip in OUTCOME.items():
            query = sql.SQL("SELECT (to_jsonb(t) - %s::text[])::text FROM {} t").format(
                sql.Identifier(table)
            )
            out[table] = Counter(r[0] for r in conn.execute(query, (list(skip),)))
        conn.commit()
    return out


def scored(dsn: str, day: date) -> int:
    """How many patients have a flare-risk score for `day` (one per patient evaluated)."""
    with connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM flare_risk WHERE day = %s", (day,)).fetchone()
    return int(row[0]) if row else 0


def differences(one: dict[str, Counter[str]], two: dict[str, Counter[str]]) -> list[str]:
    """What one table holds after the first pass and not after the second, or back."""
    found = []
    for table in OUTCOME:
        only_one, only_two = one[table] - two[table], two[table] - one[table]
        if only_one or only_two:
            example = next(iter(only_one or only_two))
            found.append(
                f"{table}: {sum(only_one.values())} row(s) only after 1 worker,"
                f" {sum(only_two.values())} only after 2; e.g. {example[:300]}"
            )
    return found


def nightly_scaling(server: str, n_patients: int, log: Path) -> dict[str, Any]:
    """The nightly pass over `n_patients`, timed with 1 and 2 workers on copies of one state."""
    figures: dict[str, Any] = {"patients": n_patients}
    warm_day = START + timedelta(days=HISTORY_DAYS - 1)
    day = warm_day + timedelta(days=1)
    with ExitStack() as stack:
        t_setup = time.perf_counter()
        base = stack.enter_context(temporary_database(server, "bench_nightly"))
        with connect(base) as conn:
            t0 = time.perf_counter()
            seed_cohort(conn, n_patients, HISTORY_DAYS + 1)
            figures["seed_s"] = round(time.perf_counter() - t0, 1)
            warm_queued, _ = nightly_for(conn, warm_day)
        # Set-up: the night before, each patient's first evaluation (from enrolment).
        warm_s = drain(base, 2, log, after_job=0, clock_start=night_of(warm_day))
        figures["first_evaluations_per_s_2"] = round(warm_queued / warm_s, 1)
        with connect(base) as conn:
            before = last_job(conn)
            queued, fanout_s = nightly_for(conn, day)
        with connect(base, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # the copies start from settled tables alike
        figures["nightly_fanout_s"] = round(fanout_s, 2)
        figures["setup_s"] = round(time.perf_counter() - t_setup, 1)
        print(f"set-up in {figures['setup_s']} s", file=sys.stderr, flush=True)
        results = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            copy = stack.enter_context(database_copy(server, base, f"w{workers}"))
            figures[f"copy_s_{workers}"] = round(time.perf_counter() - t0, 1)
            elapsed = drain(copy, workers, log, after_job=before, clock_start=night_of(day))
            print(f"{day}: {workers} worker(s) in {elapsed:.1f} s", file=sys.stderr, flush=True)
            figures[f"patients_per_s_{workers}"] = round(queued / elapsed, 1)
            evaluated = scored(copy, day)
            if evaluated != queued:
                raise SystemExit(f"{evaluated} of {queued} patients evaluated for {day}; see {log}")
            results[workers] = outcome(copy)
        different = differences(results[1], results[2])
        if different:
            raise SystemExit(
                "the passes with 1 and 2 workers did not do the same work:\n" + "\n".join(different)
            )
        figures["same_rows"] = {t: sum(c.values()) for t, c in results[1].items()}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--patients", type=int, default=10_000, help="cohort of the nightly pass (0: skip it)"
    )
    parser.add_argument(
        "--dsn", help="a server to use (superuser: it copies databases) instead of an embedded one"
    )
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / f"bench-evaluate-{os.getpid()}.log"
    with ExitStack() as stack:
        server = args.dsn or stack.enter_context(temporary_server())
        with temporary_database(server, "bench_evaluate") as dsn:
            figures: dict[str, Any] = dict(cost_against_history(dsn))
        figures["cost_365_over_30"] = round(figures["cost_365_ms"] / figures["cost_30_ms"], 2)
        print(json.dumps(figures), file=sys.stderr, flush=True)
        if args.patients == 0:
            print(json.dumps(figures))
            return 1 if figures["cost_365_over_30"] > COST_TARGET else 0
        figures.update(nightly_scaling(server, args.patients, log))
    figures["scaling"] = round(figures["patients_per_s_2"] / figures["patients_per_s_1"], 2)
    figures["patients_per_node_nightly_hour"] = int(figures["patients_per_s_2"] * NIGHTLY_WINDOW_S)
    misses = []
    if figures["cost_365_over_30"] > COST_TARGET:
        misses.append(f"cost_365_over_30 {figures['cost_365_over_30']} > {COST_TARGET}")
    if figures["scaling"] < SCALING_TARGET:
        misses.append(f"scaling {figures['scaling']} < {SCALING_TARGET}")
    for miss in misses:
        print(f"target missed: {miss}", file=sys.stderr)
    print(json.dumps(figures))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
