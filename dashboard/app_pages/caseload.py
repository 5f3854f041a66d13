"""Caseload: every patient of the care team in triage sections, worst first."""

import streamlit as st

from paceline.dashboard import caseload, ui
from paceline.pacing import overview
from paceline.store.accounts import Role

who = ui.require(Role.CLINICIAN)
st.title("Caseload")

left, right = st.columns([2, 3])
search = left.text_input("Search by name or reference", key="caseload_search")
chosen = right.multiselect(
    "Sections",
    [s.title for s in caseload.Section],
    key="caseload_sections",
    placeholder="All sections",
)
only = [s for s in caseload.Section if s.title in chosen]

with ui.person(who) as conn:
    entries = overview.caseload(conn, now=ui.now())
    ui.audit(conn, who, page="caseload", detail={"patients": [e.patient_id for e in entries]})

COLUMNS = {
    "plan": st.column_config.MultiselectColumn(
        "plan",
        options=[b.words for b in caseload.Band],
        color=[b.colour for b in caseload.Band],
        help=f"Yesterday's load against quota: within ±{caseload.BAND:.0%}, over or under",
    ),
    "last 14 days": st.column_config.LineChartColumn("last 14 days", width="small"),
    "flare risk": st.column_config.NumberColumn("flare risk", format="%d %%"),
    "flags": st.column_config.TextColumn("flags", width="large"),
}

views = caseload.sections(entries, now=ui.now(), search=search, only=only)
if not entries:
    st.info("No patients on your care team yet.")
elif not views:
    st.info("No patient matches the search.")

for view in views:
    st.subheader(f"{view.section.title} ({len(view.rows)})")
    st.caption(
        f"{view.section.blurb}. Plan: green within ±20 % of yesterday's quota, red over,"
        " orange under."
    )
    st.dataframe(
        caseload.table(view.rows),
        hide_index=True,
        column_config=COLUMNS,
        key=f"caseload_{view.section.key}",
    )

rows = [r for v in views for r in v.rows]
if rows:
    st.divider()
    labels = {f"{r.name} ({r.reference})": r.patient_id for r in rows}
    pick = st.selectbox("Patient", list(labels), key="caseload_pick")
    open_col, review_col, _ = st.columns([1, 1, 4])
    if open_col.button("Open patient", type="primary", key="caseload_open"):
        st.session_state["patient_id"] = labels[pick]
        st.switch_page("app_pages/patient.py", query_params={"patient": str(labels[pick])})
    if review_col.button("Mark reviewed", key="caseload_review"):
        with ui.person(who) as conn:
            overview.mark_reviewed(conn, labels[pick], clinician_id=who.clinician_id or 0)
        st.toast(f"{pick} marked reviewed")
        st.rerun()
