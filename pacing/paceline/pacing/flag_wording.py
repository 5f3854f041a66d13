"""Flag evidence as sentences with the numbers the detector used, never rule codes alone.

The sentences clinicians and patients read about a flag, next to `wording` (the
plan's sentences): the dashboard's pages and `paceline flags`/`patients show`
print the same words, and neither front end holds the rule titles.

Each stored flag carries its rule's title, thresholds and the day-by-day
values behind it (`paceline.pacing.flags`). This module words them: a summary
sentence per episode, then one sentence per day naming each number with its
meaning and unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paceline.pacing.rules import RULES
from paceline.pacing.rules.flare import FLARE_RISK

_TITLES: Final = {r.spec.rule_id: r.spec.title for r in RULES} | {
    FLARE_RISK.rule_id: FLARE_RISK.title
}

# (label, unit, how to print): the evidence keys the detectors write.
_LABELS: Final[dict[str, tuple[str, str, str]]] = {
    "load": ("load", "", "num"),
    "value": ("load", "", "num"),
    "quota": ("quota", "", "num"),
    "ratio": ("load/quota", "", "pct"),
    "envelope": ("envelope", "", "num"),
    "fraction": ("fraction of quota", "", "pct"),
    "above_ceiling_min": ("minutes above the HR ceiling", "min", "num"),
    "limit_min": ("limit", "min", "num"),
    "hr_ceiling_bpm": ("HR ceiling", "bpm", "num"),
    "acwr": ("acute:chronic load ratio", "", "num2"),
    "acute": ("acute load", "", "num"),
    "chronic": ("chronic load", "", "num"),
    "chronic_14d_ago": ("chronic load 14 days earlier", "", "num"),
    "drop": ("drop", "", "pct"),
    "boom_day": ("boom day", "", "text"),
    "boom_load": ("load on the boom day", "", "num"),
    "pain": ("pain", "/10", "num1"),
    "pain_before": ("pain before", "/10", "num1"),
    "rise": ("rise", "points", "num1"),
    "usual": ("usual pain", "/10", "num1"),
    "fear": ("fear of movement", "/10", "num1"),
    "fear_of_movement": ("fear of movement", "/10", "num1"),
    "wear_min": ("worn", "min", "num"),
    "valid_wear_min": ("a valid day needs", "min", "num"),
    "hr_samples": ("heart-rate samples", "", "num"),
    "last_day_with_data": ("last day with data", "", "text"),
    "score": ("flare risk", "", "pct"),
    "cv": ("day-to-day variation (CV)", "", "pct"),
    "switches": ("over/under switches", "", "num"),
    "over_days": ("days over plan", "", "num"),
    "under_days": ("days under plan", "", "num"),
    "planned": ("sessions planned", "", "num"),
    "not_done": ("sessions not done", "", "num"),
    "sessions": ("sessions", "", "num"),
    "rho": ("correlation of pain with next-day activity", "", "num2"),
    "pairs": ("day pairs", "", "num"),
    "quota_fraction_after_high_pain": ("share of quota after high-pain days", "", "pct"),
    "quota_fraction_after_other_days": ("share of quota after other days", "", "pct"),
    "measure": ("measured as", "", "text"),
}
# Keys that are structure, not numbers to read out.
_SKIP: Final = frozenset({"day", "factors", "response", "model", "log_odds", "personal_response"})


def rule_title(rule_id: str) -> str:
    """The rule's name in words (the id itself only for a rule this version does not know)."""
    return _TITLES.get(rule_id, rule_id)


def _fmt(value: object, how: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).replace("_", " ")
    if how == "pct":
        return f"{value:.0%}"
    if how == "num2":
        return f"{value:.2f}"
    if how == "num1":
        return f"{value:.1f}"
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.1f}"


def _part(key: str, value: object) -> str | None:
    if value is None or key in _SKIP or isinstance(value, dict | list):
        return None
    label, unit, how = _LABELS.get(key, (key.replace("_", " "), "", "num"))
    text = _fmt(value, how)
    if unit == "/10":
        return f"{label} {text}/10"
    return f"{label} {text}{' ' + unit if unit else ''}"


def day_sentence(entry: Mapping[str, Any]) -> str:
    """One day of evidence: 'On 2026-11-20: load 45, quota 30, load/quota 150 %.'."""
    parts = [p for k, v in entry.items() if (p := _part(k, v)) is not None]
    day = entry.get("day")
    head = f"On {day}" if day else "Overall"
    return f"{head}: {', '.join(parts)}." if parts else f"{head}: no numbers recorded."


def sentences(rule_id: str, evidence: Mapping[str, Any]) -> list[str]:
    """The evidence of one flag as sentences: the episode, the thresholds, then each day."""
    out = []
    days = evidence.get("episode_days")
    first, last = evidence.get("first_day"), evidence.get("last_day")
    if days is not None and first is not None:
        span = f"from {first} to {last}" if last and last != first else f"on {first}"
        out.append(
            f"{evidence.get('rule') or rule_title(rule_id)}: {days} day{'s' if days != 1 else ''}"
            f" {span}."
        )
    thresholds = evidence.get("thresholds")
    if isinstance(thresholds, Mapping) and thresholds:
        limits = ", ".join(
            f"{k.replace('_', ' ')} {_fmt(v, 'num2' if isinstance(v, float) else 'num')}"
            for k, v in thresholds.items()
            if not isinstance(v, dict | list)
        )
        out.append(f"Thresholds used: {limits}.")
    factors = evidence.get("factors")
    if isinstance(factors, list):
        out.extend(str(f["text"]) for f in factors if isinstance(f, Mapping) and f.get("text"))
    daily = evidence.get("daily")
    if isinstance(daily, list):
        out.extend(day_sentence(d) for d in daily if isinstance(d, Mapping))
    if not out:
        out.append(day_sentence(evidence))
    return out
