"""The targets each benchmark checks on its own figures: a miss makes the script exit 1.

Every benchmark ends with `finish(figures, targets)`, which adds a `targets` entry (each
target's value, bound and whether it was met) and `ok` to the figures, prints them as
the last line (one JSON object, which `dev.py bench` collects) and returns the exit code.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Target:
    """`figures[name] op bound` must hold, e.g. `Target("ratio_vs_psql", ">=", 0.8)`."""

    name: str
    op: str
    bound: float

    def met(self, value: Any) -> bool:
        """Whether `value` meets the target (a missing or non-finite value never does)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return math.isfinite(value) and _OPS[self.op](float(value), self.bound)


def finish(figures: dict[str, Any], targets: Sequence[Target]) -> int:
    """Print `figures` with the verdict of every target as one JSON line; 0 if all are met."""
    verdicts = {
        t.name: {
            "value": figures.get(t.name),
            "target": f"{t.op} {t.bound:g}",
            "met": t.met(figures.get(t.name)),
        }
        for t in targets
    }
    ok = all(v["met"] for v in verdicts.values())
    missed = [name for name, v in verdicts.items() if not v["met"]]
    if missed:
        print(f"target missed: {', '.join(missed)}", flush=True)
    print(json.dumps({**figures, "targets": verdicts, "ok": ok}), flush=True)
    return 0 if ok else 1
