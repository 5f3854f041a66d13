"""Boom-bust cycling: alternating over- and under-quota days with high day-to-day variability.

The overactivity-underactivity cycle is the pattern pacing sets out to break
(Nielson et al. 2013). The detector looks at the 14 days ending on each day,
using each valid day's load as a fraction of that day's quota (so that quota
steps are not mistaken for variability):

1. classify each day as *over* (fraction ≥ the plan's envelope fraction, 1.2),
   *under* (≤ 0.8) or *within*;
2. count *switches*: changes between over and under in the sequence of days that
   are not within (within days are skipped, so over-within-under is a switch);
3. coefficient of variation (SD / mean) of the fractions.

It fires with at least 10 valid days, at least 2 over and 2 under days, at least
3 switches (over-under-over-under) and a CV of at least 0.35; an open flag stays
open while there are at least 2 switches and a CV of at least 0.25. A steady
patient near quota has a CV around 0.1; a boom-bust week is typically 0.5-0.8.

References
----------
Nielson WR, Jensen MP, Karsdorp PA, Vlaeyen JWS. Activity pacing in chronic pain:
concepts, evidence, and future directions. Clin J Pain 2013;29:461-468.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final

import numpy as np

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec
from paceline.pacing.history import History

WINDOW_DAYS: Final = 14
MIN_VALID_DAYS: Final = 10
UNDER_FRACTION: Final = 0.8
MIN_EACH: Final = 2
SWITCHES_ENTER: Final = 3
SWITCHES_HOLD: Final = 2
CV_ENTER: Final = 0.35
CV_HOLD: Final = 0.25

BOOM_BUST = RuleSpec(
    "cycling.boom_bust",
    "Boom-bust cycling: alternating over- and under-quota days with high variability",
    min_on_days=1,
    min_off_days=3,
)


def switches(labels: list[int]) -> int:
    """Changes of sign in a sequence of +1 (over) / -1 (under) labels."""
    return sum(1 for a, b in pairwise(labels) if a != b)


def boom_bust(h: History) -> list[DaySignal]:
    """Each day's verdict on the 14 days ending then."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = h.values / h.quotas
    out = []
    for t, d in h.evaluated():
        lo = max(0, t - WINDOW_DAYS + 1)
        window = fraction[lo : t + 1]
        over_limits = [s.envelope_fraction for s in h.settings[lo : t + 1]]
        known = [
            (float(f), env) for f, env in zip(window, over_limits, strict=True) if np.isfinite(f)
        ]
        if len(known) < MIN_VALID_DAYS:
            out.append(DaySignal(d.day, None))
            continue
        labels = [1 if f >= env else -1 for f, env in known if f >= env or f <= UNDER_FRACTION]
        n_over, n_under = labels.count(1), labels.count(-1)
        values = np.array([f for f, _ in known])
        mean = float(values.mean())
        cv = float(values.std(ddof=1) / mean) if mean > 0 else 0.0
        n_switch = switches(labels)
        enough = n_over >= MIN_EACH and n_under >= MIN_EACH
        out.append(
            DaySignal(
                d.day,
                enter=enough and n_switch >= SWITCHES_ENTER and cv >= CV_ENTER,
                hold=n_switch >= SWITCHES_HOLD and cv >= CV_HOLD,
                evidence={
                    "valid_days": len(known),
                    "over_days": n_over,
                    "under_days": n_under,
                    "switches": n_switch,
                    "cv": num(cv),
                },
                thresholds={
                    "window_days": WINDOW_DAYS,
                    "over_fraction": h.settings[t].envelope_fraction,
                    "under_fraction": UNDER_FRACTION,
                    "switches": SWITCHES_ENTER,
                    "switches_hold": SWITCHES_HOLD,
                    "cv": CV_ENTER,
                    "cv_hold": CV_HOLD,
                },
            )
        )
    return out
