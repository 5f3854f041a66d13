"""The patient page's view model: tidy tables for the charts, built from one timeline.

Every table has a `day` (or start/end) column on the patient's local calendar,
so that all charts share one time axis. Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import pyarrow as pa

from paceline.dashboard.caseload import BAND
from paceline.dashboard.charts import chart_table, display_table, iso_local
from paceline.dashboard.times import shown_at
from paceline.pacing.days import Measure
from paceline.pacing.flag_wording import rule_title, sentences
from paceline.pacing.overview import Exposure, MinuteBucket, PatientTimeline

ZONE_NAMES = ("below zone 1", "zone 1", "zone 2", "zone 3", "zone 4", "zone 5")


class Range(Enum):
    """The range choices of the patient page."""

    WEEK = ("7 days", 7)
    MONTH = ("28 days", 28)
    QUARTER = ("90 days", 90)
    CUSTOM = ("custom", 0)

    def __init__(self, label: str, days: int) -> None:
        self.label = label
        self.days = days


def range_days(
    choice: Range, today: date, custom: tuple[date, date] | None = None
) -> tuple[date, date]:
    """The first and last day shown for a range choice (ending yesterday for fixed ranges)."""
    if choice is Range.CUSTOM:
        if custom is None:
            raise ValueError("a custom range needs a start and an end day")
        start, end = sorted(custom)
        if (end - start).days > 366:
            raise ValueError("a custom range covers at most a year")
        return start, end
    return today - timedelta(days=choice.days - 1), today


#: The minute view's widgets (the day shown, and whether it is shown).
INTRADAY_DAY = "patient_intraday"
INTRADAY_SHOW = "patient_intraday_show"


def intraday_prefetch(state: Mapping[Any, Any], start: date, end: date) -> date | None:
    """The day the minute view will show in this run, read from its widgets' state.

    The page reads everything in one session before it draws, but the minute view's
    widgets come last. A keyed widget returns the value in its state (the one the
    browser just sent, or the last run's), or its default (`end`) when it has none;
    a day outside the range `start` … `end` is reset by the widget, so it is not
    predicted here (None: the page reads that day after drawing the widget). None
    too when the view is not shown.
    """
    if not state.get(INTRADAY_SHOW, False):
        return None
    day = state.get(INTRADAY_DAY, end)
    if isinstance(day, date) and not isinstance(day, datetime) and start <= day <= end:
        return day
    return None


LOAD_COLUMNS = ("day", "load", "quota", "band_low", "band_high", "baseline", "measure", "valid")


def load_table(t: PatientTimeline) -> pa.Table:
    """Per day: load in the plan's measure, quota, the ±20 % band and the baseline."""
    rows: list[dict[str, Any]] = []
    for d in t.loads:
        plan = t.plan_on(d.day)
        m = plan.measure if plan is not None else Measure.ACTIVE_MINUTES
        quota = plan.quota if plan is not None else None
        rows.append(
            {
                "day": d.day,
                "load": d.value(m),
                "quota": quota,
                "band_low": None if quota is None else quota * (1 - BAND),
                "band_high": None if quota is None else quota * (1 + BAND),
                "baseline": plan.baseline if plan is not None else None,
                "measure": m.unit,
                "valid": d.valid_wear,
            }
        )
    return chart_table(rows, LOAD_COLUMNS)


def load_unit(load: pa.Table) -> str:
    """The unit the load table counts in ('' for no days)."""
    return str(load.column("measure")[0].as_py()) if load.num_rows else ""


def zone_table(t: PatientTimeline) -> pa.Table:
    """Per day and heart-rate zone: minutes (long format for a stacked bar)."""
    rows = [
        {
            "day": d.day,
            "zone": ZONE_NAMES[i] if i < len(ZONE_NAMES) else f"zone {i}",
            "minutes": m,
        }
        for d in t.days
        for i, m in enumerate(d.zone_min)
        if i > 0  # minutes below zone 1 would dwarf the rest; the load chart shows wear
    ]
    return chart_table(rows, ("day", "zone", "minutes"))


def diary_table(t: PatientTimeline) -> pa.Table:
    """Per diary entry: pain, fatigue and fear of movement (long format, 0-10)."""
    rows = [
        {"day": e.day, "measure": name, "rating": value}
        for e in t.diary
        for name, value in (
            ("pain", e.pain_now),
            ("fatigue", e.fatigue),
            ("fear of movement", e.fear_of_movement),
        )
        if value is not None
    ]
    return chart_table(rows, ("day", "measure", "rating"))


def notes(t: PatientTimeline) -> list[tuple[str, str]]:
    """The patient's own diary notes, newest first: (when, text). Plain text, never markup."""
    zone = t.patient.zone
    return [(shown_at(e.reported_at, zone), e.note) for e in reversed(t.diary) if e.note]


def recovery_table(t: PatientTimeline) -> pa.Table:
    """Per day: RMSSD (ms) and resting heart rate (bpm)."""
    rows = [
        {"day": d.day, "rmssd_ms": d.rmssd_ms, "resting_hr_bpm": d.resting_hr_bpm} for d in t.days
    ]
    return chart_table(rows, ("day", "rmssd_ms", "resting_hr_bpm"))


def risk_table(t: PatientTimeline) -> pa.Table:
    """Per day: the 48 h flare-risk score."""
    return chart_table(({"day": r.day, "risk": r.score} for r in t.risk), ("day", "risk"))


def risk_factors(t: PatientTimeline) -> list[str]:
    """The latest day's flare-risk factors that raised the risk, in words."""
    if not t.risk:
        return []
    latest = t.risk[-1]
    factors = latest.factors.get("factors") or []
    return [
        str(f.get("text"))
        for f in sorted(factors, key=lambda f: -float(f.get("contribution") or 0))
        if float(f.get("contribution") or 0) > 0 and f.get("text")
    ]


@dataclass(frozen=True)
class FlagItem:
    """One flag on the timeline with its evidence as sentences."""

    flag_id: int
    title: str
    severity: str
    status: str
    start: date
    end: date
    evidence: tuple[str, ...]


def flag_items(t: PatientTimeline) -> list[FlagItem]:
    """The flags overlapping the range, newest first, each with its evidence in words."""
    zone = t.patient.zone
    out = []
    for f in t.flags:
        start, end = f.window_start.astimezone(zone).date(), f.window_end.astimezone(zone).date()
        if end < t.start:
            continue
        out.append(
            FlagItem(
                flag_id=f.flag_id,
                title=rule_title(f.rule_id),
                severity=f.severity.value,
                status=f.status,
                start=start,
                end=end,
                evidence=tuple(sentences(f.rule_id, f.evidence)),
            )
        )
    return out


def flag_table(items: list[FlagItem]) -> pa.Table:
    """The flags as bars from start to end (a timeline row per rule)."""
    return chart_table(
        (
            {
                "rule": i.title,
                "start": i.start,
                "end": i.end + timedelta(days=1),
                "severity": i.severity,
                "status": i.status,
            }
            for i in items
        ),
        ("rule", "start", "end", "severity", "status"),
    )


def ladder_table(x: Exposure) -> pa.Table:
    """The ladder, bottom rung first: activity, fear rating, status and sessions done."""
    done: dict[int, int] = {}
    for s in x.sessions:
        if s.status.value == "done":
            done[s.item_id] = done.get(s.item_id, 0) + 1
    return display_table(
        [
            {
                "rung": i.position + 1,
                "activity": i.activity,
                "fear (0-100)": i.fear_rating,
                "status": i.status.value,
                "sessions done": done.get(i.item_id, 0),
            }
            for i in x.items
        ],
        ("rung", "activity", "fear (0-100)", "status", "sessions done"),
    )


def session_table(x: Exposure) -> pa.Table:
    """Each session: its rung, fear before and after, expected and actual harm, and the gap."""
    names = {i.item_id: i.activity for i in x.items}
    return display_table(
        [
            {
                "day": s.planned_day,
                "activity": names.get(s.item_id, "?"),
                "status": s.status.value,
                "fear before": s.fear_before,
                "fear after": s.fear_after,
                "expected harm": s.expected_harm,
                "actual harm": s.actual_harm,
                "expectancy violated by": s.expectancy_violation,
            }
            for s in reversed(x.sessions)
        ],
        (
            "day",
            "activity",
            "status",
            "fear before",
            "fear after",
            "expected harm",
            "actual harm",
            "expectancy violated by",
        ),
    )


def alert_table(t: PatientTimeline) -> pa.Table:
    """The alerts of the range in words, as a table."""
    return display_table(alert_rows(t), ("raised", "about", "severity", "status"))


def alert_rows(t: PatientTimeline) -> list[dict[str, object]]:
    """The alerts of the range in words, raised at the patient's wall time with its zone."""
    zone = t.patient.zone
    return [
        {
            "raised": shown_at(a["created_at"], zone),
            "about": rule_title(str(a["rule_id"])),
            "severity": a["severity"],
            "status": a["status"],
        }
        for a in t.alerts
    ]


def minute_table(buckets: list[MinuteBucket]) -> pa.Table:
    """One day in minute buckets: mean and maximum heart rate, steps."""
    return pa.table(
        {
            "minute": [iso_local(b.minute) for b in buckets],
            "mean HR": pa.array([b.mean_hr_bpm for b in buckets], type=pa.float64()),
            "max HR": pa.array([b.max_hr_bpm for b in buckets], type=pa.int64()),
            "steps": pa.array([b.steps for b in buckets], type=pa.int64()),
        }
    )
