"""Batch-writer throughput against `psql \\copy` of the same rows, on the same server, in one run.

Usage: .venv/bin/python bench/ingest.py [--rows 1000000] [--patients 10] [--batch 100000]
       [--dsn postgresql://...]   (default: a throwaway embedded PostgreSQL)

The reference (a) loads the rows as CSV with psql's \\copy into a fresh table
shaped like hr_sample (same columns, same primary key). Paceline (b) loads
the same rows through `write_batch` (validation, ingest_batch bookkeeping,
binary COPY) into an empty hr_sample. The dedupe pass re-sends the rows as
new batches in which half of the rows are already stored.

Each figure is the median of `--rounds` rounds. Every round starts from empty
tables and a CHECKPOINT before each timed load, and alternates which load
goes first, so that neither is charged for the other's checkpoint or WAL.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from paceline.store import Batch, HrRows, connect, registry, write_batch
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


def psql_copy(dsn: str, csv_path: Path, timescale: bool) -> float:
    """Seconds for psql \\copy of the CSV into a fresh hr_sample-shaped table."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS hr_ref")
        conn.execute("CREATE TABLE hr_ref (LIKE hr_sample INCLUDING ALL)")
        if timescale:
            conn.execute(
                "SELECT create_hypertable('hr_ref', 'time', chunk_time_interval => interval '1 day')"
            )
    checkpoint(dsn)
    command = (
        f"\\copy hr_ref (patient_id, device_id, time, bpm, sensor_contact, energy_kj)"
        f" FROM '{csv_path}' WITH (FORMAT csv)"
    )
    start = time.perf_counter()
    subprocess.run(
        [str(bin_path("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", command], check=True
    )
    return time.perf_counter() - start


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


def main() -> None:
    """Run both loads and print the figures."""
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

        psql_times, ours_times, dedupe_times = [], [], []
        for r in range(args.rounds):
            reset(dsn)
            if r % 2 == 0:
                psql_times.append(psql_copy(dsn, csv_path, timescale))
            ours_s, inserted = paceline_write(dsn, rows, args.batch, f"bench-{r}")
            assert inserted == n, f"expected {n} rows inserted, got {inserted}"
            ours_times.append(ours_s)
            if r % 2 == 1:
                psql_times.append(psql_copy(dsn, csv_path, timescale))
            dedupe_s, dedupe_inserted = paceline_write(
                dsn, half_overlapping(rows), args.batch, f"bench-dedupe-{r}"
            )
            assert dedupe_inserted in (n - n // 2, n // 2), dedupe_inserted
            dedupe_times.append(dedupe_s)
        psql_s = statistics.median(psql_times)
        ours_s = statistics.median(ours_times)
        dedupe_s = statistics.median(dedupe_times)

    psql_rate = n / psql_s
    ours_rate = n / ours_s
    dedupe_rate = n / dedupe_s
    print(f"psql \\copy CSV:        {psql_rate:12,.0f} rows/s")
    print(f"paceline write_batch:  {ours_rate:12,.0f} rows/s")
    print(f"paceline, half overlap:{dedupe_rate:12,.0f} rows/s")
    print(
        json.dumps(
            {
                "rows": n,
                "patients": args.patients,
                "batch_rows": args.batch,
                "rounds": args.rounds,
                "server": f"PostgreSQL {server_version[0] if server_version else '?'}",
                "timescaledb": timescale,
                "psql_rows_per_s": round(psql_rate),
                "paceline_rows_per_s": round(ours_rate),
                "ratio": round(ours_rate / psql_rate, 3),
                "dedupe_rows_per_s": round(dedupe_rate),
                "dedupe_ratio": round(dedupe_rate / psql_rate, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
