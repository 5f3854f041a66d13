"""Flare-risk discrimination on a simulated cohort, against a naive reference in the same run.

Usage: .venv/bin/python bench/flare_risk.py [--patients 300] [--days 120] [--seed 2026]
       [--bootstrap 500]

The cohort (`paceline.pacing.simulate.cohort`) generates flares from a known
rule: a logistic hazard driven by each patient's own sensitivity times the load
spike of the previous two days, the previous night's sleep deficit, the
acute:chronic load ratio and unobserved noise. The score under test
(`paceline.pacing.flare.risk_series`) sees only what Paceline would see: loads
with non-wear gaps, and diaries with missing days. Its weights were set on a
development cohort (seed 11), not on this one.

For every eligible day t (t ≥ 28; not in a flare or the refractory days after
one; the day's load known) the outcome is whether a flare starts on day t+1 or
t+2. Each score is ranked against that outcome (AUC, the Mann-Whitney
statistic), with a 95 % percentile interval from resampling patients. The naive
reference is yesterday's load alone, i.e. the load of day t, the most recent
complete day. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from paceline.pacing.flare import RISK_ENTER, risk_series
from paceline.pacing.load import load_state
from paceline.pacing.simulate import REFRACTORY_DAYS, cohort

FIRST_DAY = 28
HORIZON_DAYS = 2


def auc(score: NDArray[np.float64], outcome: NDArray[np.bool_]) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    n1 = int(outcome.sum())
    n0 = int(outcome.size - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[outcome].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate(patients: int, days: int, seed: int) -> dict[str, Any]:
    """Simulate the cohort and collect, per eligible day, the outcome and each score."""
    rows: list[tuple[int, bool, float, float, float, float]] = []
    flares = 0
    t0 = time.perf_counter()
    evaluations = 0
    for pid, p in enumerate(cohort(patients, days, seed)):
        flares += len(p.flare_onsets)
        risks = risk_series(p.loads, p.pain, p.sleep, 0)
        evaluations += len(risks)
        state = load_state(p.loads)
        ratio, excess = state.ratio, state.excess
        onsets = set(p.flare_onsets)
        for t in range(FIRST_DAY, days - HORIZON_DAYS):
            if p.in_flare[max(0, t - REFRACTORY_DAYS - 1) : t + 1].any():
                continue
            if np.isnan(p.loads[t]):
                continue
            outcome = any(t + k in onsets for k in range(1, HORIZON_DAYS + 1))
            recent = excess[max(0, t - 1) : t + 1]
            spike = float(np.nanmax(recent)) if not np.isnan(recent).all() else 0.0
            rows.append(
                (
                    pid,
                    outcome,
                    risks[t].score,
                    float(p.loads[t]),
                    0.0 if np.isnan(ratio[t]) else float(ratio[t]),
                    spike,
                )
            )
    elapsed = time.perf_counter() - t0
    return {"rows": rows, "flares": flares, "seconds": elapsed, "evaluations": evaluations}


def main() -> None:
    """Run the validation and print the figures, the last line as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()

    run = evaluate(args.patients, args.days, args.seed)
    rows = run["rows"]
    pid = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=bool)
    scores = {
        "flare_risk": np.array([r[2] for r in rows]),
        "naive_yesterdays_load": np.array([r[3] for r in rows]),
        "acwr_alone": np.array([r[4] for r in rows]),
        "load_spike_alone": np.array([r[5] for r in rows]),
    }
    point = {name: auc(s, y) for name, s in scores.items()}

    rng = np.random.default_rng(args.seed + 1)
    groups = [np.flatnonzero(pid == i) for i in range(args.patients)]
    groups = [g for g in groups if g.size]
    boot: dict[str, list[float]] = {name: [] for name in scores}
    diff: list[float] = []
    for _ in range(args.bootstrap):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        values = {name: auc(s[pick], y[pick]) for name, s in scores.items()}
        for name, v in values.items():
            boot[name].append(v)
        diff.append(values["flare_risk"] - values["naive_yesterdays_load"])
    ci = {
        name: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
        for name, v in boot.items()
    }

    flagged = scores["flare_risk"] >= RISK_ENTER
    tp = int((flagged & y).sum())
    sensitivity = tp / max(int(y.sum()), 1)
    specificity = int((~flagged & ~y).sum()) / max(int((~y).sum()), 1)
    ppv = tp / max(int(flagged.sum()), 1)

    for name in scores:
        print(f"{name:24s} AUC {point[name]:.3f}  95% CI {ci[name][0]:.3f}-{ci[name][1]:.3f}")
    print(
        f"flag threshold {RISK_ENTER}: sensitivity {sensitivity:.2f}, specificity"
        f" {specificity:.2f}, PPV {ppv:.2f}, {flagged.mean():.1%} of days flagged"
    )
    print(
        f"{args.patients} patients x {args.days} days, {run['flares']} flares,"
        f" {len(rows)} eligible days with {int(y.sum())} flare onsets in the next 48 h;"
        f" {run['evaluations']} risk evaluations in {run['seconds']:.1f} s"
    )
    print(
        json.dumps(
            {
                "patients": args.patients,
                "days": args.days,
                "seed": args.seed,
                "eligible_days": len(rows),
                "outcomes": int(y.sum()),
                "flares": run["flares"],
                "auc": round(point["flare_risk"], 4),
                "auc_ci95": [round(v, 4) for v in ci["flare_risk"]],
                "naive_auc": round(point["naive_yesterdays_load"], 4),
                "naive_auc_ci95": [round(v, 4) for v in ci["naive_yesterdays_load"]],
                "naive": "yesterday's load alone",
                "auc_minus_naive_ci95": [
                    round(float(np.nanpercentile(diff, 2.5)), 4),
                    round(float(np.nanpercentile(diff, 97.5)), 4),
                ],
                "acwr_alone_auc": round(point["acwr_alone"], 4),
                "load_spike_alone_auc": round(point["load_spike_alone"], 4),
                "threshold": RISK_ENTER,
                "sensitivity": round(sensitivity, 3),
                "specificity": round(specificity, 3),
                "ppv": round(ppv, 3),
                "ms_per_evaluation": round(1000 * run["seconds"] / max(run["evaluations"], 1), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
