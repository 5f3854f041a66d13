"""Alert burden and flare-onset recall of the alert policy, against a naive policy in the same run.

Usage: .venv/bin/python bench/alerts.py [--patients 300] [--days 120] [--seed 2026]

The cohort is `paceline.pacing.simulate.cohort` (flares from a known rule; see
bench/flare_risk.py). Each patient is replayed day by day the way the nightly
evaluation sees them: the plan advances with `plan.advance` on the days known
so far, every flag rule of the engine (`rules.RULES`, the flare-risk rule among them)
turns the history into episodes, and the episodes known at the end of each day
go through the alert policy's pure decision (`alerts.policy.decide`, the same
function `raise_alerts` calls), with nobody acknowledging anything (the worst
case for repeats). The engine's rules look only backwards, so the episodes as
known on day t are those of the signals up to day t; the run checks this
against a real truncated history for a sample of patient-days and fails if
they differ.

Figures (patient-days from day 28, when baselines and the usual pain level
exist; onsets from day 30):

- `alerts_per_patient_day`: messages pushed to a clinician (immediate, repeat
  and escalation pushes; one evaluation's pushes for a patient are one
  message). Digest entries and the inbox are counted apart.
- `onset_recall`: share of flare onsets preceded by such a push within 48 h:
  pushed the morning after evaluating day o-2 or o-1 (07:00), before the
  evening diary of onset day o (20:00).
- the same two for the naive policy: an alert for every new flag episode, of
  any rule, the morning after the day it opened.
- `onset_recall_with_digest`: the same, counting an alert in the next
  morning's digest (08:00) as reaching the clinician too.
- `chance_onset_recall_at_policy_rate`: the recall of as many pushes per
  patient as the policy made, on random days (how much of a recall any
  policy gets from its alert rate alone).
- `open_push_route_onset_recall` and `open_push_route_per_patient_day`: a
  push on every day on which any flag that the policy routes as immediate (at
  its severity) is open: the most any repeat, re-arm or escalation setting of
  those routes could catch, and what it would cost.

Target: at most 0.1 pushes per patient-day while recalling at least as many
onsets as the naive policy. Exits 1 on a miss. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from paceline.pacing.alerts.policy import (
    DEFAULT_POLICY,
    AlertPolicy,
    AlertState,
    Decision,
    Episode,
    Open,
    Reason,
    Status,
    Urgency,
    decide,
    hot,
)
from paceline.pacing.days import DayLoad
from paceline.pacing.diary import DiaryDay
from paceline.pacing.flags import DaySignal, Flag, RuleSpec, episodes
from paceline.pacing.history import History, build
from paceline.pacing.progression import PlanVersion, advance, default_plan
from paceline.pacing.rules import RULES
from paceline.pacing.rules.flare import FLARE_EPISODE, onsets
from paceline.pacing.simulate import CohortPatient, cohort

START = date(2026, 1, 5)
FIRST_DAY = 28
FIRST_ONSET = 30
TARGET_PER_PATIENT_DAY = 0.1
WEAR_MIN = 840.0


def day_loads(p: CohortPatient) -> list[DayLoad]:
    """The cohort's loads as active minutes on worn days, and short non-wear days."""
    out = []
    for t, load in enumerate(p.loads):
        d = START + timedelta(days=t)
        if math.isnan(load):
            out.append(DayLoad(d, 120.0, 5.0, 300, 6.0, 0.0, 7200, reported=True, valid_wear=False))
        else:
            v = float(load)
            out.append(DayLoad(d, WEAR_MIN, v, int(v * 100), v * 1.3, 0.0, 50400, True, True))
    return out


def diary(p: CohortPatient) -> dict[date, DiaryDay]:
    """The cohort's diary days (pain and sleep quality)."""
    out = {}
    for t, pain in enumerate(p.pain):
        if math.isnan(pain):
            continue
        d = START + timedelta(days=t)
        sleep = None if math.isnan(p.sleep[t]) else float(p.sleep[t])
        out[d] = DiaryDay(d, float(pain), int(pain), None, None, sleep, None, 1)
    return out


def plans_over(days: list[DayLoad], book: dict[date, DiaryDay]) -> list[PlanVersion]:
    """The plan versions the nightly evaluation would have made, day by day.

    The flare rule does not read the plan, and `advance` only uses flares
    confirmed by the day it is given, so the flares are found once.
    """
    plans = [default_plan(START)]
    flare_rule = next(r for r in RULES if r.spec is FLARE_EPISODE)
    flares = onsets(flare_rule.flags(build(days, book, plans, timezone="UTC")))
    for t in range(len(days)):
        plans = plans + advance(plans, days[: t + 1], flares, days[t].day)
    return plans


def all_signals(h: History) -> list[tuple[RuleSpec, list[DaySignal]]]:
    """Every rule's day-by-day signals over the history (flare risk included)."""
    return [(r.spec, r.detect(h)) for r in RULES]


def known_on(signals: list[tuple[RuleSpec, list[DaySignal]]], t: int) -> list[Flag]:
    """The episodes known at the end of day t."""
    return [f for spec, s in signals for f in episodes(spec, s[: t + 1])]


@dataclass
class Ledger:
    """The in-memory alerts of one patient under a policy, as `raise_alerts` would store them."""

    policy: AlertPolicy
    alerts: dict[str, AlertState] = field(default_factory=dict)
    next_id: int = 1
    pushes: list[int] = field(default_factory=list)  # evaluation days with a pushed message
    digests: list[int] = field(default_factory=list)  # evaluation days with a digest entry
    digest_items: int = 0

    def apply(self, d: Decision, t: int, now: datetime) -> None:
        """Store a decision the way `raise_alerts` writes it."""
        pushed = digested = False
        by_target: dict[int, AlertState] = {}
        for op in d.opens:
            a = AlertState(
                self.next_id,
                op.episode.rule_id,
                op.episode.flag_id,
                op.episode.window_start,
                op.episode.severity,
                Status.OPEN,
                op.urgency,
                None,
                None,
                0,
                None,
            )
            self.next_id += 1
            self.alerts[a.rule_id] = a
            by_target[id(op)] = a
        for c in d.continues:
            a = self.alerts[c.episode.rule_id]
            self.alerts[a.rule_id] = replace(
                a,
                flag_id=c.episode.flag_id,
                severity=c.episode.severity,
                urgency=c.urgency,
                status=c.status,
                resolved_at=None if c.status is not Status.RESOLVED else a.resolved_at,
            )
        for aid in d.resolves:
            for rule, a in self.alerts.items():
                if a.alert_id == aid:
                    self.alerts[rule] = replace(a, status=Status.RESOLVED, resolved_at=now)
        for n in d.notices:
            if isinstance(n.target, Open):
                a = by_target[id(n.target)]
            else:
                a = next(x for x in self.alerts.values() if x.alert_id == n.target)
            a = self.alerts[a.rule_id]
            self.alerts[a.rule_id] = replace(
                a,
                notified_severity=n.severity,
                last_notified_at=now,
                repeats=a.repeats + (n.reason is Reason.REPEAT),
            )
            if n.urgency is Urgency.IMMEDIATE:
                pushed = True
            else:
                self.digest_items += 1
                digested = True
        if pushed:
            self.pushes.append(t)
        if digested:
            self.digests.append(t)


def as_episode(f: Flag, ids: dict[tuple[str, date], int], day: date) -> Episode:
    """A flag as the policy sees it (flag ids stable per rule and start, as the engine keeps them)."""
    key = (f.rule_id, f.start)
    ids.setdefault(key, len(ids) + 1)
    start = datetime.combine(f.start, datetime.min.time(), UTC)
    end = datetime.combine(f.end + timedelta(days=1), datetime.min.time(), UTC)
    return Episode(
        ids[key], f.rule_id, f.severity, start, end, f.active, f.rule_id, hot=hot(f.evidence, day)
    )


@dataclass
class PatientRun:
    """What one patient's replay produced."""

    patient_days: int
    onsets: list[int]
    policy_pushes: list[int]
    policy_digests: list[int]
    naive_pushes: list[int]
    #: The rules of the naive policy's alerts by evaluation day.
    naive_rules: dict[int, list[str]]
    digest_items: int
    open_push_days: list[int]


def replay(p: CohortPatient, policy: AlertPolicy, *, check_at: Sequence[int] = ()) -> PatientRun:
    """Replay one patient day by day through the rules and both policies."""
    days, book = day_loads(p), diary(p)
    plans = plans_over(days, book)
    h = build(days, book, plans, timezone="UTC", measure=plans[-1].measure)
    signals = all_signals(h)
    for t in check_at:
        # The rules look only backwards: a truncated history gives the same episodes.
        short = build(days[: t + 1], book, plans, timezone="UTC", measure=plans[-1].measure)
        if known_on(all_signals(short), t) != known_on(signals, t):
            raise SystemExit(f"episodes on day {t} depend on later days; the replay is invalid")
    ledger = Ledger(policy)
    ids: dict[tuple[str, date], int] = {}
    naive: list[int] = []
    naive_rules: dict[int, list[str]] = {}
    open_push: list[int] = []
    seen: set[tuple[str, date]] = set()
    for t in range(len(days)):
        flags = known_on(signals, t)
        if t >= FIRST_DAY and any(
            f.active and policy.urgency(f.rule_id, f.severity) is Urgency.IMMEDIATE for f in flags
        ):
            open_push.append(t)
        now = datetime.combine(START + timedelta(days=t + 1), datetime.min.time(), UTC)
        now += timedelta(hours=7)
        if t >= FIRST_DAY:
            new = [f for f in flags if (f.rule_id, f.start) not in seen and f.active]
            naive += [t] * len(new)
            if new:
                naive_rules[t] = [f.rule_id for f in new]
        seen |= {(f.rule_id, f.start) for f in flags}
        today = START + timedelta(days=t)
        episodes_now = [as_episode(f, ids, today) for f in flags]
        decision = decide(policy, episodes_now, ledger.alerts, now=now)
        ledger.apply(decision, t, now)
    return PatientRun(
        patient_days=len(days) - FIRST_DAY,
        onsets=[o for o in p.flare_onsets if o >= FIRST_ONSET],
        policy_pushes=[t for t in ledger.pushes if t >= FIRST_DAY],
        policy_digests=[t for t in ledger.digests if t >= FIRST_DAY],
        naive_pushes=naive,
        naive_rules=naive_rules,
        digest_items=ledger.digest_items,
        open_push_days=open_push,
    )


def recalled(onset_days: list[int], push_days: list[int]) -> int:
    """Onsets with a push from the evaluation of day o-2 or o-1."""
    pushed = set(push_days)
    return sum(1 for o in onset_days if (o - 1) in pushed or (o - 2) in pushed)


def naive_only(runs: Sequence[PatientRun]) -> dict[str, int]:
    """Onsets the naive policy caught and the policy missed, by the rules of the naive alerts.

    An onset counts once per rule that alerted (naively) in its 48 h.
    """
    out: dict[str, int] = {}
    for r in runs:
        pushed = set(r.policy_pushes)
        for o in r.onsets:
            if (o - 1) in pushed or (o - 2) in pushed:
                continue
            for rule in sorted({*r.naive_rules.get(o - 1, []), *r.naive_rules.get(o - 2, [])}):
                out[rule] = out.get(rule, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def chance_recall(runs: Sequence[PatientRun], days: int, seed: int) -> float:
    """Recall of pushes on random days, as many per patient as the policy made (the chance level)."""
    rng = random.Random(seed)
    hit = total = 0
    for r in runs:
        k = min(len(set(r.policy_pushes)), days - FIRST_DAY)
        picked = rng.sample(range(FIRST_DAY, days), k)
        hit += recalled(r.onsets, picked)
        total += len(r.onsets)
    return hit / max(total, 1)


def main() -> int:
    """Run the cohort and print the figures, the last line as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    t0 = time.perf_counter()
    runs = [
        replay(p, DEFAULT_POLICY, check_at=(40, args.days - 1) if i < 5 else ())
        for i, p in enumerate(cohort(args.patients, args.days, args.seed))
    ]
    elapsed = time.perf_counter() - t0
    patient_days = sum(r.patient_days for r in runs)
    n_onsets = sum(len(r.onsets) for r in runs)
    pushes = sum(len(r.policy_pushes) for r in runs)
    naive = sum(len(r.naive_pushes) for r in runs)
    hit = sum(recalled(r.onsets, r.policy_pushes) for r in runs)
    with_digest = sum(
        recalled(r.onsets, sorted({*r.policy_pushes, *r.policy_digests})) for r in runs
    )
    naive_hit = sum(recalled(r.onsets, r.naive_pushes) for r in runs)
    digest = sum(r.digest_items for r in runs)
    open_push_hit = sum(recalled(r.onsets, r.open_push_days) for r in runs)
    open_push = sum(len(r.open_push_days) for r in runs)
    result: dict[str, Any] = {
        "patients": args.patients,
        "days": args.days,
        "seed": args.seed,
        "patient_days": patient_days,
        "onsets": n_onsets,
        "alerts_per_patient_day": round(pushes / patient_days, 4),
        "onset_recall": round(hit / max(n_onsets, 1), 4),
        "naive_alerts_per_patient_day": round(naive / patient_days, 4),
        "naive_onset_recall": round(naive_hit / max(n_onsets, 1), 4),
        "digest_items_per_patient_day": round(digest / patient_days, 4),
        "onset_recall_with_digest": round(with_digest / max(n_onsets, 1), 4),
        "chance_onset_recall_at_policy_rate": round(chance_recall(runs, args.days, args.seed), 4),
        "open_push_route_onset_recall": round(open_push_hit / max(n_onsets, 1), 4),
        "open_push_route_per_patient_day": round(open_push / patient_days, 4),
        "burden_ratio_to_naive": round(pushes / max(naive, 1), 4),
        "naive_only_onsets": sum(
            1
            for r in runs
            for o in r.onsets
            if not ({o - 1, o - 2} & set(r.policy_pushes))
            and ({o - 1, o - 2} & set(r.naive_pushes))
        ),
        "policy_only_onsets": sum(
            1
            for r in runs
            for o in r.onsets
            if ({o - 1, o - 2} & set(r.policy_pushes))
            and not ({o - 1, o - 2} & set(r.naive_pushes))
        ),
        "naive_only_onsets_by_rule": naive_only(runs),
        "seconds": round(elapsed, 1),
    }
    ok = (
        result["alerts_per_patient_day"] <= TARGET_PER_PATIENT_DAY
        and result["onset_recall"] >= result["naive_onset_recall"]
    )
    result["target_met"] = ok
    print(
        f"{args.patients} patients x {args.days} days ({patient_days} patient-days from day"
        f" {FIRST_DAY}), {n_onsets} flare onsets; replayed in {elapsed:.1f} s"
    )
    print(
        f"policy: {result['alerts_per_patient_day']:.3f} pushes per patient-day to clinicians"
        f" (+{result['digest_items_per_patient_day']:.3f} digest entries),"
        f" onset recall {result['onset_recall']:.1%}"
        f" ({result['onset_recall_with_digest']:.1%} counting the 08:00 digest)"
    )
    print(
        f"naive (every new flag): {result['naive_alerts_per_patient_day']:.3f} alerts per"
        f" patient-day, onset recall {result['naive_onset_recall']:.1%}"
    )
    print(
        f"policy burden is {result['burden_ratio_to_naive']:.2f}x the naive policy's; pushes on"
        f" random days at the policy's rate would catch"
        f" {result['chance_onset_recall_at_policy_rate']:.1%}"
    )
    print(
        f"a push on every day a flag of an immediate route is open would catch"
        f" {result['open_push_route_onset_recall']:.1%} at"
        f" {result['open_push_route_per_patient_day']:.3f} per patient-day"
    )
    print(
        f"onsets only the naive policy caught: {result['naive_only_onsets']}"
        f" (its alerts in their 48 h, by rule: {result['naive_only_onsets_by_rule']});"
        f" onsets only the policy caught: {result['policy_only_onsets']}"
    )
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
