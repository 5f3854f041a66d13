"""Clocks and receive stamps: host time for real wearables, accelerated time for simulated ones.

Standard heart-rate notifications carry no time of their own, so every sample is stamped
by the host when it arrives. The stamp's `time` is the wall clock read once, when the
`Stamper` was created, plus the monotonic time elapsed since: an NTP step or a manual clock
change while the daemon runs cannot reorder samples or make two share a key. The wall
clock read at receipt is kept beside it as `time_received`, so the drift between the two
stays visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol


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
        """Sleep until the simulated monotonic clock reads at least `monotonic_s`."""
        # asyncio may wake a timer up to its clock resolution early; loop until really there.
        while (remaining := monotonic_s - self.monotonic()) > 0:
            await self.sleep(remaining)


@dataclass(frozen=True, slots=True)
class ReceiveStamp:
    """When the host received a notification.

    `time` is monotonic-based (anchored wall time + monotonic elapsed) and is what a
    sample's key should use; `time_received` is the wall clock read at receipt;
    `monotonic_s` is the raw monotonic reading, for intervals and watchdogs.
    """

    time: datetime
    time_received: datetime
    monotonic_s: float


class Stamper:
    """Stamp receipts against a wall-clock anchor read once, then advanced monotonically."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        """Anchor the wall clock to the monotonic clock, once."""
        self.clock = clock
        self.anchor_monotonic_s = clock.monotonic()
        self.anchor_wall = clock.wall()

    def stamp(self) -> ReceiveStamp:
        """Read the clocks now."""
        monotonic_s = self.clock.monotonic()
        return ReceiveStamp(
            time=self.anchor_wall + timedelta(seconds=monotonic_s - self.anchor_monotonic_s),
            time_received=self.clock.wall(),
            monotonic_s=monotonic_s,
        )


__all__ = ["SYSTEM_CLOCK", "Clock", "ReceiveStamp", "SimClock", "Stamper", "SystemClock"]
