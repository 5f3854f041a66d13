"""The alerts' SQL: alerts, their deliveries (the outbox) and the people they go to.

Kept beside the rest of `paceline.pacing.alerts` rather than in
`paceline.pacing.records`: only this package reads or writes these tables, and
the outbox is the alerts' own room in the layout (DESIGN.md, "Inside pacing/").
No clinical rule lives here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from paceline.pacing.alerts.policy import AlertState, Audience, Episode, Status, Urgency
from paceline.pacing.flags import Severity

# People ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Someone an alert can reach: `recipient` is 'clinician:ID' or 'patient:ID'."""

    recipient: str
    email: str | None
    timezone: str


def care_team(conn: psycopg.Connection[Any], patient_id: int) -> list[Person]:
    """The clinicians on the patient's care team."""
    rows = conn.execute(
        "SELECT c.clinician_id, c.email, c.timezone FROM care_team ct"
        " JOIN clinician c USING (clinician_id) WHERE ct.patient_id = %s ORDER BY c.clinician_id",
        (patient_id,),
    ).fetchall()
    return [Person(f"clinician:{r[0]}", r[1], r[2]) for r in rows]


def patient_person(conn: psycopg.Connection[Any], patient_id: int) -> Person:
    """The patient as a recipient."""
    row = conn.execute(
        "SELECT email, timezone FROM patient WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return Person(f"patient:{patient_id}", row[0], row[1])


def set_patient_contact(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    email: str | None,
    diary_reminder_at: Any,
) -> None:
    """Store the patient's e-mail address and chosen local diary-reminder time."""
    conn.execute(
        "UPDATE patient SET email = %s, diary_reminder_at = %s WHERE patient_id = %s",
        (email, diary_reminder_at, patient_id),
    )


def set_clinician_contact(
    conn: psycopg.Connection[Any], clinician_id: int, *, email: str | None, timezone: str
) -> None:
    """Store a clinician's e-mail address and time zone (for quiet hours and the digest)."""
    conn.execute(
        "UPDATE clinician SET email = %s, timezone = %s WHERE clinician_id = %s",
        (email, timezone, clinician_id),
    )


def on_care_team(conn: psycopg.Connection[Any], clinician_id: int, patient_id: int) -> bool:
    """Whether the clinician may act on the patient's alerts."""
    row = conn.execute(
        "SELECT 1 FROM care_team WHERE clinician_id = %s AND patient_id = %s",
        (clinician_id, patient_id),
    ).fetchone()
    return row is not None


# Flags and alerts -------------------------------------------------------------------------------


def flag_windows(
    conn: psycopg.Connection[Any], flag_ids: Sequence[int]
) -> dict[int, tuple[datetime, datetime]]:
    """The stored window of each flag."""
    rows = conn.execute(
        "SELECT flag_id, window_start, window_end FROM flag WHERE flag_id = ANY(%s)",
        (list(flag_ids),),
    ).fetchall()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def _state(row: dict[str, Any]) -> AlertState:
    notified = row["notified_severity"]
    return AlertState(
        alert_id=row["alert_id"],
        rule_id=row["rule_id"],
        flag_id=row["flag_id"],
        window_start=row["window_start"],
        severity=Severity(row["severity"]),
        status=Status(row["status"]),
        urgency=Urgency(row["urgency"]),
        notified_severity=None if notified is None else Severity(notified),
        last_notified_at=row["last_notified_at"],
        repeats=row["repeats"],
        resolved_at=row["resolved_at"],
        acknowledged=row["acknowledged_at"] is not None,
    )


def latest_alerts(
    conn: psycopg.Connection[Any], patient_id: int, audience: Audience
) -> dict[str, AlertState]:
    """Each rule's most recent alert for the patient."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT DISTINCT ON (rule_id) alert_id, rule_id, flag_id, window_start, severity,"
            " status, urgency, notified_severity, last_notified_at, repeats, resolved_at,"
            " acknowledged_at FROM alert WHERE patient_id = %s AND audience = %s"
            " ORDER BY rule_id, window_start DESC",
            (patient_id, audience.value),
        )
        return {r["rule_id"]: _state(r) for r in cur.fetchall()}


def insert_alert(
    conn: psycopg.Connection[Any],
    patient_id: int,
    episode: Episode,
    *,
    audience: Audience,
    urgency: Urgency,
    now: datetime,
) -> int | None:
    """Open an alert for an episode; None if one for (patient, rule, episode) exists."""
    row = conn.execute(
        "INSERT INTO alert (flag_id, patient_id, rule_id, window_start, window_end, severity,"
        " audience, urgency, summary, detail, opened_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
        " ON CONFLICT (patient_id, rule_id, window_start) DO NOTHING RETURNING alert_id",
        (
            episode.flag_id if episode.flag_id > 0 else None,
            patient_id,
            episode.rule_id,
            episode.window_start,
            episode.window_end,
            episode.severity.value,
            audience.value,
            urgency.value,
            episode.summary,
            json.dumps(episode.detail, default=str, sort_keys=True),
            now,
            now,
            now,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


def continue_alert(
    conn: psycopg.Connection[Any],
    alert_id: int,
    episode: Episode,
    *,
    urgency: Urgency,
    status: Status,
    new_episode: bool,
    now: datetime,
) -> None:
    """Let an alert follow its episode (or the next episode under hysteresis)."""
    conn.execute(
        "UPDATE alert SET flag_id = %s, window_end = %s, severity = %s, urgency = %s,"
        " summary = %s, detail = %s::jsonb, status = %s,"
        " resolved_at = CASE WHEN %s = 'resolved' THEN resolved_at END,"
        " resolution = CASE WHEN %s = 'resolved' THEN resolution END,"
        " episodes = episodes + %s, updated_at = %s WHERE alert_id = %s",
        (
            episode.flag_id,
            episode.window_end,
            episode.severity.value,
            urgency.value,
            episode.summary,
            json.dumps(episode.detail, default=str, sort_keys=True),
            status.value,
            status.value,
            status.value,
            int(new_episode),
            now,
            alert_id,
        ),
    )


def mark_notified(
    conn: psycopg.Connection[Any],
    alert_id: int,
    severity: Severity,
    *,
    repeat: bool,
    now: datetime,
) -> int:
    """Record a push of the alert; returns its notice number (0 for the first)."""
    row = conn.execute(
        "UPDATE alert SET notified_severity = %s, last_notified_at = %s,"
        " repeats = repeats + %s, notices = notices + 1, updated_at = %s WHERE alert_id = %s"
        " RETURNING notices - 1",
        (severity.value, now, int(repeat), now, alert_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class AlertRow:
    """An alert as listed for the dashboard and the CLI."""

    alert_id: int
    patient_id: int
    rule_id: str
    flag_id: int | None
    window_start: datetime
    window_end: datetime | None
    severity: str
    audience: str
    urgency: str
    status: str
    summary: str
    opened_at: datetime
    last_notified_at: datetime | None
    repeats: int
    episodes: int
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: int | None
    resolution: str | None


_ALERT_COLS = sql.SQL(
    "alert_id, patient_id, rule_id, flag_id, window_start, window_end, severity, audience,"
    " urgency, status, summary, opened_at, last_notified_at, repeats, episodes,"
    " acknowledged_at, acknowledged_by, ack_note, resolved_at, resolved_by, resolution"
)


def get_alert(
    conn: psycopg.Connection[Any], alert_id: int, *, for_update: bool = False
) -> AlertRow | None:
    """One alert, optionally locked for a life-cycle change."""
    lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM alert WHERE alert_id = %s{}").format(_ALERT_COLS, lock),
            (alert_id,),
        )
        return cur.fetchone()


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int | None = None,
    clinician_id: int | None = None,
    statuses: Sequence[str] = ("open", "acknowledged"),
    audience: str | None = None,
    limit: int = 500,
) -> list[AlertRow]:
    """Alerts newest first, filtered by patient, care team, status and audience."""
    where = [sql.SQL("status = ANY(%(statuses)s)")]
    params: dict[str, Any] = {"statuses": list(statuses), "limit": limit}
    if patient_id is not None:
        where.append(sql.SQL("patient_id = %(patient)s"))
        params["patient"] = patient_id
    if clinician_id is not None:
        where.append(
            sql.SQL(
                "patient_id IN (SELECT patient_id FROM care_team WHERE clinician_id = %(clin)s)"
            )
        )
        params["clin"] = clinician_id
    if audience is not None:
        where.append(sql.SQL("audience = %(audience)s"))
        params["audience"] = audience
    query = sql.SQL(
        "SELECT {} FROM alert WHERE {} ORDER BY opened_at DESC, alert_id DESC LIMIT %(limit)s"
    ).format(_ALERT_COLS, sql.SQL(" AND ").join(where))
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def acknowledge(
    conn: psycopg.Connection[Any], alert_id: int, *, clinician_id: int, note: str, now: datetime
) -> None:
    """Mark the alert acknowledged by the clinician, with the note."""
    conn.execute(
        "UPDATE alert SET status = 'acknowledged', acknowledged_at = %s, acknowledged_by = %s,"
        " ack_note = %s, updated_at = %s WHERE alert_id = %s",
        (now, clinician_id, note, now, alert_id),
    )


def resolve(
    conn: psycopg.Connection[Any],
    alert_ids: Iterable[int],
    *,
    resolution: str,
    clinician_id: int | None,
    now: datetime,
) -> list[int]:
    """Resolve unresolved alerts; returns the ids that changed."""
    rows = conn.execute(
        "UPDATE alert SET status = 'resolved', resolved_at = %s, resolved_by = %s,"
        " resolution = %s, updated_at = %s WHERE alert_id = ANY(%s) AND status <> 'resolved'"
        " RETURNING alert_id",
        (now, clinician_id, resolution, now, list(alert_ids)),
    ).fetchall()
    return [int(r[0]) for r in rows]


# Deliveries -----------------------------------------------------------------------------------


def insert_delivery(
    conn: psycopg.Connection[Any],
    *,
    alert_id: int,
    patient_id: int,
    alert_ids: Sequence[int],
    notice: int,
    channel: str,
    recipient: str,
    address: str | None,
    kind: str,
    next_attempt_at: datetime | None,
    delivered_at: datetime | None = None,
    now: datetime,
) -> int | None:
    """Write one delivery (None if the (alert, channel, recipient, notice) row exists)."""
    status = "delivered" if delivered_at is not None else "pending"
    row = conn.execute(
        "INSERT INTO alert_delivery (alert_id, patient_id, alert_ids, notice, channel, recipient,"
        " address, kind, status, message_key, next_attempt_at, delivered_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (alert_id, channel, recipient, notice) DO NOTHING RETURNING delivery_id",
        (
            alert_id,
            patient_id,
            list(alert_ids),
            notice,
            channel,
            recipient,
            address,
            kind,
            status,
            uuid.uuid4(),
            next_attempt_at,
            delivered_at,
            now,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as stored."""

    delivery_id: int
    alert_id: int
    patient_id: int
    alert_ids: list[int]
    notice: int
    channel: str
    recipient: str
    address: str | None
    kind: str
    status: str
    message_key: uuid.UUID
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    digest_of: int | None
    created_at: datetime


_DELIVERY_COLS = sql.SQL(
    "delivery_id, alert_id, patient_id, alert_ids, notice, channel, recipient, address, kind,"
    " status, message_key, attempts, next_attempt_at, last_attempt_at, last_error,"
    " delivered_at, digest_of, created_at"
)


def delivery(conn: psycopg.Connection[Any], delivery_id: int) -> DeliveryRow | None:
    """One delivery, unlocked."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM alert_delivery WHERE delivery_id = %s").format(_DELIVERY_COLS),
            (delivery_id,),
        )
        return cur.fetchone()


def claim_delivery(conn: psycopg.Connection[Any], delivery_id: int) -> DeliveryRow | None:
    """Lock one delivery for an attempt; None if another worker holds it (or it does not exist)."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM alert_delivery WHERE delivery_id = %s FOR UPDATE SKIP LOCKED"
            ).format(_DELIVERY_COLS),
            (delivery_id,),
        )
        return cur.fetchone()


def claim_digest_members(
    conn: psycopg.Connection[Any], lead: DeliveryRow, now: datetime
) -> list[DeliveryRow]:
    """Lock and pin the digest rows that travel with `lead` (the same ones on every retry)."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM alert_delivery WHERE status = 'pending' AND kind = 'digest'"
                " AND channel = %(c)s AND recipient = %(r)s AND (digest_of = %(lead)s"
                " OR (digest_of IS NULL AND next_attempt_at <= %(now)s))"
                " ORDER BY delivery_id FOR UPDATE SKIP LOCKED"
            ).format(_DELIVERY_COLS),
            {"c": lead.channel, "r": lead.recipient, "lead": lead.delivery_id, "now": now},
        )
        rows = cur.fetchall()
    ids = [r.delivery_id for r in rows]
    conn.execute(
        "UPDATE alert_delivery SET digest_of = %s WHERE delivery_id = ANY(%s)",
        (lead.delivery_id, ids),
    )
    return rows


def record_attempt(
    conn: psycopg.Connection[Any],
    delivery_ids: Sequence[int],
    *,
    status: str,
    now: datetime,
    next_attempt_at: datetime | None,
    error: str | None,
) -> None:
    """Store the outcome of one attempt on every row the message carried."""
    conn.execute(
        "UPDATE alert_delivery SET status = %s, attempts = attempts + 1, last_attempt_at = %s,"
        " next_attempt_at = %s, last_error = %s,"
        " delivered_at = CASE WHEN %s = 'delivered' THEN %s END WHERE delivery_id = ANY(%s)",
        (status, now, next_attempt_at, error, status, now, list(delivery_ids)),
    )


def set_status(
    conn: psycopg.Connection[Any], delivery_ids: Sequence[int], status: str, error: str
) -> None:
    """Change deliveries' status without an attempt (a disabled endpoint)."""
    conn.execute(
        "UPDATE alert_delivery SET status = %s, last_error = %s, next_attempt_at = NULL"
        " WHERE delivery_id = ANY(%s)",
        (status, error, list(delivery_ids)),
    )


def alerts_of(conn: psycopg.Connection[Any], alert_ids: Sequence[int]) -> list[AlertRow]:
    """The alerts a message carries, most severe first."""
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM alert WHERE alert_id = ANY(%s) ORDER BY"
                " array_position(ARRAY['critical', 'warning', 'info'], severity), alert_id"
            ).format(_ALERT_COLS),
            (list(alert_ids),),
        )
        return cur.fetchall()


def due(conn: psycopg.Connection[Any], now: datetime, *, kind: str, limit: int) -> list[int]:
    """Pending deliveries of `kind` due by `now` (for digests: one lead per recipient and channel)."""
    if kind == "digest":
        rows = conn.execute(
            "SELECT min(delivery_id) FROM alert_delivery WHERE status = 'pending'"
            " AND kind = 'digest' AND next_attempt_at <= %s"
            " AND (digest_of IS NULL OR digest_of = delivery_id)"
            " GROUP BY channel, recipient ORDER BY 1 LIMIT %s",
            (now, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT delivery_id FROM alert_delivery WHERE status = 'pending'"
            " AND kind = 'immediate' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, delivery_id LIMIT %s",
            (now, limit),
        ).fetchall()
    return [int(r[0]) for r in rows]


def dead_letters(conn: psycopg.Connection[Any], *, limit: int = 500) -> list[DeliveryRow]:
    """Deliveries that gave up (dead-lettered, refused or to a disabled endpoint), newest first."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM alert_delivery WHERE status IN ('dead', 'failed', 'disabled')"
                " ORDER BY last_attempt_at DESC NULLS LAST, delivery_id DESC LIMIT %s"
            ).format(_DELIVERY_COLS),
            (limit,),
        )
        return cur.fetchall()


def deliveries_of(conn: psycopg.Connection[Any], alert_id: int) -> list[DeliveryRow]:
    """Every delivery that carries the alert."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM alert_delivery WHERE %s = ANY(alert_ids) ORDER BY delivery_id"
            ).format(_DELIVERY_COLS),
            (alert_id,),
        )
        return cur.fetchall()


# Endpoints ------------------------------------------------------------------------------------


def endpoint_disabled(conn: psycopg.Connection[Any], endpoint: str) -> bool:
    """Whether the push endpoint answered 410 Gone and has not been enabled since."""
    row = conn.execute(
        "SELECT disabled_at IS NOT NULL FROM alert_endpoint WHERE endpoint = %s", (endpoint,)
    ).fetchone()
    return bool(row and row[0])


def disable_endpoint(
    conn: psycopg.Connection[Any], endpoint: str, *, reason: str, now: datetime
) -> None:
    """Stop pushing to an endpoint."""
    conn.execute(
        "INSERT INTO alert_endpoint (endpoint, disabled_at, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (endpoint) DO UPDATE SET disabled_at = excluded.disabled_at,"
        " reason = excluded.reason",
        (endpoint, now, reason),
    )


def enable_endpoint(conn: psycopg.Connection[Any], endpoint: str) -> None:
    """Push to an endpoint again (an operator fixed it)."""
    conn.execute(
        "UPDATE alert_endpoint SET disabled_at = NULL, reason = NULL WHERE endpoint = %s",
        (endpoint,),
    )


# Reminders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderCandidate:
    """A patient with a chosen reminder time and whether they logged today."""

    patient_id: int
    timezone: str
    diary_reminder_at: Any
    logged_today: bool
    reminded_today: bool


def reminder_candidates(conn: psycopg.Connection[Any], now: datetime) -> list[ReminderCandidate]:
    """Patients who chose a reminder time, with today's (their local today's) diary state."""
    with conn.cursor(row_factory=class_row(ReminderCandidate)) as cur:
        cur.execute(
            "SELECT p.patient_id, p.timezone, p.diary_reminder_at,"
            " EXISTS (SELECT 1 FROM self_report s WHERE s.patient_id = p.patient_id"
            "   AND s.reported_at >= d.start AND s.reported_at < d.stop) AS logged_today,"
            " EXISTS (SELECT 1 FROM alert a WHERE a.patient_id = p.patient_id"
            "   AND a.rule_id = 'diary.reminder' AND a.window_start = d.start) AS reminded_today"
            " FROM patient p, LATERAL (SELECT date_trunc('day', %(now)s AT TIME ZONE p.timezone)"
            "   AS local_day) l, LATERAL (SELECT l.local_day AT TIME ZONE p.timezone AS start,"
            "   (l.local_day + interval '1 day') AT TIME ZONE p.timezone AS stop) d"
            " WHERE p.diary_reminder_at IS NOT NULL ORDER BY p.patient_id",
            {"now": now},
        )
        return cur.fetchall()


def inbox_alert_ids(conn: psycopg.Connection[Any], recipient: str, *, limit: int) -> list[int]:
    """The alerts in `recipient`'s dashboard inbox, newest delivery first."""
    rows = conn.execute(
        "SELECT alert_id FROM alert_delivery WHERE channel = 'inbox' AND recipient = %s"
        " ORDER BY delivery_id DESC LIMIT %s",
        (recipient, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def stale_patient_messages(conn: psycopg.Connection[Any], now: datetime) -> list[tuple[int, int]]:
    """(alert, patient) of unresolved patient messages whose window ended by `now`, locked."""
    rows = conn.execute(
        "SELECT alert_id, patient_id FROM alert WHERE audience = 'patient'"
        " AND status <> 'resolved' AND window_end <= %s FOR UPDATE",
        (now,),
    ).fetchall()
    return [(int(a), int(p)) for a, p in rows]
