"""Pain-contingent activity: activity that drops after days of higher pain.

Graded activity is meant to be quota-contingent (Fordyce 1976): activity follows
the plan, not the pain of the day. This detector looks at the last 21 days for
the opposite pattern, at two lags: the day's own pain against the day's load
(same-day coupling: doing less on a painful day) and the previous day's pain
against the day's load (doing less the day after a painful one). For each lag
it pairs pain with the day's load as a fraction of quota, and asks two things:

- rank correlation: Spearman's rho between pain and the load fraction is
  clearly negative (≤ -0.5 to open, ≤ -0.3 to stay open);
- effect size: on days with (or after) high pain (≥ the window's median pain +
  1) the mean load fraction is at most 80 % of that on the other days (90 % to
  stay).

Both must hold at one lag, with at least 10 pairs and 3 days on each side of the
split, so that neither a weak trend nor a single bad week fires it. The flag's
evidence gives both lags' figures and says which lag fired.

References
----------
Fordyce WE. Behavioral methods for chronic pain and illness. St Louis: Mosby; 1976.
Spearman C. The proof and measurement of association between two things.
Am J Psychol 1904;15:72-101.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.stats import rankdata

from paceline.pacing.evidence import JSON, num
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
)


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    sx, sy = float(np.std(rx)), float(np.std(ry))
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


#: The lags examined: 0 = the day's own pain, 1 = the previous day's pain.
LAGS: Final = (0, 1)
_THRESHOLDS: Final[dict[str, JSON]] = {
    "window_days": WINDOW_DAYS,
    "min_pairs": MIN_PAIRS,
    "lags_days": list(LAGS),
    "rho_enter": RHO_ENTER,
    "rho_hold": RHO_HOLD,
    "drop_enter": DROP_ENTER,
    "drop_hold": DROP_HOLD,
}


@dataclass(frozen=True)
class LagVerdict:
    """One lag's pairs over the window: enough of them, correlation, drop, and the verdict."""

    pairs: int
    rho: float | None = None
    after_high: float | None = None
    after_other: float | None = None
    drop: float | None = None

    def passes(self, rho_limit: float, drop_limit: float) -> bool:
        """Whether both the correlation and the drop are at or below the limits."""
        if self.rho is None or self.drop is None:
            return False
        return self.rho <= rho_limit and self.drop <= drop_limit

    @property
    def enter(self) -> bool:
        """Both the correlation and the drop pass the opening thresholds."""
        return self.passes(RHO_ENTER, DROP_ENTER)

    @property
    def hold(self) -> bool:
        """Both pass the looser thresholds that keep a flag open."""
        return self.passes(RHO_HOLD, DROP_HOLD)

    def as_json(self) -> dict[str, JSON]:
        """Evidence form."""
        return {
            "pairs": self.pairs,
            "rho": num(self.rho),
            "quota_fraction_high_pain": num(self.after_high),
            "quota_fraction_other_days": num(self.after_other),
            "drop": num(self.drop),
        }


def lag_verdict(pain: FloatArray, fraction: FloatArray) -> LagVerdict:
    """The pattern between aligned pain and load fractions of one window (NaN where unknown)."""
    ok = ~np.isnan(pain) & np.isfinite(fraction)
    p, r = pain[ok], fraction[ok]
    if p.size < MIN_PAIRS:
        return LagVerdict(int(p.size))
    high = p >= float(np.median(p)) + HIGH_PAIN_ABOVE_MEDIAN
    if high.sum() < MIN_EACH_SIDE or (~high).sum() < MIN_EACH_SIDE:
        return LagVerdict(int(p.size))
    after_high, after_other = float(r[high].mean()), float(r[~high].mean())
    drop = after_high / after_other if after_other > 0 else math.nan
    return LagVerdict(int(p.size), spearman(p, r), after_high, after_other, drop)


def pain_contingent(h: History) -> list[DaySignal]:
    """Each day's verdict on the 21 days ending then, at both lags."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = h.values / h.quotas
    lagged = {lag: np.concatenate((np.full(lag, np.nan), h.pain[: len(h) - lag])) for lag in LAGS}
    out = []
    for t, d in h.evaluated():
        lo = max(0, t - WINDOW_DAYS + 1)
        verdicts = {lag: lag_verdict(lagged[lag][lo : t + 1], fraction[lo : t + 1]) for lag in LAGS}
        if all(v.pairs < MIN_PAIRS for v in verdicts.values()):
            out.append(DaySignal(d.day, None))
            continue
        evidence: dict[str, JSON] = {f"lag_{lag}_day": v.as_json() for lag, v in verdicts.items()}
        evidence["fired_at_lag_days"] = [lag for lag, v in verdicts.items() if v.enter]
        out.append(
            DaySignal(
                d.day,
                enter=any(v.enter for v in verdicts.values()),
                hold=any(v.hold for v in verdicts.values()),
                severity=Severity.INFO,
                evidence=evidence,
                thresholds=_THRESHOLDS,
            )
        )
    return out
