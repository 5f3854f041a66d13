"""What a progress report holds, read through the components' public functions, and its summary.

`read` gathers one patient's range: the timeline (daily load, plan versions,
diary, flags), the questionnaire trends beside weekly activity, the fear
ladder with its rating history and sessions, the prescribed exercise (targets,
adherence, session-RPE load), the valued goals and milestones, the alerts with what clinicians did about them,
and the progress notes. `comparisons` is pure: the baseline
against now that opens the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import fmean
from typing import Any, Final

import psycopg

from paceline.pacing import (
    alerts,
    goalsetting,
    ladder,
    overview,
    prescribing,
    reassessment,
    records,
)
from paceline.pacing.days import DayLoad, Measure
from paceline.pacing.exposure import ItemProgress, LadderItem, SessionRecord, item_progress
from paceline.pacing.goals import GoalProgress
from paceline.pacing.milestones import Milestone
from paceline.pacing.progression import PlanVersion
from paceline.pacing.questionnaires import REASSESSED, InstrumentName
from paceline.pacing.records import FearRating, StoredNote
from paceline.store import registry

#: Days at each end of the range that "baseline" and "now" average over.
COMPARE_DAYS: Final = 14
#: Which way is better on each instrument (TSK-11 and PCS: lower; PSEQ: higher).
LOWER_IS_BETTER: Final = {
    InstrumentName.TSK_11.value: True,
    InstrumentName.PCS.value: True,
    InstrumentName.PSEQ.value: False,
}


@dataclass(frozen=True)
class LadderRow:
    """One rung: the item, its progress, its sessions and every rating it was given."""

    item: LadderItem
    progress: ItemProgress
    sessions: tuple[SessionRecord, ...]
    ratings: tuple[FearRating, ...]


@dataclass(frozen=True)
class ReportContent:
    """Everything one patient's progress report for `start` … `end` shows."""

    patient: registry.Patient
    start: date
    end: date
    generated_at: datetime
    timeline: overview.PatientTimeline
    trends: reassessment.Trends
    schedule: reassessment.ReassessmentStatus
    ladder: tuple[LadderRow, ...]
    alerts: tuple[alerts.AlertRow, ...]
    notes: tuple[StoredNote, ...]
    exercise: prescribing.ExerciseOverview
    goals: tuple[GoalProgress, ...] = ()
    milestones: tuple[Milestone, ...] = ()

    @property
    def plan(self) -> PlanVersion | None:
        """The plan in effect on the last day of the range."""
        return self.timeline.plan_on(self.end)

    @property
    def measure(self) -> Measure:
        """What the plan counts (active minutes before any plan)."""
        plan = self.plan or (self.timeline.plans[0] if self.timeline.plans else None)
        return plan.measure if plan else Measure.ACTIVE_MINUTES

    def quota_on(self, day: date) -> float | None:
        """The quota in effect on `day`."""
        plan = self.timeline.plan_on(day)
        return None if plan is None else plan.quota


@dataclass(frozen=True)
class Comparison:
    """One line of "baseline against now": the value at the start and at the end of the range."""

    label: str
    baseline: float | None
    now: float | None
    unit: str
    better: str = ""

    @property
    def change(self) -> float | None:
        """Now minus baseline."""
        if self.baseline is None or self.now is None:
            return None
        return self.now - self.baseline


def read(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: date,
    end: date,
    *,
    now: datetime,
) -> ReportContent:
    """Read a report's content (inside the caller's transaction, under its row security)."""
    patient = registry.get_patient(conn, patient_id)
    timeline = overview.timeline(conn, patient_id, start, end)
    ctx = timeline.patient
    lo, hi = ctx.day_start(start), ctx.day_start(end + timedelta(days=1))
    exposure = overview.exposure(conn, patient_id)
    history = ladder.rating_history(conn, patient_id)
    rows = tuple(
        LadderRow(
            item,
            item_progress(item, exposure.sessions, exposure.items),
            tuple(s for s in exposure.sessions if s.item_id == item.item_id),
            tuple(history.get(item.item_id, ())),
        )
        for item in exposure.items
    )
    shown = [
        a
        for a in alerts.list_alerts(
            conn,
            patient_id=patient_id,
            statuses=("open", "acknowledged", "resolved"),
            audience="care_team",
        )
        if a.opened_at < hi and (a.resolved_at is None or a.resolved_at >= lo)
    ]
    return ReportContent(
        patient=patient,
        start=start,
        end=end,
        generated_at=now,
        timeline=timeline,
        trends=reassessment.trends(conn, patient_id, start, end),
        schedule=reassessment.status(conn, patient_id, now=now),
        ladder=rows,
        alerts=tuple(sorted(shown, key=lambda a: a.opened_at)),
        notes=tuple(records.progress_notes(conn, patient_id, since=lo, until=hi)),
        exercise=prescribing.overview(conn, patient_id, start, end),
        goals=tuple(goalsetting.goal_progress(conn, patient_id, on=end)),
        milestones=tuple(
            m
            for m in goalsetting.patient_milestones(conn, patient_id, on=end)
            if start <= m.day <= end
        ),
    )


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def _ends(days: Sequence[DayLoad], m: Measure) -> tuple[float | None, float | None]:
    valid = [d for d in days if d.value(m) is not None]
    first = [d.value(m) for d in valid[:COMPARE_DAYS]]
    last = [d.value(m) for d in valid[-COMPARE_DAYS:]]
    return _mean(first), _mean(last)


def comparisons(c: ReportContent) -> list[Comparison]:
    """Baseline against now: the plan, load, pain and each questionnaire, start vs end of range.

    Load and pain are means over the first and the last `COMPARE_DAYS` valid
    (worn, resp. reported) days of the range, so that one odd day does not
    decide the line.
    """
    out = []
    plans = c.timeline.plans
    first_baseline = next((p.baseline for p in plans if p.baseline is not None), None)
    plan = c.plan
    unit = c.measure.unit
    out.append(
        Comparison(
            "Plan: baseline tolerance → quota now",
            first_baseline,
            None if plan is None else plan.quota,
            unit,
        )
    )
    measures = [c.measure] + [
        m for m in (Measure.ACTIVE_MINUTES, Measure.STEPS) if m is not c.measure
    ]
    for m in measures:
        b, n = _ends(c.timeline.loads, m)
        out.append(Comparison(f"Daily {m.unit} (mean of valid days)", b, n, m.unit))
    pains = [float(d.pain_now) for d in c.timeline.diary]
    out.append(
        Comparison(
            "Pain now, diary (0-10)",
            _mean(pains[:COMPARE_DAYS]),
            _mean(pains[-COMPARE_DAYS:]),
            "points",
            "lower",
        )
    )
    for name in REASSESSED:
        points = c.trends.series(name.value)
        if not points:
            continue
        out.append(
            Comparison(
                f"{name.value} total ({points[0].low}-{points[0].high})",
                float(points[0].total),
                float(points[-1].total) if len(points) > 1 else None,
                "points",
                "lower" if LOWER_IS_BETTER[name.value] else "higher",
            )
        )
    return out
