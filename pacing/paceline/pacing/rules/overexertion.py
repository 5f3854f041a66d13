"""Overexertion (boom) rules: load above the day's envelope, and a boom followed by more pain.

The "envelope" is the energy-envelope idea of pacing (Jason et al. 2013): stay
within what the body tolerates. Here the day's envelope is the quota times the
plan's envelope fraction (default 1.2), the minutes above the plan's heart-rate
ceiling, and the rolling acute:chronic load ratio (Gabbett 2016, see
`paceline.pacing.load`). A pain rise of 2 points on a 0-10 scale is the
clinically important change in chronic pain (Farrar et al. 2001).

Over-quota severity is graded by how far the day's load is above the envelope
(load ÷ envelope), because a patient who does a little more than a deliberately
low first quota is not in danger (the first quota is 80 % of the baseline, so
doing exactly the baseline is 1.25 × quota, just above the 1.2 envelope):

===========  ===============================  =================================================
severity     load ÷ envelope                  meaning
===========  ===============================  =================================================
info         above 1, up to 1.5               over the plan; the patient is told to ease off,
                                              the clinician sees it in the list
warning      above 1.5 (1.8 × quota)          a boom worth a look at the next review
critical     2 or more (2.4 × quota)          a boom a clinician must see today: a flare
                                              within 48 h is likely (Nielson et al. 2013)
===========  ===============================  =================================================

Over-quota episodes are not escalated with their length: a patient who keeps
doing their baseline while the first quota is below it stays at info. Sustained
booms show in the acute:chronic ratio and the boom-bust rule instead.

References
----------
Jason LA, Brown M, Brown A, et al. Energy conservation/envelope theory interventions
to help patients with myalgic encephalomyelitis/chronic fatigue syndrome.
Fatigue 2013;1:27-42.
Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes
in chronic pain intensity measured on an 11-point numerical pain rating scale.
Pain 2001;94:149-158.
Gabbett TJ. The training-injury prevention paradox: should athletes be training
smarter and harder? Br J Sports Med 2016;50:273-280.
Nielson WR, Jensen MP, Karsdorp PA, Vlaeyen JWS. Activity pacing in chronic pain:
concepts, evidence, and future directions. Clin J Pain 2013;29:461-468.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.pacing.evidence import num
from paceline.pacing.flags import DaySignal, RuleSpec, Severity
from paceline.pacing.history import History

#: Load above this multiple of the envelope is a warning (below it: info) …
WARNING_ENVELOPE_MULTIPLE: Final = 1.5
#: … and at or above this multiple it is critical (see the grading table above).
CRITICAL_ENVELOPE_MULTIPLE: Final = 2.0
# An open over-quota flag stays open while load stays above the midpoint between
# the quota and the envelope (1.1 × quota by default): a patient just above quota
# is following the plan, not booming.
#: Rolling ACWR danger zone and the upper end of its "sweet spot" (Gabbett 2016).
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
)
ABOVE_CEILING = RuleSpec(
    "boom.above_ceiling",
    "Minutes above the pacing heart-rate ceiling over the plan's limit",
    min_on_days=1,
    min_off_days=2,
)
ACWR_SPIKE = RuleSpec(
    "boom.acwr_spike",
    "Acute:chronic load ratio spike (rolling 7-day over 28-day mean, Gabbett 2016)",
    min_on_days=1,
    min_off_days=2,
)
PAIN_AFTER_BOOM = RuleSpec(
    "boom.pain_followed",
    "A boom day followed within 48 h by a pain rise of at least 2 points",
    min_on_days=1,
    min_off_days=2,
)


def over_quota_severity(load_over_envelope: float) -> Severity:
    """The grade of a day over the envelope (the table in the module docstring)."""
    if load_over_envelope >= CRITICAL_ENVELOPE_MULTIPLE:
        return Severity.CRITICAL
    if load_over_envelope > WARNING_ENVELOPE_MULTIPLE:
        return Severity.WARNING
    return Severity.INFO


def over_quota(h: History) -> list[DaySignal]:
    """Each valid day's load against quota × envelope fraction, graded by how far above.

    The quota is the plan's full one, not a rest day's or lighter week's lower target.
    """
    out = []
    full = h.plan_quotas if len(h.plan_quotas) == len(h.days) else h.quotas
    for i, d in h.evaluated():
        v, q = h.values[i], full[i]
        if math.isnan(v) or math.isnan(q) or q <= 0:
            out.append(DaySignal(d.day, None))
            continue
        fraction = h.settings[i].envelope_fraction
        hold_fraction = (1.0 + fraction) / 2
        envelope = fraction * q
        out.append(
            DaySignal(
                d.day,
                enter=bool(v > envelope),
                hold=bool(v > hold_fraction * q),
                severity=over_quota_severity(v / envelope),
                evidence={
                    "load": num(v),
                    "quota": num(q),
                    "ratio": num(v / q),
                    "envelope": num(envelope),
                    "load_over_envelope": num(v / envelope),
                },
                thresholds={
                    "envelope_fraction": fraction,
                    "hold_fraction": hold_fraction,
                    "warning_above_envelope_times": WARNING_ENVELOPE_MULTIPLE,
                    "critical_from_envelope_times": CRITICAL_ENVELOPE_MULTIPLE,
                },
            )
        )
    return out


def above_ceiling(h: History) -> list[DaySignal]:
    """Minutes above the heart-rate ceiling against the plan's limit."""
    out = []
    for i, d in h.evaluated():
        if not d.reported or d.bad_metrics:
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
                    "hr_ceiling_bpm": None if plan is None else plan.hr_ceiling_bpm,
                },
                thresholds={
                    "limit_min": limit,
                    "hold_min": limit / 2,
                    "critical_min": 2 * limit,
                },
            )
        )
    return out


def acwr_spike(h: History) -> list[DaySignal]:
    """The rolling acute:chronic ratio on valid days once enough days are known (Gabbett 2016)."""
    ratio = h.load.ratio
    out = []
    for i, d in h.evaluated():
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
                    "acute_7d_mean": num(h.load.acwr.acute[i]),
                    "chronic_28d_mean": num(h.load.acwr.chronic[i]),
                    "measure": h.measure.value,
                },
                thresholds={"enter_ratio": ACWR_ENTER, "hold_ratio": ACWR_HOLD},
            )
        )
    return out


def boom_days(h: History) -> npt.NDArray[np.bool_]:
    """Which days entered any of the three load rules (the booms), from 48 h before `first`."""
    booms = np.zeros(len(h), dtype=bool)
    lo = max(0, h.first - PAIN_WINDOW_DAYS)
    earlier = replace(h, first=lo)
    for rule in (over_quota, above_ceiling, acwr_spike):
        booms[lo:] |= np.array([bool(s.enter) for s in rule(earlier)], dtype=bool)
    return booms


def pain_after_boom(h: History) -> list[DaySignal]:
    """On each diary day, whether pain rose ≥ 2 points over the pre-boom level of a boom ≤ 48 h ago."""
    booms = boom_days(h)
    out = []
    for t, d in h.evaluated():
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
                thresholds={
                    "pain_rise": PAIN_RISE,
                    "critical_rise": PAIN_RISE_CRITICAL,
                    "window_days": PAIN_WINDOW_DAYS,
                },
            )
        )
    return out
