"""Prescribed exercise and goals as the pages show them: targets, adherence, sessions, goals.

Nothing here reads the database: the tables are built from
`paceline.pacing.prescribing.ExerciseOverview`.
"""

from __future__ import annotations

import pandas as pd

from paceline.pacing import wording
from paceline.pacing.goals import GoalProgress
from paceline.pacing.prescribing import ExerciseOverview, PrescriptionView


def prescription_table(x: ExerciseOverview) -> pd.DataFrame:
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
    return pd.DataFrame(rows)


def target_history(v: PrescriptionView) -> pd.DataFrame:
    """The versions of one prescription's target with why each was made."""
    return pd.DataFrame(
        [
            {
                "version": t.version,
                "from": t.valid_from,
                "target": t.target.text,
                "cause": t.cause.value,
                "why": t.reason,
            }
            for t in v.versions
        ]
    )


def session_rows(x: ExerciseOverview) -> pd.DataFrame:
    """Every logged session of the range, newest first, with its load and response."""
    rows = []
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
    frame = pd.DataFrame(rows)
    return frame.sort_values("day", ascending=False) if len(frame) else frame


def goal_line(g: GoalProgress) -> str:
    """A goal's progress line with what leads to it."""
    head = wording.goal_progress(g.goal.title, g.progress)
    if not g.links:
        return f"{head} (nothing linked yet)"
    parts = ", ".join(f"{p.label} {p.progress:.0%}" for p in g.links)
    return f"{head} — {parts}"
