"""Retry policy of a delivery, as pure functions of the answer: what it means and when to try again.

- HTTP: 2xx delivered; 408 and 429 and every 5xx (and a timeout or a refused
  connection) are worth retrying; 410 Gone disables the endpoint; any other
  answer (other 4xx, a redirect) is a permanent failure.
- SMTP (RFC 5321 §4.2.1): 4yz replies are transient, 5yz permanent.
- Backoff: exponential with ±20 % jitter (so that deliveries failed together do
  not come back together), 11.3 min doubling: the 8 attempts of
  `MAX_ATTEMPTS` span 127 × 11.3 min ≈ 24 h before the delivery is
  dead-lettered.
"""

from __future__ import annotations

import random
from datetime import timedelta
from enum import StrEnum
from typing import Final

#: Attempts before a delivery that keeps failing is dead-lettered.
MAX_ATTEMPTS: Final = 8
#: First retry delay; doubling it seven times sums to about a day (127 × 680 s ≈ 24.0 h).
BASE_DELAY: Final = timedelta(seconds=680)
#: Each delay is scaled by a uniform factor in [1 - JITTER, 1 + JITTER].
JITTER: Final = 0.2


class Verdict(StrEnum):
    """What one attempt's answer means for the delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"


def http_verdict(status: int) -> Verdict:
    """The verdict of an HTTP status code."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.FAILED


def smtp_verdict(code: int) -> Verdict:
    """The verdict of an SMTP reply code that refused the message."""
    return Verdict.RETRY if 400 <= code < 500 else Verdict.FAILED


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Delay after failed attempt number `attempt` (1-based), with jitter."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1; got {attempt}")
    factor = float((rng or random).uniform(1 - JITTER, 1 + JITTER))
    return timedelta(seconds=BASE_DELAY.total_seconds() * 2 ** (attempt - 1) * factor)
