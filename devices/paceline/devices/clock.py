"""Clocks and receive stamps: host time for real wearables, accelerated time for simulated ones.

Standard heart-rate notifications carry no time of their own, so every sample is stamped
by the host when it arrives. The stamp's `time` is a wall-clock anchor plus the monotonic
time elapsed since it, so jitter of the wall clock cannot reorder samples of a run. The
wall clock read at receipt is kept beside it as `time_received`.

The anchor is not read once and trusted for ever. A Raspberry Pi has no real-time clock:
it boots in 1970 (or at the time fake-hwclock saved at the last shutdown) and steps to the
right time when NTP syncs, minutes later. So:

- While the wall clock reads earlier than a floor (`CLOCK_FLOOR`, the earliest date this
  release can run at, or a later one an operator configures), it is implausible and there
  is no anchor: stamps are `held`, their `time` is provisional (1970 plus the monotonic
  seconds) and the ingest daemon keeps their rows back instead of storing them wrong.
- When the wall clock first reads a plausible time, the stamper anchors to it. A held
  sample's real time is then the anchor's wall time minus the monotonic seconds between
  the sample and the anchor: since provisional time is monotonic time, that is one
  constant offset (`Stamper.release_offset_us`) added to every held time.
- Once anchored, every stamp compares the wall clock with the anchor's extrapolation; a
  difference beyond `STEP_TOLERANCE_S` is a wall-clock step (NTP, a manual change), and
  the stamper re-anchors to the new wall time (`generation` counts anchors). A step back
  to an implausible time (below the floor) is ignored: the anchor it had is better.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

logger = logging.getLogger(__name__)


class Clock(Protocol):
    """A source of monotonic seconds and wall-clock time that can also sleep in its own seconds."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wall(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of this clock's time."""
        ...


class SystemClock:
    """The host's clocks: `time.monotonic` and `datetime.now(UTC)`."""

    def monotonic(self) -> float:
        """Seconds of `time.monotonic()`."""
        return time.monotonic()

    def wall(self) -> datetime:
        """The host's wall clock in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep in real seconds."""
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK: Final = SystemClock()


class SimClock:
    """Simulated time running `speed` times faster than the host's monotonic clock.

    Simulated time starts at 0 s (and at the wall time `start`) when the clock is made;
    `sleep(s)` sleeps `s / speed` real seconds. While a simulated device delivers a
    second's notifications the clock is `pinned` to that second; between pins it never
    goes backwards, and within one device's stream of notifications it never does either. One clock is shared by every simulated
    wearable of a test and by the transport that stamps their samples, so both speak the
    same seconds.
    """

    def __init__(
        self,
        speed: float = 1.0,
        start: datetime | None = None,
        *,
        host_monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start simulated time at 0 s and at wall time `start` (default: now)."""
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"speed must be a positive finite factor, got {speed}")
        self.speed = speed
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self._host_monotonic = host_monotonic
        self._host_origin = host_monotonic()
        self._pinned: float | None = None

    def monotonic(self) -> float:
        """Simulated seconds since the clock was made (the pinned instant while one is pinned)."""
        if self._pinned is not None:
            return self._pinned
        return (self._host_monotonic() - self._host_origin) * self.speed

    @contextlib.contextmanager
    def pinned(self, monotonic_s: float) -> Iterator[None]:
        """Hold the clock at `monotonic_s` while the (synchronous) body runs.

        A simulated wearable that falls behind the accelerated clock catches up by
        simulating several seconds at once; it pins the clock to the end of each second
        while it delivers that second's notifications, so that receipt stamps say when
        they were sent in simulated time and not when a busy event loop got round to it
        (at 400x, a 25 ms stall would otherwise be ten simulated seconds of error).
        """
        previous, self._pinned = self._pinned, monotonic_s
        try:
            yield
        finally:
            self._pinned = previous

    def wall(self) -> datetime:
        """The simulated wall-clock time."""
        return self.start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, monotonic_s: float) -> None:
        """Sleep until the simulated monotonic clock reads at least `monotonic_s`.

        Always gives the event loop a turn, even when that instant has passed: a caller
        that has fallen behind (a simulated device catching up on a busy host) would
        otherwise loop without ever yielding and starve every other task, the daemon's
        timers included.
        """
        if monotonic_s <= self.monotonic():
            await asyncio.sleep(0)
            return
        # asyncio may wake a timer up to its clock resolution early; loop until really there.
        while (remaining := monotonic_s - self.monotonic()) > 0:
            await self.sleep(remaining)


CLOCK_FLOOR: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""The build floor: this release was made after it, so a host clock reading earlier has
never been set (1970 after a Raspberry Pi boots without a real-time clock)."""
STEP_TOLERANCE_S: Final = 1.0
"""A wall clock this far from the anchor's extrapolation was stepped. NTP slews offsets
below 128 ms and steps larger ones; a second leaves room for a busy host's scheduling."""
PROVISIONAL_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""Held stamps read as this plus the monotonic seconds: a time the store refuses, so a
held row that escaped would be quarantined, never stored as if it were real."""


@dataclass(frozen=True, slots=True)
class ReceiveStamp:
    """When the host received a notification.

    `time` is monotonic-based (anchored wall time + monotonic elapsed) and is what a
    sample's key should use; `time_received` is the wall clock read at receipt;
    `monotonic_s` is the raw monotonic reading, for intervals and watchdogs. A `held`
    stamp was made while the wall clock was implausible: its `time` is provisional
    (`PROVISIONAL_EPOCH` + monotonic seconds) until the stamper anchors.
    """

    time: datetime
    time_received: datetime
    monotonic_s: float
    held: bool = False


class Stamper:
    """Stamp receipts against a wall-clock anchor that follows steps and waits for a plausible clock."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        floor: datetime = CLOCK_FLOOR,
        step_tolerance_s: float = STEP_TOLERANCE_S,
    ) -> None:
        """Anchor to the wall clock now if it is plausible (not before `floor`)."""
        if floor.tzinfo is None or not step_tolerance_s > 0:
            raise ValueError("floor must be timezone-aware and step_tolerance_s positive")
        self.clock = clock
        self.floor = floor
        self.step_tolerance_s = step_tolerance_s
        self.generation = 0
        """How many times the stamper anchored (0: never, all stamps so far are held)."""
        self.steps = 0
        """Wall-clock steps seen after the first anchor."""
        self.anchor_monotonic_s: float | None = None
        self.anchor_wall: datetime | None = None
        self._implausible_seen = False
        self.check()

    @property
    def anchored(self) -> bool:
        """Whether the wall clock was plausible at least once (else every stamp is held)."""
        return self.anchor_wall is not None

    @property
    def release_offset_us(self) -> int | None:
        """What to add to a held (provisional) time to make it real; None while unanchored."""
        if self.anchor_wall is None or self.anchor_monotonic_s is None:
            return None
        real = _us(self.anchor_wall - PROVISIONAL_EPOCH)
        return real - round(self.anchor_monotonic_s * 1_000_000)

    def check(self) -> bool:
        """Read the clocks, anchoring or re-anchoring if due; return whether anchored."""
        self._observe(self.clock.monotonic(), self.clock.wall())
        return self.anchored

    def _observe(self, monotonic_s: float, wall: datetime) -> None:
        if wall < self.floor:
            if self.anchored and self.generation == 1 and self.steps == 0:
                logger.warning(
                    "wall clock reads %s, before %s; keeping the anchor", wall, self.floor
                )
            return
        if self.anchor_wall is None or self.anchor_monotonic_s is None:
            self._anchor(monotonic_s, wall)
            return
        expected = self.anchor_wall + timedelta(seconds=monotonic_s - self.anchor_monotonic_s)
        step = (wall - expected).total_seconds()
        if abs(step) > self.step_tolerance_s:
            self.steps += 1
            logger.warning("wall clock stepped by %+.3f s; re-anchoring the receive stamps", step)
            self._anchor(monotonic_s, wall)

    def _anchor(self, monotonic_s: float, wall: datetime) -> None:
        self.anchor_monotonic_s = monotonic_s
        self.anchor_wall = wall
        self.generation += 1

    def stamp(self) -> ReceiveStamp:
        """Read the clocks now."""
        monotonic_s = self.clock.monotonic()
        wall = self.clock.wall()
        self._observe(monotonic_s, wall)
        if self.anchor_wall is None or self.anchor_monotonic_s is None:
            provisional = PROVISIONAL_EPOCH + timedelta(microseconds=round(monotonic_s * 1e6))
            return ReceiveStamp(provisional, wall, monotonic_s, held=True)
        return ReceiveStamp(
            time=self.anchor_wall + timedelta(seconds=monotonic_s - self.anchor_monotonic_s),
            time_received=wall,
            monotonic_s=monotonic_s,
        )


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


__all__ = [
    "CLOCK_FLOOR",
    "PROVISIONAL_EPOCH",
    "STEP_TOLERANCE_S",
    "SYSTEM_CLOCK",
    "Clock",
    "ReceiveStamp",
    "SimClock",
    "Stamper",
    "SystemClock",
]
