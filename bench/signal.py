"""Benchmark `paceline.signal` on one patient-day against two references measured in this run.

1. Our pipeline: one synthetic patient-day (86,400 heart-rate rows at 1 Hz, ~95,000 RR
   intervals, 1,440 step rows; `paceline.signal.simulate.simulate_day`) through
   `paceline.signal.daily.daily_metrics`.
2. NeuroKit2: the same RR series through ``neurokit2.hrv_time``, against our
   `paceline.signal.hrv.time_domain` on the same intervals (speed and agreement).
3. PostgreSQL: the same rows loaded into a throwaway embedded server
   (`paceline.store.testing.temporary_server`) and read back with
   ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` — the cost of fetching the input.
   The pipeline should cost less than that.

Every time is the best of several runs. The last line is one JSON object:
``day_ms``, ``nk_hrv_ms``, ``hrv_ms``, ``ratio_vs_neurokit`` (nk_hrv_ms / hrv_ms, target
>= 100), ``rmssd_abs_diff_ms`` (target <= 0.01), ``copy_out_ms`` and ``day_vs_copy_out``
(day_ms / copy_out_ms, target <= 1).

Run: ``.venv/bin/python bench/signal.py``
"""

from __future__ import annotations

import os
import sys

# This file is named signal.py. Run as a script, its folder would come first on
# sys.path and shadow the standard library's `signal` for everything imported after
# (subprocess, asyncio, psycopg), so that entry goes before any other import.
if os.path.dirname(os.path.realpath(__file__)) in sys.path:
    sys.path.remove(os.path.dirname(os.path.realpath(__file__)))

import json
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from paceline.signal import hrv
from paceline.signal.daily import DailyMetrics, PatientPhysiology, daily_metrics
from paceline.signal.simulate import SimulatedDay, simulate_day

T = TypeVar("T")

SEED = 7
PATIENT_ID = 1
DEVICE_ID = 1
DAY_REPEATS = 15
HRV_REPEATS = 200
NK_REPEATS = 5
COPY_REPEATS = 15
US_PER_DAY = 86_400 * 1_000_000


def best_ms(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best wall time of `repeats` calls in ms, and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    return best * 1000.0, result


def run_day(day: SimulatedDay) -> DailyMetrics:
    """The full daily pipeline on the simulated day."""
    return daily_metrics(
        start=day.start_us,
        end=day.start_us + US_PER_DAY,
        profile=PatientPhysiology(age_years=45, sex="female", hr_ceiling_bpm=115.0),
        hr_time=day.hr_time_us,
        hr_bpm=day.hr_bpm,
        hr_contact=day.hr_contact,
        rr_time=day.rr_time_us,
        rr_ms=day.rr_ms,
        step_time=day.step_time_us,
        step_count=day.steps,
        night=(day.start_us, day.start_us + 6 * 3_600_000_000),
    )


def neurokit_hrv(rr_ms: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[float, float]:
    """(best ms, RMSSD) of ``neurokit2.hrv_time`` on the RR intervals as given."""
    import neurokit2 as nk  # noqa: PLC0415 - optional reference, imported only here

    def once() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = nk.hrv_time({"RRI": rr_ms})
        return float(out["HRV_RMSSD"].iloc[0])

    return best_ms(once, NK_REPEATS)


def _as_datetimes(time_us: np.ndarray[Any, np.dtype[np.int64]]) -> list[datetime]:
    return [datetime.fromtimestamp(int(t) / 1e6, tz=UTC) for t in time_us]


def copy_out_ms(day: SimulatedDay) -> tuple[float, int]:
    """(best ms, rows) to read the day's rows of all three streams with binary COPY out.

    Starts a throwaway embedded PostgreSQL, migrates it, loads the day with binary
    ``COPY FROM``, then times ``COPY (SELECT ... ORDER BY time) TO STDOUT (FORMAT
    binary)`` for hr_sample, rr_interval and step_sample, reading every byte.
    """
    from paceline.store.connection import connect  # noqa: PLC0415 - DB part is optional
    from paceline.store.migrate import migrate  # noqa: PLC0415
    from paceline.store.testing import temporary_server  # noqa: PLC0415

    start = datetime.fromtimestamp(day.start_us / 1e6, tz=UTC)
    end = datetime.fromtimestamp((day.start_us + US_PER_DAY) / 1e6, tz=UTC)
    with temporary_server() as dsn, connect(dsn, autocommit=True) as conn:
        migrate(conn)
        with conn.cursor() as cur:
            loads: list[tuple[str, list[str], list[tuple[Any, ...]]]] = [
                (
                    "COPY hr_sample (patient_id, device_id, time, bpm, sensor_contact)"
                    " FROM STDIN (FORMAT binary)",
                    ["int8", "int8", "timestamptz", "int2", "bool"],
                    [
                        (PATIENT_ID, DEVICE_ID, t, int(b), None if c < 0 else bool(c))
                        for t, b, c in zip(
                            _as_datetimes(day.hr_time_us), day.hr_bpm, day.hr_contact, strict=True
                        )
                    ],
                ),
                (
                    "COPY rr_interval (patient_id, device_id, time, rr_ms)"
                    " FROM STDIN (FORMAT binary)",
                    ["int8", "int8", "timestamptz", "float8"],
                    [
                        (PATIENT_ID, DEVICE_ID, t, float(r))
                        for t, r in zip(_as_datetimes(day.rr_time_us), day.rr_ms, strict=True)
                    ],
                ),
                (
                    "COPY step_sample (patient_id, device_id, time, steps)"
                    " FROM STDIN (FORMAT binary)",
                    ["int8", "int8", "timestamptz", "int4"],
                    [
                        (PATIENT_ID, DEVICE_ID, t, int(s))
                        for t, s in zip(_as_datetimes(day.step_time_us), day.steps, strict=True)
                    ],
                ),
            ]
            for statement, types, rows in loads:
                with cur.copy(statement) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row)
            cur.execute("VACUUM ANALYZE hr_sample, rr_interval, step_sample")
            queries = [
                f"COPY (SELECT {cols} FROM {table} WHERE patient_id = %s"
                " AND time >= %s AND time < %s ORDER BY time) TO STDOUT (FORMAT binary)"
                for table, cols in (
                    ("hr_sample", "time, bpm, sensor_contact"),
                    ("rr_interval", "time, rr_ms"),
                    ("step_sample", "time, steps"),
                )
            ]

            def read_all() -> int:
                n_bytes = 0
                for query in queries:
                    with cur.copy(query, (PATIENT_ID, start, end)) as copy:
                        for chunk in copy:
                            n_bytes += len(chunk)
                return n_bytes

            ms, _ = best_ms(read_all, COPY_REPEATS)
            counted = 0
            for table in ("hr_sample", "rr_interval", "step_sample"):
                found = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
                counted += int(found[0]) if found else 0
    return ms, counted


def main() -> int:
    """Run the three measurements and print the summary JSON as the last line."""
    day = simulate_day(seed=SEED)
    print(
        f"day: {day.hr_time_us.shape[0]} HR rows, {day.rr_ms.shape[0]} RR intervals, "
        f"{day.steps.shape[0]} step rows",
        flush=True,
    )
    run_day(day)  # warm-up: imports, first-touch allocations
    day_ms, metrics = best_ms(lambda: run_day(day), DAY_REPEATS)
    print(f"daily_metrics: {day_ms:.2f} ms (best of {DAY_REPEATS})", flush=True)

    hrv_ms, ours = best_ms(lambda: hrv.time_domain(day.rr_ms), HRV_REPEATS)
    nk_ms, nk_rmssd = neurokit_hrv(day.rr_ms)
    rmssd_diff = abs(ours.rmssd_ms - nk_rmssd)
    print(
        f"hrv.time_domain: {hrv_ms:.3f} ms, neurokit2.hrv_time: {nk_ms:.1f} ms, "
        f"RMSSD {ours.rmssd_ms:.4f} vs {nk_rmssd:.4f} ms",
        flush=True,
    )

    copy_ms: float | None = None
    copy_rows: int | None = None
    copy_error: str | None = None
    try:
        copy_ms, copy_rows = copy_out_ms(day)
        print(f"COPY out of {copy_rows} rows: {copy_ms:.2f} ms (best of {COPY_REPEATS})")
    except Exception as exc:  # noqa: BLE001 - any database failure: report it, keep the CPU figures
        copy_error = f"{type(exc).__name__}: {exc}"
        print(f"COPY out skipped: {copy_error}", file=sys.stderr)

    summary: dict[str, object] = {
        "day_ms": round(day_ms, 3),
        "hrv_ms": round(hrv_ms, 4),
        "nk_hrv_ms": round(nk_ms, 3),
        "ratio_vs_neurokit": round(nk_ms / hrv_ms, 1),
        "rmssd_abs_diff_ms": rmssd_diff,
        "copy_out_ms": None if copy_ms is None else round(copy_ms, 3),
        "copy_out_rows": copy_rows,
        "day_vs_copy_out": None if copy_ms is None else round(day_ms / copy_ms, 4),
        "hr_samples": metrics.hr_samples,
        "rr_intervals": metrics.rr_intervals,
        "wear_min": metrics.wear_min,
        "rmssd_ms": metrics.rmssd_ms,
    }
    if copy_error is not None:
        summary["copy_out_error"] = copy_error
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
