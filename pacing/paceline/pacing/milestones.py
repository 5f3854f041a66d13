"""Milestones for the patient's view: what the data show was achieved, framed as progress.

Celebrating small wins keeps people in a graded programme (reinforcement of
activity rather than of pain behaviour: Fordyce 1976; Vlaeyen & Linton 2000).
Each milestone comes from stored data, with the day it happened and a stable
key so that it is listed once; nothing is invented:

- a **rung mastered**: a ladder item marked mastered (dated by its last
  session, the practice that mastered it);
- a **goal reached**: a goal marked reached, or one whose links are all
  complete (dated by the day the last link completed, else the mark);
- a **target raised**: an exercise target the engine raised after consistent
  good sessions;
- a **week on plan**: a plan period whose quota was met on enough days (the
  engine's progression version says so, with the counts).

References
----------
Fordyce WE. Behavioral methods for chronic pain and illness. St Louis: Mosby; 1976.
Vlaeyen JWS, Linton SJ. Fear-avoidance and its consequences in chronic
musculoskeletal pain: a state of the art. Pain 2000;85:317-332.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from paceline.pacing import wording
from paceline.pacing.exercise import TargetCause, TargetVersion
from paceline.pacing.exposure import ItemStatus, LadderItem
from paceline.pacing.goals import GoalProgress
from paceline.pacing.progression import Cause, PlanVersion


class MilestoneKind(StrEnum):
    """What kind of progress a milestone marks."""

    RUNG_MASTERED = "rung_mastered"
    GOAL_REACHED = "goal_reached"
    TARGET_RAISED = "target_raised"
    WEEK_ON_PLAN = "week_on_plan"


@dataclass(frozen=True)
class Milestone:
    """One achievement: when, what kind, the words the patient reads, and a stable key."""

    key: str
    day: date
    kind: MilestoneKind
    text: str


def milestones(
    *,
    items: Sequence[tuple[LadderItem, date | None]],
    goals: Sequence[tuple[GoalProgress, date | None]],
    targets: Sequence[tuple[str, TargetVersion]],
    plans: Sequence[PlanVersion],
) -> list[Milestone]:
    """Every milestone in the data, newest first, each once.

    `items` are ladder items with the day of their last done session; `goals`
    the goals' progress with the day the goal was reached (when known);
    `targets` the (prescription name, version) of every target version.
    """
    out: dict[str, Milestone] = {}
    for item, last in items:
        if item.status is ItemStatus.MASTERED and last is not None:
            key = f"rung:{item.item_id}"
            out[key] = Milestone(
                key, last, MilestoneKind.RUNG_MASTERED, wording.rung_mastered(item.activity)
            )
    for g, day in goals:
        if g.reached and day is not None:
            key = f"goal:{g.goal.goal_id}"
            out[key] = Milestone(
                key, day, MilestoneKind.GOAL_REACHED, wording.goal_reached(g.goal.title)
            )
    for name, v in targets:
        if v.cause is TargetCause.PROGRESSION:
            key = f"target:{v.prescription_id}:{v.version}"
            out[key] = Milestone(
                key,
                v.valid_from,
                MilestoneKind.TARGET_RAISED,
                wording.target_raised(name, v.target.text),
            )
    for p in plans:
        met, valid = p.evidence.get("met_days"), p.evidence.get("valid_days")
        if p.cause is Cause.PROGRESSION and isinstance(met, int) and isinstance(valid, int):
            key = f"week:{p.version}"
            end = p.valid_from - timedelta(days=1)
            out[key] = Milestone(
                key, end, MilestoneKind.WEEK_ON_PLAN, wording.week_on_plan(met, valid)
            )
    return sorted(out.values(), key=lambda m: (m.day, m.key), reverse=True)
