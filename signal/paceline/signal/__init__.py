"""Pure numpy/scipy signal processing: cleaning, wear, zones, load, HRV, daily summaries.

Nothing in this package does I/O of any kind.
"""

from __future__ import annotations


class SignalError(ValueError):
    """Root of every error raised by `paceline.signal` (bad arguments or inputs)."""


__all__ = ["SignalError"]
