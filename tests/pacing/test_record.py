"""Reassessment and documentation: the questionnaire schedule and its reminders, the ladder's
re-ratings as history, clinicians' progress notes (audited, row security), and the trends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from paceline.pacing import ladder, notes, planning, reassessment, records
from paceline.pacing.alerts import Channels, deliver, due_questionnaire_reminders, due_reminders
from paceline.pacing.days import Measure
from paceline.pacing.errors import ExposureError, NotAnIntegerError, OutOfRangeError
from paceline.pacing.exposure import ItemStatus
from paceline.pacing.intake import submit_questionnaire
from paceline.pacing.notes import ProgressNoteError
from paceline.pacing.progression import PlanSettings
from paceline.pacing.questionnaires import InstrumentName, occasion_of
from paceline.pacing.questionnaires import reassessment as schedule
from paceline.store import registry
from paceline.store.access import clinician_session
from paceline.store.identity import IdentityKey
from tests.pacing.alerts.helpers import CONFIG
from tests.pacing.alerts.servers import smtp_server

ENROLLED = date(2026, 3, 2)
TSK, PCS, PSEQ = InstrumentName.TSK_11, InstrumentName.PCS, InstrumentName.PSEQ


def enrol(conn: psycopg.Connection[Any], tz: str = "UTC") -> int:
    p = registry.create_patient(
        conn,
        external_ref=f"R-{uuid.uuid4().hex[:10]}",
        display_name="Record",
        enrolled_at=datetime.combine(ENROLLED, time(8), UTC),
        timezone=tz,
    )
    conn.commit()
    return p.patient_id


def clinician_for(conn: psycopg.Connection[Any], patient_id: int) -> int:
    cid = registry.create_clinician(
        conn, username=f"n{uuid.uuid4().hex[:8]}", display_name="Dr Note"
    )
    registry.assign_care_team(conn, clinician_id=cid, patient_id=patient_id)
    conn.commit()
    return cid


def answer_all(conn: psycopg.Connection[Any], pid: int, when: datetime) -> None:
    submit_questionnaire(conn, pid, TSK, [3] * 11, answered_at=when, now=when)
    submit_questionnaire(conn, pid, PCS, [2] * 13, answered_at=when, now=when)
    submit_questionnaire(conn, pid, PSEQ, [3] * 10, answered_at=when, now=when)
    conn.commit()


# The schedule (pure) ------------------------------------------------------------------------


def test_occasions_fall_every_n_weeks_from_enrolment() -> None:
    assert occasion_of(ENROLLED, ENROLLED, 4) == (0, ENROLLED)
    assert occasion_of(ENROLLED, ENROLLED + timedelta(days=27), 4) == (0, ENROLLED)
    assert occasion_of(ENROLLED, ENROLLED + timedelta(days=28), 4) == (1, date(2026, 3, 30))
    assert occasion_of(ENROLLED, ENROLLED + timedelta(days=20), 2) == (1, date(2026, 3, 16))


def test_an_answer_counts_for_its_occasion_and_a_few_days_before_it() -> None:
    day = ENROLLED + timedelta(days=29)  # occasion 1 began the day before
    answered = {"TSK-11": ENROLLED + timedelta(days=25), "PCS": ENROLLED + timedelta(days=24)}
    r = schedule(ENROLLED, day, answered, every_weeks=4)
    # 3 days early counts, 4 does not; PSEQ was never answered.
    assert r.due == (PCS, PSEQ)
    assert r.next_occasion == date(2026, 4, 27)


def test_a_tsk17_answer_sheet_covers_the_tsk11() -> None:
    r = schedule(ENROLLED, ENROLLED, {"TSK-17": ENROLLED, "PCS": ENROLLED, "PSEQ": ENROLLED})
    assert r.due == ()


def test_nothing_is_due_before_enrolment_and_a_bad_interval_is_refused() -> None:
    assert schedule(ENROLLED, ENROLLED - timedelta(days=1), {}).due == ()
    with pytest.raises(OutOfRangeError):
        schedule(ENROLLED, ENROLLED, {}, every_weeks=0)
    with pytest.raises(NotAnIntegerError):
        PlanSettings(reassess_every_weeks=2.5)  # type: ignore[arg-type]


def test_the_interval_is_a_plan_setting_that_survives_storage(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    cid = clinician_for(conn, pid)
    planning.set_plan(
        conn,
        pid,
        clinician_id=cid,
        reason="fortnightly reassessment during exposure",
        measure=Measure.ACTIVE_MINUTES,
        baseline=30.0,
        settings=PlanSettings(reassess_every_weeks=2),
        valid_from=ENROLLED,
        now=datetime.combine(ENROLLED, time(9), UTC),
    )
    conn.commit()
    now = datetime.combine(ENROLLED + timedelta(days=15), time(12), UTC)
    answer_all(conn, pid, datetime.combine(ENROLLED, time(10), UTC))
    s = reassessment.status(conn, pid, now=now)
    assert s.questionnaires.every_weeks == 2
    assert s.questionnaires.occasion == ENROLLED + timedelta(days=14)
    assert s.questionnaires.due == (TSK, PCS, PSEQ)


# Reminders -------------------------------------------------------------------------------------


def test_questionnaire_reminders_go_once_per_occasion_and_stop_when_answered(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn, tz="Europe/Berlin")
    answered = enrol(conn)
    conn.execute("UPDATE patient SET email = 'q@example.org' WHERE patient_id = %s", (pid,))
    conn.commit()
    answer_all(conn, answered, datetime.combine(ENROLLED, time(10), UTC))
    noon = datetime.combine(ENROLLED + timedelta(days=1), time(12), UTC)
    due = due_questionnaire_reminders(conn, noon, config=CONFIG)
    conn.commit()
    rows = conn.execute(
        "SELECT d.channel, d.recipient, a.rule_id, a.summary FROM alert_delivery d"
        " JOIN alert a USING (alert_id) WHERE d.delivery_id = ANY(%s)",
        (due,),
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("email", f"patient:{pid}", "questionnaire.reminder")
    ]
    assert "Tampa Scale" in rows[0][3] and "Pain Self-Efficacy" in rows[0][3]
    # Later the same occasion: no second message, and the diary reminders are untouched.
    assert due_questionnaire_reminders(conn, noon + timedelta(days=3), config=CONFIG) == []
    assert due_reminders(conn, noon + timedelta(days=3), config=CONFIG) == []
    # Answered before the next occasion, the patient is not reminded for this one again;
    # at the next occasion (4 weeks on) the questionnaires are due again and the old
    # reminder has been resolved.
    answer_all(conn, pid, noon + timedelta(days=4))
    assert due_questionnaire_reminders(conn, noon + timedelta(days=5), config=CONFIG) == []
    nxt = datetime.combine(ENROLLED + timedelta(days=28), time(12), UTC)
    due_reminders(conn, nxt, config=CONFIG)
    again = due_questionnaire_reminders(conn, nxt, config=CONFIG)
    conn.commit()
    assert len(again) == 1
    statuses = conn.execute(
        "SELECT status FROM alert WHERE patient_id = %s AND rule_id = 'questionnaire.reminder'"
        " ORDER BY window_start",
        (pid,),
    ).fetchall()
    assert statuses == [("resolved",), ("open",)]
    others = conn.execute(
        "SELECT count(*) FROM alert WHERE patient_id = %s AND window_start < %s",
        (answered, nxt - timedelta(days=1)),
    ).fetchone()
    assert others == (0,)


def test_answering_the_occasion_resolves_its_reminder_and_cancels_its_waiting_email(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn, tz="Europe/Berlin")
    conn.execute("UPDATE patient SET email = 'r@example.org' WHERE patient_id = %s", (pid,))
    conn.commit()
    # 22:00 in Berlin (UTC+1 in March): the reminder's e-mail waits for 07:00.
    evening = datetime.combine(ENROLLED + timedelta(days=1), time(21), UTC)
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        assert due_questionnaire_reminders(conn, evening, config=config) == []
        conn.commit()
        ((did, alert_id),) = conn.execute(
            "SELECT delivery_id, alert_id FROM alert_delivery WHERE patient_id = %s"
            " AND channel = 'email'",
            (pid,),
        ).fetchall()
        # One questionnaire answered: the others are still due, the reminder stays.
        submit_questionnaire(conn, pid, TSK, [3] * 11, answered_at=evening, now=evening)
        due_questionnaire_reminders(conn, evening + timedelta(minutes=15), config=config)
        conn.commit()
        assert records.get_alert(conn, alert_id).status == "open"  # type: ignore[union-attr]
        answer_all(conn, pid, evening + timedelta(minutes=20))
        due_questionnaire_reminders(conn, evening + timedelta(minutes=30), config=config)
        conn.commit()
        after = records.get_alert(conn, alert_id)
        assert after is not None and after.status == "resolved"
        morning = datetime.combine(ENROLLED + timedelta(days=2), time(6), UTC)
        assert deliver(conn, did, channels=Channels.from_config(config), now=morning).status == (
            "cancelled"
        )
        conn.commit()
    assert box.messages == []
    audited = conn.execute(
        "SELECT actor, detail->>'why' FROM audit_log WHERE patient_id = %s"
        " AND action = 'alert.resolve'",
        (pid,),
    ).fetchall()
    assert audited == [("alert-policy", "answered")]
    # Answered, the occasion asks for nothing more: no new reminder.
    assert due_questionnaire_reminders(conn, morning, config=CONFIG) == []


# The ladder: re-ratings, retiring ------------------------------------------------------------


def test_rerating_appends_to_the_history_and_audits_before_and_after(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    cid = clinician_for(conn, pid)
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    low = ladder.add_item(
        conn, pid, activity="walk to the corner", fear_rating=40, clinician_id=cid, now=at
    )
    high = ladder.add_item(
        conn, pid, activity="lift a crate", fear_rating=80, clinician_id=cid, now=at
    )
    conn.commit()
    at += timedelta(days=28)
    ladder.rerate(conn, pid, {low.item_id: 25, high.item_id: 70}, clinician_id=cid, rated_at=at)
    ladder.rerate(conn, pid, {high.item_id: 60}, clinician_id=cid, rated_at=at + timedelta(28))
    conn.commit()
    with pytest.raises(ExposureError, match="predate"):
        ladder.rerate(conn, pid, {high.item_id: 50}, rated_at=at)
    with pytest.raises(ExposureError, match="future"):
        ladder.rerate(conn, pid, {high.item_id: 50}, rated_at=datetime.now(UTC) + timedelta(1))
    conn.rollback()
    history = ladder.rating_history(conn, pid)
    assert [(r.fear_rating, r.kind) for r in history[high.item_id]] == [
        (80, "initial"),
        (70, "rerating"),
        (60, "rerating"),
    ]
    assert [r.fear_rating for r in history[low.item_id]] == [40, 25]
    assert {i.item_id: i.fear_rating for i in ladder.ladder(conn, pid)} == {
        low.item_id: 25,
        high.item_id: 60,
    }
    entry = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE patient_id = %s AND action = 'ladder.rerate'"
        " ORDER BY audit_id LIMIT 1",
        (pid,),
    ).fetchone()
    assert entry is not None and entry[0] == f"clinician:{cid}"
    assert entry[1]["items"] == [
        {"item_id": low.item_id, "before": 40, "after": 25},
        {"item_id": high.item_id, "before": 80, "after": 70},
    ]
    # An edit of the rating is history too.
    ladder.edit_item(conn, pid, low.item_id, fear_rating=20, clinician_id=cid)
    conn.commit()
    assert ladder.rating_history(conn, pid)[low.item_id][-1].kind == "edit"


def test_a_rerating_is_refused_whole_when_one_item_is_bad(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    item = ladder.add_item(conn, pid, activity="stairs", fear_rating=50)
    gone = ladder.add_item(conn, pid, activity="old rung", fear_rating=30)
    ladder.retire_item(conn, pid, gone.item_id, reason="replaced by stairs")
    conn.commit()
    with pytest.raises(OutOfRangeError):
        ladder.rerate(conn, pid, {item.item_id: 101})
    with pytest.raises(ExposureError, match="retired"):
        ladder.rerate(conn, pid, {item.item_id: 40, gone.item_id: 20})
    conn.rollback()
    assert [r.fear_rating for r in ladder.rating_history(conn, pid)[item.item_id]] == [50]
    with pytest.raises(ExposureError, match="already retired"):
        ladder.retire_item(conn, pid, gone.item_id, reason="again")


def test_retiring_keeps_the_item_and_says_why(conn: psycopg.Connection[Any]) -> None:
    pid = enrol(conn)
    item = ladder.add_item(conn, pid, activity="run for a bus", fear_rating=90)
    retired = ladder.retire_item(conn, pid, item.item_id, reason="no longer a goal")
    conn.commit()
    assert retired.status is ItemStatus.RETIRED
    assert [i.status for i in ladder.ladder(conn, pid)] == [ItemStatus.RETIRED]
    detail = conn.execute(
        "SELECT detail FROM audit_log WHERE patient_id = %s AND action = 'ladder.retire'", (pid,)
    ).fetchone()
    assert detail == ({"item_id": item.item_id, "was": "active", "reason": "no longer a goal"},)


def test_the_ladder_is_due_for_rerating_at_each_occasion_after_the_baseline(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    item = ladder.add_item(
        conn,
        pid,
        activity="garden for an hour",
        fear_rating=60,
        now=datetime(2026, 3, 2, tzinfo=UTC),
    )
    conn.commit()
    assert reassessment.status(conn, pid, now=datetime(2026, 3, 10, tzinfo=UTC)).ladder_due == ()
    later = datetime(2026, 4, 2, tzinfo=UTC)
    assert reassessment.status(conn, pid, now=later).ladder_due == (item.item_id,)
    ladder.rerate(conn, pid, {item.item_id: 45}, rated_at=later)
    conn.commit()
    assert reassessment.status(conn, pid, now=later).ladder_due == ()


# Progress notes ----------------------------------------------------------------------------


def test_a_note_with_ratings_is_stored_audited_and_amended_not_edited(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    cid = clinician_for(conn, pid)
    first = notes.add_note(
        conn,
        pid,
        clinician_id=cid,
        body="Managed the supermarket with one rest.",
        activity="weekly shop",
        confidence=6,
        task_independence=6,
        perceived_capability=5,
        now=datetime(2026, 4, 1, 9, tzinfo=UTC),
    )
    fix = notes.add_note(
        conn,
        pid,
        clinician_id=cid,
        body="Correction: two rests.",
        amends=first.note_id,
        now=datetime(2026, 4, 1, 10, tzinfo=UTC),
    )
    conn.commit()
    listed = notes.list_notes(conn, pid)
    assert [n.note_id for n in listed] == [fix.note_id, first.note_id]
    assert (listed[1].confidence, listed[1].task_independence, listed[1].clinician_name) == (
        6,
        6,
        "Dr Note",
    )
    assert listed[0].amends == first.note_id
    assert notes.scale_label(notes.TASK_INDEPENDENCE, 6) == "6 modified independence"
    actions = conn.execute(
        "SELECT detail->>'note_id', detail->>'confidence' FROM audit_log"
        " WHERE patient_id = %s AND action = 'note.add' ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert actions == [(str(first.note_id), "6"), (str(fix.note_id), None)]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"body": "   "}, ProgressNoteError),
        ({"body": "x", "confidence": 5}, ProgressNoteError),
        ({"body": "x", "activity": "stairs", "confidence": 11}, OutOfRangeError),
        ({"body": "x", "activity": "stairs", "task_independence": 0}, OutOfRangeError),
        ({"body": "x", "activity": "stairs", "perceived_capability": 2.5}, NotAnIntegerError),
        ({"body": "x\x00y"}, ProgressNoteError),
        ({"body": "x", "amends": 10**9}, ProgressNoteError),
    ],
)
def test_a_bad_note_is_refused_with_a_typed_error(
    conn: psycopg.Connection[Any], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    pid = enrol(conn)
    cid = clinician_for(conn, pid)
    with pytest.raises(error):
        notes.add_note(conn, pid, clinician_id=cid, **kwargs)
    conn.rollback()
    assert notes.list_notes(conn, pid) == []


def test_notes_are_the_care_teams_and_written_only_as_oneself(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    identity_key: IdentityKey,
) -> None:
    mine, theirs = enrol(conn), enrol(conn)
    me, other = clinician_for(conn, mine), clinician_for(conn, theirs)
    notes.add_note(conn, theirs, clinician_id=other, body="Not yours to read.")
    conn.commit()
    with clinician_session(dashboard_conn, me, key=identity_key) as c:
        written = notes.add_note(c, mine, clinician_id=me, body="Seen today.")
        assert [n.note_id for n in notes.list_notes(c, mine)] == [written.note_id]
        assert records.progress_notes(c, theirs) == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            notes.add_note(c, mine, clinician_id=other, body="Posing as a colleague.")
    reads = conn.execute(
        "SELECT actor FROM audit_log WHERE patient_id = %s AND action = 'read'"
        " AND object = 'progress_note'",
        (mine,),
    ).fetchall()
    assert reads == [(f"clinician:{me}",)]


# Trends ------------------------------------------------------------------------------------


def test_trends_set_questionnaire_totals_beside_weekly_activity(
    conn: psycopg.Connection[Any],
) -> None:
    pid = enrol(conn)
    for week in range(3):
        for d in range(7):
            day = ENROLLED + timedelta(days=7 * week + d)
            records.upsert_daily_metrics(
                conn,
                pid,
                day,
                {
                    "wear_min": 800.0 if d < 5 else 100.0,  # two short days a week
                    "zone_min": [0.0] * 6,
                    "active_min": 20.0 + 10 * week,
                    "steps": 4000 + 1000 * week,
                    "trimp_banister": 30.0,
                    "hr_samples": 1000,
                },
            )
    conn.commit()
    for week, sheet in enumerate(([4] * 7 + [3] * 4, [4] + [3] * 10)):  # totals 40 and 34
        when = datetime.combine(ENROLLED + timedelta(days=14 * week), time(10), UTC)
        submit_questionnaire(conn, pid, TSK, sheet, answered_at=when, now=when)
    conn.commit()
    t = reassessment.trends(conn, pid, ENROLLED, ENROLLED + timedelta(days=20))
    assert [(w.week_start, w.valid_days, w.active_min) for w in t.weeks] == [
        (ENROLLED, 5, 20.0),
        (ENROLLED + timedelta(days=7), 5, 30.0),
        (ENROLLED + timedelta(days=14), 5, 40.0),
    ]
    assert t.change("TSK-11") == (40, 34)
    assert [p.day for p in t.series("TSK-11")] == [ENROLLED, ENROLLED + timedelta(days=14)]
    assert t.series("TSK-11")[0].fraction == pytest.approx((40 - 11) / 33)
