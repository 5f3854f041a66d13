"""Reassessment at the edges: what is due (questionnaires, the ladder's re-rating) and the trends.

The schedule is pure (`paceline.pacing.questionnaires.reassessment`); this
module reads what it needs through `records`: the patient's enrolment, the
plan setting ``reassess_every_weeks`` and the latest answer sheets.

`trends` is the view model that sets the questionnaires' totals over time
against the objective activity of the same weeks (mean active minutes, steps
and load per valid day), the comparison issue 14 asks for: a falling TSK-11
means more where active minutes rise with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import fmean
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.days import DayLoad, Measure, series
from paceline.pacing.errors import PacingError
from paceline.pacing.exposure import ItemStatus
from paceline.pacing.progression import PlanSettings, version_on
from paceline.pacing.questionnaires import (
    DEFAULT_REASSESS_WEEKS,
    EARLY_DAYS,
    INSTRUMENTS,
    Reassessment,
    instrument,
    reassessment,
)

#: The rule id of the patient's reminder that questionnaires are due (a message, not a flag).
QUESTIONNAIRE_REMINDER: Final = "questionnaire.reminder"
#: The longest range `trends` reads (ten years of days, as the exports).
MAX_DAYS: Final = 3660


@dataclass(frozen=True)
class ReassessmentStatus:
    """A patient's reassessment today: questionnaires due and whether the ladder is re-rated."""

    patient_id: int
    today: date
    questionnaires: Reassessment
    #: Items on the ladder (not retired) whose latest rating predates the current occasion.
    ladder_due: tuple[int, ...]

    @property
    def anything_due(self) -> bool:
        """Whether a questionnaire or a re-rating is due."""
        return bool(self.questionnaires.due or self.ladder_due)


def every_weeks(params: dict[str, Any] | None) -> int:
    """The plan's reassessment interval (the default without a plan)."""
    if not params:
        return DEFAULT_REASSESS_WEEKS
    return PlanSettings.from_json(params).reassess_every_weeks


def status(
    conn: psycopg.Connection[Any], patient_id: int, *, now: datetime | None = None
) -> ReassessmentStatus:
    """What is due for the patient on their local today (default: now)."""
    ctx = records.patient_context(conn, patient_id)
    today = ctx.local_day(now or datetime.now(UTC))
    versions = records.plan_versions(conn, ctx)
    plan = version_on(versions, today) or (versions[-1] if versions else None)
    weeks = plan.settings.reassess_every_weeks if plan else DEFAULT_REASSESS_WEEKS
    answered = records.latest_answer_days(conn, [patient_id]).get(patient_id, {})
    due = reassessment(ctx.enrolled_day, today, dict(answered), every_weeks=weeks)
    ladder_due: tuple[int, ...] = ()
    if due.index > 0:
        first = due.window_start
        latest: dict[int, date] = {}
        for r in records.fear_ratings(conn, patient_id):
            latest[r.item_id] = ctx.local_day(r.rated_at)
        ladder_due = tuple(
            i.item_id
            for i in records.ladder_items(conn, patient_id)
            if i.status is not ItemStatus.RETIRED
            and (i.item_id not in latest or latest[i.item_id] < first)
        )
    return ReassessmentStatus(patient_id, today, due, ladder_due)


@dataclass(frozen=True)
class DueReminder:
    """A patient with questionnaires due now: the occasion's window in their local time."""

    patient_id: int
    due: Reassessment
    window_start: datetime
    window_end: datetime


def due_reminders(conn: psycopg.Connection[Any], now: datetime) -> list[DueReminder]:
    """Every enrolled patient with a questionnaire due on their local today (a few queries)."""
    patients = records.enrolled_patients(conn, now)
    ids = [p.patient_id for p in patients]
    params = records.current_plan_params(conn, ids)
    answered = records.latest_answer_days(conn, ids)
    out = []
    for p in patients:
        ctx = records.PatientContext(p.patient_id, p.timezone, p.enrolled_at)
        due = reassessment(
            ctx.enrolled_day,
            ctx.local_day(now),
            dict(answered.get(p.patient_id, {})),
            every_weeks=every_weeks(params.get(p.patient_id)),
        )
        if due.due:
            out.append(
                DueReminder(
                    p.patient_id,
                    due,
                    ctx.day_start(due.occasion),
                    ctx.day_start(due.next_occasion),
                )
            )
    return out


def reminder_text(due: Reassessment) -> str:
    """What the patient reads: which questionnaires, and why they matter."""
    names = ", ".join(INSTRUMENTS[i].title for i in due.due)
    return (
        f"Time for your {due.every_weeks}-weekly check-in: {names}. A few minutes on"
        " 'My day' shows you and your clinician how far you have come."
    )[:2000]


# Trends ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionnairePoint:
    """One questionnaire total on the day it was answered, with its possible range."""

    instrument: str
    day: date
    total: int
    low: int
    high: int

    @property
    def fraction(self) -> float:
        """The total as a fraction of its range (instruments on one axis)."""
        return (self.total - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class WeekActivity:
    """One calendar week (Monday first) of objective activity, means over its valid days."""

    week_start: date
    valid_days: int
    active_min: float | None
    steps: float | None
    trimp: float | None


@dataclass(frozen=True)
class Trends:
    """Questionnaire totals over time beside weekly active minutes and load."""

    patient_id: int
    start: date
    end: date
    questionnaires: tuple[QuestionnairePoint, ...]
    weeks: tuple[WeekActivity, ...]

    def series(self, name: str) -> list[QuestionnairePoint]:
        """The points of one instrument, oldest first."""
        return [q for q in self.questionnaires if q.instrument == name]

    def change(self, name: str) -> tuple[int, int] | None:
        """First and latest total of one instrument in the range (None with fewer than two)."""
        points = self.series(name)
        return (points[0].total, points[-1].total) if len(points) >= 2 else None


def weekly_activity(days: Sequence[DayLoad]) -> list[WeekActivity]:
    """Group days into calendar weeks; each mean is over the week's valid (worn) days."""
    weeks: dict[date, list[DayLoad]] = {}
    for d in days:
        weeks.setdefault(d.day - timedelta(days=d.day.weekday()), []).append(d)
    out = []
    for start, group in sorted(weeks.items()):
        valid = [d for d in group if d.valid_wear]

        def mean(m: Measure, valid: list[DayLoad] = valid) -> float | None:
            values = [v for d in valid if (v := d.value(m)) is not None]
            return fmean(values) if values else None

        out.append(
            WeekActivity(
                start,
                len(valid),
                mean(Measure.ACTIVE_MINUTES),
                mean(Measure.STEPS),
                mean(Measure.TRIMP),
            )
        )
    return out


def trends(conn: psycopg.Connection[Any], patient_id: int, start: date, end: date) -> Trends:
    """The questionnaire totals of days `start` … `end` beside that range's weekly activity."""
    if end < start or (end - start).days > MAX_DAYS:
        raise PacingError(f"trend range {start} … {end} must run forward, at most {MAX_DAYS} days")
    ctx = records.patient_context(conn, patient_id)
    points = []
    for r in records.questionnaire_records(conn, ctx, start, end):
        inst = instrument(r.instrument)
        low, high = inst.total_range
        points.append(QuestionnairePoint(inst.name.value, r.day, r.total, low, high))
    loads = series(records.metrics_rows(conn, patient_id, start, end), start, end)
    return Trends(patient_id, start, end, tuple(points), tuple(weekly_activity(loads)))


__all__ = [
    "EARLY_DAYS",
    "QUESTIONNAIRE_REMINDER",
    "DueReminder",
    "QuestionnairePoint",
    "ReassessmentStatus",
    "Trends",
    "WeekActivity",
    "due_reminders",
    "reminder_text",
    "status",
    "trends",
    "weekly_activity",
]
