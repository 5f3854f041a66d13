"""Plan: the pacing plan and the fear ladder of one patient, changed with a reason."""

from dataclasses import replace
from datetime import date

import streamlit as st

from paceline.dashboard import forms, plan_view, ui
from paceline.dashboard.times import shown_at
from paceline.pacing import ladder, overview, planning
from paceline.pacing.days import Measure
from paceline.pacing.errors import PacingError, UnknownPatientError
from paceline.pacing.exposure import ItemStatus
from paceline.pacing.progression import PlanVersion
from paceline.pacing.records import patient_context
from paceline.store.accounts import Role

LADDER_REASON = "a ladder change needs a reason"

who = ui.require(Role.CLINICIAN)
patient_id = ui.chosen_patient()

versions: list[PlanVersion] | None
with ui.person(who) as conn:
    try:
        versions = planning.plan_history(conn, patient_id)
        x = overview.exposure(conn, patient_id)
        pause = planning.progression_pause(conn, patient_id)
        zone = patient_context(conn, patient_id).zone
        ahead = planning.upcoming(conn, patient_id)
    except UnknownPatientError:
        ui.audit(conn, who, page="plan", action="denied", detail={"asked_for": patient_id})
        versions = None
    else:
        ui.audit(conn, who, page="plan", patient_id=patient_id)
if versions is None:
    ui.deny(f"There is no patient {patient_id} on your caseload.")

current = versions[-1] if versions else None
st.title("Plan")
st.page_link(
    "app_pages/patient.py",
    label="Back to the patient",
    icon=":material/arrow_back:",
    query_params={"patient": str(patient_id)},
)
if current is None:
    st.info("No plan yet: the first change below creates version 1.")
else:
    st.text(plan_view.summary(current))

if pause is not None:
    st.error(
        f"Progression paused since {shown_at(pause.started_at, zone)}: {pause.reason}."
        " The quota does not rise until you clear the pause."
    )
    with st.form("clear_pause"):
        note = st.text_area(
            "What was found and done (required)", max_chars=2000, key="clear_pause_note"
        )
        if st.form_submit_button("Clear the pause"):
            try:
                with ui.person(who) as conn:
                    planning.clear_pause(
                        conn, patient_id, clinician_id=who.clinician_id or 0, note=note
                    )
            except PacingError as exc:
                st.error(str(exc))
            else:
                st.success("Pause cleared: progression resumes from today.")
                st.rerun()

with st.form("plan_change"):
    st.subheader("Change the plan")
    c1, c2, c3 = st.columns(3)
    measure = c1.selectbox(
        "Measure",
        list(Measure),
        index=list(Measure).index(current.measure) if current else 0,
        format_func=lambda m: m.unit,
    )
    baseline = c2.number_input(
        "Baseline",
        min_value=0.0,
        value=plan_view.or_zero(current.baseline if current else None),
        key="plan_baseline",
        step=1.0,
    )
    quota = c3.number_input(
        "Daily quota",
        min_value=0.0,
        value=plan_view.or_zero(current.quota if current else None),
        key="plan_quota",
        step=1.0,
    )
    c4, c5, c6 = st.columns(3)
    step = c4.number_input(
        "Step (fraction of baseline)",
        min_value=0.05,
        max_value=0.2,
        value=current.step_fraction if current else 0.1,
        step=0.01,
    )
    period = c5.number_input(
        "Period (days per step)",
        min_value=1,
        max_value=60,
        value=current.period_days if current else 7,
    )
    ceiling = c6.number_input(
        "HR ceiling (bpm, 0 = none)",
        min_value=0,
        max_value=220,
        value=(current.hr_ceiling_bpm or 0) if current else 0,
    )
    reason = st.text_area("Reason (required)", max_chars=2000, key="plan_reason")
    if st.form_submit_button("Save new version", type="primary"):
        change = plan_view.PlanChange(
            measure or Measure.ACTIVE_MINUTES,
            baseline,
            quota,
            step,
            int(period),
            int(ceiling),
            reason,
        )
        new = forms.save(
            who,
            lambda conn: planning.set_plan(
                conn,
                patient_id,
                clinician_id=who.clinician_id or 0,
                **plan_view.set_plan_arguments(change, current),
            ),
            page="plan",
            action="plan.change",
            patient_id=patient_id,
            detail=lambda new: {"version": new.version, "reason": reason},
            refused=ValueError,
        )
        if new is not None:
            st.success(f"Saved as version {new.version}.")
            st.rerun()

st.subheader("Versions")
st.dataframe(plan_view.versions_table(versions), hide_index=True)

st.subheader("Rest days, lighter weeks, maintenance")
if current is not None:
    s = current.settings
    with st.form("plan_pattern"):
        rest = st.multiselect(
            "Rest days",
            list(range(7)),
            default=list(s.rest_weekdays),
            format_func=lambda w: plan_view.WEEKDAY_NAMES[w],
            key="plan_rest_days",
        )
        p1, p2, p3 = st.columns(3)
        rest_fraction = p1.number_input(
            "Rest-day quota (fraction)", 0.0, 1.0, s.rest_fraction, 0.05, key="plan_rest_fraction"
        )
        every = p2.number_input(
            "Lighter week every n weeks (0 = none)",
            0,
            12,
            s.lighter_every_weeks or 0,
            key="plan_lighter_every",
        )
        lighter = p3.number_input(
            "Lighter-week quota (fraction)",
            0.3,
            1.0,
            s.lighter_fraction,
            0.05,
            key="plan_lighter_fraction",
        )
        maintenance = st.date_input(
            "Maintenance from (programme end; empty = programme goes on)",
            value=s.maintenance_from,
            key="plan_maintenance_from",
        )
        why = st.text_area("Reason (required)", max_chars=2000, key="plan_pattern_reason")
        if st.form_submit_button("Save pattern"):
            try:
                settings = replace(
                    s,
                    rest_weekdays=tuple(int(w) for w in rest),
                    rest_fraction=float(rest_fraction),
                    lighter_every_weeks=int(every) or None,
                    lighter_fraction=float(lighter),
                    lighter_anchor=(s.lighter_anchor or ui.now().date()) if every else None,
                    maintenance_from=maintenance if isinstance(maintenance, date) else None,
                )
                with ui.person(who) as conn:
                    new = planning.set_plan(
                        conn,
                        patient_id,
                        clinician_id=who.clinician_id or 0,
                        reason=why,
                        settings=settings,
                    )
            except (PacingError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved as version {new.version}.")
                st.rerun()
    st.caption("The next four weeks as the plan stands (rises still to be earned are not shown).")
    st.dataframe(plan_view.schedule_rows(ahead), hide_index=True)

st.subheader("Exposure ladder")
if x.items:
    st.dataframe(plan_view.ladder_rows(x), hide_index=True)
with st.form("ladder_add", clear_on_submit=True):
    st.markdown("**Add a rung**")
    activity = st.text_input("Activity", max_chars=200, key="ladder_activity")
    fear = st.slider("Fear rating (0-100)", 0, 100, 50, key="ladder_fear")
    why = st.text_input("Reason", key="ladder_add_reason")
    if st.form_submit_button("Add"):
        if not why.strip():
            st.error(LADDER_REASON)
        else:
            added = forms.save(
                who,
                lambda conn: ladder.add_item(
                    conn,
                    patient_id,
                    activity=activity,
                    fear_rating=fear,
                    clinician_id=who.clinician_id,
                ),
                page="plan",
                action="ladder.add",
                patient_id=patient_id,
                detail=lambda item: {"item_id": item.item_id, "reason": why},
                refused=ValueError,
            )
            if added is not None:
                st.rerun()
if x.items:
    with st.form("ladder_edit"):
        st.markdown("**Change a rung**")
        names = {f"{i.position + 1}. {i.activity}": i for i in x.items}
        pick = names[st.selectbox("Rung", list(names), key="ladder_pick")]
        new_fear = st.slider("Fear rating (0-100)", 0, 100, pick.fear_rating, key="ladder_new_fear")
        new_status = st.selectbox(
            "Status",
            list(ItemStatus),
            index=list(ItemStatus).index(pick.status),
            format_func=lambda s: s.value,
        )
        why = st.text_input("Reason", key="ladder_edit_reason")
        if st.form_submit_button("Save rung"):
            if not why.strip():
                st.error(LADDER_REASON)
            else:
                edited = forms.save(
                    who,
                    lambda conn: ladder.edit_item(
                        conn,
                        patient_id,
                        pick.item_id,
                        fear_rating=new_fear,
                        status=new_status,
                        clinician_id=who.clinician_id,
                    ),
                    page="plan",
                    action="ladder.edit",
                    patient_id=patient_id,
                    detail=lambda _: {"item_id": pick.item_id, "reason": why},
                    refused=ValueError,
                )
                if edited is not None:
                    st.rerun()
