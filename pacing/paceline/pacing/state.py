"""What one evaluated patient-day leaves for the next, so the next reads a bounded window.

An evaluation of day D continues from the state stored at the end of an
earlier day S (normally D-8, see `paceline.pacing.engine.REDECIDE_DAYS`) and
reads only the days S+2-W … D (W = the window, 61 days by default):

- each flag rule's state machine (`paceline.pacing.flags.RuleState`: a pending
  run or an open episode, bounded whatever its length), stepped for S+1 … D;
- the chronic-load EWMA of each measure at the end of day S+1-W, the day before
  the window (`paceline.pacing.load.ChronicBase`), from which the window's
  chronic load continues bit for bit;
- the last day with data up to that day (for the silent-device evidence).

The state is JSON in `pacing_state`; nothing in it is a clinical decision of its
own, it is the carried-forward part of the same computation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from paceline.pacing.days import Measure
from paceline.pacing.evidence import JSON, iso
from paceline.pacing.flags import RuleState, state_from_json, state_json
from paceline.pacing.load import ChronicBase


@dataclass(frozen=True)
class EngineState:
    """The carried state at the end of `day` for evaluations with a `window_days` window."""

    day: date
    window_days: int
    rules: Mapping[str, RuleState]
    #: The chronic load by measure at the end of day `day + 1 - window_days`
    #: (None for a measure whose seed week was not complete by then).
    bases: Mapping[Measure, ChronicBase | None]
    #: The last day with data up to that same day.
    last_reported: date | None

    def as_json(self) -> dict[str, JSON]:
        """The state as stored."""
        return {
            "day": iso(self.day),
            "window_days": self.window_days,
            "rules": {rule_id: state_json(s) for rule_id, s in self.rules.items()},
            "bases": {
                m.value: None
                if b is None
                else {"n_valid": b.n_valid, "seed": list(b.seed), "chronic": b.chronic}
                for m, b in self.bases.items()
            },
            "last_reported": iso(self.last_reported),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineState:
        """The state from `as_json`."""
        bases: dict[Measure, ChronicBase | None] = {}
        for name, b in data["bases"].items():
            bases[Measure(name)] = (
                None
                if b is None
                else ChronicBase(
                    int(b["n_valid"]), tuple(float(v) for v in b["seed"]), float(b["chronic"])
                )
            )
        last = data["last_reported"]
        return cls(
            day=date.fromisoformat(data["day"]),
            window_days=int(data["window_days"]),
            rules={rule_id: state_from_json(s) for rule_id, s in data["rules"].items()},
            bases=bases,
            last_reported=None if last is None else date.fromisoformat(last),
        )
