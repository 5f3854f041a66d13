"""Batch-writer throughput against two references on the same server, rows and run.

Usage: .venv/bin/python bench/ingest.py [--rows 1000000] [--patients 10] [--batch 100000]
       [--rounds 3] [--dsn postgresql://...]   (default: a throwaway embedded PostgreSQL)

Fresh rows, into empty tables shaped like hr_sample (same columns, same primary key):

- the floor: psycopg binary COPY of prebuilt bytes, in this process, one COPY and one
  commit per `--batch` rows: the least any writer of these rows can pay (server-side
  COPY, WAL, index maintenance, the protocol), with no encoding and no validation;
- `psql \\copy` of the same rows as CSV: what an operator would use by hand, which also
  pays a process spawn and CSV parsing;
- Paceline's `write_batch` (validation, ingest_batch bookkeeping, encoding, binary COPY)
  into an empty hr_sample.

Dedupe: the same number of rows re-sent as new batches of which half are already
stored. Paceline's writer is compared with the same work done by hand on the floor's
table: binary COPY of prebuilt bytes into a temporary staging table, then
`INSERT … SELECT … ON CONFLICT DO NOTHING`, per batch.

Each figure is the median of `--rounds` rounds. Every round starts from empty tables
with a CHECKPOINT before each timed load, and alternates whether the references or
Paceline go first. The script checks its targets (`bench/_targets.py`) and exits 1 on a
miss; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import sql

from bench._targets import Target, finish
from paceline.store import Batch, HrRows, connect, registry, write_batch
from paceline.store.copybinary import encode_hr
from paceline.store.embedded import bin_path
from paceline.store.testing import temporary_database, temporary_server
from paceline.store.timescale import probe

START = np.datetime64("2026-01-05T00:00:00", "us")


def make_rows(n: int, patients: list[tuple[int, int]]) -> dict[str, NDArray[Any]]:
    """N one-second HR samples spread evenly over the patients, with realistic bpm values."""
    per = n // len(patients)
    rng = np.random.default_rng(42)
    pid = np.repeat([p for p, _ in patients], per)
    did = np.repeat([d for _, d in patients], per)
    t = START + np.tile(np.arange(per), len(patients)) * np.timedelta64(1, "s")
    bpm = np.clip(
        np.round(70 + 15 * np.sin(np.arange(pid.size) / 900) + rng.normal(0, 3, pid.size)), 40, 200
    )
    contact = np.ones(pid.size, dtype=np.int8)
    return {
        "patient_id": pid,
        "device_id": did,
        "time": t,
        "bpm": bpm.astype(np.int16),
        "contact": contact,
    }


def write_csv(rows: dict[str, NDArray[Any]], path: Path) -> None:
    """The rows as CSV in hr_sample's column order (not timed)."""
    times = np.datetime_as_string(rows["time"], unit="us")
    with path.open("w") as f:
        for p, d, t, b in zip(
            rows["patient_id"], rows["device_id"], times, rows["bpm"], strict=True
        ):
            f.write(f"{p},{d},{t}+00,{b},t,\n")


def checkpoint(dsn: str) -> None:
    """Flush dirty buffers now, so that the next timed load does not pay for earlier ones."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def reset(dsn: str) -> None:
    """Empty the sample tables and the batch bookkeeping between rounds."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE hr_sample, ingest_batch, sample_span")


HR_COLUMNS = "patient_id, device_id, time, bpm, sensor_contact, energy_kj"


def fresh_reference_table(dsn: str, timescale: bool) -> None:
    """An empty hr_ref shaped like hr_sample (a hypertable too when TimescaleDB is active)."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS hr_ref")
        conn.execute("CREATE TABLE hr_ref (LIKE hr_sample INCLUDING ALL)")
        if timescale:
            conn.execute(
                "SELECT create_hypertable('hr_ref', 'time', chunk_time_interval => interval '1 day')"
            )


def psql_copy(dsn: str, csv_path: Path, timescale: bool) -> float:
    """Seconds for psql \\copy of the CSV into a fresh hr_ref."""
    fresh_reference_table(dsn, timescale)
    checkpoint(dsn)
    command = f"\\copy hr_ref ({HR_COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv)"
    start = time.perf_counter()
    subprocess.run(
        [str(bin_path("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", command], check=True
    )
    return time.perf_counter() - start


def prebuilt(rows: dict[str, NDArray[Any]], size: int) -> list[bytes]:
    """Binary COPY payloads of the rows, one per batch (built before any timing)."""
    return [encode_hr(batch.hr) for batch in batches(rows, size, "prebuilt") if batch.hr]


def floor_copy(dsn: str, payloads: list[bytes], timescale: bool) -> float:
    """Seconds to binary-COPY the prebuilt payloads into a fresh hr_ref, one commit each."""
    fresh_reference_table(dsn, timescale)
    checkpoint(dsn)
    statement = sql.SQL("COPY hr_ref ({}) FROM STDIN (FORMAT binary)").format(sql.SQL(HR_COLUMNS))
    with connect(dsn) as conn:
        start = time.perf_counter()
        for payload in payloads:
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.write(payload)
            conn.commit()
        return time.perf_counter() - start


def floor_dedupe(dsn: str, payloads: list[bytes]) -> tuple[float, int]:
    """Seconds (and rows inserted) for the writer's dedupe path by hand on the filled hr_ref."""
    checkpoint(dsn)
    inserted = 0
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE hr_stage (LIKE hr_sample INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        copy_in = sql.SQL("COPY hr_stage ({}) FROM STDIN (FORMAT binary)").format(
            sql.SQL(HR_COLUMNS)
        )
        insert = sql.SQL(
            "INSERT INTO hr_ref ({0}) SELECT {0} FROM hr_stage ON CONFLICT DO NOTHING"
        ).format(sql.SQL(HR_COLUMNS))
        start = time.perf_counter()
        for payload in payloads:
            with conn.cursor() as cur:
                with cur.copy(copy_in) as copy:
                    copy.write(payload)
                inserted += max(cur.execute(insert).rowcount, 0)
            conn.commit()
        return time.perf_counter() - start, inserted


def batches(rows: dict[str, NDArray[Any]], size: int, prefix: str) -> Iterator[Batch]:
    """The rows cut into write_batch batches."""
    n = rows["time"].size
    for start in range(0, n, size):
        s = slice(start, start + size)
        yield Batch(
            f"{prefix}-{start}",
            hr=HrRows.of(
                patient_id=rows["patient_id"][s],
                device_id=rows["device_id"][s],
                time=rows["time"][s],
                bpm=rows["bpm"][s],
                sensor_contact=rows["contact"][s].astype(bool).tolist(),
            ),
        )


def paceline_write(
    dsn: str, rows: dict[str, NDArray[Any]], size: int, prefix: str
) -> tuple[float, int]:
    """Seconds to build and commit every batch (validation included), and rows inserted."""
    inserted = 0
    checkpoint(dsn)
    with connect(dsn) as conn:
        start = time.perf_counter()
        for batch in batches(rows, size, prefix):
            inserted += write_batch(conn, batch, source="bench").inserted
        return time.perf_counter() - start, inserted


def half_overlapping(rows: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """The same number of rows, shifted so that half of each patient's span is already stored."""
    per_patient_shift = rows["time"].size // len(np.unique(rows["patient_id"])) // 2
    shifted = dict(rows)
    shifted["time"] = rows["time"] + per_patient_shift * np.timedelta64(1, "s")
    return shifted


# Against the references doing the same work; `psql \\copy` (which also pays a process
# spawn and CSV parsing) is reported beside them, not held to a target.
TARGETS = (
    Target("ratio_vs_floor", ">=", 0.5),
    Target("dedupe_ratio", ">=", 0.7),
)


def main() -> int:
    """Run every load, print the figures, and return 1 if a target is missed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100_000, help="rows per write_batch call")
    parser.add_argument("--rounds", type=int, default=3, help="rounds to take the median of")
    parser.add_argument("--dsn", help="server to use (default: a throwaway embedded PostgreSQL)")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        server = args.dsn or stack.enter_context(temporary_server())
        dsn = stack.enter_context(temporary_database(server, "bench_ingest"))
        with connect(dsn, autocommit=True) as conn:
            patients = []
            for i in range(args.patients):
                p = registry.create_patient(
                    conn, external_ref=f"bench-{i}", display_name=f"Bench {i}"
                )
                address = f"AA:BB:CC:00:00:{i:02X}"
                registry.register_device(conn, address=address)
                patients.append(
                    (
                        p.patient_id,
                        registry.bind_device(
                            conn, address=address, patient_id=p.patient_id
                        ).device_id,
                    )
                )
            timescale = probe(conn).active
            server_version = conn.execute("SHOW server_version").fetchone()
        rows = make_rows(args.rows, patients)
        n = rows["time"].size
        csv_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "hr.csv"
        write_csv(rows, csv_path)

        shifted = half_overlapping(rows)
        fresh_payloads = prebuilt(rows, args.batch)
        dedupe_payloads = prebuilt(shifted, args.batch)

        times: dict[str, list[float]] = {
            k: [] for k in ("psql", "floor", "ours", "floor_dedupe", "ours_dedupe")
        }

        def references() -> None:
            times["psql"].append(psql_copy(dsn, csv_path, timescale))
            times["floor"].append(floor_copy(dsn, fresh_payloads, timescale))
            seconds, inserted = floor_dedupe(dsn, dedupe_payloads)
            assert inserted in (n - n // 2, n // 2), inserted
            times["floor_dedupe"].append(seconds)

        def ours(r: int) -> None:
            seconds, inserted = paceline_write(dsn, rows, args.batch, f"bench-{r}")
            assert inserted == n, f"expected {n} rows inserted, got {inserted}"
            times["ours"].append(seconds)
            seconds, inserted = paceline_write(dsn, shifted, args.batch, f"bench-dedupe-{r}")
            assert inserted in (n - n // 2, n // 2), inserted
            times["ours_dedupe"].append(seconds)

        for r in range(args.rounds):
            reset(dsn)
            if r % 2 == 0:
                references()
                ours(r)
            else:
                ours(r)
                references()
        rate = {k: n / statistics.median(v) for k, v in times.items()}

    print(f"floor: binary COPY, prebuilt: {rate['floor']:12,.0f} rows/s")
    print(f"psql \\copy CSV:               {rate['psql']:12,.0f} rows/s")
    print(f"paceline write_batch:         {rate['ours']:12,.0f} rows/s")
    print(f"dedupe by hand (stage+insert):{rate['floor_dedupe']:12,.0f} rows/s")
    print(f"paceline, half overlap:       {rate['ours_dedupe']:12,.0f} rows/s")
    figures = {
        "rows": n,
        "patients": args.patients,
        "batch_rows": args.batch,
        "rounds": args.rounds,
        "server": f"PostgreSQL {server_version[0] if server_version else '?'}",
        "timescaledb": timescale,
        "floor_rows_per_s": round(rate["floor"]),
        "psql_rows_per_s": round(rate["psql"]),
        "paceline_rows_per_s": round(rate["ours"]),
        "ratio_vs_floor": round(rate["ours"] / rate["floor"], 3),
        "ratio_vs_psql": round(rate["ours"] / rate["psql"], 3),
        "dedupe_reference_rows_per_s": round(rate["floor_dedupe"]),
        "dedupe_rows_per_s": round(rate["ours_dedupe"]),
        "dedupe_ratio": round(rate["ours_dedupe"] / rate["floor_dedupe"], 3),
    }
    return finish(figures, TARGETS)


if __name__ == "__main__":
    sys.exit(main())
