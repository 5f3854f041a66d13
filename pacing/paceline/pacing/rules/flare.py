"""Flare rules: a flare episode in the diary, and flare risk over the next 48 h above threshold.

A flare is pain at least 2 points (the clinically important change, Farrar et
al. 2001) above the patient's usual level (`paceline.pacing.flare.usual`: the
median of days t-16 … t-3) on 2 consecutive diary days; it lasts while pain
stays at least 1 point above usual. Its onset is what steps the plan's quota
back (`paceline.pacing.progression.advance`).

Flare risk is the score of `paceline.pacing.flare`: the flag opens at 0.19
(nearly three times the 48 h base rate of the development cohorts, 7 %), stays
open above 0.14 and is critical from 0.45. The thresholds were chosen on the
development cohorts of `bench/alerts.py` (seeds 11-13): with the score of
model v4, 0.19 is the lowest entry threshold (in steps of 0.01) whose pushes
stay within 0.1 per patient-day on every development cohort (0.18 went to
0.101); the hold and critical thresholds are those of model v3, and lower
holds (0.10) or a critical threshold of 0.6 caught fewer onsets.

References
----------
Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes
in chronic pain intensity measured on an 11-point numerical pain rating scale.
Pain 2001;94:149-158.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Final

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, Flag, RuleSpec, Severity
from paceline.pacing.flare import (
    USUAL_FIRST_LAG,
    USUAL_LAST_LAG,
    FlareRisk,
    flare_risk,
    usual,
)
from paceline.pacing.history import History
from paceline.pacing.load import FloatArray
from paceline.pacing.progression import FlareOnset

FLARE_RISE: Final = 2.0
FLARE_HOLD_RISE: Final = 1.0
RISK_ENTER: Final = 0.19
RISK_HOLD: Final = 0.14
RISK_CRITICAL: Final = 0.45

FLARE_EPISODE = RuleSpec(
    "flare.episode",
    "Pain flare: pain ≥ 2 points above the usual level on consecutive days",
    min_on_days=2,
    min_off_days=2,
)
FLARE_RISK = RuleSpec(
    "flare.risk_high",
    "Flare risk over the next 48 h above threshold",
    min_on_days=1,
    min_off_days=2,
)


def flare_signals(pain: FloatArray, days: Sequence[date], first: int = 0) -> list[DaySignal]:
    """Each diary day's pain (from day `first` on) against the usual level."""
    out = []
    for t in range(first, len(days)):
        d = days[t]
        ref = usual(pain, t)
        if math.isnan(pain[t]) or math.isnan(ref):
            out.append(DaySignal(d, None))
            continue
        rise = float(pain[t] - ref)
        out.append(
            DaySignal(
                d,
                enter=bool(rise >= FLARE_RISE),
                hold=bool(rise >= FLARE_HOLD_RISE),
                evidence={"pain": num(pain[t], 1), "usual": num(ref, 1), "rise": num(rise, 1)},
                thresholds={
                    "rise": FLARE_RISE,
                    "hold_rise": FLARE_HOLD_RISE,
                    "usual": f"median pain of days t-{USUAL_FIRST_LAG} to t-{USUAL_LAST_LAG}",
                },
            )
        )
    return out


def flare_episode(h: History) -> list[DaySignal]:
    """The flare rule over the days of a history the rules decide on."""
    return flare_signals(h.pain, [d.day for d in h.days], h.first)


def onsets(flags: Sequence[Flag]) -> list[FlareOnset]:
    """Flare episodes as the plan sees them: when each began and when it was confirmed."""
    return [FlareOnset(f.start, f.opened) for f in flags if f.rule_id == FLARE_EPISODE.rule_id]


def day_risks(h: History) -> list[FlareRisk]:
    """The flare risk of each day of a history the rules decide on, from the data known that day.

    The engine scores the days once: the flare-risk rule decides on these scores
    and the day evaluated (the last) is stored with its factors.
    """
    excess = h.load.excess
    return [flare_risk(excess, h.pain, h.sleep, t) for t, _ in h.evaluated()]


def risk_signals(h: History, risks: Sequence[FlareRisk]) -> list[DaySignal]:
    """The flare-risk rule on the days of a history the rules decide on, given their `risks`."""
    out = []
    for (_, day), r in zip(h.evaluated(), risks, strict=True):
        out.append(
            DaySignal(
                day.day,
                enter=r.score >= RISK_ENTER,
                hold=r.score >= RISK_HOLD,
                severity=Severity.CRITICAL if r.score >= RISK_CRITICAL else Severity.WARNING,
                evidence={
                    "score": num(r.score, 3),
                    "contributing": [f.text for f in r.contributing[:3]],
                },
                thresholds={"enter": RISK_ENTER, "hold": RISK_HOLD, "critical": RISK_CRITICAL},
            )
        )
    return out


def risk_high(h: History) -> list[DaySignal]:
    """The flare-risk rule on the days of a history the rules decide on."""
    return risk_signals(h, day_risks(h))
