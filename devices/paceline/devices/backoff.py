"""Exponential backoff with jitter and a cap, as a pure function of the attempt number.

The one retry policy of the gateway: device reconnects (`devices.transport`) and database
retries of the uploader (`ingest`) both use it. It lives here because `devices` depends
on nothing of ours and `ingest` may import `devices`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays `base_s * factor**attempt`, capped at `cap_s`, stretched by up to `jitter` of themselves.

    Jitter only ever lengthens a delay, so `cap_s * (1 + jitter)` bounds every wait; it
    spreads the retries of many gateways (or devices) that failed at the same moment.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        """Check the policy makes sense."""
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got {self.base_s} and {self.cap_s}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    @property
    def max_delay_s(self) -> float:
        """The longest delay this policy can produce."""
        return self.cap_s * (1 + self.jitter)

    def delay_s(self, attempt: int, rand: float = 0.0) -> float:
        """Seconds to wait before retry `attempt` (0-based); `rand` in [0, 1) comes from the caller's RNG."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if not 0 <= rand < 1:
            raise ValueError(f"rand must be in [0, 1), got {rand}")
        # The exponent is clamped so that a long outage cannot overflow the float.
        delay = min(self.cap_s, self.base_s * self.factor ** min(attempt, 64))
        return self.stretch(delay, rand)

    def stretch(self, delay_s: float, rand: float) -> float:
        """`delay_s` lengthened by this policy's jitter (`rand` in [0, 1) from the caller's RNG)."""
        if not 0 <= rand < 1:
            raise ValueError(f"rand must be in [0, 1), got {rand}")
        return delay_s * (1 + self.jitter * rand)


__all__ = ["Backoff"]
