"""Evidence: the JSON values a flag or plan change carries so a clinician can see why."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TypeAlias

JSON: TypeAlias = str | int | float | bool | Sequence["JSON"] | Mapping[str, "JSON"] | None
Evidence: TypeAlias = Mapping[str, JSON]


def num(x: float | None, digits: int = 2) -> float | None:
    """A number rounded for display and stable comparison; None for NaN or missing."""
    if x is None or math.isnan(x):
        return None
    return round(float(x), digits)


def iso(d: date | None) -> str | None:
    """A date as ISO text (None stays None)."""
    return None if d is None else d.isoformat()
