"""Benchmark `paceline.signal` on one patient-day against references measured in this run.

1. Our pipeline: one synthetic patient-day (86,400 heart-rate rows at 1 Hz, ~95,000 RR
   intervals, 1,440 step rows; `paceline.signal.simulate.simulate_day`) through
   `paceline.signal.daily.daily_metrics`.
2. HRV, the same four statistics (mean NN, SDNN, RMSSD, pNN50) of the same RR series,
   each the best of `HRV_REPEATS` calls:
   - ours: `paceline.signal.hrv.time_domain`;
   - NeuroKit2: its input handling (`_hrv_format_input`, what `hrv_time` runs first)
     and then its own expressions for those four statistics, as `hrv_time` computes
     them (NeuroKit2 has no public call for fewer than its dozens of indices);
   - the floor: the four statistics in plain numpy, nothing else (no input checks);
   - for information only, NeuroKit2's full `hrv_time` (all its indices, a DataFrame),
     best of `NK_FULL_REPEATS` (it takes about half a second a call).
   Agreement: the largest absolute difference of the four statistics from the floor,
   for ours and for NeuroKit2.
3. PostgreSQL: the same rows loaded into a throwaway embedded server
   (`paceline.store.testing.temporary_server`) and read back with
   ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` — the cost of fetching the input.
   The pipeline should cost less than that. A database failure fails the benchmark.

The script checks its targets (`bench/_targets.py`) and exits 1 on a miss; the last line
is one JSON object.

Run: ``.venv/bin/python bench/daily_metrics.py``
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from psycopg import sql

from bench._targets import Target, finish
from paceline.signal import hrv
from paceline.signal.daily import DailyMetrics, PatientPhysiology, daily_metrics
from paceline.signal.simulate import SimulatedDay, simulate_day

T = TypeVar("T")

SEED = 7
PATIENT_ID = 1
DEVICE_ID = 1
DAY_REPEATS = 15
HRV_REPEATS = 200
NK_FULL_REPEATS = 20  # information only, and half a second a call
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


FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Four = tuple[float, float, float, float]
"""(mean NN, SDNN, RMSSD, pNN50)."""


def neurokit_four(rr_ms: FloatArray) -> Four:
    """The four statistics as NeuroKit2's `hrv_time` computes them, and nothing else."""
    from neurokit2.hrv.hrv_utils import _hrv_format_input  # noqa: PLC0415 - optional reference

    rri, _rri_time, _missing = _hrv_format_input({"RRI": rr_ms}, sampling_rate=1000)
    diff_rri = np.diff(rri)
    nn50 = np.sum(np.abs(diff_rri) > 50)
    return (
        float(np.nanmean(rri)),
        float(np.nanstd(rri, ddof=1)),
        float(np.sqrt(np.nanmean(diff_rri**2))),
        float(nn50 / (len(diff_rri) + 1) * 100),
    )


def neurokit_full(rr_ms: FloatArray) -> float:
    """NeuroKit2's full `hrv_time` (every index it has); returns its RMSSD."""
    import neurokit2 as nk  # noqa: PLC0415 - optional reference, imported only here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = nk.hrv_time({"RRI": rr_ms})
    return float(out["HRV_RMSSD"].iloc[0])


def numpy_four(rr_ms: FloatArray) -> Four:
    """The floor: the four statistics in plain numpy (Task Force 1996 definitions)."""
    diff = np.diff(rr_ms)
    return (
        float(rr_ms.mean()),
        float(rr_ms.std(ddof=1)),
        float(np.sqrt(np.mean(diff * diff))),
        float(100.0 * np.count_nonzero(np.abs(diff) > 50.0) / rr_ms.shape[0]),
    )


def ours_four(rr_ms: FloatArray) -> Four:
    """Paceline's `hrv.time_domain`, as the same four numbers."""
    out = hrv.time_domain(rr_ms)
    return (out.mean_nn_ms, out.sdnn_ms, out.rmssd_ms, out.pnn50_pct)


def max_abs_diff(a: Four, b: Four) -> float:
    """The largest absolute difference between two sets of the four statistics."""
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


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
                sql.SQL(
                    "COPY (SELECT {} FROM {} WHERE patient_id = %s"
                    " AND time >= %s AND time < %s ORDER BY time) TO STDOUT (FORMAT binary)"
                ).format(sql.SQL(cols), sql.Identifier(table))
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
                found = cur.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()
                counted += int(found[0]) if found else 0
    return ms, counted


TARGETS = (
    Target("ratio_vs_neurokit", ">=", 1.0),
    Target("ratio_vs_floor", ">=", 0.5),
    Target("max_abs_diff_vs_floor", "<=", 1e-6),
    Target("rmssd_abs_diff_vs_nk_full", "<=", 0.01),
    Target("day_vs_copy_out", "<=", 1.0),
)


def main() -> int:
    """Run the measurements, print the summary JSON as the last line, 1 if a target is missed."""
    day = simulate_day(seed=SEED)
    print(
        f"day: {day.hr_time_us.shape[0]} HR rows, {day.rr_ms.shape[0]} RR intervals, "
        f"{day.steps.shape[0]} step rows",
        flush=True,
    )
    run_day(day)  # warm-up: imports, first-touch allocations
    day_ms, metrics = best_ms(lambda: run_day(day), DAY_REPEATS)
    print(f"daily_metrics: {day_ms:.2f} ms (best of {DAY_REPEATS})", flush=True)

    rr = np.asarray(day.rr_ms, dtype=np.float64)
    neurokit_four(rr)  # warm-up: NeuroKit2's import is not part of its cost
    hrv_ms, ours = best_ms(lambda: ours_four(rr), HRV_REPEATS)
    nk_ms, nk = best_ms(lambda: neurokit_four(rr), HRV_REPEATS)
    floor_ms, floor = best_ms(lambda: numpy_four(rr), HRV_REPEATS)
    nk_full_ms, nk_full_rmssd = best_ms(lambda: neurokit_full(rr), NK_FULL_REPEATS)
    print(
        f"four HRV statistics, best of {HRV_REPEATS}: ours {hrv_ms:.3f} ms,"
        f" NeuroKit2 {nk_ms:.3f} ms, numpy floor {floor_ms:.3f} ms"
        f" (NeuroKit2's full hrv_time: {nk_full_ms:.1f} ms, best of {NK_FULL_REPEATS})",
        flush=True,
    )

    copy_ms, copy_rows = copy_out_ms(day)
    print(f"COPY out of {copy_rows} rows: {copy_ms:.2f} ms (best of {COPY_REPEATS})")

    summary: dict[str, object] = {
        "day_ms": round(day_ms, 3),
        "hrv_ms": round(hrv_ms, 4),
        "nk_four_ms": round(nk_ms, 4),
        "numpy_floor_ms": round(floor_ms, 4),
        "nk_full_hrv_time_ms": round(nk_full_ms, 3),
        "ratio_vs_neurokit": round(nk_ms / hrv_ms, 3),
        "ratio_vs_floor": round(floor_ms / hrv_ms, 3),
        "max_abs_diff_vs_floor": max_abs_diff(ours, floor),
        "nk_max_abs_diff_vs_floor": max_abs_diff(nk, floor),
        "rmssd_abs_diff_vs_nk_full": abs(ours[2] - nk_full_rmssd),
        "copy_out_ms": round(copy_ms, 3),
        "copy_out_rows": copy_rows,
        "day_vs_copy_out": round(day_ms / copy_ms, 4),
        "hr_samples": metrics.hr_samples,
        "rr_intervals": metrics.rr_intervals,
        "wear_min": metrics.wear_min,
        "rmssd_ms": metrics.rmssd_ms,
    }
    return finish(summary, TARGETS)


if __name__ == "__main__":
    sys.exit(main())
