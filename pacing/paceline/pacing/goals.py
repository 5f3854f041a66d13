"""Valued goals: what the patient wants to get back to, and progress toward it from its links.

Graded activity and exposure work toward the patient's own valued activities
(gardening, a shopping trip, playing with the grandchildren), and naming them
keeps the programme pointed at what matters to the patient (the values work of
acceptance and commitment therapy, McCracken & Vowles 2014; goal setting in
graded activity, Lindström et al. 1992). A goal's progress is computed from
what leads to it, never typed in:

- a **ladder rung** counts 1 when mastered; while practised, the fraction of
  the way its fear before sessions has fallen from the first rating to the
  move-up level of `paceline.pacing.exposure` (at most `ACTIVE_RUNG_CAP`: a
  rung is done only when mastered); 0 before any session;
- an **exercise prescription** counts the fraction of the way its current
  target has risen from the first target to the level the goal needs (on
  duration or repetitions, as the link names it).

A goal's progress is the mean of its links' progress; with every link at 1 the
goal is reached (`GoalProgress.reached`). Pure: takes values, returns frozen ones.

References
----------
McCracken LM, Vowles KE. Acceptance and commitment therapy and mindfulness for
chronic pain: model, process, and progress. Am Psychol 2014;69:178-187.
Lindström I, Ohlund C, Eek C, et al. The effect of graded activity on patients
with subacute low back pain. Phys Ther 1992;72:279-290.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from paceline.pacing.errors import GoalError
from paceline.pacing.exercise import TargetVersion
from paceline.pacing.exposure import (
    FEAR_REDUCTION_FRACTION,
    LOW_FEAR,
    ItemProgress,
    ItemStatus,
    LadderItem,
)

TITLE_MAX_CHARS: Final = 200
#: An active rung's share of a goal never reaches 1 before the rung is mastered.
ACTIVE_RUNG_CAP: Final = 0.9


class GoalStatus(StrEnum):
    """The state of a goal (values stored in `valued_goal.status`)."""

    ACTIVE = "active"
    REACHED = "reached"
    RETIRED = "retired"


def goal_status(name: str) -> GoalStatus:
    """The status called `name`, or `GoalError` listing the valid ones."""
    try:
        return GoalStatus(name)
    except ValueError:
        valid = ", ".join(s.value for s in GoalStatus)
        raise GoalError(f"unknown goal status {name!r}; valid are {valid}") from None


def check_title(title: str) -> str:
    """The title stripped, or `GoalError` unless it has 1 to 200 characters."""
    t = title.strip()
    if not 1 <= len(t) <= TITLE_MAX_CHARS or "\x00" in t:
        raise GoalError(f"a goal is named in 1 to {TITLE_MAX_CHARS} characters")
    return t


@dataclass(frozen=True)
class Goal:
    """One valued goal of a patient."""

    goal_id: int
    title: str
    why: str | None
    status: GoalStatus
    created_by: int | None
    created_day: date
    reached_day: date | None


@dataclass(frozen=True)
class GoalLink:
    """A rung or a prescription leading to a goal (a prescription with the level needed)."""

    link_id: int
    goal_id: int
    item_id: int | None = None
    prescription_id: int | None = None
    needed_duration_min: float | None = None
    needed_repetitions: int | None = None


@dataclass(frozen=True)
class LinkProgress:
    """How far one link has come (0 to 1) and what it is, in words."""

    link: GoalLink
    label: str
    progress: float


@dataclass(frozen=True)
class GoalProgress:
    """A goal with the progress of each link and overall."""

    goal: Goal
    links: tuple[LinkProgress, ...]

    @property
    def progress(self) -> float:
        """Mean progress of the links (0 without links); 1 once the goal is marked reached."""
        if self.goal.status is GoalStatus.REACHED:
            return 1.0
        return sum(p.progress for p in self.links) / len(self.links) if self.links else 0.0

    @property
    def reached(self) -> bool:
        """Marked reached, or every link (at least one) complete."""
        if self.goal.status is GoalStatus.REACHED:
            return True
        return bool(self.links) and all(p.progress >= 1.0 for p in self.links)


def _clamp(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def rung_progress(item: LadderItem, progress: ItemProgress | None) -> float:
    """1 when mastered; while active, the fall in fear toward the move-up level (capped)."""
    if item.status is ItemStatus.MASTERED:
        return 1.0
    if progress is None or progress.latest_fear is None:
        return 0.0
    initial = progress.initial_fear
    level = max(LOW_FEAR, FEAR_REDUCTION_FRACTION * initial)
    if initial <= level:
        return ACTIVE_RUNG_CAP
    return min(_clamp((initial - progress.latest_fear) / (initial - level)), ACTIVE_RUNG_CAP)


def target_progress(link: GoalLink, versions: Sequence[TargetVersion], on: date) -> float:
    """How far the target in effect on `on` has risen from the first toward the level needed."""
    due = sorted((v for v in versions if v.valid_from <= on), key=lambda v: v.version)
    if not due:
        return 0.0
    first, cur = due[0].target, due[-1].target
    parts = []
    for needed, start, now in (
        (link.needed_duration_min, first.duration_min, cur.duration_min),
        (
            None if link.needed_repetitions is None else float(link.needed_repetitions),
            None if first.repetitions is None else float(first.repetitions),
            None if cur.repetitions is None else float(cur.repetitions),
        ),
    ):
        if needed is None or start is None or now is None:
            continue
        parts.append(1.0 if now >= needed else _clamp((now - start) / (needed - start)))
    return min(parts) if parts else 0.0


def target_reached_on(link: GoalLink, versions: Sequence[TargetVersion]) -> date | None:
    """The first day a target version reached the level `link` needs (None: not yet)."""
    ordered = sorted(versions, key=lambda v: v.version)
    for i, v in enumerate(ordered):
        if target_progress(link, ordered[: i + 1], v.valid_from) >= 1.0:
            return v.valid_from
    return None


def progress(
    goal: Goal,
    links: Sequence[GoalLink],
    *,
    items: Mapping[int, tuple[LadderItem, ItemProgress | None]],
    targets: Mapping[int, Sequence[TargetVersion]],
    names: Mapping[int, str],
    on: date,
) -> GoalProgress:
    """The progress of `goal` on day `on` from its links (retired rungs are left out)."""
    out = []
    for link in links:
        if link.goal_id != goal.goal_id:
            continue
        if link.item_id is not None:
            found = items.get(link.item_id)
            if found is None or found[0].status is ItemStatus.RETIRED:
                continue
            item, p = found
            out.append(LinkProgress(link, item.activity, rung_progress(item, p)))
        elif link.prescription_id is not None:
            versions = targets.get(link.prescription_id, ())
            label = names.get(link.prescription_id, f"exercise {link.prescription_id}")
            out.append(LinkProgress(link, label, target_progress(link, versions, on)))
    return GoalProgress(goal, tuple(out))
