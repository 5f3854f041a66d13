"""The progress report laid out for paper with reportlab's platypus.

A4, DejaVu Sans (the charts' font, with full Unicode), the patient identified
in the header and "Page n of N" with the not-a-medical-device note in the
footer of every page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from paceline.pacing import notes
from paceline.pacing.flag_wording import rule_title
from paceline.pacing.report import charts
from paceline.pacing.report.content import Comparison, ReportContent, comparisons

MARGIN: Final = 20 * mm
FONT: Final = "DejaVuSans"
BOLD: Final = "DejaVuSans-Bold"
#: Printed on every page: what the report is not.
DISCLAIMER: Final = (
    "Paceline is not a medical device. This report summarises recorded data to support, not"
    " replace, clinical judgement."
)
RESOLUTIONS: Final = {"clinician": "by a clinician", "episode_ended": "episode ended"}


def _register_fonts() -> None:
    """DejaVu Sans from matplotlib's own data (the charts' font), for full Unicode coverage."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13)
    return {
        "title": ParagraphStyle("title", parent=body, fontName=BOLD, fontSize=16, leading=20),
        "h2": ParagraphStyle(
            "h2", parent=body, fontName=BOLD, fontSize=12, leading=15, spaceBefore=10, spaceAfter=4
        ),
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=10.5),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=10),
        "muted": ParagraphStyle(
            "muted", parent=body, fontSize=8, leading=10.5, textColor=colors.HexColor("#555555")
        ),
    }


class _NumberedCanvas(Canvas):
    """A canvas that knows the page count when it saves, for "Page n of N" (reportlab's recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        """Keep the page's state; it is drawn on save, when the count is known."""
        self._pages.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]  # reportlab's recipe; not in the stubs

    def save(self) -> None:
        """Stamp every page with its number and the count, then write the file."""
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 8)
            self.drawRightString(
                A4[0] - MARGIN, MARGIN - 8 * mm, f"Page {self.getPageNumber()} of {total}"
            )
            super().showPage()
        super().save()


def _decorate(c: ReportContent) -> Callable[[Canvas, BaseDocTemplate], None]:
    p = c.patient
    who = f"{p.display_name} · ref {p.external_ref}"
    if p.birth_year is not None:
        who += f" · born {p.birth_year}"
    period = f"Progress report {c.start:%d %b %Y} – {c.end:%d %b %Y}"

    def draw(canvas: Canvas, doc: BaseDocTemplate) -> None:
        width, height = A4
        canvas.saveState()
        canvas.setFont(BOLD, 9)
        canvas.drawString(MARGIN, height - MARGIN + 4 * mm, who)
        canvas.setFont(FONT, 8)
        canvas.drawRightString(width - MARGIN, height - MARGIN + 4 * mm, period)
        canvas.setStrokeColor(colors.HexColor("#999999"))
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, height - MARGIN + 2 * mm, width - MARGIN, height - MARGIN + 2 * mm)
        canvas.line(MARGIN, MARGIN - 4 * mm, width - MARGIN, MARGIN - 4 * mm)
        canvas.setFont(FONT, 7)
        canvas.drawString(MARGIN, MARGIN - 8 * mm, DISCLAIMER)
        canvas.drawString(
            MARGIN,
            MARGIN - 11.5 * mm,
            f"Generated {c.generated_at:%d %b %Y %H:%M} UTC by Paceline · {p.timezone} days",
        )
        canvas.restoreState()

    return draw


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _table(
    rows: Sequence[Sequence[object]], widths: Sequence[float], s: dict[str, ParagraphStyle]
) -> Table:
    """A table with a bold header row; string cells wrap as paragraphs."""
    cells = [
        [Paragraph(escape(str(v)), s["cell"]) if isinstance(v, str) else v for v in row]
        for row in rows
    ]
    t = Table(cells, colWidths=list(widths), repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF4")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#7F8FA6")),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#CCCCCC")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return t


def _chart(png: bytes | None, s: dict[str, ParagraphStyle], empty: str) -> Flowable:
    if png is None:
        return Paragraph(escape(empty), s["muted"])
    img = Image(io.BytesIO(png))
    ratio = img.imageHeight / img.imageWidth
    img.drawWidth = A4[0] - 2 * MARGIN
    img.drawHeight = img.drawWidth * ratio
    return img


def _charted(title: str, png: bytes | None, s: dict[str, ParagraphStyle], empty: str) -> Flowable:
    """A section's heading kept on one page with its chart (or the line saying there is none)."""
    return KeepTogether([Paragraph(title, s["h2"]), _chart(png, s, empty)])


def _comparison_rows(items: Sequence[Comparison]) -> list[list[object]]:
    rows: list[list[object]] = [["", "Start of range", "Now", "Change", "Better is"]]
    for item in items:
        change = item.change
        rows.append(
            [
                item.label,
                _fmt(item.baseline),
                _fmt(item.now),
                "—" if change is None else ("+" if change > 0 else "") + _fmt(change),
                item.better or "—",
            ]
        )
    return rows


def _flag_rows(c: ReportContent) -> list[list[object]]:
    """One line per rule: how many episodes, first and last, the worst severity, open now."""
    rows: list[list[object]] = [["Flag", "Episodes", "First – last", "Worst · open now"]]
    by_rule: dict[str, list[Any]] = {}
    for f in sorted(c.timeline.flags, key=lambda f: f.window_start):
        by_rule.setdefault(f.rule_id, []).append(f)
    for rule_id, flags in by_rule.items():
        worst = max((f.severity for f in flags), key=lambda s: s.rank).value
        still = sum(1 for f in flags if f.status != "resolved")
        rows.append(
            [
                rule_title(rule_id),
                str(len(flags)),
                f"{_day(flags[0].window_start)} – {_day(flags[-1].window_end)}",
                f"{worst} · {still} open" if still else f"{worst} · all resolved",
            ]
        )
    return rows


def _day(d: date | datetime | None) -> str:
    return "—" if d is None else f"{d:%d %b %Y}"


def story(c: ReportContent) -> list[Flowable]:
    """The report's flowables, section by section."""
    s = _styles()
    width = A4[0] - 2 * MARGIN
    p = c.patient
    out: list[Flowable] = [
        Paragraph("Progress report", s["title"]),
        Spacer(1, 2 * mm),
        Paragraph(
            escape(
                f"{p.display_name} (ref {p.external_ref}"
                + (f", born {p.birth_year}" if p.birth_year else "")
                + f"), enrolled {_day(c.timeline.patient.enrolled_day)}."
                f" Range {_day(c.start)} – {_day(c.end)} ({(c.end - c.start).days + 1} days)."
            ),
            s["body"],
        ),
    ]
    plan = c.plan
    if plan is not None:
        out.append(
            Paragraph(
                escape(
                    f"Plan version {plan.version} in effect: quota {_fmt(plan.quota)}"
                    f" {plan.measure.unit} a day, raised by {plan.step_fraction:.0%} every"
                    f" {plan.period_days} days when met; reassessment every"
                    f" {plan.settings.reassess_every_weeks} weeks."
                ),
                s["body"],
            )
        )
    due = c.schedule.questionnaires
    out.append(
        Paragraph(
            escape(
                "Questionnaires due now: "
                + (", ".join(i.value for i in due.due) or "none")
                + f"; next reassessment {_day(due.next_occasion)}."
            ),
            s["body"],
        )
    )

    out.append(Paragraph("Baseline against now", s["h2"]))
    out.append(
        _table(
            _comparison_rows(comparisons(c)),
            [width * 0.40, width * 0.15, width * 0.15, width * 0.15, width * 0.15],
            s,
        )
    )
    out.append(
        Paragraph(
            escape(
                "Start and now are means over the first and the last 14 valid days of the range"
                " (a valid day has at least 10 h of wear) and the first and latest questionnaire."
            ),
            s["muted"],
        )
    )

    out.append(
        _charted(
            "Activity and the quota",
            charts.quota_chart(c),
            s,
            "No activity recorded in this range.",
        )
    )
    versions = [v for v in c.timeline.plans if v.valid_from <= c.end]
    if versions:
        rows: list[list[object]] = [["Version", "From", "Baseline", "Quota", "Why"]]
        rows += [
            [str(v.version), _day(v.valid_from), _fmt(v.baseline), _fmt(v.quota), v.reason]
            for v in versions[-12:]
        ]
        out.append(Spacer(1, 2 * mm))
        out.append(
            _table(rows, [width * 0.09, width * 0.14, width * 0.12, width * 0.12, width * 0.53], s)
        )

    out.append(
        _charted(
            "Questionnaires and activity",
            charts.questionnaire_chart(c),
            s,
            "No questionnaires or activity in range.",
        )
    )
    if c.trends.questionnaires:
        rows = [["Answered", "Instrument", "Total", "Range"]]
        rows += [
            [_day(q.day), q.instrument, str(q.total), f"{q.low}-{q.high}"]
            for q in c.trends.questionnaires
        ]
        out.append(Spacer(1, 2 * mm))
        out.append(_table(rows, [width * 0.25] * 4, s))

    if not c.ladder:
        out.append(Paragraph("Fear ladder", s["h2"]))
        out.append(Paragraph("No fear ladder.", s["muted"]))
    else:
        out.append(
            _charted("Fear ladder", charts.ladder_chart(c), s, "No ratings or sessions yet.")
        )
        rows = [["Rung", "Status", "First → latest rating", "Sessions done / skipped", "Move up?"]]
        for r in c.ladder:
            first = r.ratings[0].fear_rating if r.ratings else r.item.fear_rating
            rows.append(
                [
                    f"{r.item.position + 1}. {r.item.activity}",
                    r.item.status.value,
                    f"{first} → {r.item.fear_rating} ({len(r.ratings)} ratings)",
                    f"{r.progress.sessions_done} / {r.progress.sessions_skipped}",
                    "ready" if r.progress.ready_to_move_up else "not yet",
                ]
            )
        out.append(Spacer(1, 2 * mm))
        out.append(
            _table(rows, [width * 0.36, width * 0.12, width * 0.22, width * 0.17, width * 0.13], s)
        )

    ex = c.exercise
    if not ex.prescriptions:
        out.append(Paragraph("Prescribed exercise", s["h2"]))
        out.append(Paragraph("No exercise prescribed.", s["muted"]))
    else:
        out.append(
            _charted("Prescribed exercise", charts.exercise_chart(c), s, "No sessions logged.")
        )
        rows = [["Session", "First → current target", "Per week", "Done in range", "Pain rose"]]
        for v in ex.prescriptions:
            began = v.versions[0].target.text if v.versions else "—"
            now = v.current.target.text if v.current is not None else "—"
            done = v.adherence
            rows.append(
                [
                    f"{v.prescription.name} ({v.prescription.kind.value})",
                    f"{began} → {now}",
                    str(v.prescription.sessions_per_week),
                    f"{done.completed} of {done.prescribed:g} ({done.fraction:.0%})",
                    str(done.worsened),
                ]
            )
        out.append(Spacer(1, 2 * mm))
        out.append(
            _table(rows, [width * 0.27, width * 0.33, width * 0.10, width * 0.18, width * 0.12], s)
        )
        weekly, ratio = ex.load.weekly, ex.load.ratio
        out.append(
            Paragraph(
                escape(
                    "Session-RPE load (Foster 2001: CR-10 rating × minutes) of the last 7 days: "
                    + ("—" if weekly is None else f"{weekly:,.0f}")
                    + "; acute:chronic ratio "
                    + ("—" if ratio is None else f"{ratio:.2f}")
                    + ". A target rises only after consistent sessions without a worsening"
                    " response and steps down after a flare, like the quota."
                ),
                s["muted"],
            )
        )

    out.append(Paragraph("Valued goals", s["h2"]))
    if not c.goals:
        out.append(Paragraph("No goals recorded.", s["muted"]))
    else:
        rows = [["Goal", "Why it matters", "Linked steps", "Progress"]]
        for g in c.goals:
            steps = "; ".join(f"{p.label} {p.progress:.0%}" for p in g.links) or "—"
            state = "reached" if g.reached else f"{g.progress:.0%}"
            rows.append([g.goal.title, g.goal.why or "—", steps, state])
        out.append(_table(rows, [width * 0.25, width * 0.25, width * 0.38, width * 0.12], s))
    shown = list(c.milestones)
    if shown:
        out.append(Spacer(1, 2 * mm))
        rows = [["Milestone", "Day"]]
        rows += [[m.text, _day(m.day)] for m in sorted(shown, key=lambda m: m.day)]
        out.append(_table(rows, [width * 0.80, width * 0.20], s))

    out.append(Paragraph("Flags and what was done", s["h2"]))
    if not c.timeline.flags and not c.alerts:
        out.append(Paragraph("No flags or alerts in this range.", s["muted"]))
    if c.timeline.flags:
        out.append(
            _table(_flag_rows(c), [width * 0.40, width * 0.11, width * 0.27, width * 0.22], s)
        )
        out.append(Spacer(1, 2 * mm))
    if c.alerts:
        rows = [["Alert", "Opened", "Status", "Acknowledged (note)", "Resolved"]]
        for a in c.alerts:
            ack = "—"
            if a.acknowledged_at is not None:
                ack = f"{_day(a.acknowledged_at)} by clinician {a.acknowledged_by}"
                if a.ack_note:
                    ack += f": {a.ack_note}"
            resolved = "—"
            if a.resolved_at is not None:
                how = RESOLUTIONS.get(a.resolution or "", a.resolution or "resolved")
                resolved = f"{_day(a.resolved_at)}, {how}"
            rows.append(
                [
                    f"{rule_title(a.rule_id)} ({a.severity})",
                    _day(a.opened_at),
                    a.status,
                    ack,
                    resolved,
                ]
            )
        out.append(
            _table(rows, [width * 0.27, width * 0.13, width * 0.15, width * 0.27, width * 0.18], s)
        )

    heading: list[Flowable] = [Paragraph("Clinician progress notes", s["h2"])]
    if not c.notes:
        out += [*heading, Paragraph("No progress notes in this range.", s["muted"])]
    for n in sorted(c.notes, key=lambda n: n.written_at):
        head = f"{n.written_at:%d %b %Y %H:%M} UTC · {n.clinician_name}"
        if n.amends is not None:
            head += f" · amends note {n.amends}"
        block: list[Flowable] = [Paragraph(f"<b>{escape(head)}</b>", s["small"])]
        if n.activity is not None:
            ratings = "; ".join(
                f"{scale.title}: {notes.scale_label(scale, getattr(n, scale.name))}"
                for scale in notes.SCALES
            )
            block.append(Paragraph(escape(f"Task: {n.activity} — {ratings}"), s["small"]))
        block.append(Paragraph(escape(n.body).replace("\n", "<br/>"), s["body"]))
        block.append(Spacer(1, 2 * mm))
        # The heading goes with the first note, never alone at the foot of a page.
        out.append(KeepTogether([*heading, *block]))
        heading = []

    out.append(Paragraph("About this report", s["h2"]))
    out.append(
        Paragraph(
            escape(
                "Objective activity comes from the patient's wearable (daily metrics);"
                " pain from the diary; TSK-11 (Woby et al. 2005), PCS (Sullivan et al. 1995)"
                " and PSEQ (Nicholas 2007) are scored as published. Note ratings: "
                + "; ".join(f"{x.title} {x.low}-{x.high} ({x.source})" for x in notes.SCALES)
                + ". Times are the patient's local days unless marked UTC."
            ),
            s["muted"],
        )
    )
    return out


def render(c: ReportContent) -> bytes:
    """The report as PDF bytes."""
    _register_fonts()
    buffer = io.BytesIO()
    p = c.patient
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 4 * mm,
        bottomMargin=MARGIN,
        title=f"Progress report: {p.display_name} ({p.external_ref})",
        author="Paceline",
        subject=f"{c.start.isoformat()} to {c.end.isoformat()}",
        creator="Paceline",
    )
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_decorate(c))])
    doc.build(story(c), canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
