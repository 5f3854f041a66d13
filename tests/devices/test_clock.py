"""Receive stamps: monotonic-based time anchored to the wall clock once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paceline.devices.clock import SimClock, Stamper


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


def test_wall_clock_step_backwards_does_not_reorder_samples() -> None:
    """After the wall clock jumps back an hour, stamp times keep increasing; time_received shows the jump."""
    clock = SteppingClock()
    stamper = Stamper(clock)
    first = stamper.stamp()
    clock.mono += 1.0
    clock.wall_time += timedelta(seconds=1) - timedelta(hours=1)
    second = stamper.stamp()
    assert second.time - first.time == timedelta(seconds=1)
    assert second.time_received < first.time_received
    assert second.monotonic_s - first.monotonic_s == 1.0


def test_stamp_time_is_anchor_plus_monotonic_elapsed() -> None:
    """The anchor is read once at start."""
    clock = SteppingClock()
    stamper = Stamper(clock)
    clock.mono += 2.5
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
