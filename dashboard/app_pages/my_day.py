"""My day: today's plan as progress, the diary, questionnaires, an exposure session, my trends."""

import uuid
from datetime import timedelta

import streamlit as st

from paceline.dashboard import charts, my_day, patient_view, ui
from paceline.pacing import intake, ladder, overview, planning
from paceline.pacing.errors import PacingError
from paceline.pacing.questionnaires import InstrumentName, instrument
from paceline.store.accounts import Role

who = ui.require(Role.PATIENT)
patient_id = who.patient_id or 0
moment = ui.now()

with ui.person(who) as conn:
    status = planning.today_status(conn, patient_id, now=moment)
    x = overview.exposure(conn, patient_id)
    t = overview.timeline(
        conn, patient_id, moment.date() - timedelta(days=27), moment.date(), flags=False
    )
    ui.audit(conn, who, page="my_day", patient_id=patient_id)

name_col, out_col = st.columns([3, 1], vertical_alignment="bottom")
name_col.title(f"Hello, {t.display_name.split()[0]}")
with out_col:
    ui.sign_out_button()
today = my_day.today_card(status)
st.subheader("Today")
st.progress(today.progress, text=today.headline)
st.text(today.message)
if today.reassurance:
    st.success(today.reassurance)

st.subheader("Diary")
if "diary_key" not in st.session_state:
    st.session_state["diary_key"] = uuid.uuid4().hex
with st.form("diary", clear_on_submit=True):
    pain = st.slider("Pain right now (0 = none, 10 = worst imaginable)", 0, 10, 3, key="diary_pain")
    fatigue = st.slider("Fatigue (0-10)", 0, 10, 3, key="diary_fatigue")
    fear = st.slider("Worry about moving (0-10)", 0, 10, 3, key="diary_fear")
    sleep = st.slider(
        "Last night's sleep (0 = very poor, 10 = very good)", 0, 10, 6, key="diary_sleep"
    )
    note = st.text_area(
        "Anything you want your clinician to know", max_chars=2000, key="diary_note"
    )
    if st.form_submit_button("Save diary", type="primary"):
        try:
            with ui.person(who) as conn:
                intake.submit_diary(
                    conn,
                    patient_id,
                    reported_at=ui.now(),
                    pain_now=pain,
                    fatigue=fatigue,
                    fear_of_movement=fear,
                    sleep_quality=sleep,
                    note=note.strip() or None,
                    idempotency_key=st.session_state["diary_key"],
                )
                ui.audit(conn, who, page="my_day", action="diary.submit", patient_id=patient_id)
        except PacingError as exc:
            st.error(str(exc))
        else:
            st.session_state["diary_key"] = uuid.uuid4().hex
            st.success("Saved. Thank you.")

st.subheader("Questionnaires")
tabs = st.tabs([n.value for n in (InstrumentName.TSK_11, InstrumentName.PCS, InstrumentName.PSEQ)])
for tab, name in zip(
    tabs, (InstrumentName.TSK_11, InstrumentName.PCS, InstrumentName.PSEQ), strict=True
):
    inst = instrument(name)
    with tab, st.form(f"q_{name.value}", clear_on_submit=True):
        st.caption(my_day.instructions(inst))
        answers = [
            st.radio(
                f"Item {i}",
                list(range(inst.low, inst.high + 1)),
                horizontal=True,
                index=None,
                key=f"q_{name.value}_{i}",
            )
            for i in range(1, inst.n_items + 1)
        ]
        if st.form_submit_button(f"Submit {name.value}"):
            if any(a is None for a in answers):
                st.error("Please answer every item.")
            else:
                try:
                    with ui.person(who) as conn:
                        result = intake.submit_questionnaire(
                            conn,
                            patient_id,
                            name,
                            [int(a) for a in answers if a is not None],
                            answered_at=ui.now(),
                        )
                        ui.audit(
                            conn,
                            who,
                            page="my_day",
                            action="questionnaire.submit",
                            patient_id=patient_id,
                            detail={"instrument": name.value},
                        )
                except PacingError as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Saved: total {result.score.total}.")

st.subheader("Practice an exposure step")
active = [i for i in x.items if i.status.value == "active"]
if not active:
    st.text("Your clinician has not set up exposure steps yet.")
else:
    with st.form("exposure", clear_on_submit=True):
        names = {i.activity: i for i in active}
        item = names[st.selectbox("Which step did you practise?", list(names), key="exp_item")]
        before = st.slider("Fear before (0-100)", 0, 100, item.fear_rating, key="exp_before")
        after = st.slider("Fear after (0-100)", 0, 100, item.fear_rating, key="exp_after")
        expected = st.slider(
            "How much harm did you expect? (0-100)", 0, 100, 50, key="exp_expected"
        )
        actual = st.slider("How much harm happened? (0-100)", 0, 100, 10, key="exp_actual")
        if st.form_submit_button("Log session"):
            try:
                with ui.person(who) as conn:
                    done_at = ui.now()
                    s = ladder.plan_session(conn, patient_id, item.item_id, planned_at=done_at)
                    ladder.record_session(
                        conn,
                        patient_id,
                        s.session_id,
                        done=True,
                        fear_before=before,
                        fear_after=after,
                        expected_harm=expected,
                        actual_harm=actual,
                        now=done_at,
                    )
                    ui.audit(
                        conn,
                        who,
                        page="my_day",
                        action="exposure.log",
                        patient_id=patient_id,
                        detail={"session_id": s.session_id},
                    )
            except PacingError as exc:
                st.error(str(exc))
            else:
                st.success(my_day.exposure_feedback(before, after, expected, actual))

st.subheader("My last four weeks")
start, end = t.start, t.end
load = patient_view.load_table(t)
unit = str(load["measure"].iloc[0]) if len(load) else ""
trends = charts.with_data(
    charts.trends_spec(start, end, unit), {"load": load, "diary": patient_view.diary_table(t)}
)
st.vega_lite_chart(trends, width="stretch")
