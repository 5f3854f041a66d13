"""A process killed in the middle of committing a batch leaves all of it or none of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from tests.factories import patient_with_device

ROWS = 400_000

WRITER = """
import sys
import numpy as np
from paceline.store import Batch, HrRows, RrRows, connect, write_batch
dsn, pid, did, n, batch_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t = np.datetime64("2026-04-01T00:00:00", "us") + np.arange(n) * np.timedelta64(1, "s")
batch = Batch(batch_id,
              hr=HrRows.of(patient_id=np.full(n, pid), device_id=np.full(n, did), time=t,
                           bpm=np.full(n, 72)),
              rr=RrRows.of(patient_id=np.full(n, pid), device_id=np.full(n, did), time=t,
                           rr_ms=np.full(n, 833.0)))
with connect(dsn, application_name="crash-writer") as conn:
    print("writing", flush=True)
    result = write_batch(conn, batch)
    print("committed", result.hr_rows, flush=True)
"""


def _state(conn: psycopg.Connection[Any], pid: int) -> tuple[int, int, int]:
    """Rows stored for the patient, and whether its batch id is recorded."""
    hr = conn.execute("SELECT count(*) FROM hr_sample WHERE patient_id = %s", (pid,)).fetchone()
    rr = conn.execute("SELECT count(*) FROM rr_interval WHERE patient_id = %s", (pid,)).fetchone()
    batch = conn.execute(
        "SELECT count(*) FROM ingest_batch WHERE batch_id = %s", (f"crash-{pid}",)
    ).fetchone()
    conn.commit()
    assert hr and rr and batch
    return int(hr[0]), int(rr[0]), int(batch[0])


def _wait_backend_gone(conn: psycopg.Connection[Any]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crash-writer'"
        ).fetchone()
        conn.commit()
        if row == (0,):
            return
        time.sleep(0.05)
    pytest.fail("the killed writer's backend never went away")


def _spawn(db_dsn: str, pid: int, did: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_dsn, str(pid), str(did), str(ROWS), f"crash-{pid}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    return proc


@pytest.mark.slow
def test_sigkill_during_copy_leaves_nothing_then_a_retry_lands_everything_once(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    pid, did = patient_with_device(conn)
    proc = _spawn(db_dsn, pid, did)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        copying = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crash-writer'"
            " AND query ILIKE 'COPY%%'"
        ).fetchone()
        conn.commit()
        if copying and copying[0]:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _wait_backend_gone(conn)
    assert _state(conn, pid) == (0, 0, 0)

    retry = _spawn(db_dsn, pid, did)
    out, _ = retry.communicate(timeout=300)
    assert retry.returncode == 0, out
    assert _state(conn, pid) == (ROWS, ROWS, 1)


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 0.15, 0.3, 0.6, 1.0, 1.6])
def test_sigkill_at_any_moment_leaves_all_or_nothing(
    conn: psycopg.Connection[Any], db_dsn: str, delay_s: float
) -> None:
    pid, did = patient_with_device(conn)
    proc = _spawn(db_dsn, pid, did)
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _wait_backend_gone(conn)
    assert _state(conn, pid) in {(0, 0, 0), (ROWS, ROWS, 1)}
