"""What "now" is for the clock, the workers and the demo: the real time, or a simulated clock.

`PACELINE_CLOCK_START` (read by `paceline.cli.scheduler.SchedulerSettings`)
places every process of a deployment at one instant that then advances with the
real time: replays, demos and tests run the nightly pass, evaluations, reminders
and delivery retries as if it were that time. Every part that decides something
by the time asks one `TimeSource`, so the scheduler's slots, a worker's
evaluation day, a delivery's backoff and a reminder's due time agree.

The queue itself runs on the database's real `now()`: a job deferred to run at a
simulated instant (a delivery retry) is scheduled at `TimeSource.real` of it,
the real instant at which the simulated clock shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from paceline.pacing.errors import PacingError


def _real_now() -> datetime:
    """The real time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class TimeSource:
    """A clock: the real time shifted by a fixed offset (zero for the real time).

    Callable, so it stands wherever a `Callable[[], datetime]` is expected.
    """

    offset: timedelta = timedelta(0)
    """How far the clock is ahead of the real time (negative: behind)."""
    start: datetime | None = field(default=None, compare=False)
    """The instant the clock was started at, or None for the real time."""

    @classmethod
    def starting_at(cls, start: datetime | None) -> TimeSource:
        """A clock that shows `start` now and advances with the real time (None: the real time)."""
        if start is None:
            return REAL_TIME
        if start.tzinfo is None:
            raise PacingError(f"a clock start must carry a time zone; got {start.isoformat()}")
        begin = start.astimezone(UTC)
        return cls(offset=begin - _real_now(), start=begin)

    @property
    def simulated(self) -> bool:
        """Whether this clock is not the real time."""
        return self.start is not None

    def now(self) -> datetime:
        """The current instant on this clock, in UTC."""
        return _real_now() + self.offset

    def __call__(self) -> datetime:
        """`now()`."""
        return self.now()

    def real(self, instant: datetime) -> datetime:
        """The real instant at which this clock shows `instant` (for the queue's `schedule_at`)."""
        return instant - self.offset


REAL_TIME: Final = TimeSource()
"""The real time: what every process uses unless `PACELINE_CLOCK_START` is set."""
