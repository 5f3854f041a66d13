"""Prescribed exercise and goals as the pages show them: targets, adherence, sessions, goals.

Nothing here reads the database: the tables are built from
`paceline.pacing.prescribing.ExerciseOverview`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from paceline.dashboard.charts import display_table
from paceline.pacing import wording
from paceline.pacing.goals import GoalProgress
from paceline.pacing.prescribing import ExerciseOverview, PrescriptionView

PRESCRIPTION_COLUMNS = (
    "session",
    "kind",
    "target",
    "per week",
    "last 7 days",
    "range",
    "pain rose after",
    "status",
)
HISTORY_COLUMNS = ("version", "from", "target", "cause", "why")
SESSION_COLUMNS = (
    "day",
    "session",
    "minutes",
    "repetitions",
    "RPE",
    "load (RPE × min)",
    "pain before",
    "pain after",
    "reached target",
    "pain rose",
)


def prescription_table(x: ExerciseOverview) -> pa.Table:
    """One row per prescription: target, sessions per week, adherence this week and over the range."""
    rows = []
    for v in x.prescriptions:
        p = v.prescription
        rows.append(
            {
                "session": p.name,
                "kind": p.kind.value,
                "target": "" if v.current is None else v.current.target.text,
                "per week": p.sessions_per_week,
                "last 7 days": f"{v.week.completed} of {wording.number(v.week.prescribed)}",
                "range": f"{v.adherence.completed} of {wording.number(v.adherence.prescribed)}"
                f" ({v.adherence.fraction:.0%})",
                "pain rose after": v.adherence.worsened,
                "status": "active" if p.active else "ended",
            }
        )
    return display_table(rows, PRESCRIPTION_COLUMNS)


def target_history(v: PrescriptionView) -> pa.Table:
    """The versions of one prescription's target with why each was made."""
    return display_table(
        (
            {
                "version": t.version,
                "from": t.valid_from,
                "target": t.target.text,
                "cause": t.cause.value,
                "why": t.reason,
            }
            for t in v.versions
        ),
        HISTORY_COLUMNS,
    )


def session_rows(x: ExerciseOverview) -> pa.Table:
    """Every logged session of the range, newest first, with its load and response."""
    rows: list[dict[str, Any]] = []
    for v in x.prescriptions:
        for r in v.sessions:
            s = r.session
            rows.append(
                {
                    "day": s.day,
                    "session": v.prescription.name,
                    "minutes": s.duration_min,
                    "repetitions": s.repetitions,
                    "RPE": s.rpe,
                    "load (RPE × min)": s.load,
                    "pain before": s.pain_before,
                    "pain after": s.pain_after,
                    "reached target": r.completed,
                    "pain rose": r.worsened,
                }
            )
    rows.sort(key=lambda r: r["day"], reverse=True)
    return display_table(rows, SESSION_COLUMNS)


def goal_line(g: GoalProgress) -> str:
    """A goal's progress line with what leads to it."""
    head = wording.goal_progress(g.goal.title, g.progress)
    if not g.links:
        return f"{head} (nothing linked yet)"
    parts = ", ".join(f"{p.label} {p.progress:.0%}" for p in g.links)
    return f"{head} — {parts}"
