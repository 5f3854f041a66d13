"""Exercise and goals: prescribe sessions and set targets, enter goals and link what leads to them."""

from collections.abc import Callable

import streamlit as st

from paceline.dashboard import exercise_view, ui
from paceline.pacing import goalsetting, overview, prescribing
from paceline.pacing.errors import PacingError, UnknownPatientError
from paceline.pacing.exercise import Kind, Target
from paceline.pacing.goals import GoalStatus
from paceline.store.accounts import Role

who = ui.require(Role.CLINICIAN)
patient_id = ui.chosen_patient()
today = ui.now().date()
clinician_id = who.clinician_id or 0

found = True
with ui.person(who) as conn:
    try:
        ex = prescribing.overview(conn, patient_id, today, today)
        goals = goalsetting.goal_progress(conn, patient_id, on=today)
        x = overview.exposure(conn, patient_id)
    except UnknownPatientError:
        ui.audit(conn, who, page="goals", action="denied", detail={"asked_for": patient_id})
        found = False
    else:
        ui.audit(conn, who, page="goals", patient_id=patient_id)
if not found:
    ui.deny(f"There is no patient {patient_id} on your caseload.")

st.title("Exercise and goals")
st.page_link(
    "app_pages/patient.py",
    label="Back to the patient",
    icon=":material/arrow_back:",
    query_params={"patient": str(patient_id)},
)


def target_inputs(prefix: str) -> Callable[[], Target]:
    """The target fields of a form (0 leaves a field unset); the target is built on submit."""
    c1, c2, c3, c4 = st.columns(4)
    minutes = c1.number_input("Minutes", 0.0, 600.0, 0.0, step=1.0, key=f"{prefix}_min")
    reps = c2.number_input("Repetitions", 0, 1000, 0, key=f"{prefix}_reps")
    sets = c3.number_input("Sets", 0, 50, 0, key=f"{prefix}_sets")
    zone = c4.selectbox(
        "HR zone (cardio)", ["none", "1", "2", "3", "1-2", "2-3", "3-4"], key=f"{prefix}_zone"
    )
    low, _, high = zone.partition("-")
    return lambda: Target(
        duration_min=minutes or None,
        repetitions=reps or None,
        sets=sets or None,
        hr_zone=None if zone == "none" else (int(low), int(high or low)),
    )


st.subheader("Prescribed exercise")
if ex.prescriptions:
    st.dataframe(exercise_view.prescription_table(ex), hide_index=True)
with st.form("rx_add", clear_on_submit=True):
    st.markdown("**Prescribe a session**")
    kind = st.selectbox("Kind", list(Kind), format_func=lambda k: k.value, key="rx_kind")
    name = st.text_input("Name", max_chars=200, key="rx_name")
    per_week = st.number_input("Sessions per week", 1, 14, 3, key="rx_per_week")
    target = target_inputs("rx")
    reason = st.text_input("Reason", key="rx_reason")
    if st.form_submit_button("Prescribe"):
        try:
            if kind is None or not reason.strip():
                raise ValueError("a prescription needs a kind and a reason")
            first = target()
            with ui.person(who) as conn:
                prescribing.prescribe(
                    conn,
                    patient_id,
                    clinician_id=clinician_id,
                    kind=kind,
                    name=name,
                    sessions_per_week=int(per_week),
                    target=first,
                    reason=reason,
                )
        except (PacingError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.rerun()
active = [v for v in ex.prescriptions if v.prescription.active]
if active:
    with st.form("rx_target"):
        st.markdown("**Change a target or end a prescription**")
        names = {v.prescription.name: v for v in active}
        pick = names[st.selectbox("Session", list(names), key="rx_pick")]
        new_target = target_inputs("rx_new")
        why = st.text_input("Reason", key="rx_target_reason")
        end = st.checkbox("End this prescription", key="rx_end")
        if st.form_submit_button("Save"):
            try:
                with ui.person(who) as conn:
                    pid = pick.prescription.prescription_id
                    if end:
                        prescribing.end_prescription(
                            conn, patient_id, pid, clinician_id=clinician_id
                        )
                    else:
                        if not why.strip():
                            raise ValueError("a target change needs a reason")
                        prescribing.set_target(
                            conn,
                            patient_id,
                            pid,
                            clinician_id=clinician_id,
                            target=new_target(),
                            reason=why,
                        )
            except (PacingError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.rerun()

st.subheader("Goals")
for g in goals:
    st.progress(g.progress, text=exercise_view.goal_line(g))
with st.form("goal_add", clear_on_submit=True):
    st.markdown("**Add a goal**")
    title = st.text_input("Goal", max_chars=200, key="goal_title")
    why_goal = st.text_input("Why it matters", max_chars=2000, key="goal_why")
    if st.form_submit_button("Add goal"):
        try:
            with ui.person(who) as conn:
                goalsetting.add_goal(
                    conn, patient_id, title=title, why=why_goal or None, clinician_id=clinician_id
                )
        except PacingError as exc:
            st.error(str(exc))
        else:
            st.rerun()
if goals:
    with st.form("goal_link"):
        st.markdown("**Link a rung or a session to a goal, or close a goal**")
        by_title = {f"{g.goal.goal_id}. {g.goal.title}": g for g in goals}
        goal = by_title[st.selectbox("Goal", list(by_title), key="goal_pick")]
        rungs = {"(none)": None, **{i.activity: i.item_id for i in x.items}}
        rung = rungs[st.selectbox("Rung", list(rungs), key="goal_rung")]
        sessions = {"(none)": None, **{v.prescription.name: v for v in active}}
        session = sessions[st.selectbox("Session", list(sessions), key="goal_rx")]
        need_min = st.number_input("Minutes the goal needs", 0.0, 600.0, 0.0, key="goal_min")
        need_reps = st.number_input("Repetitions the goal needs", 0, 1000, 0, key="goal_reps")
        status = st.selectbox(
            "Status",
            list(GoalStatus),
            index=list(GoalStatus).index(goal.goal.status),
            format_func=lambda s: s.value,
            key="goal_status",
        )
        if st.form_submit_button("Save goal"):
            try:
                with ui.person(who) as conn:
                    gid = goal.goal.goal_id
                    if rung is not None:
                        goalsetting.link_rung(
                            conn, patient_id, gid, rung, clinician_id=clinician_id
                        )
                    if session is not None:
                        goalsetting.link_exercise(
                            conn,
                            patient_id,
                            gid,
                            session.prescription.prescription_id,
                            clinician_id=clinician_id,
                            needed_duration_min=need_min or None,
                            needed_repetitions=need_reps or None,
                        )
                    if status is not goal.goal.status:
                        goalsetting.edit_goal(
                            conn, patient_id, gid, status=status, clinician_id=clinician_id
                        )
            except PacingError as exc:
                st.error(str(exc))
            else:
                st.rerun()
