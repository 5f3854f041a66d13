"""One delivery attempt at a time, recorded in the caller's transaction; what is due when.

`deliver` locks the delivery row (`FOR UPDATE SKIP LOCKED`: a second worker
holding the same id moves on), sends once, and records the attempt on that
row before the caller commits. A delivered row is never sent again.

The one window for a duplicate: SMTP (or the webhook receiver) accepted the
message and the process died, or the database went away, before the
caller's commit. The row is then still pending and is sent again on the next
attempt, with the same Message-ID (e-mail) and the same `webhook-id`
(webhook), both made from the row's stored `message_key`, so the receiver
can recognise the resend. Nothing else resends: a failure to record is a
failure of the whole transaction, and the lock keeps two workers apart.

A delivery whose alerts were all resolved before it is sent (or, for a
message to the patient, whose window is over) is cancelled
(status ``cancelled``, audited as ``alert.delivery.cancelled``), not sent: an
episode that ended while the message waited (held by quiet hours, for the
digest, or for a retry), a reminder the patient has answered, or a history
back-filled at once (the demo) is in the inbox with its resolution, and an
e-mail about it would be stale. A message that carries several alerts (a
grouped push, a digest) leaves out the resolved ones and is sent with the
rest, under its lead row's key. A delivery that was sent is
never cancelled: resolving an alert recalls nothing.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.alerts.channels import Channels, SendResult
from paceline.pacing.alerts.config import WEBHOOK
from paceline.pacing.alerts.errors import UnknownDeliveryError
from paceline.pacing.alerts.message import Item, Message, render
from paceline.pacing.alerts.raising import ALERT_ACTOR
from paceline.pacing.alerts.retry import MAX_ATTEMPTS, Verdict, backoff
from paceline.store.access import audit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one `deliver` call did: `status` is the row's status after it, or 'busy'."""

    delivery_id: int
    status: str
    attempted: bool
    attempts: int
    next_attempt_at: datetime | None
    error: str | None = None

    @property
    def retry_at(self) -> datetime | None:
        """When to try again (None unless the delivery is still pending)."""
        return self.next_attempt_at if self.status == "pending" else None


def _over(alert: records.AlertRow, now: datetime) -> bool:
    """Whether a message about `alert` would be stale: it is resolved, or its day is over.

    A message to the patient (a diary reminder, good news) is about its window
    (`due_reminders` resolves it when the window ends, on its next pass): one
    still waiting when the window is over is stale already.
    """
    if alert.status == "resolved":
        return True
    return alert.audience == "patient" and alert.window_end is not None and alert.window_end <= now


def _message(
    row: records.DeliveryRow,
    members: list[records.DeliveryRow],
    channels: Channels,
    alerts: list[records.AlertRow],
    now: datetime,
) -> Message:
    items = [
        Item(
            a.alert_id,
            a.patient_id,
            a.rule_id,
            a.severity,
            a.status,
            a.audience,
            a.window_start,
            a.window_end,
            a.summary,
        )
        for a in alerts
        if not _over(a, now)
    ]
    return render(
        delivery_id=row.delivery_id,
        message_key=row.message_key,
        channel=row.channel,
        recipient=row.recipient,
        address=row.address,
        kind=row.kind,
        notice=row.notice,
        items=items,
        dashboard_url=channels.config.dashboard_url,
        detail=row.channel in channels.config.detail,
        news="; ".join(m.news for m in members if m.news) or None,
    )


def _audit(
    conn: psycopg.Connection[Any],
    members: list[records.DeliveryRow],
    status: str,
    error: str | None,
) -> None:
    for pid in sorted({m.patient_id for m in members}):
        audit(
            conn,
            actor=ALERT_ACTOR,
            action=f"alert.delivery.{status}",
            obj="alert_delivery",
            patient_id=pid,
            detail={
                "delivery_ids": [m.delivery_id for m in members if m.patient_id == pid],
                "channel": members[0].channel,
                "recipient": members[0].recipient,
                "error": error,
            },
        )


def deliver(
    conn: psycopg.Connection[Any],
    delivery_id: int,
    *,
    channels: Channels,
    now: datetime,
    rng: random.Random | None = None,
) -> DeliveryOutcome:
    """Make one attempt at a due delivery and record it (nothing if delivered or not yet due)."""
    with conn.transaction():
        row = records.claim_delivery(conn, delivery_id)
        if row is None:
            current = records.delivery(conn, delivery_id)
            if current is None:
                raise UnknownDeliveryError(delivery_id)
            return DeliveryOutcome(
                delivery_id, "busy", False, current.attempts, current.next_attempt_at
            )
        if row.status != "pending" or (row.next_attempt_at and row.next_attempt_at > now):
            return DeliveryOutcome(
                delivery_id, row.status, False, row.attempts, row.next_attempt_at, row.last_error
            )
        members = [row]
        if row.kind == "digest":
            members += [
                m
                for m in records.claim_digest_members(conn, row, now)
                if m.delivery_id != row.delivery_id
            ]
        alerts = records.alerts_of(conn, sorted({a for m in members for a in m.alert_ids}))
        live = {a.alert_id for a in alerts if not _over(a, now)}
        stale = [m for m in members if not live.intersection(m.alert_ids)]
        if len(stale) < len(members):
            # The lead row carries the message (its key, its retries) while anything in
            # it is live; only the other stale rows of a digest drop out.
            stale = [m for m in stale if m.delivery_id != row.delivery_id]
        if stale:
            over = "its alerts were over (resolved) before it was sent"
            records.set_delivery_status(conn, [m.delivery_id for m in stale], "cancelled", over)
            _audit(conn, stale, "cancelled", over)
            members = [m for m in members if m not in stale]
            if not members:
                return DeliveryOutcome(delivery_id, "cancelled", False, row.attempts, None, over)
        ids = [m.delivery_id for m in members]
        if row.channel == WEBHOOK and records.endpoint_disabled(conn, row.recipient):
            gone = "the endpoint is disabled (it answered 410 Gone)"
            records.set_delivery_status(conn, ids, "disabled", gone)
            _audit(conn, members, "disabled", gone)
            return DeliveryOutcome(delivery_id, "disabled", False, row.attempts, None, gone)
        channel = channels.by_name.get(row.channel)
        if channel is None:
            result = SendResult(Verdict.RETRY, f"channel {row.channel} is not configured")
        else:
            result = channel.send(_message(row, members, channels, alerts, now))
        attempts = row.attempts + 1
        next_at: datetime | None = None
        if result.verdict is Verdict.DELIVERED:
            status = "delivered"
        elif result.verdict is Verdict.GONE:
            status = "disabled"
            records.disable_endpoint(conn, row.recipient, reason=result.detail, now=now)
        elif result.verdict is Verdict.FAILED:
            status = "failed"
        elif attempts >= MAX_ATTEMPTS:
            status = "dead"
        else:
            status = "pending"
            next_at = now + backoff(attempts, rng)
        error = None if status == "delivered" else result.detail
        records.record_attempt(
            conn, ids, status=status, now=now, next_attempt_at=next_at, error=error
        )
        if status != "pending":
            _audit(conn, members, status, error)
        logger.info(
            "delivery %s (%s to %s) attempt %s: %s, %s",
            delivery_id,
            row.channel,
            row.recipient,
            attempts,
            status,
            result.detail,
        )
    return DeliveryOutcome(delivery_id, status, True, attempts, next_at, error)


def due_deliveries(conn: psycopg.Connection[Any], now: datetime, *, limit: int = 1000) -> list[int]:
    """Pending immediate deliveries due by `now` (first tries held by quiet hours, and retries)."""
    return records.due_deliveries(conn, now, kind="immediate", limit=limit)


def due_digests(conn: psycopg.Connection[Any], now: datetime, *, limit: int = 1000) -> list[int]:
    """One delivery per recipient and channel whose digest is due; `deliver` sends the lot."""
    return records.due_deliveries(conn, now, kind="digest", limit=limit)
