"""End-to-end ingest benchmark: simulated wearables → daemon → spool → uploader → PostgreSQL.

Phase 1 streams M simulated wearables in accelerated time through the daemon into a
throwaway embedded PostgreSQL. Phase 2 streams on while the database is unreachable, so
the spool grows; then the uploader drains that backlog. The reference is the floor for
loading the same backlog rows: binary COPY of prebuilt bytes (read back out of the
database before any timing) into an empty, migrated database, in this process. The last
line printed is one JSON object:

- `expected_rows`: the rows the simulator's ground truth says the database must hold
  (heart rates with a reading, RR intervals, step-counter increments), and `db_rows`;
- `missing` / `unexpected`: rows of the truth not stored, and stored rows the truth does
  not have (a duplicate counts here); `exact` is (expected − missing) ÷ expected, and
  1.0 only with nothing unexpected either. Rows are compared by identity, from the
  simulator's ground truth alone (never by running the receiver's own code):
  heart rates as (device, time to the ms, bpm), where the time is the simulated instant
  the device sent the notification; PineTime step rows as (device, time to the ms,
  steps), the steps being what the simulated patient took between two counter
  notifications; RR intervals as each device's ordered sequence of values (their times
  are dated back from receipt by the receiver, which the truth cannot predict to the µs);
- `rows_per_s`: rows stored per real second while streaming (phase 1);
- `rr_continuity`: stored RR time ÷ connected time of the RR-capable wearables (≈ 1.0
  when no beat is lost); `rr_stored_of_emitted`: stored RR time ÷ RR time the
  wearables sent; `notified_s` / `connected_s`: seconds with a heart-rate
  notification / seconds connected, of those wearables (the difference is connection
  set-up before notifications are on: a strap sends no beat then, so none is lost by
  the gateway); `connects`, `silent_reconnects`, `links_lost` from the daemons;
- `sim_lag_s`: the most simulated seconds a wearable fell behind its clock (the run is
  valid only while the host keeps up, `MAX_SIM_LAG_S`).
- `drain_rows_per_s`: rows the drain inserted (not the duplicates it skipped) per second;
  `drain_ratio`: that ÷ the floor's rows/s on the same rows.

Cadence-derived steps (bands) are integrated from receive times and so are not compared
row for row; they are reported as `cadence_step_rows`. The script checks its targets
(`bench/_targets.py`) and exits 1 on a miss.

The default fleet is 8 wearables: at 300x that is about 5,000 rows/s through the one
Python process that also runs the simulation; 24 are more than a 2-core machine drives at
that speed (the wearables fall behind their clock, and `sim_lag_s` fails the run).

Run: `.venv/bin/python bench/ingest_e2e.py [--patients M] [--speed X] [--stream-s S] [--outage-s S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import sql

from bench._targets import Target, finish
from paceline.devices.simulator import SimulatedBleakClient, SimulatedWearable, WearableKind
from paceline.devices.transport import SILENCE_TIMEOUT_S
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
    """Run the daemon over the fleet for `seconds` real seconds.

    The silence watchdog gets the host time it has on a gateway: it counts simulated
    seconds, so at 300x its 15 s would be 50 ms of the host, shorter than the stalls
    of a loaded machine, and it would drop healthy links whose notifications were
    merely waiting for the event loop (the beats a strap sends while nobody is
    subscribed are gone, so every such reconnect costs RR time). No wearable here is
    scripted to hang; `silent_reconnects` counts any that the watchdog still finds.
    """
    daemon = IngestDaemon(
        bindings,
        spool_path=spool,
        dsn=dsn,
        locate=fleet.locate,
        clock=fleet.clock,
        backend=SimulatedBleakClient,
        client_kwargs=fleet.client_kwargs(),
        config=DaemonConfig(
            drain_on_stop_s=30.0, silence_timeout_s=SILENCE_TIMEOUT_S * fleet.clock.speed
        ),
        gateway_id="bench",
    )
    await daemon.run(duration_s=seconds, signals=False)
    return daemon


Series = dict[tuple[int, str], list[tuple[int, Any]]]
"""(device, stream) → [(time in µs since 1970, value)], sorted by time."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MATCH_WINDOW_US = 250_000
"""How far a stored time may lie from the truth's instant and still be the same row.

The receiver stamps wall-clock anchor + monotonic time elapsed; under a simulated clock
running 300× the host, the two anchor reads a few µs apart on the host are ms apart in
simulated time, so every stamp of a run is off the truth by one constant of a few ms.
Heart rates come once a second and counter notifications no faster, so a quarter
second cannot pair a row with its neighbour."""


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _US


def truth_steps(wearable: SimulatedWearable) -> list[tuple[float, int]]:
    """(time, steps) per counter notification: the steps taken since the previous one."""
    taken = wearable.truth.steps_taken
    times = [t for t, _ in taken]
    cumulative = [0]
    for _, steps in taken:
        cumulative.append(cumulative[-1] + steps)

    def upto(t: float) -> int:
        return cumulative[bisect.bisect_right(times, t)]

    notes = wearable.truth.step_counts
    return [(b.time_s, upto(b.time_s) - upto(a.time_s)) for a, b in itertools.pairwise(notes)]


def expected(
    fleet: SimulatedFleet, bindings: list[DeviceBinding]
) -> tuple[Series, dict[int, list[float]], float, float]:
    """Rows the truth says must be stored; RR sequences; RR seconds emitted; connected seconds."""
    start = fleet.clock.start
    series: Series = {}
    rr_by_device: dict[int, list[float]] = {}
    rr_s = 0.0
    connected_s = 0.0
    for w, b in zip(fleet.wearables, bindings, strict=True):
        d = b.device_id
        series[(d, "hr")] = [
            (_us(start + timedelta(seconds=h.time_s)), h.bpm)
            for h in w.truth.heart_rate
            if h.bpm != 0
        ]
        rr_by_device[d] = w.truth.rr_ms()
        if w.kind is WearableKind.PINETIME:
            series[(d, "steps")] = [
                (_us(start + timedelta(seconds=t)), steps) for t, steps in truth_steps(w) if steps
            ]
        if w.kind in (WearableKind.CHEST_STRAP, WearableKind.BAND):
            rr_s += sum(rr_by_device[d]) / 1000
            since: float | None = None
            for change in w.truth.links:
                if change.event == "connected":
                    since = change.time_s
                elif since is not None:
                    connected_s += change.time_s - since
                    since = None
    return series, rr_by_device, rr_s, connected_s


def stored_rows(
    dsn: str, fleet: SimulatedFleet, bindings: list[DeviceBinding]
) -> tuple[Series, dict[int, list[float]]]:
    """The rows the database holds, as `expected` gives them."""
    pinetimes = [
        b.device_id
        for b, w in zip(bindings, fleet.wearables, strict=True)
        if w.kind is WearableKind.PINETIME
    ]
    series: Series = {}
    rr_by_device: dict[int, list[float]] = {}
    with connect(dsn, autocommit=True) as conn:
        for d, t, bpm in conn.execute("SELECT device_id, time, bpm FROM hr_sample ORDER BY time"):
            series.setdefault((int(d), "hr"), []).append((_us(t), int(bpm)))
        for d, rr in conn.execute(
            "SELECT device_id, array_agg(rr_ms ORDER BY time) FROM rr_interval GROUP BY 1"
        ):
            rr_by_device[int(d)] = [float(x) for x in rr]
        for d, t, steps in conn.execute(
            "SELECT device_id, time, steps FROM step_sample WHERE device_id = ANY(%s)"
            " ORDER BY time",
            (pinetimes,),
        ):
            series.setdefault((int(d), "steps"), []).append((_us(t), int(steps)))
    return series, rr_by_device


def compare(want: list[tuple[int, Any]], got: list[tuple[int, Any]]) -> tuple[int, int]:
    """(missing, unexpected): rows of `want` with no stored twin, stored rows with none in `want`.

    Both lists are sorted by time; a twin has the same value and a time within
    `MATCH_WINDOW_US`. A row stored twice finds one twin and counts once as unexpected.
    """
    i = j = missing = unexpected = 0
    while i < len(want) and j < len(got):
        (tw, vw), (tg, vg) = want[i], got[j]
        if tg < tw - MATCH_WINDOW_US:
            unexpected, j = unexpected + 1, j + 1
        elif tg > tw + MATCH_WINDOW_US:
            missing, i = missing + 1, i + 1
        elif vw == vg:
            i, j = i + 1, j + 1
        else:
            missing, unexpected, i, j = missing + 1, unexpected + 1, i + 1, j + 1
    return missing + len(want) - i, unexpected + len(got) - j


def compare_rr(want: list[float], got: list[float]) -> tuple[int, int]:
    """(missing, unexpected) of one device's RR sequence: equal, or every row counts."""
    return (0, 0) if want == got else (len(want), len(got))


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
                for d, t in conn.execute(
                    sql.SQL("SELECT device_id, max(time) FROM {} GROUP BY 1").format(
                        sql.Identifier(table)
                    )
                )
            ]
            for table in TABLES
        }


# Rows of a table stored after each device's last time before the outage.
_AFTER_OUTAGE = (
    "FROM {} s WHERE s.time > coalesce((SELECT b.t FROM unnest(%s::bigint[],"
    " %s::timestamptz[]) AS b(d, t) WHERE b.d = s.device_id), '-infinity')"
)


def export_backlog(
    dsn: str, before: dict[str, list[tuple[int, Any]]]
) -> tuple[dict[str, bytes], int]:
    """The rows stored after the outage boundaries, per table as binary COPY bytes; how many."""
    out: dict[str, bytes] = {}
    rows = 0
    with connect(dsn, autocommit=True) as conn:
        for table, columns in TABLES.items():
            known = before[table]
            params = ([d for d, _ in known], [t for _, t in known])
            after = sql.SQL(_AFTER_OUTAGE).format(sql.Identifier(table))
            query = sql.SQL("COPY (SELECT {} {}) TO STDOUT (FORMAT binary)").format(
                sql.SQL(columns), after
            )
            with conn.cursor() as cur, cur.copy(query, params) as copy:
                out[table] = b"".join(bytes(chunk) for chunk in copy)
            counted = conn.execute(sql.SQL("SELECT count(*) {}").format(after), params).fetchone()
            rows += int(counted[0]) if counted else 0
    return out, rows


def floor_copy_seconds(server_dsn: str, payloads: dict[str, bytes]) -> float:
    """Seconds binary COPY of the prebuilt bytes takes into an empty, migrated database."""
    with temporary_database(server_dsn, "bench_floor") as dsn, connect(dsn) as conn:
        started = time.perf_counter()
        for table, columns in TABLES.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                sql.Identifier(table), sql.SQL(columns)
            )
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.write(payloads[table])
        conn.commit()
        return time.perf_counter() - started


MAX_SIM_LAG_S = 300.0
"""How far (simulated seconds) a wearable may fall behind its clock for the run to count:
further behind, the host could not drive the fleet at this speed, the wearables send their
seconds in bursts and the run measures the machine, not the pipeline (use fewer wearables
or a lower `--speed`)."""

TARGETS = (
    Target("missing", "==", 0),
    Target("unexpected", "==", 0),
    Target("rr_continuity", ">=", 0.99),
    Target("silent_reconnects", "==", 0),
    Target("sim_lag_s", "<=", MAX_SIM_LAG_S),
    Target("drain_ratio", ">=", 0.3),
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its figures, and return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8, help="simulated wearables (8)")
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
        spool = Path(tmp) / "spool.sqlite"
        with connect(dsn) as conn:
            bindings = register_fleet(conn, fleet)
        log(f"phase 1: {args.patients} wearables at {args.speed:g}x for {args.stream_s:g} s")
        started = time.perf_counter()
        daemons = [asyncio.run(stream(fleet, bindings, spool, dsn, args.stream_s))]
        stream_s = time.perf_counter() - started
        phase1 = stored(dsn, bindings, fleet)
        phase1_rows = (
            phase1["hr"] + phase1["rr"] + phase1["steps_counter"] + phase1["steps_cadence"]
        )
        before = boundaries(dsn)

        log(f"phase 2: database unreachable for {args.outage_s:g} s; the spool grows")
        daemons.append(asyncio.run(stream(fleet, bindings, spool, UNREACHABLE_DSN, args.outage_s)))
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
        drained = sum(r.inserted for r in reports)
        drain_duplicates = sum(r.duplicates for r in reports)

        payloads, exported = export_backlog(dsn, before)
        copy_s = floor_copy_seconds(server, payloads)
        final = stored(dsn, bindings, fleet)
        got, got_rr = stored_rows(dsn, fleet, bindings)

    want, want_rr, rr_emitted_s, connected_s = expected(fleet, bindings)
    notified_s = sum(
        len(w.truth.heart_rate)
        for w in fleet.wearables
        if w.kind in (WearableKind.CHEST_STRAP, WearableKind.BAND)
    )
    by_stream = {"hr": [0, 0], "rr": [0, 0], "steps": [0, 0]}
    for key in want.keys() | got.keys():
        lost, extra = compare(want.get(key, []), got.get(key, []))
        by_stream[key[1]][0] += lost
        by_stream[key[1]][1] += extra
    for device in want_rr.keys() | got_rr.keys():
        lost, extra = compare_rr(want_rr.get(device, []), got_rr.get(device, []))
        by_stream["rr"][0] += lost
        by_stream["rr"][1] += extra
    expected_rows = sum(len(v) for v in want.values()) + sum(len(v) for v in want_rr.values())
    db_rows = sum(len(v) for v in got.values()) + sum(len(v) for v in got_rr.values())
    missing = sum(v[0] for v in by_stream.values())
    unexpected = sum(v[1] for v in by_stream.values())
    drain_rate = drained / drain_s if drain_s > 0 else 0.0
    floor_rate = exported / copy_s if copy_s > 0 else 0.0
    figures = {
        "patients": args.patients,
        "speed": args.speed,
        "expected_rows": expected_rows,
        "db_rows": db_rows,
        "missing": missing,
        "unexpected": unexpected,
        "missing_by_stream": {st: v[0] for st, v in by_stream.items()},
        "unexpected_by_stream": {st: v[1] for st, v in by_stream.items()},
        "exact": round((expected_rows - missing) / expected_rows, 6) if expected_rows else 0.0,
        "rows_per_s": round(phase1_rows / stream_s, 1),
        "rr_continuity": round(final["rr_s"] / connected_s, 4) if connected_s else 0.0,
        "rr_stored_of_emitted": round(final["rr_s"] / rr_emitted_s, 6) if rr_emitted_s else 0.0,
        "notified_s": notified_s,
        "connected_s": round(connected_s, 1),
        "backlog_rows": backlog,
        "drain_rows": drained,
        "drain_duplicates": drain_duplicates,
        "drain_rows_per_s": round(drain_rate, 1),
        "floor_rows": exported,
        "floor_rows_per_s": round(floor_rate, 1),
        "drain_ratio": round(drain_rate / floor_rate, 3) if floor_rate else 0.0,
        "cadence_step_rows": int(final["steps_cadence"]),
        "quarantined": int(final["quarantined"]),
        "sim_lag_s": round(max(w.max_lag_s for w in fleet.wearables), 1),
        "connects": sum(w.stats.connects for d in daemons for w in d.workers),
        "silent_reconnects": sum(w.stats.silent_reconnects for d in daemons for w in d.workers),
        "links_lost": sum(w.stats.links_lost for d in daemons for w in d.workers),
        "simulated_hours": round((args.stream_s + args.outage_s) * args.speed / 3600, 2),
    }
    return finish(figures, TARGETS)


if __name__ == "__main__":
    sys.exit(main())
