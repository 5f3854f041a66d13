"""Sample times that never collide: each device's times only ever move forward.

The one beat-dating algorithm (and the one guard for the other streams). The store keys
every raw row by (patient, time, device), so two samples of one device must never share
a microsecond. Heart-rate and step rows take the receive stamp, which is monotonic-based
already; `place` only matters when two notifications arrive within one microsecond. RR
intervals need more: a notification's beats are dated back from its receipt (the last
beat ends at the receive time, each earlier one ends an RR earlier), and when
notifications bunch up (a busy radio delivers two at once) the back-dated beats of the
second would fall among those of the first. A beat cannot end before the previous beat's
end plus its own duration, so each beat is dated no earlier than that: the beats of one
stream form a chain whose gaps are the RR intervals themselves. After lost beats (a
dropped notification, a reconnect) the back-dated time is the later one, so the chain
follows the receipt again.

Pure functions of the last time placed: the caller keeps it (`StreamState`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

MAX_RR_LEAD_US: Final = 2_000_000
"""How far the beat chain may run ahead of the receive time before it is re-anchored.

A strap's clock that runs slow makes its RR intervals sum to more than the time that
passed; chained, the beats would drift ahead of the host by ~4 s a day. Two seconds is
more than any bunching of notifications, so beyond it the chain follows the receipt again
(still strictly after the previous beat)."""


def place(last_us: int | None, time_us: int) -> int:
    """A time for a sample stamped `time_us`: that time, or just after the previous sample."""
    if last_us is not None and time_us <= last_us:
        return last_us + 1
    return time_us


def place_beats(last_us: int | None, received_us: int, rr_us: Sequence[int]) -> list[int]:
    """End times of the beats of one notification (oldest first) received at `received_us`."""
    out: list[int] = []
    back = received_us - sum(rr_us)
    for interval in rr_us:
        back += interval  # the back-dated end of this beat
        time_us = back
        if last_us is not None:
            chained = last_us + interval
            if chained <= received_us + MAX_RR_LEAD_US:
                time_us = max(back, chained)
            else:
                time_us = max(back, last_us + 1)
        last_us = time_us
        out.append(time_us)
    return out


__all__ = ["MAX_RR_LEAD_US", "place", "place_beats"]
