"""The report's charts as PNG bytes sized for an A4 column.

Drawn with matplotlib's object API (no pyplot: no global state, safe in the
dashboard's threads). Positions on the time axis are matplotlib date numbers
(days since its default epoch, 1970-01-01) in the patient's local time.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Final

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from paceline.pacing.report.content import ReportContent

#: Drawn size: the text width of an A4 page with 20 mm margins, at print resolution.
WIDTH_MM: Final = 170.0
DPI: Final = 200
MM_PER_INCH: Final = 25.4
FONT: Final = "DejaVu Sans"
#: Colour-blind-safe categorical colours (Okabe & Ito 2008, "Color universal design").
COLOURS: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
QUOTA_COLOUR: Final = "#D55E00"
NOT_VALID_COLOUR: Final = "#BBBBBB"


def _figure(height_mm: float) -> Figure:
    fig = Figure(figsize=(WIDTH_MM / MM_PER_INCH, height_mm / MM_PER_INCH), dpi=DPI)
    fig.set_layout_engine("constrained")
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", color="#DDDDDD", linewidth=0.5)
    # matplotlib.dates ships without annotations for these two classes.
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def quota_chart(c: ReportContent) -> bytes | None:
    """Daily load in the plan's measure (bars; grey: not a valid day) under the quota (step line)."""
    days = c.timeline.loads
    if not days:
        return None
    m = c.measure
    fig = _figure(62)
    ax = fig.add_subplot()
    valid = [(_at(d.day), d.value(m)) for d in days if d.value(m) is not None]
    invalid = [_at(d.day) for d in days if d.value(m) is None and d.reported]
    if valid:
        ax.bar([d for d, _ in valid], [v or 0.0 for _, v in valid], width=0.8, color=COLOURS[0])
    if invalid:
        ax.bar(invalid, [0.0] * len(invalid), width=0.8, color=NOT_VALID_COLOUR)
    quotas = [(_at(d.day), c.quota_on(d.day)) for d in days]
    if any(q is not None for _, q in quotas):
        ax.step(
            [d for d, _ in quotas],
            [float("nan") if q is None else q for _, q in quotas],
            where="mid",
            color=QUOTA_COLOUR,
            linewidth=1.6,
            label="quota",
        )
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.set_ylabel(m.unit, fontsize=8)
    ax.set_title(f"Daily {m.unit} against the quota", fontsize=9, loc="left")
    _style(ax)
    return _png(fig)


def questionnaire_chart(c: ReportContent) -> bytes | None:
    """Questionnaire totals over time (top) beside weekly mean active minutes (bottom)."""
    t = c.trends
    if not t.questionnaires and not any(w.active_min is not None for w in t.weeks):
        return None
    fig = _figure(80)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    names = sorted({q.instrument for q in t.questionnaires})
    for colour, name in zip(COLOURS, names, strict=False):
        points = t.series(name)
        ax_days = [_at(p.day) for p in points]
        top.plot(
            ax_days,
            [p.total for p in points],
            marker="o",
            markersize=3,
            color=colour,
            label=f"{name} ({points[0].low}-{points[0].high})",
        )
    if names:
        # Above the plot, right of the title: the lines cross wherever the legend could sit.
        top.legend(fontsize=7, frameon=False, ncols=3, loc="lower right", bbox_to_anchor=(1, 1))
    top.set_ylabel("total", fontsize=8)
    top.set_title("Questionnaires against weekly activity", fontsize=9, loc="left")
    weeks = [w for w in t.weeks if w.active_min is not None]
    bottom.bar(
        [_at(w.week_start) for w in weeks],
        [w.active_min or 0.0 for w in weeks],
        width=6,
        align="edge",
        color=COLOURS[2],
    )
    bottom.set_ylabel("active min/day\n(weekly mean)", fontsize=8)
    top.set_xlim(_at(c.start), _at(c.end))
    _style(top)
    _style(bottom)
    return _png(fig)


def ladder_chart(c: ReportContent) -> bytes | None:
    """Each rung's fear rating over time (lines, from its history) and fear before sessions (dots)."""
    rows = [r for r in c.ladder if r.ratings or r.sessions]
    if not rows:
        return None
    fig = _figure(62)
    ax = fig.add_subplot()
    for colour, row in zip(COLOURS * 4, rows, strict=False):
        label = row.item.activity if len(row.item.activity) <= 40 else row.item.activity[:39] + "…"
        if row.ratings:
            times = [_local(c, r.rated_at) for r in row.ratings] + [_at(c.end)]
            values = [r.fear_rating for r in row.ratings] + [row.ratings[-1].fear_rating]
            ax.step(times, values, where="post", color=colour, linewidth=1.4, label=label)
        done = [s for s in row.sessions if s.fear_before is not None]
        if done:
            ax.scatter(
                [_local(c, s.started_at or s.planned_at) for s in done],
                [float(s.fear_before or 0) for s in done],
                s=9,
                color=colour,
            )
    ax.set_ylim(0, 100)
    ax.set_ylabel("fear (0-100)", fontsize=8)
    ax.set_title(
        "Fear ladder: ratings (lines) and fear before sessions (dots)", fontsize=9, loc="left"
    )
    ax.legend(fontsize=6, frameon=False, loc="upper right")
    ax.set_xlim(_at(c.start), _at(c.end))
    _style(ax)
    return _png(fig)


EPOCH: Final = date(1970, 1, 1)


def _at(day: date) -> float:
    """A local day's midnight on the time axis."""
    return float((day - EPOCH).days)


def exercise_chart(c: ReportContent) -> bytes | None:
    """Daily session-RPE load (bars, Foster 2001) above each prescription's target over time."""
    x = c.exercise
    if not x.prescriptions:
        return None
    fig = _figure(70)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 3))
    load = x.daily_load
    top.bar([_at(d) for d, _ in load], [v for _, v in load], width=0.8, color=COLOURS[4])
    top.set_ylabel("RPE × min", fontsize=8)
    top.set_title("Prescribed exercise: session load and targets", fontsize=9, loc="left")
    for colour, v in zip(COLOURS * 4, x.prescriptions, strict=False):
        versions = [t for t in v.versions if t.valid_from <= c.end]
        if not versions:
            continue
        reps = versions[-1].target.repetitions is not None
        values = [
            float(t.target.repetitions or 0) if reps else float(t.target.duration_min or 0)
            for t in versions
        ]
        days = [_at(max(t.valid_from, c.start)) for t in versions] + [_at(c.end)]
        bottom.step(
            days,
            [*values, values[-1]],
            where="post",
            color=colour,
            linewidth=1.4,
            label=f"{v.prescription.name} ({'repetitions' if reps else 'min'})",
        )
    bottom.set_ylabel("target", fontsize=8)
    bottom.legend(fontsize=6, frameon=False, loc="upper left")
    top.set_xlim(_at(c.start), _at(c.end))
    _style(top)
    _style(bottom)
    return _png(fig)


def _local(c: ReportContent, when: datetime) -> float:
    """An instant on the time axis, in the patient's local time."""
    local = when.astimezone(c.timeline.patient.zone)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return _at(local.date()) + seconds / 86400.0
