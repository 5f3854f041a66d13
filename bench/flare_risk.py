"""Flare-risk discrimination on a simulated cohort, against a naive reference in the same run.

Usage: .venv/bin/python -P bench/flare_risk.py [--patients 300] [--days 120] [--seed 2026]
       [--bootstrap 500] [--fit]

The cohort (`paceline.pacing.simulate.cohort`) generates flares from a known
rule: a logistic hazard driven by each patient's own sensitivity times the load
spike of the previous two days, the previous night's sleep deficit, the
acute:chronic load ratio and unobserved noise; a triggered flare builds up pain
(and costs sleep) for two days before its onset. The score under test
(`paceline.pacing.flare.risk_series`) sees only what Paceline would see: loads
with non-wear gaps, and diaries with missing days. Its weights were fitted on a
development cohort (seed 11, `--fit`), not on this one.

Each term of the score must earn its place: the score without it (drop-one,
same weights for the others) must have an AUC at least 0.002 lower, and the
score must beat both the load spike alone and yesterday's load (95 % interval
of the AUC difference above 0). A missed target is printed and the script
exits 1.

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
import sys
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from paceline.pacing.flare import WEIGHTS, design, risk_series
from paceline.pacing.load import load_state
from paceline.pacing.rules.flare import RISK_ENTER
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


#: The score's terms, as `paceline.pacing.flare.Factor.name`.
TERMS = (
    "load_spike",
    "pain_build_up",
    "pain_trend",
    "no_diary",
    "sleep_deficit",
)
#: The load-spike reference: the largest load excess of the last 3 days (days t-2 to t).
SPIKE_DAYS = 3
#: The development cohort the weights were chosen on (never the one validated).
DEV_SEED = 11
#: What each term must add to the AUC to earn its place (dropping it must cost this much).
MIN_TERM_GAIN = 0.002


def evaluate(patients: int, days: int, seed: int, *, eligible_only: bool = True) -> dict[str, Any]:
    """Simulate the cohort and collect, per eligible day, the outcome, each factor and scores.

    With `eligible_only` false every day from `FIRST_DAY` is kept, flares and
    non-wear days included: the days the score runs on, which is what it is fitted to.
    """
    rows: list[dict[str, Any]] = []
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
            if eligible_only and (
                p.in_flare[max(0, t - REFRACTORY_DAYS - 1) : t + 1].any() or np.isnan(p.loads[t])
            ):
                continue
            recent = excess[max(0, t - SPIKE_DAYS + 1) : t + 1]
            factors = {f.name: f for f in risks[t].factors}
            rows.append(
                {
                    "pid": pid,
                    "outcome": any(t + k in onsets for k in range(1, HORIZON_DAYS + 1)),
                    "log_odds": risks[t].log_odds,
                    "score": risks[t].score,
                    "value": {n: factors[n].value for n in TERMS},
                    "contribution": {n: factors[n].contribution for n in TERMS},
                    "load": float(p.loads[t]),
                    "acwr": 0.0 if np.isnan(ratio[t]) else float(ratio[t]),
                    "spike": float(np.nanmax(recent)) if not np.isnan(recent).all() else 0.0,
                    "design": design(excess, p.pain, p.sleep, t, risks[t].shrunk_response),
                }
            )
    elapsed = time.perf_counter() - t0
    return {"rows": rows, "flares": flares, "seconds": elapsed, "evaluations": evaluations}


def fit_weights(patients: int, days: int) -> dict[str, Any]:
    """Logistic regression of the outcome on the model's inputs, on the development cohort.

    This is how the weights in `paceline.pacing.flare` were chosen (then rounded to
    two decimals); it runs on `DEV_SEED`, never on the validation cohort. The
    inputs are `paceline.pacing.flare.design` (pain above usual as piecewise-linear
    pieces, so that the weights can say that a rise of 1-2 points is a build-up
    and pain already at flare level is not); a small ridge penalty (0.05 per
    squared weight, the intercept free) keeps the pieces that few days reach
    from running away.
    """
    from scipy.optimize import minimize  # noqa: PLC0415 - only the --fit mode needs it

    rows = evaluate(patients, days, DEV_SEED, eligible_only=False)["rows"]
    x = np.array([[1.0, *r["design"]] for r in rows])
    y = np.array([r["outcome"] for r in rows], dtype=float)
    ridge = np.full(x.shape[1], 0.05)
    ridge[0] = 0.0

    def loss(w: NDArray[np.float64]) -> float:
        z = x @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + np.sum(ridge * w * w))

    def grad(w: NDArray[np.float64]) -> NDArray[np.float64]:
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        return np.asarray(x.T @ (p - y) + 2 * ridge * w, dtype=np.float64)

    res = minimize(loss, np.zeros(x.shape[1]), jac=grad, method="L-BFGS-B")
    return {
        "intercept": round(float(res.x[0]), 2),
        "weights": [round(float(w), 2) for w in res.x[1:]],
        "in_use": list(WEIGHTS),
    }


def main() -> int:
    """Run the validation, print the figures (the last line as JSON); 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument(
        "--fit", action="store_true", help="fit the weights on the development cohort and exit"
    )
    args = parser.parse_args()
    if args.fit:
        print(json.dumps({"dev_seed": DEV_SEED, "weights": fit_weights(args.patients, args.days)}))
        return 0
    if args.seed == DEV_SEED:
        parser.error(f"seed {DEV_SEED} is the development cohort; validate on another")

    run = evaluate(args.patients, args.days, args.seed)
    rows = run["rows"]
    pid = np.array([r["pid"] for r in rows])
    y = np.array([r["outcome"] for r in rows], dtype=bool)
    log_odds = np.array([r["log_odds"] for r in rows])
    scores = {
        "flare_risk": log_odds,
        "naive_yesterdays_load": np.array([r["load"] for r in rows]),
        "acwr_alone": np.array([r["acwr"] for r in rows]),
        "load_spike_alone": np.array([r["spike"] for r in rows]),
    }
    # Drop-one ablations: the score without one term (same weights for the others).
    for name in TERMS:
        scores[f"without_{name}"] = log_odds - np.array([r["contribution"][name] for r in rows])
    point = {name: auc(s, y) for name, s in scores.items()}

    rng = np.random.default_rng(args.seed + 1)
    groups = [np.flatnonzero(pid == i) for i in range(args.patients)]
    groups = [g for g in groups if g.size]
    boot: dict[str, list[float]] = {name: [] for name in scores}
    for _ in range(args.bootstrap):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        for name, s in scores.items():
            boot[name].append(auc(s[pick], y[pick]))
    ci = {
        name: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
        for name, v in boot.items()
    }
    full = np.array(boot["flare_risk"])

    def diff_ci(other: str) -> list[float]:
        d = full - np.array(boot[other])
        return [
            round(float(np.nanpercentile(d, 2.5)), 4),
            round(float(np.nanpercentile(d, 97.5)), 4),
        ]

    gains = {n: point["flare_risk"] - point[f"without_{n}"] for n in TERMS}
    over_spike = diff_ci("load_spike_alone")
    over_naive = diff_ci("naive_yesterdays_load")
    misses = [
        f"term {n} adds {g:+.4f} AUC (< {MIN_TERM_GAIN})"
        for n, g in gains.items()
        if g < MIN_TERM_GAIN
    ]
    if over_spike[0] <= 0:
        misses.append(f"score vs load spike alone: AUC difference CI {over_spike} includes 0")
    if over_naive[0] <= 0:
        misses.append(f"score vs yesterday's load: AUC difference CI {over_naive} includes 0")

    flagged = np.array([r["score"] for r in rows]) >= RISK_ENTER
    tp = int((flagged & y).sum())
    sensitivity = tp / max(int(y.sum()), 1)
    specificity = int((~flagged & ~y).sum()) / max(int((~y).sum()), 1)
    ppv = tp / max(int(flagged.sum()), 1)

    for name in scores:
        print(f"{name:32s} AUC {point[name]:.3f}  95% CI {ci[name][0]:.3f}-{ci[name][1]:.3f}")
    for name, g in gains.items():
        print(f"term {name:24s} adds {g:+.4f} AUC")
    print(
        f"flag threshold {RISK_ENTER}: sensitivity {sensitivity:.2f}, specificity"
        f" {specificity:.2f}, PPV {ppv:.2f}, {flagged.mean():.1%} of days flagged"
    )
    print(
        f"{args.patients} patients x {args.days} days, {run['flares']} flares,"
        f" {len(rows)} eligible days with {int(y.sum())} flare onsets in the next 48 h;"
        f" {run['evaluations']} risk evaluations in {run['seconds']:.1f} s"
    )
    for miss in misses:
        print(f"TARGET MISSED: {miss}")
    print(
        json.dumps(
            {
                "patients": args.patients,
                "days": args.days,
                "seed": args.seed,
                "dev_seed": DEV_SEED,
                "eligible_days": len(rows),
                "outcomes": int(y.sum()),
                "flares": run["flares"],
                "auc": round(point["flare_risk"], 4),
                "auc_ci95": [round(v, 4) for v in ci["flare_risk"]],
                "load_spike_alone_auc": round(point["load_spike_alone"], 4),
                "auc_minus_load_spike_ci95": over_spike,
                "naive_auc": round(point["naive_yesterdays_load"], 4),
                "naive_auc_ci95": [round(v, 4) for v in ci["naive_yesterdays_load"]],
                "naive": "yesterday's load alone",
                "auc_minus_naive_ci95": over_naive,
                "acwr_alone_auc": round(point["acwr_alone"], 4),
                "term_auc_gain": {n: round(g, 4) for n, g in gains.items()},
                "target": (
                    f"every term adds >= {MIN_TERM_GAIN} AUC; the score beats the load spike"
                    " alone and yesterday's load (95% CI of the difference above 0)"
                ),
                "target_met": not misses,
                "threshold": RISK_ENTER,
                "sensitivity": round(sensitivity, 3),
                "specificity": round(specificity, 3),
                "ppv": round(ppv, 3),
                "ms_per_evaluation": round(1000 * run["seconds"] / max(run["evaluations"], 1), 3),
            }
        )
    )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
