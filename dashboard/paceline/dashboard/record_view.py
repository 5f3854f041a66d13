"""The patient page's reassessment and documentation: trends, progress notes, the report.

Questionnaire totals against weekly activity (a chart skeleton built once per range,
with Arrow datasets), the notes as a table and the report's file name. Nothing here
reads the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, tzinfo
from typing import Any

import pyarrow as pa

from paceline.dashboard.charts import chart_table, display_table, questionnaire_spec, with_data
from paceline.dashboard.times import shown_at
from paceline.pacing import notes
from paceline.pacing.reassessment import ReassessmentStatus, Trends
from paceline.pacing.records import StoredNote

NOTE_COLUMNS = ("written", "by", "task", *(s.title for s in notes.SCALES), "note", "amends")


def trend_tables(t: Trends) -> dict[str, pa.Table]:
    """The datasets of `charts.questionnaire_spec`: questionnaire totals and weekly activity.

    `answers` has one row per answer sheet, `weeks` one per calendar week.
    """
    answers = chart_table(
        (
            {
                "day": q.day,
                "instrument": q.instrument,
                "total": q.total,
                "range": f"{q.low}-{q.high}",
            }
            for q in t.questionnaires
        ),
        ("day", "instrument", "total", "range"),
    )
    weeks = chart_table(
        (
            {
                "week": w.week_start,
                "active_min": w.active_min,
                "steps": w.steps,
                "valid_days": w.valid_days,
            }
            for w in t.weeks
        ),
        ("week", "active_min", "steps", "valid_days"),
    )
    return {"answers": answers, "weeks": weeks}


def trend_spec(t: Trends) -> dict[str, Any]:
    """Questionnaire totals over time above the weekly mean active minutes, with their data."""
    return with_data(questionnaire_spec(t.start, t.end), trend_tables(t))


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


def note_rows(items: Sequence[StoredNote], zone: tzinfo) -> pa.Table:
    """The notes as a table: when (in the patient's `zone`), who, the task, the ratings, the text."""
    rows: list[dict[str, Any]] = [
        {
            "written": shown_at(n.written_at, zone),
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
    return display_table(rows, NOTE_COLUMNS)


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
