"""Reminders: the diary at the patient's chosen local time, and questionnaires when due.

A patient who has not logged the diary by their chosen local time hears about
it once that day; a patient with reassessment questionnaires due hears about
it once per occasion (`paceline.pacing.reassessment`), and the reminder is
resolved (by the system, audited) as soon as the occasion is answered, on the
next reminders pass (`DEFAULT_REMINDERS_EVERY`, 15 min): the patient's role
cannot write alerts, so the intake does not. An e-mail of it still waiting
then (held by quiet hours) is cancelled, not sent
(`paceline.pacing.alerts.delivery`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from paceline.pacing import reassessment, records
from paceline.pacing.alerts.config import DeliveryConfig
from paceline.pacing.alerts.policy import (
    DEFAULT_POLICY,
    DIARY_REMINDER,
    REMINDER_TEXT,
    AlertPolicy,
    Episode,
    reminder_due,
)
from paceline.pacing.alerts.raising import ALERT_ACTOR, open_message
from paceline.pacing.flags import Severity
from paceline.store.access import audit


def _resolve(
    conn: psycopg.Connection[Any],
    patient_of: dict[int, int],
    *,
    now: datetime,
    why: str | None = None,
) -> None:
    """Resolve the patient messages `patient_of` lists (alert -> patient) as the system, audited."""
    for aid in records.resolve_alerts(
        conn, list(patient_of), resolution="episode_ended", clinician_id=None, now=now
    ):
        detail: dict[str, Any] = {"alert_id": aid, "resolution": "episode_ended"}
        if why is not None:
            detail["why"] = why
        audit(
            conn,
            actor=ALERT_ACTOR,
            action="alert.resolve",
            obj="alert",
            patient_id=patient_of[aid],
            detail=detail,
        )


def due_reminders(
    conn: psycopg.Connection[Any],
    now: datetime,
    *,
    policy: AlertPolicy = DEFAULT_POLICY,
    config: DeliveryConfig | None = None,
) -> list[int]:
    """Open today's reminder for each patient past their time without a diary; deliveries due now.

    At most one reminder per patient and local day (the alert is unique per
    patient, rule and day). Messages to patients of earlier days (reminders,
    good news) are resolved. The
    patient chose the time, so quiet hours do not hold it back.
    """
    config = DeliveryConfig.from_env() if config is None else config
    due: list[int] = []
    with conn.transaction():
        _resolve(conn, dict(records.stale_patient_messages(conn, now)), now=now)
        for c in records.reminder_candidates(conn, now):
            zone = ZoneInfo(c.timezone)
            if c.reminded_today or not reminder_due(
                now, zone, c.diary_reminder_at, logged_today=c.logged_today
            ):
                continue
            start = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), zone)
            episode = Episode(
                flag_id=0,
                rule_id=DIARY_REMINDER,
                severity=Severity.INFO,
                window_start=start,
                window_end=datetime.combine(
                    start.date() + timedelta(days=1), datetime.min.time(), zone
                ),
                active=True,
                summary=REMINDER_TEXT,
            )
            _, d = open_message(
                conn,
                c.patient_id,
                episode,
                config=config,
                policy=policy,
                now=now,
                quiet_hours=False,
            )
            due += d
    return due


def due_questionnaire_reminders(
    conn: psycopg.Connection[Any],
    now: datetime,
    *,
    policy: AlertPolicy = DEFAULT_POLICY,
    config: DeliveryConfig | None = None,
) -> list[int]:
    """Tell each patient with questionnaires due, once per reassessment occasion.

    The message is unique per patient and occasion (its window is the
    occasion's), so a patient who has not answered yet is not told again every
    pass. A reminder whose occasion has nothing left to answer is resolved
    here (the patient answered every questionnaire it asked for);
    `due_reminders` resolves one still open when the next occasion begins. It
    waits out quiet hours.
    """
    config = DeliveryConfig.from_env() if config is None else config
    due: list[int] = []
    wanted = reassessment.due_reminders(conn, now)
    still_due = {(r.patient_id, r.window_start) for r in wanted}
    with conn.transaction():
        current = records.open_patient_messages(conn, reassessment.QUESTIONNAIRE_REMINDER, now)
        answered = {a: p for a, p, start in current if (p, start) not in still_due}
        _resolve(conn, answered, now=now, why="answered")
    for r in wanted:
        episode = Episode(
            flag_id=0,
            rule_id=reassessment.QUESTIONNAIRE_REMINDER,
            severity=Severity.INFO,
            window_start=r.window_start,
            window_end=r.window_end,
            active=True,
            summary=reassessment.reminder_text(r.due),
        )
        _, d = open_message(conn, r.patient_id, episode, config=config, policy=policy, now=now)
        due += d
    return due
