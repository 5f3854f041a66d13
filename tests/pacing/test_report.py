"""The progress report of a simulated patient, checked as rendered pages, not only as text.

Six weeks of a boom-bust persona are played through the real engine (with
alerts raised as the nightly pass does and one acknowledged with a note),
with questionnaires at the baseline and four weeks later, a re-rated fear
ladder with sessions, and a clinician's progress note. The PDF is rendered
with PDFium (pypdfium2), the engine browsers use: every page is A4 and names
the patient, counts its pages and carries the not-a-medical-device note; each
chart image is found on its page and the rendered pixels in its region are
not blank; the extracted text holds the numbers the data says it must.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from paceline.pacing import (
    alerts,
    goalsetting,
    intake,
    ladder,
    notes,
    planning,
    prescribing,
    replay,
)
from paceline.pacing.exercise import Kind, Target
from paceline.pacing.flag_wording import rule_title
from paceline.pacing.intake import submit_questionnaire
from paceline.pacing.report import ReportError, progress_report
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import connect, registry
from paceline.store.access import clinician_session
from paceline.store.identity import IdentityKey
from tests.pacing.alerts.helpers import CONFIG

START = date(2026, 3, 2)
DAYS = 42
END = START + timedelta(days=DAYS - 1)
A4_PT = (595.28, 841.89)
SCALE = 1.5  # 108 dpi: enough to see a chart's lines and bars


@dataclass(frozen=True)
class Built:
    patient_id: int
    clinician_id: int
    ref: str
    quota: float
    pdf: bytes


@pytest.fixture(scope="module")
def built(db_dsn: str) -> Built:
    with connect(db_dsn) as conn:
        ref = f"RPT-{uuid.uuid4().hex[:8]}"
        pid = registry.create_patient(
            conn,
            external_ref=ref,
            display_name="Report Patient",
            birth_year=1961,
            enrolled_at=datetime.combine(START, time(8), UTC),
        ).patient_id
        cid = registry.create_clinician(
            conn, username=f"r{uuid.uuid4().hex[:8]}", display_name="Dr Report"
        )
        registry.assign_care_team(conn, clinician_id=cid, patient_id=pid)
        at = datetime.combine(START, time(9), UTC)
        low = ladder.add_item(conn, pid, activity="walk to the shop", fear_rating=50, now=at)
        high = ladder.add_item(conn, pid, activity="lift the grandchild", fear_rating=85, now=at)
        prescribing.prescribe(
            conn,
            pid,
            clinician_id=cid,
            kind=Kind.STRENGTH,
            name="wall push-ups",
            sessions_per_week=3,
            target=Target(repetitions=8, sets=2),
            reason="upper body strength for lifting",
            valid_from=START,
            now=at,
        )
        (rx,) = prescribing.overview(conn, pid, START, START).prescriptions
        for i in range(9):  # three a week for three weeks, each reaching its target
            done = datetime.combine(START + timedelta(days=1 + 2 * i), time(17), UTC)
            intake.submit_exercise(
                conn,
                pid,
                rx.prescription.prescription_id,
                performed_at=done,
                duration_min=10,
                rpe=4,
                pain_before=3,
                pain_after=3,
                repetitions=12,
                sets=2,
                now=done,
            )
        conn.commit()
        evaluations = replay.play(
            conn, pid, SimPatient(Persona.BOOM_BUST, seed=2), start=START, days=DAYS
        )
        for ev in evaluations:
            alerts.raise_alerts(
                conn,
                ev,
                now=datetime.combine(ev.day + timedelta(days=1), time(9), UTC),
                config=CONFIG,
            )
            conn.commit()
        opened = alerts.list_alerts(conn, patient_id=pid, audience="care_team")
        assert opened, "the boom-bust persona raises at least one alert"
        alerts.acknowledge(
            conn,
            opened[-1].alert_id,
            clinician_id=cid,
            note="Phoned: agreed to spread the gardening over two days",
            now=datetime.combine(END, time(10), UTC),
        )
        for week, sheets in (
            (0, ([4] * 7 + [3] * 4, [3] * 13, [2] * 10)),
            (4, ([3] * 11, [2] * 13, [4] * 10)),
        ):
            when = datetime.combine(START + timedelta(weeks=week), time(11), UTC)
            for name, sheet in zip(("TSK-11", "PCS", "PSEQ"), sheets, strict=True):
                submit_questionnaire(conn, pid, name, sheet, answered_at=when, now=when)
        for i in range(3):
            planned = datetime.combine(START + timedelta(days=7 + 3 * i), time(10), UTC)
            s = ladder.plan_session(conn, pid, low.item_id, planned_at=planned)
            ladder.record_session(
                conn,
                pid,
                s.session_id,
                done=True,
                started_at=planned,
                ended_at=planned + timedelta(minutes=30),
                fear_before=50 - 10 * i,
                fear_after=30 - 5 * i,
                expected_harm=60,
                actual_harm=10,
                now=planned + timedelta(hours=1),
            )
        ladder.rerate(
            conn,
            pid,
            {low.item_id: 20, high.item_id: 70},
            clinician_id=cid,
            rated_at=datetime.combine(START + timedelta(weeks=4), time(11), UTC),
        )
        notes.add_note(
            conn,
            pid,
            clinician_id=cid,
            body="Walks to the shop without stopping.\nNext: carry a bag.",
            activity="walk to the shop",
            confidence=7,
            task_independence=7,
            perceived_capability=6,
            now=datetime.combine(START + timedelta(weeks=4), time(12), UTC),
        )
        goal = goalsetting.add_goal(
            conn, pid, title="carry the shopping home", why="to shop without help", clinician_id=cid
        )
        goalsetting.link_rung(conn, pid, goal.goal_id, low.item_id, clinician_id=cid)
        goalsetting.link_exercise(
            conn,
            pid,
            goal.goal_id,
            rx.prescription.prescription_id,
            clinician_id=cid,
            needed_repetitions=12,
        )
        conn.commit()
        plan = planning.current_plan(conn, pid, END)
        assert plan is not None and plan.quota is not None
        pdf = progress_report(
            conn,
            pid,
            START,
            END,
            actor="test:report",
            now=datetime.combine(END + timedelta(1), time(8), UTC),
        )
        conn.commit()
    return Built(pid, cid, ref, plan.quota, pdf)


@pytest.fixture(scope="module")
def document(built: Built) -> Iterator[pdfium.PdfDocument]:
    doc = pdfium.PdfDocument(built.pdf)
    yield doc
    doc.close()


def _text(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        return str(textpage.get_text_range())
    finally:
        textpage.close()


def test_every_page_is_a4_and_names_the_patient_counts_pages_and_disclaims(
    built: Built, document: pdfium.PdfDocument
) -> None:
    n = len(document)
    assert 2 <= n <= 8
    for i in range(n):
        page = document[i]
        assert page.get_size() == pytest.approx(A4_PT, abs=0.5)
        text = _text(page)
        assert built.ref in text and "Report Patient" in text and "born 1961" in text
        assert f"Page {i + 1} of {n}" in text
        assert "not a medical device" in text


def test_the_text_holds_the_numbers_of_the_data(built: Built, document: pdfium.PdfDocument) -> None:
    # Words, whatever lines the layout wrapped them onto.
    text = " ".join(" ".join(_text(document[i]) for i in range(len(document))).split())
    assert "Baseline against now" in text
    # The plan's quota on the last day, as the report formats it.
    quota = (
        f"{built.quota:,.0f}"
        if built.quota >= 100 or built.quota.is_integer()
        else f"{built.quota:,.1f}"
    )
    assert quota in text
    # TSK-11 40 → 33, PSEQ 20 → 40; the change column says -7 and +20.
    assert "TSK-11 total (11-44)" in text
    for number in ("40", "33", "-7", "+20"):
        assert number in text
    assert "50 → 20 (2 ratings)" in text  # the walk: first rating 50, re-rated to 20
    assert "Phoned: agreed to spread the gardening over two days" in text
    assert "Walks to the shop without stopping." in text
    assert "7 complete independence" in text
    assert "wall push-ups (strength) 2 × 8 repetitions →" in text
    assert "Session-RPE load (Foster 2001" in text
    assert "Valued goals" in text and "carry the shopping home" in text
    assert "to shop without help" in text and "Milestone" in text


def test_flags_and_alerts_are_named_in_the_dashboards_words(
    db_dsn: str, built: Built, document: pdfium.PdfDocument
) -> None:
    text = " ".join(" ".join(_text(document[i]) for i in range(len(document))).split())
    with connect(db_dsn) as conn:
        rules = {
            str(r[0])
            for r in conn.execute(
                "SELECT rule_id FROM flag WHERE patient_id = %(p)s"
                " UNION SELECT rule_id FROM alert WHERE patient_id = %(p)s",
                {"p": built.patient_id},
            )
        }
    assert rules, "the boom-bust persona raises flags"
    for rule_id in rules:
        assert rule_title(rule_id) != rule_id, f"{rule_id} has a title"
        assert rule_title(rule_id) in text, rule_id


def _images(page: pdfium.PdfPage) -> list[tuple[float, float, float, float]]:
    return [obj.get_bounds() for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])]


def test_the_four_charts_are_drawn_and_not_blank_in_their_regions(
    document: pdfium.PdfDocument,
) -> None:
    regions = []
    for i in range(len(document)):
        page = document[i]
        boxes = _images(page)
        if not boxes:
            continue
        image = np.asarray(page.render(scale=SCALE).to_pil().convert("RGB"), dtype=np.int16)
        height = page.get_size()[1]
        for left, bottom, right, top in boxes:
            # PDF points (origin bottom left) to pixels of the rendered page (origin top left).
            box = image[
                int((height - top) * SCALE) : int((height - bottom) * SCALE),
                int(left * SCALE) : int(right * SCALE),
            ]
            assert box.shape[0] > 100 and box.shape[1] > 400, "a chart is a sizeable region"
            ink = (box < 200).any(axis=2).mean()
            colours = len(np.unique(box.reshape(-1, 3) // 32, axis=0))
            regions.append((i, ink, colours))
    assert len(regions) == 4, regions  # quota, questionnaires, ladder, exercise
    for page_no, ink, colours in regions:
        assert ink > 0.02, f"the chart on page {page_no + 1} is nearly blank ({ink:.1%} ink)"
        assert colours >= 4, f"the chart on page {page_no + 1} has {colours} colours"


def test_a_blank_page_region_would_fail_the_check(document: pdfium.PdfDocument) -> None:
    """The ink measure tells a chart from empty paper (so the test above can fail)."""
    page = document[len(document) - 1]
    image = np.asarray(page.render(scale=SCALE).to_pil().convert("RGB"), dtype=np.int16)
    margin = image[: int(15 * SCALE), :]  # the top margin above the header line
    assert (margin < 200).any(axis=2).mean() < 0.005


def test_the_report_is_audited_and_refused_for_a_patient_not_seen(
    built: Built,
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    entry = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE patient_id = %s AND action = 'report.pdf'",
        (built.patient_id,),
    ).fetchone()
    assert entry is not None and entry[0] == "test:report"
    assert entry[1]["questionnaires"] == 6 and entry[1]["notes"] == 1
    stranger = registry.create_clinician(
        conn, username=f"s{uuid.uuid4().hex[:8]}", display_name="S"
    )
    conn.commit()
    with (
        clinician_session(dashboard_conn, stranger, key=identity_key) as c,
        pytest.raises(ReportError),
    ):
        progress_report(c, built.patient_id, START, END, clinician_id=stranger)
    with pytest.raises(ReportError, match="run forward"):
        progress_report(conn, built.patient_id, END, START)


def test_a_clinician_on_the_team_gets_it_in_their_session(
    built: Built, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with clinician_session(dashboard_conn, built.clinician_id, key=identity_key) as c:
        pdf = progress_report(c, built.patient_id, START, END, clinician_id=built.clinician_id)
    assert pdf.startswith(b"%PDF-")
    doc = pdfium.PdfDocument(pdf)
    try:
        assert "Walks to the shop" in " ".join(_text(doc[i]) for i in range(len(doc)))
    finally:
        doc.close()


def test_paceline_report_writes_the_pdf_for_the_whole_programme_by_default(
    built: Built, db_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from paceline.cli.main import main

    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    out = tmp_path / "report.pdf"
    assert main(["report", "--patient", str(built.patient_id), "-o", str(out)]) == 0
    doc = pdfium.PdfDocument(out.read_bytes())
    try:
        first = _text(doc[0])
    finally:
        doc.close()
    # Enrolment to today, the patient's whole programme so far.
    assert f"Range {START:%d %b %Y} – " in first and built.ref in first
    assert main(["report", "--patient", "987654321", "-o", str(out)]) == 2
    args = ["report", "--patient", str(built.patient_id), "--from", "2026-04-01"]
    assert main([*args, "--to", "2026-03-01", "-o", str(out)]) == 2
