"""The fear ladder at the edges: edit rungs, re-rate them, plan and record sessions, show progress.

Every fear rating an item is given (when added, at each periodic re-rating,
on an edit) is appended to its history (`exposure_rating`); the item keeps
its current rating for the exposure rules. Adding, editing, re-rating and
retiring items are audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

import psycopg

from paceline.pacing import records, wording
from paceline.pacing.diary import check_note
from paceline.pacing.errors import ExposureError, OutOfRangeError
from paceline.pacing.exposure import (
    ItemProgress,
    ItemStatus,
    LadderItem,
    SessionLoad,
    SessionRecord,
    SessionStatus,
    check_scale,
    item_progress,
    stop_reason,
)
from paceline.pacing.progression import PlanSettings, version_on
from paceline.pacing.records import FearRating
from paceline.store.access import audit, audit_edit, current_person

ACTIVITY_MAX_CHARS: Final = 200
#: Window used for the objective link of a done session recorded without start and end.
DEFAULT_SESSION: Final = timedelta(minutes=60)


_audit: Final = partial(audit_edit, obj="exposure_item")


def _check_activity(activity: str) -> None:
    if not 1 <= len(activity.strip()) <= ACTIVITY_MAX_CHARS:
        raise ExposureError(f"an activity is described in 1 to {ACTIVITY_MAX_CHARS} characters")


def ladder(conn: psycopg.Connection[Any], patient_id: int) -> list[LadderItem]:
    """The patient's fear ladder, bottom rung first."""
    records.patient_context(conn, patient_id)
    return records.ladder_items(conn, patient_id)


def add_item(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    activity: str,
    fear_rating: int,
    position: int | None = None,
    clinician_id: int | None = None,
    now: datetime | None = None,
) -> LadderItem:
    """Add a feared activity with its fear rating (0-100); default position is the top.

    The rating starts the item's history, dated `now` (default: the current time).
    """
    _check_activity(activity)
    check_scale("fear_rating", fear_rating)
    records.patient_context(conn, patient_id)
    with conn.transaction():
        items = records.ladder_items(conn, patient_id)
        if position is None:
            position = max((i.position for i in items), default=-1) + 1
        if position < 0:
            raise OutOfRangeError("position", position, 0, float("inf"))
        item = records.insert_item(
            conn,
            patient_id,
            activity=activity.strip(),
            fear_rating=fear_rating,
            position=position,
            created_by=clinician_id,
        )
        records.insert_rating(
            conn,
            patient_id,
            item.item_id,
            fear_rating=fear_rating,
            rated_by=clinician_id,
            kind="initial",
            rated_at=now,
        )
        _audit(
            conn,
            patient_id,
            clinician_id,
            action="ladder.add",
            detail={"item_id": item.item_id, "activity": item.activity, "fear": fear_rating},
        )
    return item


def edit_item(
    conn: psycopg.Connection[Any],
    patient_id: int,
    item_id: int,
    *,
    activity: str | None = None,
    fear_rating: int | None = None,
    position: int | None = None,
    status: ItemStatus | None = None,
    clinician_id: int | None = None,
) -> LadderItem:
    """Change a rung (activity, fear rating, order or status), audited."""
    if activity is not None:
        _check_activity(activity)
    check_scale("fear_rating", fear_rating)
    if position is not None and position < 0:
        raise OutOfRangeError("position", position, 0, float("inf"))
    with conn.transaction():
        item = records.ladder_item(conn, patient_id, item_id)
        edited = replace(
            item,
            activity=activity.strip() if activity is not None else item.activity,
            fear_rating=fear_rating if fear_rating is not None else item.fear_rating,
            position=position if position is not None else item.position,
            status=status or item.status,
        )
        stored = records.update_item(conn, edited, patient_id)
        if stored.fear_rating != item.fear_rating:
            records.insert_rating(
                conn,
                patient_id,
                item_id,
                fear_rating=stored.fear_rating,
                rated_by=clinician_id,
                kind="edit",
            )
        _audit(
            conn,
            patient_id,
            clinician_id,
            action="ladder.edit",
            detail={
                "item_id": item_id,
                "before": {
                    "activity": item.activity,
                    "fear": item.fear_rating,
                    "position": item.position,
                    "status": item.status.value,
                },
                "after": {
                    "activity": stored.activity,
                    "fear": stored.fear_rating,
                    "position": stored.position,
                    "status": stored.status.value,
                },
            },
        )
    return stored


def rerate(
    conn: psycopg.Connection[Any],
    patient_id: int,
    ratings: Mapping[int, int],
    *,
    clinician_id: int | None = None,
    rated_at: datetime | None = None,
    now: datetime | None = None,
) -> list[FearRating]:
    """Re-rate the expected fear (0-100) of ladder items: appended to their history, audited.

    `ratings` maps item ids to the new rating. Retired items are not re-rated
    (retiring took them off the ladder); mastered ones may be (to see whether
    fear has returned). The items' current ratings change with it; what they
    were stays in the history. One audit entry lists every item's before and after.
    A re-rating cannot predate an item's latest rating nor lie in the future.
    """
    if not ratings:
        raise ExposureError("a re-rating rates at least one ladder item")
    for item_id, rating in ratings.items():
        check_scale(f"fear_rating of item {item_id}", rating)
    current = now or datetime.now(UTC)
    moment = rated_at or current
    if moment.tzinfo is None:
        raise ExposureError("rated_at needs a time zone")
    if moment > current + timedelta(minutes=5):
        raise ExposureError(f"a re-rating at {moment.isoformat()} lies in the future")
    records.patient_context(conn, patient_id)
    out: list[FearRating] = []
    changes: list[dict[str, int]] = []
    with conn.transaction():
        history = rating_history(conn, patient_id)
        for item_id, rating in sorted(ratings.items()):
            item = records.ladder_item(conn, patient_id, item_id)
            if item.status is ItemStatus.RETIRED:
                raise ExposureError(f"ladder item {item_id} is retired: it is not re-rated")
            last = history.get(item_id, [])[-1:]
            if last and moment < last[0].rated_at:
                raise ExposureError(
                    f"ladder item {item_id} was last rated at {last[0].rated_at.isoformat()};"
                    f" a re-rating at {moment.isoformat()} would predate it"
                )
            records.update_item(conn, replace(item, fear_rating=rating), patient_id)
            out.append(
                records.insert_rating(
                    conn,
                    patient_id,
                    item_id,
                    fear_rating=rating,
                    rated_by=clinician_id,
                    kind="rerating",
                    rated_at=moment,
                )
            )
            changes.append({"item_id": item_id, "before": item.fear_rating, "after": rating})
        _audit(
            conn,
            patient_id,
            clinician_id,
            action="ladder.rerate",
            detail={"rated_at": moment.isoformat(), "items": changes},
        )
    return out


def retire_item(
    conn: psycopg.Connection[Any],
    patient_id: int,
    item_id: int,
    *,
    reason: str,
    clinician_id: int | None = None,
) -> LadderItem:
    """Take a rung off the ladder (no longer relevant, replaced), with why; audited.

    The item, its sessions and its rating history stay in the record.
    """
    check_note("reason", reason)
    if not reason.strip():
        raise ExposureError("say why the item is retired")
    with conn.transaction():
        item = records.ladder_item(conn, patient_id, item_id)
        if item.status is ItemStatus.RETIRED:
            raise ExposureError(f"ladder item {item_id} is already retired")
        stored = records.update_item(conn, replace(item, status=ItemStatus.RETIRED), patient_id)
        _audit(
            conn,
            patient_id,
            clinician_id,
            action="ladder.retire",
            detail={"item_id": item_id, "was": item.status.value, "reason": reason.strip()},
        )
    return stored


def rating_history(conn: psycopg.Connection[Any], patient_id: int) -> dict[int, list[FearRating]]:
    """Each ladder item's fear ratings, oldest first, by item id."""
    records.patient_context(conn, patient_id)
    out: dict[int, list[FearRating]] = {}
    for r in records.fear_ratings(conn, patient_id):
        out.setdefault(r.item_id, []).append(r)
    return out


def plan_session(
    conn: psycopg.Connection[Any], patient_id: int, item_id: int, *, planned_at: datetime
) -> SessionRecord:
    """Plan an exposure session against a rung."""
    if planned_at.tzinfo is None:
        raise ExposureError("planned_at needs a time zone")
    ctx = records.patient_context(conn, patient_id)
    with conn.transaction():
        item = records.ladder_item(conn, patient_id, item_id)
        if item.status is not ItemStatus.ACTIVE:
            raise ExposureError(f"ladder item {item_id} is {item.status.value}, not active")
        return records.insert_session(conn, ctx, item_id, planned_at)


def record_session(
    conn: psycopg.Connection[Any],
    patient_id: int,
    session_id: int,
    *,
    done: bool,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    fear_before: int | None = None,
    fear_after: int | None = None,
    expected_harm: int | None = None,
    actual_harm: int | None = None,
    note: str | None = None,
    peak_distress: int | None = None,
    stopped: bool = False,
    debrief: str | None = None,
    now: datetime | None = None,
) -> SessionRecord:
    """Record a session as done (with fear and harm ratings, 0-100), skipped, or stopped.

    The stop rule (`paceline.pacing.exposure.stop_reason`): a session the
    patient stopped (`stopped`), or whose fear before, peak distress or fear
    after passes the patient's stop threshold (the plan setting
    `exposure_stop_distress`), is stored as stopped with a debrief note: why it
    counts as stopped, then the patient's own words (`debrief`). It never
    counts towards moving up the ladder, and the engine's `exposure.stopped`
    flag tells the clinician (routed by the alert policy).
    """
    for name, value in (
        ("fear_before", fear_before),
        ("peak_distress", peak_distress),
        ("fear_after", fear_after),
        ("expected_harm", expected_harm),
        ("actual_harm", actual_harm),
    ):
        check_scale(name, value)
    if note is not None:
        check_note("note", note)
    if debrief is not None:
        check_note("debrief", debrief)
    if stopped and not done:
        raise ExposureError("a stopped session was started: record it with done=True")
    for when in (started_at, ended_at):
        if when is not None and when.tzinfo is None:
            raise ExposureError("session times need a time zone")
        if when is not None and when > (now or datetime.now(UTC)) + timedelta(minutes=5):
            raise ExposureError(f"session time {when.isoformat()} is in the future")
    if started_at is not None and ended_at is not None and ended_at < started_at:
        raise ExposureError("a session cannot end before it starts")
    ctx = records.patient_context(conn, patient_id)
    with conn.transaction():
        current = records.session(conn, ctx, session_id)
        plan = version_on(records.plan_versions(conn, ctx), current.planned_day)
        threshold = (plan.settings if plan is not None else PlanSettings()).exposure_stop_distress
        why = (
            stop_reason(
                fear_before=fear_before,
                peak_distress=peak_distress,
                fear_after=fear_after,
                threshold=threshold,
                stopped_by_patient=stopped,
            )
            if done
            else None
        )
        status = SessionStatus.DONE if done else SessionStatus.SKIPPED
        if why is not None:
            status = SessionStatus.STOPPED
        updated = replace(
            current,
            status=status,
            started_at=started_at,
            ended_at=ended_at,
            fear_before=fear_before,
            fear_after=fear_after,
            expected_harm=expected_harm,
            actual_harm=actual_harm,
            note=note,
            peak_distress=peak_distress,
            debrief=None if why is None else wording.exposure_debrief(why, debrief),
        )
        records.update_session(conn, ctx, updated)
        if why is not None:
            audit(
                conn,
                actor=None if current_person(conn) is not None else "pacing-ladder",
                action="exposure.stopped",
                obj="exposure_session",
                patient_id=patient_id,
                detail={"session_id": session_id, "why": why, "threshold": threshold},
            )
    return updated


@dataclass(frozen=True)
class SessionView:
    """A session with the objective heart rate and steps of its time window."""

    session: SessionRecord
    load: SessionLoad | None


@dataclass(frozen=True)
class ItemReport:
    """Progress on one rung, the sessions behind it, and the move-up decision."""

    item: LadderItem
    progress: ItemProgress
    sessions: tuple[SessionView, ...]


def session_view(conn: psycopg.Connection[Any], patient_id: int, s: SessionRecord) -> SessionView:
    """Link a done session to the HR and steps recorded while it ran."""
    if s.status is not SessionStatus.DONE:
        return SessionView(s, None)
    start = s.started_at or s.planned_at
    end = s.ended_at or start + DEFAULT_SESSION
    return SessionView(s, records.session_load(conn, patient_id, s.session_id, start, end))


def item_report(conn: psycopg.Connection[Any], patient_id: int, item_id: int) -> ItemReport:
    """Progress on one rung for the clinician: fear across sessions and whether to move up."""
    ctx = records.patient_context(conn, patient_id)
    item = records.ladder_item(conn, patient_id, item_id)
    own = records.sessions(conn, ctx, item_id=item_id)
    progress = item_progress(item, own, records.ladder_items(conn, patient_id))
    return ItemReport(item, progress, tuple(session_view(conn, patient_id, s) for s in own))
