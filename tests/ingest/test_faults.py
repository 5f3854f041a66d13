"""Fault tests that take a process or the database away: SIGKILL of the daemon, a database outage."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from paceline.devices.gatt import MS_PER_RR_UNIT
from paceline.ingest.chunks import PAYLOAD
from paceline.ingest.simulation import build_fleet, register_fleet
from paceline.ingest.spool import Spool, SpoolStatus
from paceline.store import connect
from paceline.store.testing import StoppableServer, stoppable_server, temporary_database
from tests.ingest.child_daemon import KINDS, fleet_args
from tests.ingest.conftest import (
    HANG_GUARD_S,
    RigFactory,
    assert_stored_exactly_what_was_emitted,
    eventually,
    guarded,
    past_start,
)

ROOT = Path(__file__).resolve().parents[2]
Row = tuple[int, str, int, float]


def spool_rows(path: Path) -> Counter[Row]:
    """Every sample row the spool ever committed, as (device, stream, time_us, value)."""
    rows: Counter[Row] = Counter()
    with Spool.open(path) as spool:
        batch = spool._read(1, spool.status().last_seq)  # all records, acked or not
    chunks, corrupt = batch
    assert corrupt == []
    for _seq, chunk in chunks:
        if chunk.stream == PAYLOAD:
            continue
        samples = chunk.samples()
        value = {"hr": "bpm", "rr": "rr_ms", "steps": "steps"}[chunk.stream]
        for t, v in zip(samples["time_us"].tolist(), samples[value].tolist(), strict=True):
            rows[(chunk.device_id, chunk.stream, int(t), float(v))] += 1
    return rows


def database_rows(dsn: str, device_ids: list[int]) -> Counter[Row]:
    """The same view of what the database holds for the devices."""
    rows: Counter[Row] = Counter()
    with connect(dsn, autocommit=True) as conn:
        for stream, table, value in (
            ("hr", "hr_sample", "bpm"),
            ("rr", "rr_interval", "rr_ms"),
            ("steps", "step_sample", "steps"),
        ):
            for device_id, t, v in conn.execute(
                sql.SQL(
                    "SELECT device_id, (extract(epoch FROM time) * 1000000)::bigint, {}"
                    " FROM {} WHERE device_id = ANY(%s)"
                ).format(sql.Identifier(value), sql.Identifier(table)),
                (device_ids,),
            ):
                rows[(int(device_id), stream, int(t), float(v))] += 1
    return rows


def journal(path: Path) -> dict[str, list[tuple[int, list[float]]]]:
    """Heart-rate notifications the child's simulator emitted: address → [(bpm, rr_ms)]."""
    out: dict[str, list[tuple[int, list[float]]]] = {}
    for line in path.read_text().splitlines():
        address, bpm, rr = [*line.split(" "), ""][:3]
        values = [int(v) * MS_PER_RR_UNIT for v in rr.split(",") if v]
        out.setdefault(address, []).append((int(bpm), values))
    return out


def _child(
    dsn: str, spool: Path, journal_path: Path, start: str, first_index: int
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ingest.child_daemon",
            dsn,
            str(spool),
            str(journal_path),
            start,
            str(SPEED),
            str(first_index),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    return proc


def _wait_for(spool: Path, predicate: Callable[[SpoolStatus], bool]) -> SpoolStatus:
    """Poll the spool (it is a file any process may read) until `predicate` holds."""
    loop_guard = int(HANG_GUARD_S / 0.05)
    for _ in range(loop_guard):
        if spool.exists():
            with Spool.open(spool) as s:
                status = s.status()
            if predicate(status):
                return status
        time.sleep(0.05)  # a sync test polling a file while the child works
    pytest.fail("the child daemon made no progress")


SPEED = 40.0


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_loses_nothing_that_reached_the_spool(
    db_dsn: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool" / "spool.sqlite"
    first_index = 0x7A0000
    start1 = past_start(hours=3)
    fleet = build_fleet(len(KINDS), **fleet_args(start1, SPEED, first_index))
    with connect(db_dsn) as conn:
        bindings = register_fleet(conn, fleet)
    fleet.stop()
    device_ids = [b.device_id for b in bindings]

    run1 = _child(db_dsn, spool, tmp_path / "journal1.txt", start1.isoformat(), first_index)
    _wait_for(
        spool,
        lambda s: all(s.counters.get(d, {}).get("uploaded", 0) > 100 for d in device_ids),
    )
    run1.send_signal(signal.SIGKILL)
    run1.wait()
    at_kill = spool_rows(spool)
    assert at_kill

    # The second run continues later in simulated time, so the two runs never interleave.
    last_us = max(t for _d, _s, t, _v in at_kill)
    start2 = start1.fromtimestamp(last_us / 1e6, tz=start1.tzinfo) + timedelta(minutes=5)
    run2 = _child(db_dsn, spool, tmp_path / "journal2.txt", start2.isoformat(), first_index)
    _wait_for(
        spool,
        lambda s: (
            s.acked_seq > 0
            and all(s.counters.get(d, {}).get("uploaded", 0) > 400 for d in device_ids)
        ),
    )
    run2.send_signal(signal.SIGTERM)
    assert run2.wait(timeout=HANG_GUARD_S) == 0
    assert run2.stdout is not None and "stopped cleanly" in run2.stdout.read()

    everything = spool_rows(spool)
    assert at_kill <= everything
    assert database_rows(db_dsn, device_ids) == everything
    with Spool.open(spool) as s:
        assert s.status().pending_rows == 0

    # Compared with what the simulators emitted: run 1 up to the kill, run 2 whole.
    emitted1, emitted2 = journal(tmp_path / "journal1.txt"), journal(tmp_path / "journal2.txt")
    with connect(db_dsn, autocommit=True) as conn:
        for b in bindings:
            bpm = [
                int(r[0])
                for r in conn.execute(
                    "SELECT bpm FROM hr_sample WHERE device_id = %s ORDER BY time", (b.device_id,)
                )
            ]
            rr = [
                float(r[0])
                for r in conn.execute(
                    "SELECT rr_ms FROM rr_interval WHERE device_id = %s ORDER BY time",
                    (b.device_id,),
                )
            ]
            first, second = emitted1[b.address], emitted2[b.address]
            kept = len(bpm) - len(second)
            assert 0 < kept <= len(first)
            assert bpm == [x for x, _rr in first[:kept]] + [x for x, _rr in second]
            assert rr == [v for _b, r in first[:kept] for v in r] + [
                v for _b, r in second for v in r
            ]


@pytest.fixture(scope="module")
def outage_server() -> Iterator[StoppableServer]:
    """A server of this module's own, because the test stops it."""
    with stoppable_server() as server:
        yield server


@pytest.fixture
def outage_dsn(outage_server: StoppableServer) -> Iterator[str]:
    """A migrated database on the stoppable server."""
    with temporary_database(outage_server.dsn, "outage") as dsn:
        yield dsn


@pytest.mark.slow
async def test_a_database_outage_grows_the_spool_which_then_drains_exactly(
    make_rig: RigFactory, outage_server: StoppableServer, outage_dsn: str
) -> None:
    rig = make_rig(dsn=outage_dsn, speed=200.0)
    daemon = rig.daemon()
    peak: list[int] = []

    def backlog() -> SpoolStatus:
        with Spool.open(rig.spool_path) as spool:
            return spool.status()

    poll = eventually

    async def outage() -> None:
        await poll(lambda: daemon.uploader is not None and daemon.uploader.uploaded_rows > 200)
        await asyncio.to_thread(outage_server.stop)
        await poll(lambda: daemon.uploader is not None and daemon.uploader.failures >= 3)
        await poll(lambda: backlog().pending_rows > 600)
        peak.append(backlog().pending_rows)
        await asyncio.to_thread(outage_server.start)
        await poll(
            lambda: (
                backlog().pending_rows < 200
                and daemon.uploader is not None
                and daemon.uploader.last_error is None
            )
        )

    task = asyncio.create_task(daemon.run(signals=False))
    try:
        await outage()
    finally:
        daemon.stop()
        await guarded(task)
    assert peak and peak[0] > 600
    assert backlog().pending_rows == 0
    assert_stored_exactly_what_was_emitted(rig)
    errors: list[Any] = [daemon.uploader.last_error] if daemon.uploader else []
    assert errors == [None]
