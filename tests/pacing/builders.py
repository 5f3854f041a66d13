"""Builders of pacing inputs for tests: histories from plain lists, and simulated days in the DB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from paceline.pacing.days import DayLoad
from paceline.pacing.diary import DiaryRecord, by_day
from paceline.pacing.exposure import SessionRecord
from paceline.pacing.flags import Flag
from paceline.pacing.history import History, build
from paceline.pacing.progression import Cause, PlanVersion, default_plan

START = date(2026, 3, 2)


def day_load(i: int, active: float | None, *, reported: bool = True) -> DayLoad:
    """Day `i` after START; `active=None` is a non-wear day (device reported, not worn)."""
    d = START + timedelta(days=i)
    if not reported:
        return DayLoad.silent(d)
    if active is None:
        return DayLoad(d, 120.0, 5.0, 300, 6.0, 0.0, 7200, reported=True, valid_wear=False)
    return DayLoad(
        d,
        840.0,
        active,
        int(active * 100),
        active * 1.3,
        0.0,
        50400,
        reported=True,
        valid_wear=True,
    )


def history(
    active: Sequence[float | None],
    *,
    quota: float | None = 30.0,
    pain: Sequence[float | None] | None = None,
    fear: Sequence[float | None] | None = None,
    sleep: Sequence[float | None] | None = None,
    sessions: Sequence[SessionRecord] = (),
    silent: Sequence[int] = (),
) -> History:
    """A history with a fixed quota (from day 0) and diary values per day (None: no diary)."""
    days = [day_load(i, a, reported=i not in silent) for i, a in enumerate(active)]
    records = []
    for i in range(len(active)):
        p = None if pain is None else pain[i]
        if p is None:
            continue
        records.append(
            DiaryRecord(
                day=START + timedelta(days=i),
                reported_at=datetime.combine(START + timedelta(days=i), time(20), UTC),
                pain_now=round(p),
                pain_average=round(p),
                pain_worst=round(p),
                fatigue=None,
                mood=None,
                sleep_quality=None if sleep is None or sleep[i] is None else round(sleep[i] or 0),
                fear_of_movement=None if fear is None or fear[i] is None else round(fear[i] or 0),
            )
        )
    plans: list[PlanVersion] = [default_plan(START)]
    if quota is not None:
        plans = [
            replace(
                plans[0], baseline=quota / 0.8, quota=quota, cause=Cause.BASELINE, reason="test"
            )
        ]
    return build(days, by_day(records), plans, sessions)


def day_evidence(flag: Flag, index: int = -1) -> dict[str, Any]:
    """One day's evidence of a flag (the last day by default)."""
    daily = flag.evidence["daily"]
    assert isinstance(daily, list)
    item = daily[index]
    assert isinstance(item, dict)
    return item
