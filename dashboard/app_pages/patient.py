"""Patient: one patient's load, flags, risk, diary, exposure, alerts, reassessment and notes.

Also the questionnaires against activity, and the exports and progress report downloads.
"""

from datetime import date, timedelta
from typing import Any

import psycopg
import streamlit as st

from paceline.dashboard import (
    charts,
    exercise_view,
    exports,
    patient_view,
    record_view,
    ui,
    uploads_view,
)
from paceline.dashboard.patient_view import Range
from paceline.pacing import goalsetting, overview, prescribing, reassessment
from paceline.pacing import notes as progress_notes
from paceline.pacing.errors import PacingError, UnknownPatientError
from paceline.pacing.records import PatientContext
from paceline.pacing.report import progress_report
from paceline.pacing.rules.flare import RISK_ENTER
from paceline.store import access, uploads
from paceline.store.accounts import Role

who = ui.require(Role.CLINICIAN)
patient_id = ui.query_int("patient") or st.session_state.get("patient_id")
if patient_id is None:
    ui.deny("Choose a patient on the caseload first.")
st.session_state["patient_id"] = patient_id
header = st.container()

choice = (
    st.segmented_control(
        "Range",
        list(Range),
        format_func=lambda r: r.label,
        default=Range.MONTH,
        key="patient_range",
    )
    or Range.MONTH
)
today = ui.now().date()
custom = None
if choice is Range.CUSTOM:
    picked = st.date_input(
        "From – to",
        value=(today - timedelta(days=13), today),
        max_value=today,
        key="patient_custom",
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        custom = (picked[0], picked[1])
    else:
        ui.deny("Pick the first and the last day.")
start, end = patient_view.range_days(choice, today, custom)


def read_minutes(
    conn: psycopg.Connection[Any], ctx: PatientContext, day: date
) -> list[overview.MinuteBucket]:
    """One day of the patient in minute buckets, audited as the minute view."""
    minutes = overview.minute_buckets(
        conn,
        ctx.patient_id,
        day,
        hr_view="clinician_hr_sample",
        steps_view="clinician_step_sample",
        ctx=ctx,
    )
    ui.audit(
        conn, who, page="patient.intraday", patient_id=ctx.patient_id, detail={"day": str(day)}
    )
    return minutes


# One person session per render: every read of the page, the minute view's included,
# and their audit rows in one statement at its end. The minute view's widgets are
# drawn further down; the day they will show is read from their state here.
intraday_day = patient_view.intraday_prefetch(st.session_state, start, end)
minutes: list[overview.MinuteBucket] | None = None
with ui.person(who) as conn, access.deferred_audit(conn):
    t: overview.PatientTimeline | None
    try:
        t = overview.timeline(conn, patient_id, start, end)
    except UnknownPatientError:
        t = None
    if t is None:
        ui.audit(conn, who, page="patient", action="denied", detail={"asked_for": patient_id})
    else:
        ladder = overview.exposure(conn, patient_id, ctx=t.patient)
        exercise = prescribing.overview(conn, patient_id, start, end)
        trends = reassessment.trends(conn, patient_id, start, end)
        due = reassessment.status(conn, patient_id, now=ui.now())
        goals = goalsetting.goal_progress(conn, patient_id, on=end)
        written = progress_notes.list_notes(conn, patient_id)
        recent = uploads.recent(conn, patient_id)
        ui.audit(
            conn,
            who,
            page="patient",
            patient_id=patient_id,
            detail={"from": str(start), "to": str(end)},
        )
        if intraday_day is not None:
            minutes = read_minutes(conn, t.patient, intraday_day)
if t is None:
    ui.deny(f"There is no patient {patient_id} on your caseload.")

header.title(t.display_name)
header.caption(f"{t.patient.timezone} · {start:%d %b %Y} – {end:%d %b %Y}")
st.page_link(
    "app_pages/plan.py",
    label="Edit plan and ladder",
    icon=":material/tune:",
    query_params={"patient": str(patient_id)},
)
st.page_link(
    "app_pages/goals.py",
    label="Exercise and goals",
    icon=":material/flag:",
    query_params={"patient": str(patient_id)},
)

items = patient_view.flag_items(t)
load = patient_view.load_table(t)
unit = patient_view.load_unit(load)
skeleton = charts.patient_spec(start, end, unit, bool(items), RISK_ENTER)
datasets = {
    "load": load,
    "zones": patient_view.zone_table(t),
    "diary": patient_view.diary_table(t),
    "recovery": patient_view.recovery_table(t),
    "risk": patient_view.risk_table(t),
}
if items:
    datasets["flags"] = patient_view.flag_table(items)
st.vega_lite_chart(charts.with_data(skeleton, datasets), width="stretch")

flags_col, risk_col = st.columns([3, 2])
with flags_col:
    st.subheader("Flags")
    if not items:
        st.text("No flags in this range.")
    for item in items:
        with st.expander(
            f"{item.title} — {item.severity}, {item.status} ({item.start:%d %b} – {item.end:%d %b})"
        ):
            st.text("\n".join(item.evidence))
with risk_col:
    st.subheader("Flare risk")
    factors = patient_view.risk_factors(t)
    if t.risk:
        st.metric("Next 48 h", f"{t.risk[-1].score:.0%}", help=f"flag threshold {RISK_ENTER:.0%}")
    for factor in factors:
        st.text(f"• {factor}")
    if t.risk and not factors:
        st.text("No factor is raising the risk.")

st.subheader("Diary notes")
notes = patient_view.notes(t)
if not notes:
    st.text("No notes in this range.")
for when, text in notes[:20]:
    st.caption(when)
    st.text(text)

st.subheader("Exposure ladder")
if not ladder.items:
    st.text("No ladder yet.")
else:
    st.dataframe(patient_view.ladder_table(ladder), hide_index=True)
    sessions = patient_view.session_table(ladder)
    if sessions.num_rows:
        st.dataframe(sessions, hide_index=True)

st.subheader("Goals")
if not goals:
    st.text("No goals yet.")
for g in goals:
    st.progress(g.progress, text=exercise_view.goal_line(g))

st.subheader("Prescribed exercise")
if not exercise.prescriptions:
    st.text("No exercise prescribed yet.")
else:
    st.dataframe(exercise_view.prescription_table(exercise), hide_index=True)
    weekly, ratio = exercise.load.weekly, exercise.load.ratio
    load_col, ratio_col = st.columns(2)
    load_col.metric(
        "Session-RPE load, last 7 days",
        "—" if weekly is None else f"{weekly:,.0f}",
        help="Foster 2001: effort (CR-10) × minutes, summed",
    )
    ratio_col.metric("Acute:chronic (7:28 days)", "—" if ratio is None else f"{ratio:.2f}")
    for v in exercise.prescriptions:
        with st.expander(f"{v.prescription.name}: target history"):
            st.dataframe(exercise_view.target_history(v), hide_index=True)
    logged = exercise_view.session_rows(exercise)
    if logged.num_rows:
        st.dataframe(logged, hide_index=True)

st.subheader("Alerts")
alerts = patient_view.alert_table(t)
if not alerts.num_rows:
    st.text("No alerts in this range.")
else:
    st.dataframe(alerts, hide_index=True)

st.subheader("Questionnaires against activity")
st.caption(record_view.due_text(due))
if not trends.questionnaires:
    st.text("No questionnaires in this range.")
st.vega_lite_chart(record_view.trend_spec(trends), width="stretch")

st.subheader("Progress notes")
with st.form("progress_note", clear_on_submit=True):
    body = st.text_area("Note", key="note_body", max_chars=progress_notes.BODY_MAX_CHARS)
    task = st.text_input(
        "Task the ratings are about (optional)",
        key="note_activity",
        max_chars=progress_notes.ACTIVITY_MAX_CHARS,
    )
    ratings: dict[str, int | None] = {
        scale.name: column.selectbox(
            scale.title,
            record_view.scale_options(scale),
            format_func=record_view.scale_format(scale),
            key=f"note_{scale.name}",
            help=f"{scale.low}-{scale.high}; {scale.source}",
        )
        for scale, column in zip(
            progress_notes.SCALES, st.columns(len(progress_notes.SCALES)), strict=True
        )
    }
    if st.form_submit_button("Save note"):
        try:
            with ui.person(who) as conn:
                progress_notes.add_note(
                    conn,
                    patient_id,
                    clinician_id=who.clinician_id or 0,
                    body=body,
                    activity=task.strip() or None,
                    confidence=ratings["confidence"],
                    task_independence=ratings["task_independence"],
                    perceived_capability=ratings["perceived_capability"],
                )
                written = progress_notes.list_notes(conn, patient_id)  # with the new note
            st.success("Note saved.")
        except PacingError as exc:
            st.error(str(exc))
if written:
    st.dataframe(record_view.note_rows(written[:50], t.patient.zone), hide_index=True)
else:
    st.text("No progress notes yet.")

with st.expander("One day, minute by minute"):
    day = st.date_input(
        "Day", value=end, min_value=start, max_value=end, key=patient_view.INTRADAY_DAY
    )
    if st.toggle("Show", key=patient_view.INTRADAY_SHOW):
        if minutes is None or day != intraday_day:
            # Not known before the widgets were drawn (the day fell outside a new range).
            with ui.person(who) as conn, access.deferred_audit(conn):
                minutes = read_minutes(conn, t.patient, day)
        st.vega_lite_chart(
            charts.with_data(
                charts.intraday_spec(), {"minutes": patient_view.minute_table(minutes)}
            ),
            width="stretch",
        )

with st.expander("Export for the clinic's records"):
    st.caption(
        "A FHIR R4 bundle (observations and questionnaire responses) and the daily metrics,"
        " diary and questionnaires as CSV, for the range above. Each export is audited."
    )
    if st.button("Prepare exports", key="patient_export"):
        with ui.person(who) as conn:
            files = exports.downloads(
                conn, patient_id, start, end, clinician_id=who.clinician_id or 0
            )
        for f in files:
            st.download_button(
                f"Download {f.filename}", f.data, file_name=f.filename, mime=f.mime, key=f.filename
            )

with st.expander("Progress report (PDF)"):
    st.caption(
        "Baseline against now, the quota, questionnaires, the fear ladder, flags and what was"
        " done, and progress notes, for the range above; A4, for the record or the primary"
        " provider. Each report is audited."
    )
    if st.button("Prepare report", key="patient_report"):
        with ui.person(who) as conn:
            pdf = progress_report(conn, patient_id, start, end, clinician_id=who.clinician_id or 0)
        st.download_button(
            "Download report",
            pdf,
            file_name=record_view.report_filename(patient_id, start, end),
            mime="application/pdf",
            key="patient_report_pdf",
        )

with st.expander("Import a wearable export"):
    st.caption(
        "A Garmin FIT file, an Apple Health export.zip or export.xml, a Fitbit or Google"
        " Takeout CSV/JSON file, or a Health Connect export zip, up to 200 MB. A worker"
        " imports it and rolls up the days it holds; importing the same file again adds"
        " nothing. Each upload is audited."
    )
    export_file = st.file_uploader("Export file", key="patient_import_file")
    if (
        st.button("Import", key="patient_import", disabled=export_file is None)
        and export_file is not None
    ):
        try:
            with ui.person(who) as conn:
                upload_id = uploads.request_import(
                    conn, patient_id, export_file.name, export_file.getvalue()
                )
                recent = uploads.recent(conn, patient_id)  # with the new upload
        except uploads.UploadError as exc:
            st.error(str(exc))
        else:
            st.success(f"Upload {upload_id} is queued for import.")
    if recent:
        st.dataframe(uploads_view.upload_table(recent, t.patient.zone), hide_index=True)
    else:
        st.text("No uploads yet.")
