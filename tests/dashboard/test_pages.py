"""Every page of the dashboard through Streamlit's AppTest, for every role."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from streamlit.testing.v1 import AppTest

from paceline.dashboard.auth import Identity, Session
from paceline.dashboard.patient_view import Range
from paceline.pacing import planning, prescribing, wording
from paceline.pacing.exercise import Kind, Target
from paceline.store import access
from paceline.store.accounts import Role
from paceline.store.connection import connect
from tests.dashboard.conftest import APP, SCRIPT_NOTE, Clinic, login


def test_clinician_sees_the_caseload_of_their_team_only(app: AppTest, clinic: Clinic) -> None:
    at = login(app, "dr.a")
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Caseload"]
    names = set()
    for df in at.dataframe:
        names |= set(df.value["name"])
    assert names == {"Alex Boom", "Avery Avoid", "Sam Steady"}


def _open_patient(at: AppTest, patient_id: int) -> AppTest:
    at.switch_page("app_pages/patient.py")
    at.query_params["patient"] = str(patient_id)
    return at.run()


def test_clinician_opens_a_patient_with_charts_flags_and_notes(
    app: AppTest, clinic: Clinic
) -> None:
    at = _open_patient(login(app, "dr.a"), clinic.patient_id)
    assert not at.exception, at.exception
    assert at.title[0].value == "Alex Boom"
    texts = [t.value for t in at.text]
    # The diary note is shown as text, exactly as typed: never as markup.
    assert SCRIPT_NOTE in texts
    assert not any("<script>" in m.value for m in at.markdown)
    # Flags read as sentences with numbers.
    assert any(
        line.startswith("On ") and any(ch.isdigit() for ch in line)
        for t in texts
        for line in t.splitlines()
    )
    # The load/zones/diary chart and the questionnaires against activity.
    assert len(at.get("vega_lite_chart")) == 2


def test_range_choices_change_the_days_shown(app: AppTest, clinic: Clinic) -> None:
    at = _open_patient(login(app, "dr.a"), clinic.patient_id)
    at.segmented_control(key="patient_range").set_value(Range.WEEK).run()
    assert not at.exception, at.exception
    assert "–" in at.caption[0].value


def test_clinician_cannot_open_another_teams_patient_by_id(app: AppTest, clinic: Clinic) -> None:
    other = clinic.team_b[0]
    at = _open_patient(login(app, "dr.a"), other)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [f"There is no patient {other} on your caseload."]
    assert "Bea Other" not in [t.value for t in at.title]


@pytest.mark.parametrize("page", ["caseload", "patient", "plan", "alerts", "admin"])
def test_clinician_pages_refuse_a_patient_even_when_run_directly(
    clinic: Clinic, app_env: None, page: str
) -> None:
    at = AppTest.from_file(str(APP.parent / "app_pages" / f"{page}.py"), default_timeout=60)
    patient = Identity(99, "pat.a", Role.PATIENT, "Alex Boom", patient_id=clinic.patient_id)
    at.session_state["paceline_session"] = Session(patient, datetime.now(UTC))
    at.query_params["patient"] = str(clinic.patient_id)
    at.run()
    assert [e.value for e in at.error] == ["This page is not available to your account."]
    assert not at.dataframe and not at.get("vega_lite_chart")


def test_admin_sees_accounts_care_teams_and_a_filtered_audit_log(
    app: AppTest, clinic: Clinic
) -> None:
    _open_patient(login(AppTest.from_file(str(APP), default_timeout=60), "dr.a"), clinic.patient_id)
    at = login(app, "admin")
    assert not at.exception, at.exception
    assert at.title[0].value == "Administration"
    users, teams, log = at.dataframe[0].value, at.dataframe[1].value, at.dataframe[2].value
    assert {"dr.a", "dr.b", "pat.a", "admin"} <= set(users["username"])
    assert set(teams["patient"]) == {"Alex Boom", "Avery Avoid", "Sam Steady", "Bea Other"}
    assert "dashboard.view" in set(log["action"])
    at.text_input(key="audit_actor").input(f"clinician:{clinic.clinician_a}")
    at.number_input(key="audit_patient").set_value(clinic.patient_id)
    at.run()
    log = at.dataframe[2].value
    assert len(log) > 0
    assert set(log["actor"]) == {f"clinician:{clinic.clinician_a}"}
    assert set(log["patient"]) == {clinic.patient_id}
    assert "patient" in set(log["page"])


def test_wrong_password_shows_a_message_and_no_page(app: AppTest) -> None:
    at = login(app, "dr.a", "not the password")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert "Caseload" not in [t.value for t in at.title]


def test_sign_out_returns_to_the_login_form(app: AppTest) -> None:
    at = login(app, "dr.a")
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert at.text_input(key="login_username") is not None
    assert "Caseload" not in [t.value for t in at.title]


def _audit_rows(dsn: str, action: str) -> list[tuple[object, ...]]:
    with connect(dsn) as c:
        return c.execute(
            "SELECT actor, patient_id, object, detail->>'page' FROM audit_log WHERE action = %s"
            " ORDER BY audit_id",
            (action,),
        ).fetchall()


def test_mark_reviewed_is_recorded_and_audited(app: AppTest, clinic: Clinic) -> None:
    at = login(app, "dr.a")
    pick = at.selectbox(key="caseload_pick")
    target = next(o for o in pick.options if "Sam Steady" in o)
    pick.set_value(target).run()
    next(b for b in at.button if b.label == "Mark reviewed").click().run()
    assert not at.exception, at.exception
    steady = clinic.team_a[2]
    assert (f"clinician:{clinic.clinician_a}", steady, "patient_review", None) in _audit_rows(
        clinic.dsn, "caseload.reviewed"
    )
    rows = {r["name"]: r["reviewed"] for df in at.dataframe for r in df.value.to_dict("records")}
    assert rows["Sam Steady"] == "today"


def test_every_patient_view_is_audited_with_page_and_patient(app: AppTest, clinic: Clinic) -> None:
    before = len(_audit_rows(clinic.dsn, "dashboard.view"))
    _open_patient(login(app, "dr.a"), clinic.patient_id)
    views = _audit_rows(clinic.dsn, "dashboard.view")[before:]
    actor = f"clinician:{clinic.clinician_a}"
    assert (actor, None, "caseload", "caseload") in views
    assert (actor, clinic.patient_id, "patient", "patient") in views
    denied_before = len(_audit_rows(clinic.dsn, "dashboard.denied"))
    _open_patient(login(AppTest.from_file(str(APP), default_timeout=60), "dr.a"), clinic.team_b[0])
    denied = _audit_rows(clinic.dsn, "dashboard.denied")[denied_before:]
    assert denied == [(actor, None, "patient", "patient")]


def test_a_plan_change_needs_a_reason_and_makes_a_new_version(app: AppTest, clinic: Clinic) -> None:
    at = login(app, "dr.a")
    at.switch_page("app_pages/plan.py")
    at.query_params["patient"] = str(clinic.team_a[2])
    at.run()
    assert not at.exception, at.exception
    versions = len(at.dataframe[0].value)
    at.number_input(key="plan_quota").set_value(55.0)
    next(b for b in at.button if b.label == "Save new version").click().run()
    assert [e.value for e in at.error] == ["a plan change needs a reason"]
    at.number_input(key="plan_quota").set_value(55.0)
    at.text_area(key="plan_reason").input("Tolerating the current level well; step up.")
    next(b for b in at.button if b.label == "Save new version").click().run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == versions + 1
    assert at.dataframe[0].value.iloc[0]["quota"] == 55.0
    assert at.dataframe[0].value.iloc[0]["reason"] == "Tolerating the current level well; step up."


def test_patient_sees_their_day_and_no_clinician_page(app: AppTest, clinic: Clinic) -> None:
    at = login(app, clinic.patient_login)
    assert not at.exception, at.exception
    assert at.title[0].value == "Hello, Alex"
    assert len(at.get("progress")) == 1
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/caseload.py")


def test_a_patients_diary_note_reaches_the_clinician_as_plain_text(
    app: AppTest, clinic: Clinic
) -> None:
    note = "<img src=x onerror=alert(1)> walked to the shop **twice**"
    at = login(app, clinic.patient_login)
    at.slider(key="diary_pain").set_value(6)
    at.text_area(key="diary_note").input(note)
    next(b for b in at.button if b.label == "Save diary").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Saved. Thank you."]
    doctor = _open_patient(
        login(AppTest.from_file(str(APP), default_timeout=60), "dr.a"), clinic.patient_id
    )
    assert note in [t.value for t in doctor.text]
    assert not any("onerror" in m.value for m in doctor.markdown)


def test_patient_fills_in_a_questionnaire_and_logs_an_exposure(
    app: AppTest, clinic: Clinic
) -> None:
    at = login(app, clinic.patient_login)
    for i in range(1, 12):
        at.radio(key=f"q_TSK-11_{i}").set_value(2)
    next(b for b in at.button if b.label == "Submit TSK-11").click().run()
    assert not at.exception, at.exception
    assert "Saved: total 22." in [s.value for s in at.success]
    at.slider(key="exp_before").set_value(60)
    at.slider(key="exp_after").set_value(30)
    at.slider(key="exp_expected").set_value(70)
    at.slider(key="exp_actual").set_value(10)
    next(b for b in at.button if b.label == "Log session").click().run()
    assert not at.exception, at.exception
    assert any("You expected 70 of harm and 10 happened" in s.value for s in at.success)


def test_caseload_search_and_section_filter(app: AppTest) -> None:
    at = login(app, "dr.a")
    at.text_input(key="caseload_search").input("steady").run()
    names = {n for df in at.dataframe for n in df.value["name"]}
    assert names == {"Sam Steady"}
    at.text_input(key="caseload_search").input("").run()
    at.multiselect(key="caseload_sections").set_value(["On plan"]).run()
    assert [s.value for s in at.subheader] == ["On plan (1)"]


def test_an_open_critical_alert_puts_a_patient_first_and_shows_on_the_patient_page(
    app: AppTest, clinic: Clinic
) -> None:
    steady = clinic.team_a[2]
    with connect(clinic.dsn) as c:
        c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'boom.over_quota', now() - interval '1 day', 'critical', 'open',"
            " 'Load above the envelope')",
            (steady,),
        )
        c.commit()
    at = login(app, "dr.a")
    first = at.subheader[0].value
    assert first.startswith("Needs attention now")
    assert "Sam Steady" in set(at.dataframe[0].value["name"])
    at = _open_patient(at, steady)
    assert not at.exception, at.exception
    alerts = next(df.value for df in at.dataframe if "about" in df.value.columns)
    assert list(alerts["severity"]) == ["critical"]


def test_alerts_inbox_acknowledges_with_a_note_and_resolves(app: AppTest, clinic: Clinic) -> None:
    avoid = clinic.team_a[1]
    with connect(clinic.dsn) as c:
        row = c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'bust.under_quota', now() - interval '2 days', 'warning', 'open',"
            " 'Below plan three days running') RETURNING alert_id",
            (avoid,),
        ).fetchone()
        c.commit()
    assert row is not None
    alert_id = int(row[0])
    at = login(app, "dr.a")
    at.switch_page("app_pages/alerts.py").run()
    assert not at.exception, at.exception
    pick = at.selectbox(key="alerts_pick")
    label = next(o for o in pick.options if o.startswith(f"#{alert_id} "))
    pick.set_value(label).run()
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert at.error and "note" in at.error[0].value
    at.selectbox(key="alerts_pick").set_value(label)
    at.text_area(key="alerts_note").input("Phoned; agreed a lighter week.")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == [f"Alert {alert_id} acknowledged."]
    with connect(clinic.dsn) as c:
        assert c.execute(
            "SELECT status, ack_note FROM alert WHERE alert_id = %s", (alert_id,)
        ).fetchone() == ("acknowledged", "Phoned; agreed a lighter week.")
    label = next(
        o for o in at.selectbox(key="alerts_pick").options if o.startswith(f"#{alert_id} ")
    )
    at.selectbox(key="alerts_pick").set_value(label).run()
    next(b for b in at.button if b.label == "Resolve").click().run()
    assert not at.exception, at.exception
    with connect(clinic.dsn) as c:
        assert c.execute(
            "SELECT status FROM alert WHERE alert_id = %s", (alert_id,)
        ).fetchone() == ("resolved",)


def test_alerts_inbox_shows_dead_lettered_deliveries(app: AppTest, clinic: Clinic) -> None:
    steady = clinic.team_a[2]
    with connect(clinic.dsn) as c:
        (alert_id,) = c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'flare.risk_high', now() - interval '3 days', 'critical', 'open', 'x')"
            " RETURNING alert_id",
            (steady,),
        ).fetchone() or (0,)
        c.execute(
            "INSERT INTO alert_delivery (alert_id, patient_id, alert_ids, channel, recipient,"
            " status, message_key, attempts, last_error) VALUES (%s, %s, ARRAY[%s]::bigint[],"
            " 'webhook', 'endpoint:default', 'dead', gen_random_uuid(), 8, 'HTTP 503')",
            (alert_id, steady, alert_id),
        )
        c.commit()
    at = login(app, "dr.a")
    at.switch_page("app_pages/alerts.py").run()
    assert not at.exception, at.exception
    dead = next(df.value for df in at.dataframe if "last error" in df.value.columns)
    row = dead[dead["alert"] == alert_id].iloc[0]
    assert (row["status"], row["attempts"], row["last error"]) == ("dead", 8, "HTTP 503")


def _intraday_days(dsn: str) -> list[str]:
    with connect(dsn) as c:
        rows = c.execute(
            "SELECT detail->>'day' FROM audit_log WHERE action = 'dashboard.view'"
            " AND object = 'patient.intraday' ORDER BY audit_id"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_the_patient_page_reads_in_one_person_session_and_audits_each_minute_view(
    app: AppTest, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[str] = []
    original = access._person_session

    def counted(conn: Any, kind: Any, *args: Any) -> Any:
        sessions.append(kind)
        return original(conn, kind, *args)

    at = _open_patient(login(app, "dr.a"), clinic.patient_id)
    monkeypatch.setattr(access, "_person_session", counted)

    def render(change: Callable[[], object]) -> tuple[int, list[str], int]:
        """Sessions, minute views audited and charts drawn by the render after `change`."""
        sessions.clear()
        views = len(_audit_rows(clinic.dsn, "dashboard.view"))
        days = len(_intraday_days(clinic.dsn))
        change()
        at.run()
        assert not at.exception, at.exception
        page_views = _audit_rows(clinic.dsn, "dashboard.view")[views:]
        assert (
            page_views.count(
                (f"clinician:{clinic.clinician_a}", clinic.patient_id, "patient", "patient")
            )
            == 1
        )  # one row per patient view, however the reads are batched
        return len(sessions), _intraday_days(clinic.dsn)[days:], len(at.get("vega_lite_chart"))

    today = at.date_input(key="patient_intraday").value
    assert isinstance(today, date)
    # The minute view shown: its day is read in the page's one session, and audited once.
    shown = render(lambda: at.toggle(key="patient_intraday_show").set_value(True))
    assert shown == (1, [str(today)], 3)
    earlier = today - timedelta(days=20)
    assert render(lambda: at.date_input(key="patient_intraday").set_value(earlier)) == (
        1,
        [str(earlier)],
        3,
    )
    assert render(lambda: None) == (1, [str(earlier)], 3)
    # A 7-day range leaves that day outside: the widget resets it, and the page reads the
    # day it then shows (after drawing the widget, in a second session), audited once.
    count, days, charts = render(
        lambda: at.segmented_control(key="patient_range").set_value(Range.WEEK)
    )
    assert (count, charts) == (2, 3)
    assert days == [str(at.date_input(key="patient_intraday").value)] != [str(earlier)]
    # Hidden: not read, not audited.
    assert render(lambda: at.toggle(key="patient_intraday_show").set_value(False)) == (1, [], 2)


def test_the_alerts_page_audits_a_read_for_each_patient_it_shows(
    app: AppTest, clinic: Clinic
) -> None:
    mine, failed, theirs = clinic.team_a[0], clinic.team_a[2], clinic.team_b[0]
    with connect(clinic.dsn) as c:
        for days, pid, status in (
            (2, mine, "open"),
            (3, mine, "acknowledged"),
            (2, theirs, "open"),
        ):
            c.execute(
                "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
                " VALUES (%s, 'bust.under_quota', now() - make_interval(days => %s), 'warning',"
                " %s, 'x')",
                (pid, days, status),
            )
        (resolved,) = c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'flare.risk_high', now() - interval '3 days', 'critical', 'resolved',"
            " 'x') RETURNING alert_id",
            (failed,),
        ).fetchone() or (0,)
        c.execute(
            "INSERT INTO alert_delivery (alert_id, patient_id, alert_ids, channel, recipient,"
            " status, message_key, attempts, last_error) VALUES (%s, %s, ARRAY[%s]::bigint[],"
            " 'webhook', 'endpoint:default', 'dead', gen_random_uuid(), 8, 'HTTP 503')",
            (resolved, failed, resolved),
        )
        (before,) = c.execute("SELECT max(audit_id) FROM audit_log").fetchone() or (0,)
        c.commit()
    at = login(app, "dr.a")
    at.switch_page("app_pages/alerts.py").run()
    assert not at.exception, at.exception
    with connect(clinic.dsn) as c:
        shown = {
            int(r[0])
            for r in c.execute(
                "SELECT patient_id FROM alert WHERE status IN ('open', 'acknowledged')"
                " AND patient_id = ANY(%s) UNION SELECT patient_id FROM alert_delivery"
                " WHERE status IN ('dead', 'failed', 'disabled') AND patient_id = ANY(%s)",
                (list(clinic.team_a), list(clinic.team_a)),
            ).fetchall()
        }
        reads = c.execute(
            "SELECT actor, patient_id, clinician_id, detail FROM audit_log"
            " WHERE audit_id > %s AND action = 'read' AND object = 'alerts' ORDER BY patient_id",
            (before,),
        ).fetchall()
    assert {mine, failed} <= shown and theirs not in shown
    actor = f"clinician:{clinic.clinician_a}"
    assert reads == [
        (actor, pid, clinic.clinician_a, {"statuses": ["acknowledged", "open"]})
        for pid in sorted(shown)
    ]


def test_the_alerts_page_reads_its_patients_names_and_zones_in_one_statement(
    app: AppTest, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = clinic.team_a[0]
    with connect(clinic.dsn) as c:
        c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'bust.under_quota', now() - interval '1 day', 'warning', 'open', 'x')",
            (mine,),
        )
        (name,) = c.execute(
            "SELECT display_name FROM patient WHERE patient_id = %s", (mine,)
        ).fetchone() or ("",)
        c.commit()
    at = login(app, "dr.a")
    statements: list[str] = []
    original = psycopg.Cursor.execute

    def noting(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.as_string(cur.connection) if isinstance(query, sql.Composable) else query
        statements.append(text if isinstance(text, str) else bytes(text).decode())
        return original(cur, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", noting)
    at.switch_page("app_pages/alerts.py").run()
    assert not at.exception, at.exception
    assert len([q for q in statements if re.search(r"\bFROM patient\b", q)]) == 1
    inbox = next(df.value for df in at.dataframe if "opened" in df.value.columns)
    assert name in set(inbox["patient"])


def test_patient_logs_a_prescribed_session_and_the_clinician_sees_it_with_adherence(
    app: AppTest, clinic: Clinic
) -> None:
    with connect(clinic.dsn) as c:
        prescribing.prescribe(
            c,
            clinic.patient_id,
            clinician_id=clinic.clinician_a,
            kind=Kind.STRENGTH,
            name="wall push-ups",
            sessions_per_week=3,
            target=Target(repetitions=8, sets=2),
            reason="upper body",
            valid_from=datetime.now(UTC).date() - timedelta(days=10),
        )
    at = login(app, clinic.patient_login)
    assert "wall push-ups: 2 × 8 repetitions, 3 times a week (0 done in the last 7 days)" in [
        t.value for t in at.text
    ]
    at.number_input(key="ex_min").set_value(12.0)
    at.slider(key="ex_rpe").set_value(5)
    at.slider(key="ex_pain_before").set_value(3)
    at.slider(key="ex_pain_after").set_value(6)
    next(b for b in at.button if b.label == "Log exercise").click().run()
    assert not at.exception, at.exception
    assert any(
        "Pain rose after this session" in s.value and "Session load 60" in s.value
        for s in at.success
    )
    doctor = _open_patient(
        login(AppTest.from_file(str(APP), default_timeout=60), "dr.a"), clinic.patient_id
    )
    assert not doctor.exception, doctor.exception
    assert "Prescribed exercise" in [h.value for h in doctor.subheader]
    frames = [d.value for d in doctor.dataframe]
    table = next(f for f in frames if "per week" in f.columns)
    assert list(table["session"]) == ["wall push-ups"]
    assert list(table["last 7 days"]) == ["1 of 3"]
    assert list(table["pain rose after"]) == [1]
    logged = next(f for f in frames if "load (RPE × min)" in f.columns)
    assert list(logged["load (RPE × min)"]) == [60.0]


def test_a_patient_who_ticks_a_red_flag_is_told_plainly_to_seek_care(
    app: AppTest, clinic: Clinic
) -> None:
    with connect(clinic.dsn) as conn:
        # Earlier tests saved diaries, each a screen; with none this week the check is due.
        conn.execute("DELETE FROM red_flag_screen WHERE patient_id = %s", (clinic.patient_id,))
    at = login(app, clinic.patient_login)
    assert not at.exception, at.exception
    # No screen this week: the weekly check is offered, every question to answer.
    assert "Weekly safety check" in [h.value for h in at.subheader]
    next(b for b in at.button if b.label == "Save safety check").click().run()
    assert "Please answer every question." in [e.value for e in at.error]
    at.checkbox(key="diary_rf_bladder_bowel").check()
    next(b for b in at.button if b.label == "Save diary").click().run()
    assert not at.exception, at.exception
    assert wording.RED_FLAG_EMERGENCY in [e.value for e in at.error]
    with connect(clinic.dsn) as conn:
        pause = planning.progression_pause(conn, clinic.patient_id)
    assert pause is not None and "bladder_bowel" in pause.reason
    # Signed in again later: the page still says the plan is paused.
    again = login(AppTest.from_file(str(APP), default_timeout=60), clinic.patient_login)
    assert wording.RED_FLAG_PAUSED in [w.value for w in again.warning]
    # The clinician sees the pause on the plan page and clears it with a note.
    doctor = login(AppTest.from_file(str(APP), default_timeout=60), "dr.a")
    doctor.switch_page("app_pages/plan.py")
    doctor.query_params["patient"] = str(clinic.patient_id)
    doctor.run()
    assert any("Progression paused" in e.value for e in doctor.error)
    doctor.text_area(key="clear_pause_note").input("Phoned: seen in A&E, no compression.")
    next(b for b in doctor.button if b.label == "Clear the pause").click().run()
    assert not doctor.exception, doctor.exception
    with connect(clinic.dsn) as conn:
        assert planning.progression_pause(conn, clinic.patient_id) is None


def test_a_clinician_writes_a_progress_note_with_ratings_and_sees_it_listed(
    app: AppTest, clinic: Clinic
) -> None:
    at = _open_patient(login(app, "dr.a"), clinic.patient_id)
    at.text_area(key="note_body").input("Gardened 20 min, paced with a timer.")
    at.text_input(key="note_activity").input("gardening")
    at.selectbox(key="note_confidence").set_value(7)
    at.selectbox(key="note_task_independence").set_value(6)
    next(b for b in at.button if b.label == "Save note").click()
    at.run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Note saved."]
    table = next(d.value for d in at.dataframe if "task" in d.value.columns)
    row = table.iloc[0]
    assert (row["task"], row["note"]) == ("gardening", "Gardened 20 min, paced with a timer.")
    assert row["Task independence (FIM levels)"] == "6 modified independence"
    # A rating without its task is refused with the reason, and nothing is stored.
    at.text_area(key="note_body").input("Confident today.")
    at.selectbox(key="note_confidence").set_value(8)
    next(b for b in at.button if b.label == "Save note").click()
    at.run()
    assert any("name the activity" in e.value for e in at.error)


def test_the_progress_report_is_prepared_for_download_on_the_patient_page(
    app: AppTest, clinic: Clinic
) -> None:
    at = _open_patient(login(app, "dr.a"), clinic.patient_id)
    next(b for b in at.button if b.label == "Prepare report").click()
    at.run()
    assert not at.exception, at.exception
    with connect(clinic.dsn) as conn:
        row = conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'report.pdf' AND patient_id = %s",
            (clinic.patient_id,),
        ).fetchone()
    assert row == (f"clinician:{clinic.clinician_a}",)
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download report"]


def test_a_clinician_sets_a_rest_day_and_sees_it_in_the_schedule_ahead(
    app: AppTest, clinic: Clinic
) -> None:
    at = login(app, "dr.a")
    at.switch_page("app_pages/plan.py")
    at.query_params["patient"] = str(clinic.team_a[2])
    at.run()
    assert not at.exception, at.exception
    at.multiselect(key="plan_rest_days").select(6)
    at.text_area(key="plan_pattern_reason").input("Sunday is a rest day")
    next(b for b in at.button if b.label == "Save pattern").click().run()
    assert not at.exception, at.exception
    schedule = at.dataframe[1].value
    assert len(schedule) == 28
    assert (schedule["kind"] == "rest").sum() == 4
    assert set(schedule.loc[schedule["kind"] == "rest", "target"]) == {0.0}


def test_clinician_prescribes_and_links_a_goal_and_the_patient_sees_progress_and_milestones(
    app: AppTest, clinic: Clinic
) -> None:
    doctor = login(app, "dr.a")
    doctor.switch_page("app_pages/goals.py")
    doctor.query_params["patient"] = str(clinic.patient_id)
    doctor.run()
    assert not doctor.exception, doctor.exception
    doctor.text_input(key="rx_name").input("stairs")
    doctor.number_input(key="rx_reps").set_value(10)
    doctor.text_input(key="rx_reason").input("two flights at home")
    next(b for b in doctor.button if b.label == "Prescribe").click().run()
    assert not doctor.exception, doctor.exception
    assert not doctor.error, [e.value for e in doctor.error]
    doctor.text_input(key="goal_title").input("Visit my sister upstairs")
    next(b for b in doctor.button if b.label == "Add goal").click().run()
    doctor.selectbox(key="goal_pick").select_index(
        len(doctor.selectbox(key="goal_pick").options) - 1
    )
    doctor.selectbox(key="goal_rx").select("stairs")
    doctor.number_input(key="goal_reps").set_value(20)
    next(b for b in doctor.button if b.label == "Save goal").click().run()
    assert not doctor.error, [e.value for e in doctor.error]
    lines = [p.proto.text for p in doctor.get("progress")]
    assert "Visit my sister upstairs: the first steps are ahead — stairs 0%" in lines
    with connect(clinic.dsn) as c:
        row = c.execute(
            "SELECT g.title, l.needed_repetitions FROM goal_link l JOIN valued_goal g USING"
            " (goal_id) WHERE l.patient_id = %s",
            (clinic.patient_id,),
        ).fetchall()
        assert row == [("Visit my sister upstairs", 20)]
        c.execute(
            "UPDATE valued_goal SET status = 'reached', reached_at = now() WHERE patient_id = %s",
            (clinic.patient_id,),
        )
    patient = login(AppTest.from_file(str(APP), default_timeout=60), clinic.patient_login)
    assert not patient.exception, patient.exception
    assert any("Goal reached: Visit my sister upstairs." in i.value for i in patient.info), [
        i.value for i in patient.info
    ]
    patient.text_input(key="goal_title").input("A shopping trip")
    next(b for b in patient.button if b.label == "Add goal").click().run()
    assert not patient.exception, patient.exception
    assert "Goal saved: your clinician will link your steps to it." in [
        s.value for s in patient.success
    ]
