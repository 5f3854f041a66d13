"""Overexertion (boom) rules: load above the day's envelope, and a boom followed by more pain.

The "envelope" is the energy-envelope idea of pacing (Jason et al. 2013): stay
within what the body tolerates. Here the day's envelope is the quota times the
plan's envelope fraction (default 1.2), the minutes above the plan's heart-rate
ceiling, and the acute:chronic EWMA load ratio (Williams et al. 2017, see
`paceline.pacing.load`). A pain rise of 2 points on a 0-10 scale is the
clinically important change in chronic pain (Farrar et al. 2001).

References
----------
Jason LA, Brown M, Brown A, et al. Energy conservation/envelope theory interventions
to help patients with myalgic encephalomyelitis/chronic fatigue syndrome.
Fatigue 2013;1:27-42.
Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes
in chronic pain intensity measured on an 11-point numerical pain rating scale.
Pain 2001;94:149-158.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History

#: A day above this multiple of quota is critical rather than a warning.
CRITICAL_QUOTA_RATIO: Final = 1.5
#: An open over-quota flag stays open while load stays above the midpoint between
#: the quota and the envelope (1.1 × quota by default): a patient just above quota
#: is following the plan, not booming.
ACWR_ENTER: Final = 1.5
ACWR_HOLD: Final = 1.3
#: Pain rise (0-10 points) after a boom that counts (Farrar et al. 2001).
PAIN_RISE: Final = 2.0
PAIN_RISE_CRITICAL: Final = 4.0
#: "Within 48 h": the boom day and the two days after it.
PAIN_WINDOW_DAYS: Final = 2

OVER_QUOTA = RuleSpec(
    "boom.over_quota",
    "Load above the day's envelope (quota × envelope fraction)",
    min_on_days=1,
    min_off_days=2,
    thresholds={
        "envelope_fraction": 1.2,
        "hold": "midpoint of quota and envelope",
        "critical_ratio": CRITICAL_QUOTA_RATIO,
    },
)
ABOVE_CEILING = RuleSpec(
    "boom.above_ceiling",
    "Minutes above the pacing heart-rate ceiling over the plan's limit",
    min_on_days=1,
    min_off_days=2,
    thresholds={"max_above_ceiling_min": 30.0, "hold": "half the limit", "critical": "twice"},
)
ACWR_SPIKE = RuleSpec(
    "boom.acwr_spike",
    "Acute:chronic EWMA load ratio spike (Williams et al. 2017)",
    min_on_days=1,
    min_off_days=2,
    thresholds={"enter_ratio": ACWR_ENTER, "hold_ratio": ACWR_HOLD},
)
PAIN_AFTER_BOOM = RuleSpec(
    "boom.pain_followed",
    "A boom day followed within 48 h by a pain rise of at least 2 points",
    min_on_days=1,
    min_off_days=2,
    thresholds={"pain_rise": PAIN_RISE, "window_h": 48, "critical_rise": PAIN_RISE_CRITICAL},
)


def over_quota(h: History) -> list[DaySignal]:
    """Each valid day's load against quota × envelope fraction."""
    out = []
    for i, d in enumerate(h.days):
        v, q = h.values[i], h.quotas[i]
        if math.isnan(v) or math.isnan(q) or q <= 0:
            out.append(DaySignal(d.day, None))
            continue
        ratio = v / q
        envelope = h.settings[i].envelope_fraction
        out.append(
            DaySignal(
                d.day,
                enter=bool(ratio > envelope),
                hold=bool(ratio > (1.0 + envelope) / 2),
                severity=Severity.CRITICAL if ratio > CRITICAL_QUOTA_RATIO else Severity.WARNING,
                evidence={
                    "load": num(v),
                    "quota": num(q),
                    "ratio": num(ratio),
                    "envelope": num(envelope * q),
                },
            )
        )
    return out


def above_ceiling(h: History) -> list[DaySignal]:
    """Minutes above the heart-rate ceiling against the plan's limit."""
    out = []
    for i, d in enumerate(h.days):
        if not d.reported:
            out.append(DaySignal(d.day, None))
            continue
        limit = h.settings[i].max_above_ceiling_min
        plan = h.plan_on(i)
        minutes = d.above_ceiling_min
        out.append(
            DaySignal(
                d.day,
                enter=minutes > limit,
                hold=minutes > limit / 2,
                severity=Severity.CRITICAL if minutes > 2 * limit else Severity.WARNING,
                evidence={
                    "above_ceiling_min": num(minutes, 1),
                    "limit_min": limit,
                    "hr_ceiling_bpm": None if plan is None else plan.hr_ceiling_bpm,
                },
            )
        )
    return out


def acwr_spike(h: History) -> list[DaySignal]:
    """The acute:chronic EWMA ratio on valid days once the chronic load is established."""
    ratio = h.load.ratio
    out = []
    for i, d in enumerate(h.days):
        if math.isnan(h.load.loads[i]) or math.isnan(ratio[i]):
            out.append(DaySignal(d.day, None))
            continue
        out.append(
            DaySignal(
                d.day,
                enter=bool(ratio[i] >= ACWR_ENTER),
                hold=bool(ratio[i] >= ACWR_HOLD),
                evidence={
                    "acwr": num(ratio[i]),
                    "acute": num(h.load.acute[i]),
                    "chronic": num(h.load.chronic[i]),
                    "measure": h.measure.value,
                },
            )
        )
    return out


def boom_days(h: History) -> npt.NDArray[np.bool_]:
    """Which days entered any of the three load rules (the booms)."""
    booms = np.zeros(len(h), dtype=bool)
    for rule in (over_quota, above_ceiling, acwr_spike):
        booms |= np.array([bool(s.enter) for s in rule(h)])
    return booms


def pain_after_boom(h: History) -> list[DaySignal]:
    """On each diary day, whether pain rose ≥ 2 points over the pre-boom level of a boom ≤ 48 h ago."""
    booms = boom_days(h)
    out = []
    for t, d in enumerate(h.days):
        pain = h.pain[t]
        if math.isnan(pain):
            out.append(DaySignal(d.day, None))
            continue
        best: tuple[float, int, float] | None = None
        for b in range(max(0, t - PAIN_WINDOW_DAYS), t + 1):
            if not booms[b]:
                continue
            before = h.pain[max(0, b - 2) : b]
            before = before[~np.isnan(before)]
            if before.size == 0:
                continue
            ref = float(before.mean())
            rise = pain - ref
            if best is None or rise > best[0]:
                best = (rise, b, ref)
        if best is None:
            out.append(DaySignal(d.day, False))
            continue
        rise, b, ref = best
        out.append(
            DaySignal(
                d.day,
                enter=bool(rise >= PAIN_RISE),
                severity=Severity.CRITICAL if rise >= PAIN_RISE_CRITICAL else Severity.WARNING,
                evidence={
                    "boom_day": h.days[b].day.isoformat(),
                    "boom_load": num(h.values[b]),
                    "quota": num(h.quotas[b]),
                    "pain_before": num(ref, 1),
                    "pain": num(pain, 1),
                    "rise": num(rise, 1),
                },
            )
        )
    return out
