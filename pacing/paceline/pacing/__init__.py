"""Clinical logic: baselines, quotas, flags, flare risk, self-report, exposure ladders, alerts."""

from __future__ import annotations


class PacingError(ValueError):
    """Root of every error raised by `paceline.pacing` (invalid clinical input or plan)."""


__all__ = ["PacingError"]
