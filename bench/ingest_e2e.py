"""End-to-end ingest benchmark: simulated wearables → daemon → spool → uploader → PostgreSQL.

Phase 1 streams M simulated wearables in accelerated time through the daemon into a
throwaway embedded PostgreSQL. Phase 2 streams on while the database is unreachable, so
the spool grows; then the uploader drains that backlog, and the same rows are loaded
with `psql \\copy` into an empty copy of the schema as the reference measured in the same
run. The last line printed is one JSON object:

- `patients`: simulated wearables (one patient each);
- `samples`: rows the wearables emitted that the database must hold exactly (heart rates
  with a reading, RR intervals, step-counter rows), and `db_rows` the rows it holds;
- `exact`: db_rows ÷ samples (1.0: nothing lost, nothing duplicated);
- `rows_per_s`: rows stored per real second while streaming (phase 1);
- `rr_continuity`: stored RR time ÷ connected time of the RR-capable wearables (≈ 1.0
  when no beat is lost);
- `drain_ratio`: backlog drain rows/s ÷ `psql \\copy` rows/s of the same rows (target ≥ 0.5).

Cadence-derived steps (bands) are integrated from receive times and so are not compared
row for row; they are reported as `cadence_step_rows`.

Run: `.venv/bin/python bench/ingest_e2e.py [--patients M] [--speed X] [--stream-s S] [--outage-s S]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/ingest_e2e.py`, Python puts bench/ first on the import path, where
# bench/signal.py (the signal benchmark) would shadow the standard `signal` module that
# asyncio needs. This script imports nothing from bench/, so it takes that entry out.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import json
import logging
import subprocess
import tempfile
import time
from typing import Any

from paceline.devices.simulator import SimulatedBleakClient, WearableKind
from paceline.devices.steps import StepCounter
from paceline.ingest.daemon import DaemonConfig, IngestDaemon
from paceline.ingest.gateway_state import DeviceBinding
from paceline.ingest.simulation import (
    SimulatedFleet,
    build_fleet,
    register_fleet,
    simulated_start,
)
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader
from paceline.store import connect
from paceline.store.embedded import bin_path
from paceline.store.testing import temporary_database, temporary_server

KINDS = (WearableKind.CHEST_STRAP, WearableKind.BAND, WearableKind.PINETIME)
TABLES = {
    "hr_sample": "patient_id, device_id, time, bpm, sensor_contact, energy_kj",
    "rr_interval": "patient_id, device_id, time, rr_ms",
    "step_sample": "patient_id, device_id, time, steps",
}
UNREACHABLE_DSN = "host=/nonexistent/paceline-bench dbname=none user=none connect_timeout=1"


def log(message: str) -> None:
    """Progress on stderr, so that stdout ends with the JSON line."""
    print(message, file=sys.stderr, flush=True)


async def stream(
    fleet: SimulatedFleet, bindings: list[DeviceBinding], spool: Path, dsn: str, seconds: float
) -> IngestDaemon:
    """Run the daemon over the fleet for `seconds` real seconds."""
    daemon = IngestDaemon(
        bindings,
        spool_path=spool,
        dsn=dsn,
        locate=fleet.locate,
        clock=fleet.clock,
        backend=SimulatedBleakClient,
        client_kwargs=fleet.client_kwargs(),
        config=DaemonConfig(drain_on_stop_s=30.0),
        gateway_id="bench",
    )
    await daemon.run(duration_s=seconds, signals=False)
    return daemon


def emitted_rows(fleet: SimulatedFleet) -> tuple[int, float, float]:
    """Rows the database must hold, RR seconds emitted, and connected seconds of RR devices."""
    rows = 0
    rr_s = 0.0
    connected_s = 0.0
    for w in fleet.wearables:
        hr = [h for h in w.truth.heart_rate if h.bpm != 0]
        rr = w.truth.rr_ms()
        rows += len(hr) + len(rr)
        counter = StepCounter()
        for sample in w.truth.step_counts:
            counter, steps = counter.advance(sample.count)
            rows += 1 if steps else 0
        if w.kind in (WearableKind.CHEST_STRAP, WearableKind.BAND):
            rr_s += sum(rr) / 1000
            since: float | None = None
            for change in w.truth.links:
                if change.event == "connected":
                    since = change.time_s
                elif since is not None:
                    connected_s += change.time_s - since
                    since = None
    return rows, rr_s, connected_s


def stored(dsn: str, bindings: list[DeviceBinding], fleet: SimulatedFleet) -> dict[str, float]:
    """Rows the database holds, split as the comparison needs."""
    pinetimes = [
        b.device_id
        for b, w in zip(bindings, fleet.wearables, strict=True)
        if w.kind is WearableKind.PINETIME
    ]
    rr_devices = [
        b.device_id
        for b, w in zip(bindings, fleet.wearables, strict=True)
        if w.kind in (WearableKind.CHEST_STRAP, WearableKind.BAND)
    ]
    with connect(dsn, autocommit=True) as conn:

        def one(query: str, *params: Any) -> float:
            row = conn.execute(query, params).fetchone()
            return float(row[0] or 0) if row else 0.0

        return {
            "hr": one("SELECT count(*) FROM hr_sample"),
            "rr": one("SELECT count(*) FROM rr_interval"),
            "steps_counter": one(
                "SELECT count(*) FROM step_sample WHERE device_id = ANY(%s)", pinetimes
            ),
            "steps_cadence": one(
                "SELECT count(*) FROM step_sample WHERE NOT device_id = ANY(%s)", pinetimes
            ),
            "rr_s": one(
                "SELECT sum(rr_ms) / 1000 FROM rr_interval WHERE device_id = ANY(%s)", rr_devices
            ),
            "quarantined": one("SELECT count(*) FROM ingest_quarantine"),
        }


def boundaries(dsn: str) -> dict[str, list[tuple[int, Any]]]:
    """The last stored time of each device in each table (what came before the outage)."""
    with connect(dsn, autocommit=True) as conn:
        return {
            table: [
                (int(d), t)
                for d, t in conn.execute(f"SELECT device_id, max(time) FROM {table} GROUP BY 1")
            ]
            for table in TABLES
        }


def export_backlog(dsn: str, before: dict[str, list[tuple[int, Any]]], out: Path) -> int:
    """Write the rows stored after the outage boundaries as CSV files; return how many."""
    total = 0
    with connect(dsn, autocommit=True) as conn:
        for table, columns in TABLES.items():
            known = before[table]
            devices = [d for d, _t in known]
            times = [t for _d, t in known]
            query = (
                f"COPY (SELECT {columns} FROM {table} s WHERE s.time > coalesce("
                " (SELECT b.t FROM unnest(%s::bigint[], %s::timestamptz[]) AS b(d, t)"
                "  WHERE b.d = s.device_id), '-infinity')) TO STDOUT (FORMAT csv)"
            )
            with (
                (out / f"{table}.csv").open("wb") as f,
                conn.cursor() as cur,
                cur.copy(query, (devices, times)) as copy,
            ):
                for data in copy:
                    f.write(data)
            with (out / f"{table}.csv").open("rb") as f:
                total += sum(1 for _ in f)
    return total


def psql_copy_seconds(server_dsn: str, files: Path) -> float:
    """Seconds `psql \\copy` takes to load the CSV files into an empty, migrated database."""
    psql = str(bin_path("psql"))
    with temporary_database(server_dsn, "bench_psql") as dsn:
        started = time.perf_counter()
        for table, columns in TABLES.items():
            command = (
                f"\\copy {table} ({columns}) FROM '{files / f'{table}.csv'}' WITH (FORMAT csv)"
            )
            subprocess.run(
                [psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command],
                check=True,
                capture_output=True,
            )
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=24, help="simulated wearables (24)")
    parser.add_argument("--speed", type=float, default=300.0, help="simulated s per real s")
    parser.add_argument("--stream-s", type=float, default=20.0, help="phase 1 real seconds")
    parser.add_argument("--outage-s", type=float, default=25.0, help="phase 2 real seconds")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # Phase 2 makes the uploader warn at every retry, by design; only -v shows that.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)

    covers = args.stream_s + args.outage_s + 60.0
    fleet = build_fleet(
        args.patients,
        speed=args.speed,
        start=simulated_start(args.speed, covers, daytime=True),
        seed=42,
        kinds=KINDS,
    )
    with (
        tempfile.TemporaryDirectory(prefix="paceline-bench-") as tmp,
        temporary_server() as server,
        temporary_database(server, "bench") as dsn,
    ):
        work = Path(tmp)
        spool = work / "spool.sqlite"
        with connect(dsn) as conn:
            bindings = register_fleet(conn, fleet)
        log(f"phase 1: {args.patients} wearables at {args.speed:g}x for {args.stream_s:g} s")
        started = time.perf_counter()
        asyncio.run(stream(fleet, bindings, spool, dsn, args.stream_s))
        stream_s = time.perf_counter() - started
        phase1 = stored(dsn, bindings, fleet)
        phase1_rows = (
            phase1["hr"] + phase1["rr"] + phase1["steps_counter"] + phase1["steps_cadence"]
        )
        before = boundaries(dsn)

        log(f"phase 2: database unreachable for {args.outage_s:g} s; the spool grows")
        asyncio.run(stream(fleet, bindings, spool, UNREACHABLE_DSN, args.outage_s))
        fleet.stop()
        with Spool.open(spool) as s:
            backlog = s.status().pending_rows
        log(f"drain: {backlog} rows in the spool")
        with Spool.open(spool) as s:
            uploader = Uploader(s, dsn)
            started = time.perf_counter()
            reports = uploader.drain()
            drain_s = time.perf_counter() - started
            uploader.close()
        drained = sum(r.inserted + r.duplicates for r in reports)

        files = work / "csv"
        files.mkdir()
        exported = export_backlog(dsn, before, files)
        copy_s = psql_copy_seconds(server, files)
        final = stored(dsn, bindings, fleet)

    samples, rr_emitted_s, connected_s = emitted_rows(fleet)
    db_rows = final["hr"] + final["rr"] + final["steps_counter"]
    drain_rate = drained / drain_s if drain_s > 0 else 0.0
    psql_rate = exported / copy_s if copy_s > 0 else 0.0
    figures = {
        "patients": args.patients,
        "speed": args.speed,
        "samples": samples,
        "db_rows": int(db_rows),
        "exact": round(db_rows / samples, 6) if samples else 0.0,
        "rows_per_s": round(phase1_rows / stream_s, 1),
        "rr_continuity": round(final["rr_s"] / connected_s, 4) if connected_s else 0.0,
        "rr_stored_of_emitted": round(final["rr_s"] / rr_emitted_s, 6) if rr_emitted_s else 0.0,
        "drain_rows": drained,
        "drain_rows_per_s": round(drain_rate, 1),
        "psql_copy_rows": exported,
        "psql_copy_rows_per_s": round(psql_rate, 1),
        "drain_ratio": round(drain_rate / psql_rate, 3) if psql_rate else 0.0,
        "cadence_step_rows": int(final["steps_cadence"]),
        "quarantined": int(final["quarantined"]),
        "simulated_hours": round((args.stream_s + args.outage_s) * args.speed / 3600, 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
