"""Valued goals at the edges: enter and edit goals, link rungs and exercise, show progress.

Patients and clinicians both enter goals (`add_goal`, `edit_goal`); a clinician
links ladder rungs and exercise prescriptions to them (`link_rung`,
`link_exercise`). Every change is audited. `goal_progress` computes each goal's
progress from its links (`paceline.pacing.goals`) and `patient_milestones` the
patient's milestones (`paceline.pacing.milestones`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Final

import psycopg

from paceline.pacing import goals, milestones, records
from paceline.pacing.diary import check_note
from paceline.pacing.errors import GoalError
from paceline.pacing.exercise import TargetVersion
from paceline.pacing.exposure import ItemProgress, LadderItem, SessionStatus, item_progress
from paceline.pacing.goals import Goal, GoalLink, GoalProgress, GoalStatus
from paceline.pacing.milestones import Milestone
from paceline.pacing.records import PatientContext
from paceline.store.access import audit_edit

_audit: Final = partial(audit_edit, obj="valued_goal")


def add_goal(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    title: str,
    why: str | None = None,
    clinician_id: int | None = None,
) -> Goal:
    """The patient (no `clinician_id`) or a clinician adds a valued goal, audited."""
    clean = goals.check_title(title)
    if why is not None:
        check_note("why", why)
    ctx = records.patient_context(conn, patient_id)
    with conn.transaction():
        g = records.insert_goal(conn, ctx, title=clean, why=why, created_by=clinician_id)
        _audit(conn, patient_id, clinician_id, "goal.add", {"goal_id": g.goal_id, "title": clean})
    return g


def edit_goal(
    conn: psycopg.Connection[Any],
    patient_id: int,
    goal_id: int,
    *,
    title: str | None = None,
    why: str | None = None,
    status: GoalStatus | str | None = None,
    clinician_id: int | None = None,
    now: datetime | None = None,
) -> Goal:
    """Change a goal's title, why or status (reached, retired), audited."""
    new_status = None if status is None else goals.goal_status(str(status))
    if why is not None:
        check_note("why", why)
    ctx = records.patient_context(conn, patient_id)
    with conn.transaction():
        g = records.goal(conn, ctx, goal_id)
        edited = replace(
            g,
            title=g.title if title is None else goals.check_title(title),
            why=g.why if why is None else why,
            status=new_status or g.status,
        )
        reached = edited.status is GoalStatus.REACHED and g.status is not GoalStatus.REACHED
        stored = records.update_goal(
            conn, ctx, edited, reached_at=(now or datetime.now(UTC)) if reached else None
        )
        _audit(
            conn,
            patient_id,
            clinician_id,
            "goal.edit",
            {
                "goal_id": goal_id,
                "before": {"title": g.title, "status": g.status.value},
                "after": {"title": stored.title, "status": stored.status.value},
            },
        )
    return stored


def _link(
    conn: psycopg.Connection[Any], patient_id: int, link: GoalLink, clinician_id: int
) -> GoalLink:
    ctx = records.patient_context(conn, patient_id)
    with conn.transaction():
        records.goal(conn, ctx, link.goal_id)
        stored = records.insert_goal_link(conn, patient_id, link)
        _audit(
            conn,
            patient_id,
            clinician_id,
            "goal.link",
            {
                "goal_id": link.goal_id,
                "link_id": stored.link_id,
                "item_id": link.item_id,
                "prescription_id": link.prescription_id,
                "needed_duration_min": link.needed_duration_min,
                "needed_repetitions": link.needed_repetitions,
            },
        )
    return stored


def link_rung(
    conn: psycopg.Connection[Any], patient_id: int, goal_id: int, item_id: int, *, clinician_id: int
) -> GoalLink:
    """A clinician links a ladder rung to a goal, audited."""
    return _link(conn, patient_id, GoalLink(0, goal_id, item_id=item_id), clinician_id)


def link_exercise(
    conn: psycopg.Connection[Any],
    patient_id: int,
    goal_id: int,
    prescription_id: int,
    *,
    clinician_id: int,
    needed_duration_min: float | None = None,
    needed_repetitions: int | None = None,
) -> GoalLink:
    """A clinician links a prescription to a goal with the target level the goal needs, audited."""
    if needed_duration_min is None and needed_repetitions is None:
        raise GoalError("say what the goal needs: a duration or a number of repetitions")
    if needed_duration_min is not None and not 0 < needed_duration_min <= 600:
        raise GoalError(f"a needed duration is 0 to 600 minutes; got {needed_duration_min}")
    if needed_repetitions is not None and not 1 <= needed_repetitions <= 1000:
        raise GoalError(f"needed repetitions are 1 to 1000; got {needed_repetitions}")
    link = GoalLink(
        0,
        goal_id,
        prescription_id=prescription_id,
        needed_duration_min=needed_duration_min,
        needed_repetitions=needed_repetitions,
    )
    return _link(conn, patient_id, link, clinician_id)


def _ladder(
    conn: psycopg.Connection[Any], ctx: PatientContext
) -> dict[int, tuple[LadderItem, ItemProgress | None, date | None]]:
    items = records.ladder_items(conn, ctx.patient_id)
    sessions = records.sessions(conn, ctx)
    out: dict[int, tuple[LadderItem, ItemProgress | None, date | None]] = {}
    for item in items:
        done = [s for s in sessions if s.item_id == item.item_id and s.status is SessionStatus.DONE]
        p = item_progress(item, sessions, items) if done else None
        out[item.item_id] = (item, p, max((s.planned_day for s in done), default=None))
    return out


def goal_progress(
    conn: psycopg.Connection[Any], patient_id: int, *, on: date | None = None
) -> list[GoalProgress]:
    """Each goal (not retired) with its progress from its linked rungs and targets on `on`."""
    ctx = records.patient_context(conn, patient_id)
    day = on or ctx.local_day(datetime.now(UTC))
    ladder = _ladder(conn, ctx)
    targets = records.target_versions(conn, patient_id)
    names = {p.prescription_id: p.name for p in records.prescriptions(conn, patient_id)}
    links = records.goal_links(conn, patient_id)
    return [
        goals.progress(
            g,
            links,
            items={i: (item, p) for i, (item, p, _) in ladder.items()},
            targets=targets,
            names=names,
            on=day,
        )
        for g in records.goals(conn, ctx)
        if g.status is not GoalStatus.RETIRED
    ]


def patient_milestones(
    conn: psycopg.Connection[Any], patient_id: int, *, on: date | None = None
) -> list[Milestone]:
    """The patient's milestones from the data, newest first."""
    ctx = records.patient_context(conn, patient_id)
    ladder = _ladder(conn, ctx)
    targets = records.target_versions(conn, patient_id)
    names = {p.prescription_id: p.name for p in records.prescriptions(conn, patient_id)}
    progress = goal_progress(conn, patient_id, on=on)
    dated = []
    for g in progress:
        day = g.goal.reached_day
        if day is None and g.reached:
            day = _completed_day(g, ladder, targets)
        dated.append((g, day))
    return milestones.milestones(
        items=[(item, last) for item, _, last in ladder.values()],
        goals=dated,
        targets=[(names.get(rx, ""), v) for rx, vs in targets.items() for v in vs],
        plans=records.plan_versions(conn, ctx),
    )


def _completed_day(
    g: GoalProgress,
    ladder: dict[int, tuple[LadderItem, ItemProgress | None, date | None]],
    targets: dict[int, list[TargetVersion]],
) -> date | None:
    """The day the last link of a reached goal completed (None if unknown)."""
    days: list[date] = []
    for lp in g.links:
        if lp.link.item_id is not None:
            last = ladder[lp.link.item_id][2]
            if last is None:
                return None
            days.append(last)
        elif lp.link.prescription_id is not None:
            hit = goals.target_reached_on(lp.link, targets.get(lp.link.prescription_id, []))
            if hit is None:
                return None
            days.append(hit)
    return max(days) if days else None
