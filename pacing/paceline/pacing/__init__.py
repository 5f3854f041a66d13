"""Clinical logic: baselines, quotas, flags, flare risk, self-report, exposure ladders, alerts."""

from __future__ import annotations

from paceline.pacing.errors import PacingError

__all__ = ["PacingError"]
