"""Fixtures for the ingest tests: simulated fleets bound in a real database, and truth checks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from paceline.devices.backoff import Backoff
from paceline.devices.simulator import (
    Activity,
    Routine,
    SimulatedBleakClient,
    SimulatedWearable,
    WearableKind,
)
from paceline.ingest.daemon import DaemonConfig, IngestDaemon
from paceline.ingest.gateway_state import DeviceBinding
from paceline.ingest.simulation import SimulatedFleet, build_fleet, register_fleet
from paceline.store import connect

HANG_GUARD_S = 60.0
"""Only a guard against a hung test; nothing asserts on how long anything took."""

SIM_SPEED = 200.0
"""Simulated seconds per real second."""

FAST_DB_BACKOFF = Backoff(base_s=0.05, cap_s=0.5)
"""Database retries in tests: the policy is tested on its own, here it only has to be short."""

T = TypeVar("T")


async def guarded(awaitable: Awaitable[T]) -> T:
    """Await with the hang guard."""
    return await asyncio.wait_for(awaitable, timeout=HANG_GUARD_S)


async def eventually(predicate: Callable[[], bool], *, poll_s: float = 0.02) -> None:
    """Wait until `predicate()` holds, within the hang guard.

    Polled, because what it watches (uploader counters, the spool file) changes in other
    threads or processes that have no event to await.
    """

    async def wait() -> None:
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(poll_s)

    await guarded(wait())


def past_start(hours: float = 6.0) -> datetime:
    """A simulated start far enough back that an accelerated run stays in the past."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours)


_address_block = iter(range(0x100, 0xFFFFFF, 0x100))


@dataclass
class Rig:
    """A simulated fleet bound in the module's database, and a daemon factory for it."""

    fleet: SimulatedFleet
    bindings: list[DeviceBinding]
    dsn: str
    spool_path: Path

    def wearable(self, i: int = 0) -> SimulatedWearable:
        """The i-th simulated wearable."""
        return self.fleet.wearables[i]

    def binding(self, i: int = 0) -> DeviceBinding:
        """The binding of the i-th wearable."""
        return self.bindings[i]

    def daemon(self, config: DaemonConfig | None = None, **kwargs: Any) -> IngestDaemon:
        """A daemon streaming this fleet into the database through the rig's spool."""
        return IngestDaemon(
            self.bindings,
            spool_path=self.spool_path,
            dsn=self.dsn,
            locate=self.fleet.locate,
            clock=self.fleet.clock,
            backend=SimulatedBleakClient,
            client_kwargs=self.fleet.client_kwargs(),
            config=config or DaemonConfig(upload_backoff=FAST_DB_BACKOFF),
            **kwargs,
        )


RigFactory = Callable[..., Rig]


@pytest.fixture
def make_rig(db_dsn: str, tmp_path: Path) -> Iterator[RigFactory]:
    """Build rigs of simulated wearables doing one activity all day (each test gets fresh addresses)."""
    made: list[Rig] = []

    def make(
        kinds: tuple[WearableKind, ...] = (WearableKind.CHEST_STRAP,),
        *,
        activity: Activity = Activity.WALK,
        speed: float = SIM_SPEED,
        seed: int = 3,
        dsn: str | None = None,
        spool_path: Path | None = None,
    ) -> Rig:
        fleet = build_fleet(
            len(kinds),
            speed=speed,
            start=past_start(),
            seed=seed,
            kinds=kinds,
            routine=Routine.constant(activity),
            first_index=next(_address_block),
        )
        target = dsn or db_dsn
        with connect(target) as conn:
            bindings = register_fleet(conn, fleet)
        rig = Rig(fleet, bindings, target, spool_path or tmp_path / "spool" / "spool.sqlite")
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.fleet.stop()


# --------------------------------------------------------------------------- reading back


@dataclass
class Stored:
    """What the database holds for one device, in time order."""

    bpm: list[int]
    rr_ms: list[float]
    steps: list[int]
    hr_times: list[datetime]
    rr_times: list[datetime]


def stored(dsn: str, device_id: int) -> Stored:
    """Read back one device's rows."""
    with connect(dsn, autocommit=True) as conn:
        hr = conn.execute(
            "SELECT time, bpm FROM hr_sample WHERE device_id = %s ORDER BY time", (device_id,)
        ).fetchall()
        rr = conn.execute(
            "SELECT time, rr_ms FROM rr_interval WHERE device_id = %s ORDER BY time", (device_id,)
        ).fetchall()
        steps = conn.execute(
            "SELECT steps FROM step_sample WHERE device_id = %s ORDER BY time", (device_id,)
        ).fetchall()
    return Stored(
        bpm=[int(r[1]) for r in hr],
        rr_ms=[float(r[1]) for r in rr],
        steps=[int(r[0]) for r in steps],
        hr_times=[r[0] for r in hr],
        rr_times=[r[0] for r in rr],
    )


def emitted_bpm(wearable: SimulatedWearable) -> list[int]:
    """Heart rates the wearable sent that carry a reading (0 bpm is counted, not stored)."""
    return [h.bpm for h in wearable.truth.heart_rate if h.bpm != 0]


def emitted_steps(wearable: SimulatedWearable) -> int:
    """Steps the patient took between the first and the last counter value the wearable sent.

    The simulator's ground truth, not the code under test: the first value sent is only a
    baseline (what the counter held before says nothing about the run), and every step
    after it up to the last value sent reached the receiver in some counter value, also
    across disconnects and the midnight reset (the watch notifies each change).
    """
    counts = wearable.truth.step_counts
    if not counts:
        return 0
    first, last = counts[0].time_s, counts[-1].time_s
    return sum(steps for t, steps in wearable.truth.steps_taken if first < t <= last)


def assert_stored_exactly_what_was_emitted(rig: Rig) -> None:
    """The database holds every reading each wearable emitted, once, in order."""
    for wearable, binding in zip(rig.fleet.wearables, rig.bindings, strict=True):
        db = stored(rig.dsn, binding.device_id)
        assert db.bpm == emitted_bpm(wearable), wearable.address
        assert db.rr_ms == wearable.truth.rr_ms(), wearable.address
        if wearable.kind is WearableKind.PINETIME:
            assert sum(db.steps) == emitted_steps(wearable), wearable.address


def quarantined(dsn: str, stream: str | None = None) -> list[tuple[str, dict[str, Any], str]]:
    """(stream, row_data, reason) of every quarantined row."""
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT stream, row_data, reason FROM ingest_quarantine"
            " WHERE %s::text IS NULL OR stream = %s ORDER BY quarantine_id",
            (stream, stream),
        ).fetchall()
    return [(str(s), dict(d), str(r)) for s, d, r in rows]
