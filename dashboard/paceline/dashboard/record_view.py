"""The patient page's reassessment and documentation: trends, progress notes, the report.

Questionnaire totals against weekly activity (Altair), the notes as a table
and the report's file name. Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import altair as alt
import pandas as pd

from paceline.pacing import notes
from paceline.pacing.reassessment import ReassessmentStatus, Trends
from paceline.pacing.records import StoredNote


def trend_tables(t: Trends) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Questionnaire totals (one row per answer sheet) and weekly activity (one row per week)."""
    answers = pd.DataFrame(
        [
            {
                "day": pd.Timestamp(q.day),
                "instrument": q.instrument,
                "total": q.total,
                "range": f"{q.low}-{q.high}",
            }
            for q in t.questionnaires
        ],
        columns=["day", "instrument", "total", "range"],
    )
    weeks = pd.DataFrame(
        [
            {
                "week": pd.Timestamp(w.week_start),
                "active_min": w.active_min,
                "steps": w.steps,
                "valid_days": w.valid_days,
            }
            for w in t.weeks
        ],
        columns=["week", "active_min", "steps", "valid_days"],
    )
    return answers, weeks


def trend_chart(t: Trends) -> alt.VConcatChart:
    """Questionnaire totals over time above the weekly mean active minutes, on one time axis."""
    answers, weeks = trend_tables(t)
    x = alt.X("day:T", title=None, scale=alt.Scale(domain=[str(t.start), str(t.end)]))
    top = (
        alt.Chart(answers, height=160, title="Questionnaire totals")
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("total:Q", title="total"),
            color=alt.Color("instrument:N", title=None),
            tooltip=["day:T", "instrument:N", "total:Q", "range:N"],
        )
    )
    bottom = (
        alt.Chart(weeks, height=90, title="Active minutes a day (weekly mean of valid days)")
        .mark_bar()
        .encode(
            x=alt.X("week:T", title=None, scale=alt.Scale(domain=[str(t.start), str(t.end)])),
            y=alt.Y("active_min:Q", title="min"),
            tooltip=["week:T", "active_min:Q", "steps:Q", "valid_days:Q"],
        )
    )
    chart: alt.VConcatChart = alt.vconcat(top, bottom).resolve_scale(x="shared")
    return chart


def due_text(s: ReassessmentStatus) -> str:
    """What is due now, in a sentence for the clinician."""
    q = s.questionnaires
    parts = []
    if q.due:
        parts.append("questionnaires due: " + ", ".join(i.value for i in q.due))
    if s.ladder_due:
        parts.append(f"{len(s.ladder_due)} ladder item(s) to re-rate")
    when = f"every {q.every_weeks} weeks; this occasion {q.occasion:%d %b}, next {q.next_occasion:%d %b}"
    return ("; ".join(parts) or "nothing due") + f" ({when})."


def note_rows(items: Sequence[StoredNote]) -> pd.DataFrame:
    """The notes as a table: when, who, the task, the three ratings, the text."""
    rows: list[dict[str, Any]] = [
        {
            "written": n.written_at,
            "by": n.clinician_name,
            "task": n.activity or "",
            **{
                s.title: notes.scale_label(s, getattr(n, s.name)) if n.activity else ""
                for s in notes.SCALES
            },
            "note": n.body,
            "amends": n.amends,
        }
        for n in items
    ]
    return pd.DataFrame(rows)


def scale_options(scale: notes.Scale) -> list[int | None]:
    """The choices of a rating's select box: not rated, then every level."""
    return [None, *range(scale.low, scale.high + 1)]


def scale_format(scale: notes.Scale) -> Any:
    """How a select box shows a rating's levels."""

    def show(value: int | None) -> str:
        return "not rated" if value is None else notes.scale_label(scale, value)

    return show


def report_filename(patient_id: int, start: date, end: date) -> str:
    """The report's download name."""
    return f"paceline-report-patient-{patient_id}-{start:%Y%m%d}-{end:%Y%m%d}.pdf"
