"""Maintenance-phase rules: early warning of relapse into avoidance or boom-bust.

After the structured programme ends (`PlanSettings.maintenance_from`) the quota
no longer rises and monitoring is lighter: the programme's day-by-day bust
and boom-bust flags stand down (`programme_only`), and two relapse flags look
at whole weeks of the same data instead. Renewed avoidance and a return of
the overactivity-underactivity cycle are the two relapse patterns the
fear-avoidance and pacing literature names (Vlaeyen & Linton 2012; Nielson
et al. 2013); maintenance programmes aim to catch them early (Morley 2011,
relapse prevention in CBT for chronic pain).

- ``relapse.avoidance``: the last 7 days' load (valid days only, at least 4)
  below the bust fraction of those days' targets (0.7 by default); stays open
  while below 0.85; needs 3 consecutive days to open and 3 to close, so a
  single low week-end does not flag.
- ``relapse.boom_bust``: the boom-bust detector of `paceline.pacing.rules.cycling`
  (14-day window) on maintenance days.

References
----------
Vlaeyen JWS, Linton SJ. Fear-avoidance model of chronic musculoskeletal pain:
12 years on. Pain 2012;153:1144-1147.
Nielson WR, Jensen MP, Karsdorp PA, Vlaeyen JWS. Activity pacing in chronic pain:
concepts, evidence, and future directions. Clin J Pain 2013;29:461-468.
Morley S. Efficacy and effectiveness of cognitive behaviour therapy for chronic
pain: progress and some challenges. Pain 2011;152:S99-S106.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from paceline.pacing.evidence import iso, num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History
from paceline.pacing.rules import cycling
from paceline.pacing.rules.avoidance import UNDER_HOLD_RATIO

WEEK_DAYS: Final = 7
MIN_VALID_DAYS: Final = 4

RELAPSE_AVOIDANCE = RuleSpec(
    "relapse.avoidance",
    "Maintenance: a week's load well below the maintenance quota (renewed avoidance)",
    min_on_days=3,
    min_off_days=3,
)
RELAPSE_BOOM_BUST = RuleSpec(
    "relapse.boom_bust",
    "Maintenance: boom-bust cycling has returned",
    min_on_days=1,
    min_off_days=3,
)

Detector = Callable[[History], list[DaySignal]]


def programme_only(detect: Detector) -> Detector:
    """A programme rule that stands down in the maintenance phase (its relapse rule takes over)."""

    def during_programme(h: History) -> list[DaySignal]:
        signals = detect(h)
        return [
            DaySignal(s.day, False) if h.maintenance(i) else s
            for (i, _), s in zip(h.evaluated(), signals, strict=True)
        ]

    during_programme.__doc__ = detect.__doc__
    return during_programme


def relapse_avoidance(h: History) -> list[DaySignal]:
    """On maintenance days: the last week's load against the last week's targets."""
    out = []
    for i, d in h.evaluated():
        if not h.maintenance(i):
            out.append(DaySignal(d.day, False))
            continue
        lo = max(0, i - WEEK_DAYS + 1)
        pairs = [
            (float(h.values[j]), float(h.quotas[j]))
            for j in range(lo, i + 1)
            if not math.isnan(h.values[j]) and not math.isnan(h.quotas[j]) and h.quotas[j] > 0
        ]
        if len(pairs) < MIN_VALID_DAYS:
            out.append(DaySignal(d.day, None))
            continue
        load = sum(v for v, _ in pairs)
        target = sum(q for _, q in pairs)
        ratio = load / target
        bust = h.settings[i].bust_fraction
        out.append(
            DaySignal(
                d.day,
                enter=ratio < bust,
                hold=ratio < UNDER_HOLD_RATIO,
                severity=Severity.WARNING,
                evidence={
                    "week": [iso(h.days[lo].day), iso(d.day)],
                    "valid_days": len(pairs),
                    "load": num(load),
                    "target": num(target),
                    "ratio": num(ratio),
                },
                thresholds={
                    "bust_fraction": bust,
                    "hold_ratio": UNDER_HOLD_RATIO,
                    "week_days": WEEK_DAYS,
                    "min_valid_days": MIN_VALID_DAYS,
                },
            )
        )
    return out


def relapse_boom_bust(h: History) -> list[DaySignal]:
    """On maintenance days: the boom-bust detector's verdict on the last 14 days."""
    return [
        s if h.maintenance(i) else DaySignal(s.day, False)
        for (i, _), s in zip(h.evaluated(), cycling.boom_bust(h), strict=True)
    ]
