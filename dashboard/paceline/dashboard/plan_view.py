"""The plan page's view model: the current plan in words, the edit form's change, versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paceline.pacing.days import Measure
from paceline.pacing.overview import Exposure
from paceline.pacing.progression import UNSET, PlannedDay, PlanVersion


def or_zero(value: float | None) -> float:
    """A number input's starting value (0 for unset)."""
    return float(value) if value is not None else 0.0


def summary(p: PlanVersion) -> str:
    """The plan in one sentence."""
    unit = p.measure.unit
    if p.quota is None:
        core = f"measuring a baseline of {unit}"
    else:
        core = f"daily quota {p.quota:.0f} {unit} (baseline {p.baseline or 0:.0f})"
    ceiling = f", HR ceiling {p.hr_ceiling_bpm} bpm" if p.hr_ceiling_bpm else ""
    return (
        f"Version {p.version} from {p.valid_from:%d %b %Y}: {core}, rising by"
        f" {p.step_fraction:.0%} of baseline every {p.period_days} days when met{ceiling}."
        f" Why: {p.reason}"
    )


@dataclass(frozen=True)
class PlanChange:
    """What the clinician entered in the plan form."""

    measure: Measure
    baseline: float
    quota: float
    step_fraction: float
    period_days: int
    hr_ceiling_bpm: int
    reason: str


def set_plan_arguments(c: PlanChange, current: PlanVersion | None) -> dict[str, Any]:
    """The keyword arguments of `planning.set_plan` for a form: only fields that changed."""
    if not c.reason.strip():
        raise ValueError("a plan change needs a reason")
    out: dict[str, Any] = {"reason": c.reason.strip()}
    if current is None or c.measure is not current.measure:
        out["measure"] = c.measure
    if current is None or c.baseline != or_zero(current.baseline):
        out["baseline"] = c.baseline if c.baseline > 0 else None
    if current is None or c.quota != or_zero(current.quota):
        out["quota"] = c.quota if c.quota > 0 else None
    elif "baseline" in out:
        out["quota"] = UNSET
    if current is None or abs(c.step_fraction - current.step_fraction) > 1e-9:
        out["step_fraction"] = c.step_fraction
    if current is None or c.period_days != current.period_days:
        out["period_days"] = c.period_days
    if current is None or c.hr_ceiling_bpm != (current.hr_ceiling_bpm or 0):
        out["hr_ceiling_bpm"] = c.hr_ceiling_bpm or None
    return out


def versions_table(versions: list[PlanVersion]) -> list[dict[str, object]]:
    """Every version, newest first, with who changed it and why."""
    return [
        {
            "version": v.version,
            "from": v.valid_from,
            "measure": v.measure.unit,
            "baseline": v.baseline,
            "quota": v.quota,
            "step": v.step_fraction,
            "period (days)": v.period_days,
            "HR ceiling": v.hr_ceiling_bpm,
            "cause": v.cause.value,
            "by": f"clinician {v.created_by}" if v.created_by else "engine",
            "reason": v.reason,
        }
        for v in reversed(versions)
    ]


def ladder_rows(x: Exposure) -> list[dict[str, object]]:
    """The ladder's rungs for the plan page."""
    return [
        {
            "rung": i.position + 1,
            "activity": i.activity,
            "fear": i.fear_rating,
            "status": i.status.value,
        }
        for i in x.items
    ]


def schedule_rows(days: Sequence[PlannedDay]) -> list[dict[str, object]]:
    """The schedule ahead for the plan page: each day's kind and target."""
    return [
        {
            "day": f"{d.day:%a %d %b}",
            "kind": d.kind.value + (" (maintenance)" if d.maintenance else ""),
            "quota": d.quota,
            "target": d.target,
        }
        for d in days
    ]


WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
