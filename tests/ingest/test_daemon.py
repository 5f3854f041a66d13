"""The daemon against simulated wearables: every test compares the database with what they emitted."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from typing import Any

import bleak_retry_connector
import pytest

from paceline.devices import uuids
from paceline.devices.simulator import (
    Activity,
    ConnectFault,
    GroundTruth,
    MalformedKind,
    SimulatedWearable,
    WearableKind,
)
from paceline.devices.transport import RECONNECT_JITTER_FRACTION, RECONNECT_MAX_DELAY_S
from paceline.ingest.daemon import DaemonConfig, IngestDaemon
from paceline.ingest.spool import Spool
from paceline.ingest.spool_file import SpoolError
from tests.ingest.conftest import (
    FAST_DB_BACKOFF,
    RigFactory,
    assert_stored_exactly_what_was_emitted,
    emitted_bpm,
    eventually,
    guarded,
    quarantined,
    stored,
)


async def _until(wearable: SimulatedWearable, predicate: Callable[[GroundTruth], bool]) -> None:
    await guarded(wearable.wait_until(predicate))


def _heart_rates_at_least(n: int) -> Callable[[GroundTruth], bool]:
    return lambda truth: len(truth.heart_rate) >= n


def _step_counts_at_least(n: int) -> Callable[[GroundTruth], bool]:
    return lambda truth: len(truth.step_counts) >= n


def _connected_more_than(n: int) -> Callable[[GroundTruth], bool]:
    return lambda truth: sum(1 for link in truth.links if link.event == "connected") > n


async def _run_until(
    daemon: IngestDaemon, condition: Callable[[], Any], *, extra: Callable[[], Any] | None = None
) -> None:
    """Run the daemon, await `condition()`, then stop it and wait for a clean shutdown."""
    task = asyncio.create_task(daemon.run(signals=False))
    try:
        await condition()
        if extra is not None:
            await extra()
    finally:
        daemon.stop()
        await guarded(task)


@pytest.fixture
def fast_retry_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    """bleak-retry-connector's own pauses are real seconds meant for BlueZ; the simulator needs none."""
    for name in dir(bleak_retry_connector):
        if name.startswith("BLEAK_") and name.endswith("BACKOFF_TIME"):
            monkeypatch.setattr(bleak_retry_connector, name, 0.001)


async def test_every_kind_of_wearable_streams_into_the_database_exactly(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(
        (WearableKind.CHEST_STRAP, WearableKind.BAND, WearableKind.PINETIME, WearableKind.FOOTPOD)
    )
    daemon = rig.daemon()

    async def enough() -> None:
        for wearable in rig.fleet.wearables:
            await _until(wearable, lambda t: len(t.notifications) >= 120)

    await _run_until(daemon, enough)
    assert_stored_exactly_what_was_emitted(rig)
    strap = stored(rig.dsn, rig.binding(0).device_id)
    assert len(strap.rr_ms) > 100
    assert strap.rr_times == sorted(set(strap.rr_times))
    band, pod = rig.binding(1).device_id, rig.binding(3).device_id
    assert sum(stored(rig.dsn, band).steps) > 0
    assert sum(stored(rig.dsn, pod).steps) > 0
    with Spool.open(rig.spool_path) as spool:
        status = spool.status()
    assert status.pending_rows == 0
    for w in daemon.workers:
        counted = status.counters[w.binding.device_id]
        assert counted["received"] == w.stats.received
        assert counted["spooled"] == counted["uploaded"] == w.stats.received - w.stats.zero_hr


async def test_zero_heart_rates_are_counted_and_not_stored(make_rig: RigFactory) -> None:
    rig = make_rig(activity=Activity.SLEEP)  # a chest strap comes off for the night
    daemon = rig.daemon()
    strap = rig.wearable()
    await _run_until(daemon, lambda: _until(strap, _heart_rates_at_least(60)))
    zeros = sum(1 for h in strap.truth.heart_rate if h.bpm == 0)
    assert zeros == len(strap.truth.heart_rate) > 0
    assert daemon.workers[0].stats.zero_hr == zeros
    assert stored(rig.dsn, rig.binding().device_id).bpm == []


async def test_a_disconnect_storm_keeps_backoff_tasks_fds_and_handlers_bounded(
    make_rig: RigFactory, fast_retry_connector: None
) -> None:
    rig = make_rig(speed=1000.0)  # a 60 s backoff then takes 60 ms
    strap = rig.wearable()
    daemon = rig.daemon(
        DaemonConfig(connect_attempts=2, upload_backoff=FAST_DB_BACKOFF, stable_link_s=1e9)
    )
    worker = daemon.workers[0]
    faults = list(ConnectFault)
    faults.remove(ConnectFault.NOT_FOUND)  # bleak-retry-connector waits 4 real seconds on it
    samples: list[tuple[int, int]] = []

    def connected_count() -> int:
        return sum(1 for link in strap.truth.links if link.event == "connected")

    async def storm() -> None:
        await _until(strap, _heart_rates_at_least(5))
        for cycle in range(16):
            before = connected_count()
            fault = faults[cycle % len(faults)]
            strap.fail_next_connects(1 + cycle % 5, fault)
            strap.drop_link()
            await _until(strap, _connected_more_than(before))
            await _until(strap, _heart_rates_at_least(len(strap.truth.heart_rate) + 3))
            samples.append((len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd"))))

    await _run_until(daemon, storm)

    assert worker.stats.connect_failures >= 5
    assert worker.stats.links_lost == 16
    assert max(worker.backoffs) <= RECONNECT_MAX_DELAY_S * (1 + RECONNECT_JITTER_FRACTION)
    # A leak grows with every cycle (eight of them separate the early samples from the
    # late ones). What may come and go: the flusher's and the uploader's waiters (up to
    # three tasks, depending on whether they are idle at the moment of the sample) and a
    # pooled thread or a reconnecting database socket (two descriptors).
    settled = samples[len(samples) // 2 :]
    assert max(t for t, _fd in settled) <= max(t for t, _fd in samples[:2]) + 3
    assert max(fd for _t, fd in settled) <= max(fd for _t, fd in samples[:2]) + 2
    # One handler per characteristic at the end, and no notification was delivered twice.
    assert_stored_exactly_what_was_emitted(rig)
    assert worker.stats.notifications == len(strap.truth.notifications)


async def test_the_link_is_subscribed_once_per_characteristic_after_each_reconnect(
    make_rig: RigFactory, fast_retry_connector: None
) -> None:
    rig = make_rig((WearableKind.BAND,))
    band = rig.wearable()
    daemon = rig.daemon()
    worker = daemon.workers[0]
    seen: list[frozenset[str]] = []

    async def reconnect_three_times() -> None:
        for _ in range(3):
            await _until(band, _heart_rates_at_least(len(band.truth.heart_rate) + 3))
            assert worker.link is not None
            seen.append(worker.link.subscribed)
            band.drop_link()
        await _until(band, _heart_rates_at_least(len(band.truth.heart_rate) + 3))

    await _run_until(daemon, reconnect_three_times)
    wanted = {uuids.HEART_RATE_MEASUREMENT, uuids.RSC_MEASUREMENT, uuids.BATTERY_LEVEL}
    assert all(s == wanted for s in seen)
    assert_stored_exactly_what_was_emitted(rig)


async def test_a_silent_link_is_detected_and_reconnected(make_rig: RigFactory) -> None:
    rig = make_rig()
    strap = rig.wearable()
    daemon = rig.daemon(DaemonConfig(silence_timeout_s=15.0, upload_backoff=FAST_DB_BACKOFF))
    worker = daemon.workers[0]

    async def hang_then_recover() -> None:
        await _until(strap, _heart_rates_at_least(10))
        strap.go_silent()
        await guarded(
            strap.wait_until(lambda t: sum(1 for x in t.links if x.event == "connected") >= 2)
        )
        strap.resume()
        await _until(strap, _heart_rates_at_least(len(strap.truth.heart_rate) + 10))

    await _run_until(daemon, hang_then_recover)
    assert worker.stats.silent_reconnects >= 1
    assert [x.event for x in strap.truth.links][:3] == ["connected", "disconnected", "connected"]
    assert_stored_exactly_what_was_emitted(rig)


async def test_malformed_payloads_and_step_counter_resets_are_counted_and_good_data_kept(
    make_rig: RigFactory,
) -> None:
    rig = make_rig((WearableKind.CHEST_STRAP, WearableKind.PINETIME))
    strap, watch = rig.wearable(0), rig.wearable(1)
    daemon = rig.daemon()

    async def mess() -> None:
        await _until(watch, lambda t: len(t.step_counts) >= 5)
        for kind in MalformedKind:
            strap.corrupt_next_heart_rate(kind, count=2)
            await _until(strap, _heart_rates_at_least(len(strap.truth.heart_rate) + 3))
        for _ in range(3):
            watch.reset_step_counter()
            watch.inject(uuids.INFINITIME_STEP_COUNT, b"\x01\x02\x03")  # 3 bytes, needs 4
            await _until(watch, _step_counts_at_least(len(watch.truth.step_counts) + 5))
        await _until(strap, _heart_rates_at_least(len(strap.truth.heart_rate) + 5))

    await _run_until(daemon, mess)
    assert all(w.stats.state == "stopped" for w in daemon.workers)
    malformed = strap.truth.malformed() + watch.truth.malformed()
    assert len(malformed) == 2 * len(MalformedKind) + 3
    assert sum(w.stats.malformed for w in daemon.workers) == len(malformed)
    kept = [row["hex"] for _s, row, _r in quarantined(rig.dsn, "payload") if "hex" in row]
    assert sorted(kept) == sorted(n.payload.hex() for n in malformed)
    assert_stored_exactly_what_was_emitted(rig)
    steps = stored(rig.dsn, rig.binding(1).device_id).steps
    assert all(s > 0 for s in steps)
    assert emitted_bpm(strap)


async def test_a_batch_committed_but_not_acknowledged_is_replayed_as_a_no_op(
    make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    strap = rig.wearable()
    crashed: list[str] = []
    real_ack = Spool.ack

    def ack_crashing_first(self: Spool, batch: Any, *args: Any, **kwargs: Any) -> None:
        if not crashed:
            crashed.append(batch.batch_id)
            raise sqlite3.OperationalError("disk I/O error")
        real_ack(self, batch, *args, **kwargs)

    monkeypatch.setattr(Spool, "ack", ack_crashing_first)
    daemon = rig.daemon(DaemonConfig(upload_backoff=FAST_DB_BACKOFF))

    async def recovered() -> None:
        await _until(strap, _heart_rates_at_least(200))
        await eventually(
            lambda: bool(crashed and daemon.uploader and daemon.uploader.last_error is None)
        )

    await _run_until(daemon, recovered)
    assert crashed
    assert_stored_exactly_what_was_emitted(rig)
    from paceline.store import connect

    with connect(rig.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT hr_rows + rr_rows FROM ingest_batch WHERE batch_id = %s", crashed
        ).fetchone()
    assert row is not None and row[0] > 0


async def test_one_failing_device_does_not_stop_the_others(
    make_rig: RigFactory, fast_retry_connector: None
) -> None:
    rig = make_rig((WearableKind.CHEST_STRAP, WearableKind.CHEST_STRAP))
    broken, healthy = rig.wearable(0), rig.wearable(1)
    broken.set_in_range(False)
    daemon = rig.daemon(DaemonConfig(connect_attempts=1, upload_backoff=FAST_DB_BACKOFF))
    await _run_until(daemon, lambda: _until(healthy, _heart_rates_at_least(100)))
    assert daemon.workers[0].stats.connect_failures >= 1
    assert daemon.workers[0].stats.connects == 0
    assert_stored_exactly_what_was_emitted(rig)


async def test_a_disconnect_that_hangs_is_cut_off_and_the_device_reconnects(
    make_rig: RigFactory,
) -> None:
    rig = make_rig()
    strap = rig.wearable()
    daemon = rig.daemon(
        DaemonConfig(
            silence_timeout_s=10.0, disconnect_timeout_s=0.2, upload_backoff=FAST_DB_BACKOFF
        )
    )

    async def hang() -> None:
        await _until(strap, _heart_rates_at_least(10))
        strap.hang_next_disconnect()
        strap.go_silent()  # the watchdog will disconnect, and the disconnect hangs
        await _until(strap, _connected_more_than(1))
        strap.resume()
        await _until(strap, _heart_rates_at_least(len(strap.truth.heart_rate) + 10))

    await _run_until(daemon, hang)
    assert daemon.workers[0].stats.silent_reconnects >= 1
    assert_stored_exactly_what_was_emitted(rig)


async def test_a_restarted_daemon_continues_each_step_counter_where_the_spool_ends(
    make_rig: RigFactory,
) -> None:
    rig = make_rig((WearableKind.PINETIME,))
    watch = rig.wearable()
    for _ in range(2):
        daemon = rig.daemon()
        await _run_until(
            daemon, lambda: _until(watch, _step_counts_at_least(len(watch.truth.step_counts) + 20))
        )
    # Counting from a fresh baseline after the restart would lose the steps in between.
    assert_stored_exactly_what_was_emitted(rig)


async def test_a_second_daemon_on_the_same_spool_is_refused(make_rig: RigFactory) -> None:
    rig = make_rig()
    first = rig.daemon()
    task = asyncio.create_task(first.run(signals=False))
    try:
        await _until(rig.wearable(), _heart_rates_at_least(3))
        with pytest.raises(SpoolError, match="another ingest daemon"):
            await rig.daemon().run(signals=False)
    finally:
        first.stop()
        await guarded(task)
    assert_stored_exactly_what_was_emitted(rig)
