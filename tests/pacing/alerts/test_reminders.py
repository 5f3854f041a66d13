"""Diary reminders at the patient's chosen local time, once a day, only when nothing was logged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.alerts import Channels, deliver, due_reminders
from paceline.store import registry
from tests.pacing.alerts.helpers import CONFIG, enrol
from tests.pacing.alerts.servers import smtp_server


def test_a_patient_who_has_not_logged_by_their_time_gets_one_reminder_a_day(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    conn.execute("UPDATE patient SET timezone = 'Europe/Berlin' WHERE patient_id = %s", (pid,))
    records.set_patient_contact(conn, pid, email="p@example.org", diary_reminder_at=time(19))
    logged, _ = enrol(conn)
    records.set_patient_contact(conn, logged, email="q@example.org", diary_reminder_at=time(19))
    conn.execute(
        "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, %s, 3)",
        (logged, datetime(2026, 6, 1, 9, tzinfo=UTC)),
    )
    conn.commit()
    # 18:30 in Berlin (summer time, UTC+2) is before the chosen time.
    assert due_reminders(conn, datetime(2026, 6, 1, 16, 30, tzinfo=UTC), config=CONFIG) == []
    due = due_reminders(conn, datetime(2026, 6, 1, 17, 5, tzinfo=UTC), config=CONFIG)
    conn.commit()
    rows = conn.execute(
        "SELECT channel, recipient, address FROM alert_delivery WHERE delivery_id = ANY(%s)",
        (due,),
    ).fetchall()
    assert rows == [("email", f"patient:{pid}", "p@example.org")]
    assert due_reminders(conn, datetime(2026, 6, 1, 18, tzinfo=UTC), config=CONFIG) == []
    inbox = conn.execute(
        "SELECT count(*) FROM alert_delivery WHERE patient_id = %s AND channel = 'inbox'", (pid,)
    ).fetchone()
    assert inbox == (1,)
    # The next local day: yesterday's reminder resolves and a new one is due.
    next_day = due_reminders(conn, datetime(2026, 6, 2, 17, 5, tzinfo=UTC), config=CONFIG)
    conn.commit()
    assert len(next_day) == 1
    statuses = conn.execute(
        "SELECT status FROM alert WHERE patient_id = %s AND rule_id = 'diary.reminder'"
        " ORDER BY window_start",
        (pid,),
    ).fetchall()
    assert statuses == [("resolved",), ("open",)]
    assert registry.get_patient(conn, logged).patient_id == logged
    none_for_logged = conn.execute(
        "SELECT count(*) FROM alert WHERE patient_id = %s AND rule_id = 'diary.reminder'"
        " AND window_start < '2026-06-02'",
        (logged,),
    ).fetchone()
    assert none_for_logged == (0,)


def test_a_reminder_still_unsent_when_its_day_is_over_is_cancelled_not_sent(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    records.set_patient_contact(conn, pid, email="late@example.org", diary_reminder_at=time(19))
    conn.commit()
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        (did,) = due_reminders(conn, datetime(2026, 6, 1, 19, 5, tzinfo=UTC), config=config)
        conn.commit()
        # The mail server was away until after midnight: yesterday's reminder is stale.
        late = deliver(
            conn,
            did,
            channels=Channels.from_config(config),
            now=datetime(2026, 6, 2, 0, 30, tzinfo=UTC),
        )
        conn.commit()
    assert (late.status, late.attempted, box.messages) == ("cancelled", False, [])
