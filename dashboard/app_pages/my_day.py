"""My day: today's plan as progress, the diary, questionnaires, an exposure session, my trends."""

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import streamlit as st

from paceline.dashboard import charts, forms, my_day, patient_view, ui
from paceline.pacing import goalsetting, intake, ladder, overview, planning, prescribing, wording
from paceline.pacing.errors import PacingError
from paceline.pacing.exposure import SessionRecord
from paceline.pacing.questionnaires import InstrumentName, instrument
from paceline.pacing.redflags import QUESTIONS, Source
from paceline.store.accounts import Role

who = ui.require(Role.PATIENT)
patient_id = who.patient_id or 0
moment = ui.now()

with ui.person(who) as conn:
    status = planning.today_status(conn, patient_id, now=moment)
    paused = planning.progression_pause(conn, patient_id) is not None
    weekly_due = intake.weekly_check_due(conn, patient_id, now=moment)
    goals = goalsetting.goal_progress(conn, patient_id, on=moment.date())
    achieved = goalsetting.patient_milestones(conn, patient_id, on=moment.date())
    exercise = prescribing.overview(
        conn, patient_id, moment.date() - timedelta(days=6), moment.date()
    )
    t = overview.timeline(
        conn, patient_id, moment.date() - timedelta(days=27), moment.date(), flags=False
    )
    x = overview.exposure(conn, patient_id, ctx=t.patient)
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
# A positive safety answer is said plainly, at the top, until a clinician clears the pause.
if "red_flag_message" in st.session_state:
    st.error(st.session_state["red_flag_message"])
elif paused:
    st.warning(wording.RED_FLAG_PAUSED)


def _told(outcome: intake.ScreenOutcome | None) -> None:
    """Remember what a positive safety answer tells the patient, to show it at the top."""
    if outcome is not None and outcome.message is not None:
        st.session_state["red_flag_message"] = outcome.message
        st.error(outcome.message)


if weekly_due:
    st.subheader("Weekly safety check")
    st.caption("A few questions we ask every week. Answer each one; if unsure, answer yes.")
    with st.form("weekly_check", clear_on_submit=True):
        weekly = {
            q.code: st.radio(q.text, ["No", "Yes"], horizontal=True, index=None, key=f"wk_{q.code}")
            for q in QUESTIONS
        }
        if st.form_submit_button("Save safety check"):
            if any(v is None for v in weekly.values()):
                st.error("Please answer every question.")
            else:
                checked = forms.save(
                    who,
                    lambda conn: intake.submit_red_flag_screen(
                        conn,
                        patient_id,
                        {c: v == "Yes" for c, v in weekly.items()},
                        answered_at=ui.now(),
                        source=Source.WEEKLY,
                    ),
                    page="my_day",
                    action="safety.check",
                    patient_id=patient_id,
                )
                if checked is not None:
                    _told(checked)
                    if checked.message is None:
                        st.success("Saved. Thank you.")

if achieved:
    st.subheader("Milestones")
    for m in achieved[:5]:
        st.info(f"{m.day:%d %b}: {m.text}", icon=":material/celebration:")

st.subheader("My goals")
for g in goals:
    st.progress(g.progress, text=wording.goal_progress(g.goal.title, g.progress))
with st.form("my_goal", clear_on_submit=True):
    title = st.text_input(
        "Something you want to get back to (gardening, a shopping trip, …)",
        max_chars=200,
        key="goal_title",
    )
    if st.form_submit_button("Add goal"):
        try:
            with ui.person(who) as conn:
                goalsetting.add_goal(conn, patient_id, title=title)
        except PacingError as exc:
            st.error(str(exc))
        else:
            st.success("Goal saved: your clinician will link your steps to it.")

st.subheader("Diary")
if "diary_key" not in st.session_state:
    st.session_state["diary_key"] = uuid.uuid4().hex
with st.form("diary", clear_on_submit=True):
    diary = forms.ratings(my_day.DIARY)
    note = st.text_area(
        "Anything you want your clinician to know", max_chars=2000, key="diary_note"
    )
    st.markdown("**Safety check.** Tick any of these that are new since your last diary:")
    ticks = {q.code: st.checkbox(q.text, key=f"diary_rf_{q.code}") for q in QUESTIONS}
    if st.form_submit_button("Save diary", type="primary"):
        saved = forms.save(
            who,
            lambda conn: intake.submit_diary(
                conn,
                patient_id,
                reported_at=ui.now(),
                pain_now=diary["pain_now"],
                fatigue=diary["fatigue"],
                fear_of_movement=diary["fear_of_movement"],
                sleep_quality=diary["sleep_quality"],
                note=note.strip() or None,
                idempotency_key=st.session_state["diary_key"],
                red_flags=ticks,
            ),
            page="my_day",
            action="diary.submit",
            patient_id=patient_id,
        )
        if saved is not None:
            st.session_state["diary_key"] = uuid.uuid4().hex
            _told(saved.red_flag)
            st.success("Saved. Thank you.")


def _questionnaire(name: InstrumentName) -> None:
    """One instrument's answer sheet, scored and saved once every item is answered."""
    inst = instrument(name)
    with st.form(f"q_{name.value}", clear_on_submit=True):
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
                return
            result = forms.save(
                who,
                lambda conn: intake.submit_questionnaire(
                    conn,
                    patient_id,
                    name,
                    [int(a) for a in answers if a is not None],
                    answered_at=ui.now(),
                ),
                page="my_day",
                action="questionnaire.submit",
                patient_id=patient_id,
                detail=lambda _: {"instrument": name.value},
            )
            if result is not None:
                st.success(f"Saved: total {result.score.total}.")


st.subheader("Questionnaires")
instruments = (InstrumentName.TSK_11, InstrumentName.PCS, InstrumentName.PSEQ)
for tab, name in zip(st.tabs([n.value for n in instruments]), instruments, strict=True):
    with tab:
        _questionnaire(name)

st.subheader("Practice an exposure step")
active = [i for i in x.items if i.status.value == "active"]
if not active:
    st.text("Your clinician has not set up exposure steps yet.")
else:
    with st.form("exposure", clear_on_submit=True):
        names = {i.activity: i for i in active}
        item = names[st.selectbox("Which step did you practise?", list(names), key="exp_item")]
        fear = forms.ratings(my_day.exposure_ratings(item.fear_rating))
        stopped = st.checkbox("I stopped the session before the end", key="exp_stopped")
        words = st.text_area("What happened (optional)", max_chars=2000, key="exp_debrief")
        if st.form_submit_button("Log session"):

            def practised(conn: psycopg.Connection[Any]) -> SessionRecord:
                """Plan the session now and record it done, with its ratings."""
                done_at = ui.now()
                s = ladder.plan_session(conn, patient_id, item.item_id, planned_at=done_at)
                return ladder.record_session(
                    conn,
                    patient_id,
                    s.session_id,
                    done=True,
                    fear_before=fear["fear_before"],
                    peak_distress=fear["peak_distress"],
                    fear_after=fear["fear_after"],
                    expected_harm=fear["expected_harm"],
                    actual_harm=fear["actual_harm"],
                    stopped=stopped,
                    debrief=words.strip() or None,
                    now=done_at,
                )

            logged = forms.save(
                who,
                practised,
                page="my_day",
                action="exposure.log",
                patient_id=patient_id,
                detail=lambda s: {"session_id": s.session_id},
            )
            if logged is not None and logged.status.value == "stopped":
                st.info(my_day.stopped_feedback(words.strip() or None))
            elif logged is not None:
                st.success(
                    my_day.exposure_feedback(
                        fear["fear_before"],
                        fear["fear_after"],
                        fear["expected_harm"],
                        fear["actual_harm"],
                    )
                )

st.subheader("My exercise sessions")
active_rx = [v for v in exercise.prescriptions if v.prescription.active and v.current]
if not active_rx:
    st.text("Your clinician has not prescribed exercise sessions yet.")
else:
    for v in active_rx:
        assert v.current is not None
        st.text(
            f"{v.prescription.name}: {v.current.target.text}, {v.prescription.sessions_per_week}"
            f" times a week ({v.week.completed} done in the last 7 days)"
        )
    if "exercise_key" not in st.session_state:
        st.session_state["exercise_key"] = uuid.uuid4().hex
    with st.form("exercise", clear_on_submit=True):
        chosen = {v.prescription.name: v for v in active_rx}
        rx = chosen[st.selectbox("Which session?", list(chosen), key="ex_rx")]
        assert rx.current is not None
        goal = rx.current.target
        minutes = st.number_input(
            "Minutes", 0.0, 600.0, float(goal.duration_min or 10.0), step=1.0, key="ex_min"
        )
        reps = st.number_input(
            "Repetitions (each set)", 0, 1000, int(goal.repetitions or 0), key="ex_reps"
        )
        sets = st.number_input("Sets", 0, 50, int(goal.sets or 0), key="ex_sets")
        felt = forms.ratings(my_day.EXERCISE)
        if st.form_submit_button("Log exercise"):
            done = forms.save(
                who,
                lambda conn: intake.submit_exercise(
                    conn,
                    patient_id,
                    rx.prescription.prescription_id,
                    performed_at=ui.now(),
                    duration_min=float(minutes),
                    repetitions=int(reps) if goal.repetitions is not None else None,
                    sets=int(sets) if goal.sets is not None else None,
                    rpe=felt["rpe"],
                    pain_before=felt["pain_before"],
                    pain_after=felt["pain_after"],
                    idempotency_key=st.session_state["exercise_key"],
                ),
                page="my_day",
                action="exercise.log",
                patient_id=patient_id,
                detail=lambda done: {"session_id": done.stored_id},
            )
            if done is not None:
                st.session_state["exercise_key"] = uuid.uuid4().hex
                st.success(
                    wording.exercise_feedback(
                        completed=done.response.completed,
                        worsened=done.response.worsened,
                        rpe=felt["rpe"],
                        minutes=float(minutes),
                    )
                )

st.subheader("My last four weeks")
start, end = t.start, t.end
load = patient_view.load_table(t)
unit = patient_view.load_unit(load)
trends = charts.with_data(
    charts.trends_spec(start, end, unit), {"load": load, "diary": patient_view.diary_table(t)}
)
st.vega_lite_chart(trends, width="stretch")
