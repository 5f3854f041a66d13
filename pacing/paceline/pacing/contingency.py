"""Pain-contingent activity: activity that drops after days of higher pain.

Graded activity is meant to be quota-contingent (Fordyce 1976): activity follows
the plan, not the pain of the day before. This detector looks at the last 21
days for the opposite pattern. For each day k it pairs the previous day's pain
with the day's load as a fraction of quota, and asks two things:

- rank correlation: Spearman's rho between yesterday's pain and today's load
  fraction is clearly negative (≤ -0.5 to open, ≤ -0.3 to stay open);
- effect size: on days after high pain (≥ the window's median pain + 1) the
  mean load fraction is at most 80 % of that on the other days (90 % to stay).

Both must hold, with at least 10 pairs and 3 days on each side of the split, so
that neither a weak trend nor a single bad week fires it.

References
----------
Fordyce WE. Behavioral methods for chronic pain and illness. St Louis: Mosby; 1976.
Spearman C. The proof and measurement of association between two things.
Am J Psychol 1904;15:72-101.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from scipy.stats import rankdata

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History
from paceline.pacing.load import FloatArray

WINDOW_DAYS: Final = 21
MIN_PAIRS: Final = 10
MIN_EACH_SIDE: Final = 3
HIGH_PAIN_ABOVE_MEDIAN: Final = 1.0
RHO_ENTER: Final = -0.5
RHO_HOLD: Final = -0.3
DROP_ENTER: Final = 0.8
DROP_HOLD: Final = 0.9

PAIN_CONTINGENT = RuleSpec(
    "pacing.pain_contingent",
    "Activity drops after days of higher pain (pacing by pain rather than by plan)",
    min_on_days=3,
    min_off_days=3,
    thresholds={
        "window_days": WINDOW_DAYS,
        "min_pairs": MIN_PAIRS,
        "rho_enter": RHO_ENTER,
        "rho_hold": RHO_HOLD,
        "drop_enter": DROP_ENTER,
        "drop_hold": DROP_HOLD,
    },
)


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    sx, sy = float(np.std(rx)), float(np.std(ry))
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def pain_contingent(h: History) -> list[DaySignal]:
    """Each day's verdict on the 21 days ending then."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = h.values / h.quotas
    prev_pain = np.concatenate(([np.nan], h.pain[:-1]))
    out = []
    for t, d in enumerate(h.days):
        lo = max(0, t - WINDOW_DAYS + 1)
        p, r = prev_pain[lo : t + 1], fraction[lo : t + 1]
        ok = ~np.isnan(p) & ~np.isnan(r) & np.isfinite(r)
        p, r = p[ok], r[ok]
        if p.size < MIN_PAIRS:
            out.append(DaySignal(d.day, None))
            continue
        high = p >= float(np.median(p)) + HIGH_PAIN_ABOVE_MEDIAN
        if high.sum() < MIN_EACH_SIDE or (~high).sum() < MIN_EACH_SIDE:
            out.append(DaySignal(d.day, False, evidence={"pairs": int(p.size)}))
            continue
        rho = spearman(p, r)
        after_high, after_other = float(r[high].mean()), float(r[~high].mean())
        drop = after_high / after_other if after_other > 0 else math.nan
        out.append(
            DaySignal(
                d.day,
                enter=rho <= RHO_ENTER and drop <= DROP_ENTER,
                hold=rho <= RHO_HOLD and drop <= DROP_HOLD,
                severity=Severity.INFO,
                evidence={
                    "pairs": int(p.size),
                    "rho": num(rho),
                    "quota_fraction_after_high_pain": num(after_high),
                    "quota_fraction_after_other_days": num(after_other),
                    "drop": num(drop),
                },
            )
        )
    return out
