"""The patient page's view model: tidy tables for the charts, built from one timeline.

Every table has a `day` (or start/end) column on the patient's local calendar,
so that all charts share one time axis. Nothing here reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any

import pandas as pd

from paceline.dashboard.caseload import BAND
from paceline.dashboard.evidence import rule_title, sentences
from paceline.pacing.days import Measure
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


def load_table(t: PatientTimeline) -> pd.DataFrame:
    """Per day: load in the plan's measure, quota, the ±20 % band and the baseline."""
    rows: list[dict[str, Any]] = []
    for d in t.loads:
        plan = t.plan_on(d.day)
        m = plan.measure if plan is not None else Measure.ACTIVE_MINUTES
        quota = plan.quota if plan is not None else None
        rows.append(
            {
                "day": pd.Timestamp(d.day),
                "load": d.value(m),
                "quota": quota,
                "band_low": None if quota is None else quota * (1 - BAND),
                "band_high": None if quota is None else quota * (1 + BAND),
                "baseline": plan.baseline if plan is not None else None,
                "measure": m.unit,
                "valid": d.valid_wear,
            }
        )
    return pd.DataFrame(rows)


def zone_table(t: PatientTimeline) -> pd.DataFrame:
    """Per day and heart-rate zone: minutes (long format for a stacked bar)."""
    rows = [
        {
            "day": pd.Timestamp(d.day),
            "zone": ZONE_NAMES[i] if i < len(ZONE_NAMES) else f"zone {i}",
            "minutes": m,
        }
        for d in t.days
        for i, m in enumerate(d.zone_min)
        if i > 0  # minutes below zone 1 would dwarf the rest; the load chart shows wear
    ]
    return pd.DataFrame(rows, columns=["day", "zone", "minutes"])


def diary_table(t: PatientTimeline) -> pd.DataFrame:
    """Per diary entry: pain, fatigue and fear of movement (long format, 0-10)."""
    rows = [
        {"day": pd.Timestamp(e.day), "measure": name, "rating": value}
        for e in t.diary
        for name, value in (
            ("pain", e.pain_now),
            ("fatigue", e.fatigue),
            ("fear of movement", e.fear_of_movement),
        )
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["day", "measure", "rating"])


def notes(t: PatientTimeline) -> list[tuple[str, str]]:
    """The patient's own diary notes, newest first: (when, text). Plain text, never markup."""
    return [(f"{e.reported_at:%Y-%m-%d %H:%M}", e.note) for e in reversed(t.diary) if e.note]


def recovery_table(t: PatientTimeline) -> pd.DataFrame:
    """Per day: RMSSD (ms) and resting heart rate (bpm)."""
    rows = [
        {"day": pd.Timestamp(d.day), "rmssd_ms": d.rmssd_ms, "resting_hr_bpm": d.resting_hr_bpm}
        for d in t.days
    ]
    return pd.DataFrame(rows, columns=["day", "rmssd_ms", "resting_hr_bpm"])


def risk_table(t: PatientTimeline) -> pd.DataFrame:
    """Per day: the 48 h flare-risk score."""
    return pd.DataFrame(
        [{"day": pd.Timestamp(r.day), "risk": r.score} for r in t.risk], columns=["day", "risk"]
    )


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


def flag_table(items: list[FlagItem]) -> pd.DataFrame:
    """The flags as bars from start to end (a timeline row per rule)."""
    return pd.DataFrame(
        [
            {
                "rule": i.title,
                "start": pd.Timestamp(i.start),
                "end": pd.Timestamp(i.end + timedelta(days=1)),
                "severity": i.severity,
                "status": i.status,
            }
            for i in items
        ],
        columns=["rule", "start", "end", "severity", "status"],
    )


def ladder_table(x: Exposure) -> pd.DataFrame:
    """The ladder, bottom rung first: activity, fear rating, status and sessions done."""
    done: dict[int, int] = {}
    for s in x.sessions:
        if s.status.value == "done":
            done[s.item_id] = done.get(s.item_id, 0) + 1
    return pd.DataFrame(
        [
            {
                "rung": i.position + 1,
                "activity": i.activity,
                "fear (0-100)": i.fear_rating,
                "status": i.status.value,
                "sessions done": done.get(i.item_id, 0),
            }
            for i in x.items
        ]
    )


def session_table(x: Exposure) -> pd.DataFrame:
    """Each session: its rung, fear before and after, expected and actual harm, and the gap."""
    names = {i.item_id: i.activity for i in x.items}
    return pd.DataFrame(
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
        columns=[
            "day",
            "activity",
            "status",
            "fear before",
            "fear after",
            "expected harm",
            "actual harm",
            "expectancy violated by",
        ],
    )


def alert_rows(t: PatientTimeline) -> list[dict[str, object]]:
    """The alerts of the range in words."""
    return [
        {
            "raised": f"{a['created_at']:%Y-%m-%d %H:%M}",
            "about": rule_title(str(a["rule_id"])),
            "severity": a["severity"],
            "status": a["status"],
        }
        for a in t.alerts
    ]


def minute_table(buckets: list[MinuteBucket]) -> pd.DataFrame:
    """One day in minute buckets: mean and maximum heart rate, steps."""
    return pd.DataFrame(
        [
            {
                "minute": pd.Timestamp(b.minute),
                "mean HR": b.mean_hr_bpm,
                "max HR": b.max_hr_bpm,
                "steps": b.steps,
            }
            for b in buckets
        ],
        columns=["minute", "mean HR", "max HR", "steps"],
    )
