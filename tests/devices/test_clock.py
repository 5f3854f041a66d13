"""Receive stamps: monotonic-based time anchored to the wall clock, re-anchored on a step, held while it is unset."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from paceline.devices.clock import PROVISIONAL_EPOCH, SimClock, Stamper


class SteppingClock:
    """A clock whose wall time can be stepped (NTP, a manual change) independently of monotonic."""

    def __init__(self) -> None:
        """Start at a fixed monotonic and wall time."""
        self.mono = 100.0
        self.wall_time = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        """The fake monotonic seconds."""
        return self.mono

    def wall(self) -> datetime:
        """The fake wall clock."""
        return self.wall_time

    async def sleep(self, seconds: float) -> None:
        """Advance both clocks."""
        self.mono += seconds
        self.wall_time += timedelta(seconds=seconds)


def test_a_wall_clock_step_back_re_anchors_the_stamps() -> None:
    """An hour back is a step: later stamps follow the new wall time, not the stale anchor."""
    clock = SteppingClock()
    stamper = Stamper(clock)
    first = stamper.stamp()
    clock.mono += 1.0
    clock.wall_time += timedelta(seconds=1) - timedelta(hours=1)
    second = stamper.stamp()
    assert second.time - first.time == timedelta(seconds=1) - timedelta(hours=1)
    assert (stamper.steps, stamper.generation) == (1, 2)
    assert second.monotonic_s - first.monotonic_s == 1.0


def test_an_ntp_step_forward_re_anchors_and_jitter_does_not() -> None:
    clock = SteppingClock()
    stamper = Stamper(clock)
    clock.mono += 10.0
    clock.wall_time += timedelta(seconds=10.4)  # within the tolerance: the anchor stays
    assert stamper.stamp().time == datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)
    clock.mono += 10.0
    clock.wall_time += timedelta(seconds=10) + timedelta(minutes=7)
    assert stamper.stamp().time == clock.wall_time
    assert stamper.steps == 1


def test_a_clock_that_boots_in_1970_holds_stamps_until_it_is_set() -> None:
    """A Raspberry Pi before NTP: stamps are held; once set, held times come from monotonic offsets."""
    clock = SteppingClock()
    clock.wall_time = datetime(1970, 1, 1, 0, 0, 42, tzinfo=UTC)
    stamper = Stamper(clock)
    held = [stamper.stamp()]
    clock.mono += 30.0
    clock.wall_time += timedelta(seconds=30)
    held.append(stamper.stamp())
    assert all(s.held for s in held) and not stamper.anchored
    assert stamper.release_offset_us is None
    clock.mono += 90.0
    clock.wall_time = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # NTP synced
    assert stamper.check()
    now = stamper.stamp()
    assert not now.held and now.time == clock.wall_time
    offset = stamper.release_offset_us
    assert offset is not None
    released = [
        PROVISIONAL_EPOCH + timedelta(microseconds=_us(s.time - PROVISIONAL_EPOCH) + offset)
        for s in held
    ]
    assert released == [
        clock.wall_time - timedelta(seconds=120),
        clock.wall_time - timedelta(seconds=90),
    ]


def test_a_step_back_to_an_implausible_time_keeps_the_anchor() -> None:
    clock = SteppingClock()
    stamper = Stamper(clock)
    clock.mono += 5.0
    clock.wall_time = datetime(1970, 1, 1, tzinfo=UTC)
    stamp = stamper.stamp()
    assert not stamp.held and stamp.time == datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
    assert stamper.generation == 1


def test_the_floor_is_configurable() -> None:
    clock = SteppingClock()
    stamper = Stamper(clock, floor=datetime(2026, 6, 1, tzinfo=UTC))
    assert stamper.stamp().held


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_stamp_time_is_anchor_plus_monotonic_elapsed() -> None:
    """Between steps the wall clock's jitter does not move the stamps."""
    clock = SteppingClock()
    stamper = Stamper(clock)
    clock.mono += 2.5
    clock.wall_time += timedelta(seconds=2.8)
    assert stamper.stamp().time == datetime(2026, 3, 2, 12, 0, 2, 500000, tzinfo=UTC)


def test_sim_clock_runs_speed_times_faster() -> None:
    """One real second is `speed` simulated seconds, on both the monotonic and the wall clock."""
    host = [10.0]
    clock = SimClock(
        speed=60.0, start=datetime(2026, 1, 1, tzinfo=UTC), host_monotonic=lambda: host[0]
    )
    host[0] = 11.0
    assert clock.monotonic() == 60.0
    assert clock.wall() == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("inf"), float("nan")])
def test_sim_clock_refuses_meaningless_speeds(speed: float) -> None:
    """Speed is a positive, finite factor."""
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=speed)


async def test_sim_clock_sleeps_in_simulated_seconds() -> None:
    """sleep_until returns once the simulated clock has reached the target."""
    clock = SimClock(speed=1000.0)
    await clock.sleep_until(5.0)
    assert clock.monotonic() >= 5.0


def test_pinned_sim_clock_holds_its_instant_and_restores() -> None:
    """While pinned, both clocks read the pinned instant; afterwards they run on."""
    host = [0.0]
    clock = SimClock(
        speed=10.0, start=datetime(2026, 1, 1, tzinfo=UTC), host_monotonic=lambda: host[0]
    )
    host[0] = 5.0
    with clock.pinned(42.0):
        host[0] = 6.0
        assert clock.monotonic() == 42.0
        assert clock.wall() == datetime(2026, 1, 1, 0, 0, 42, tzinfo=UTC)
    assert clock.monotonic() == 60.0


async def test_sleep_until_a_passed_instant_still_lets_other_tasks_run() -> None:
    """A simulated device that fell behind its clock must not starve the loop while it catches up."""
    clock = SimClock(speed=1000.0)
    ran: list[bool] = []

    async def other() -> None:
        ran.append(True)

    task = asyncio.create_task(other())
    await clock.sleep_until(clock.monotonic() - 1.0)
    assert ran == [True]
    await task
