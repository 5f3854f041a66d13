"""Delivery against real servers on loopback: aiosmtpd, and an HTTP receiver checking signatures.

The receiver verifies every request with the `standardwebhooks` package;
deliveries are driven with `deliver` and a clock moved to each retry time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from paceline.pacing import records
from paceline.pacing.alerts import (
    Channels,
    dead_letters,
    deliver,
    due_deliveries,
    due_digests,
    resolve,
)
from paceline.pacing.alerts.channels import WebhookChannel
from paceline.pacing.alerts.config import DeliveryConfig
from paceline.pacing.alerts.retry import MAX_ATTEMPTS, Verdict, backoff, http_verdict
from tests.pacing.alerts.helpers import (
    CONFIG,
    SECRET,
    START,
    enrol,
    morning_after,
    raise_flare_risk,
)
from tests.pacing.alerts.servers import smtp_server, verify, webhook_receiver

NOW = morning_after(START)


def hook_config(url: str, **kw: Any) -> DeliveryConfig:
    return replace(CONFIG, smtp_url=None, webhook_url=url, **kw)


def row_of(conn: psycopg.Connection[Any], did: int) -> records.DeliveryRow:
    row = records.delivery(conn, did)
    assert row is not None
    return row


def attempt_then_crash(conn: psycopg.Connection[Any], did: int, channels: Channels) -> str:
    """One attempt whose transaction never commits (the process died after the send)."""
    status = ""
    with conn.transaction():
        status = deliver(conn, did, channels=channels, now=NOW).status
        raise psycopg.Rollback
    return status


def webhook_delivery(due: list[int], conn: psycopg.Connection[Any]) -> int:
    (did,) = [d for d in due if row_of(conn, d).channel == "webhook"]
    return did


def drive(
    conn: psycopg.Connection[Any],
    did: int,
    channels: Channels,
    *,
    start: datetime = NOW,
    limit: int = 20,
) -> list[Any]:
    """Attempt, then move the clock to each retry time, until the delivery stops being pending."""
    rng = random.Random(7)
    now, outcomes = start, []
    for _ in range(limit):
        out = deliver(conn, did, channels=channels, now=now, rng=rng)
        conn.commit()
        outcomes.append(out)
        if out.retry_at is None:
            break
        now = out.retry_at
    return outcomes


def test_a_receiver_that_fails_twice_gets_exactly_one_accepted_delivery_after_three_attempts(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET, script=[503, 500]) as (url, receiver):
        config = hook_config(url)
        did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
        channels = Channels.from_config(config)
        outcomes = drive(conn, did, channels)
        assert [o.status for o in outcomes] == ["pending", "pending", "delivered"]
        again = deliver(conn, did, channels=channels, now=NOW + timedelta(days=3))
        conn.commit()
        assert again.status == "delivered" and not again.attempted
    assert len(receiver.requests) == 3
    assert all(r.verified for r in receiver.requests)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1, "stable webhook-id"
    assert len(receiver.accepted) == 1
    body = json.loads(receiver.accepted[0].body)
    assert body["alerts"][0]["rule_id"] == "flare.risk_high"
    assert body["link"].startswith("https://dash.example/")
    row = records.delivery(conn, did)
    assert row is not None and row.attempts == 3 and row.delivered_at is not None
    assert due_deliveries(conn, NOW + timedelta(days=3)) == []


def test_a_receiver_that_always_answers_500_ends_dead_lettered_after_about_a_day(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET, default=500) as (url, receiver):
        config = hook_config(url)
        did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
        outcomes = drive(conn, did, Channels.from_config(config))
    assert [o.status for o in outcomes] == ["pending"] * (MAX_ATTEMPTS - 1) + ["dead"]
    assert len(receiver.requests) == MAX_ATTEMPTS
    row = records.delivery(conn, did)
    assert row is not None and row.last_attempt_at is not None
    span = row.last_attempt_at - NOW
    assert timedelta(hours=18) < span < timedelta(hours=30)
    assert did in [d.delivery_id for d in dead_letters(conn)]
    assert row.last_error == "HTTP 500"


def test_410_disables_the_endpoint_and_later_deliveries_are_not_attempted(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    other, _ = enrol(conn)
    with webhook_receiver(SECRET, script=[410]) as (url, receiver):
        config = hook_config(url)
        first = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
        second = webhook_delivery(raise_flare_risk(conn, other, config=config), conn)
        channels = Channels.from_config(config)
        assert [o.status for o in drive(conn, first, channels)] == ["disabled"]
        out = deliver(conn, second, channels=channels, now=NOW)
        conn.commit()
        third, _ = enrol(conn)
        later = raise_flare_risk(conn, third, config=config)
    assert out.status == "disabled" and not out.attempted
    assert len(receiver.requests) == 1
    assert records.endpoint_disabled(conn, "endpoint:webhook")
    assert [row_of(conn, d).channel for d in later] == []
    records.enable_endpoint(conn, "endpoint:webhook")
    conn.commit()
    assert not records.endpoint_disabled(conn, "endpoint:webhook")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(400, "failed"), (404, "failed"), (408, "pending"), (429, "pending"), (302, "failed")],
)
def test_4xx_other_than_408_and_429_are_not_retried(
    conn: psycopg.Connection[Any], status: int, verdict: str
) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET, script=[status]) as (url, receiver):
        config = hook_config(url)
        did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
        out = deliver(conn, did, channels=Channels.from_config(config), now=NOW)
        conn.commit()
    assert out.status == verdict
    assert len(receiver.requests) == 1


def test_an_unreachable_endpoint_is_retried(conn: psycopg.Connection[Any]) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET) as (url, _):
        pass  # the port is closed again: connections are refused
    config = hook_config(url)
    did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
    out = deliver(conn, did, channels=Channels.from_config(config), now=NOW)
    conn.commit()
    assert out.status == "pending" and out.retry_at is not None and out.retry_at > NOW
    assert out.error is not None and "Connection refused" in out.error


def test_the_oracle_rejects_a_tampered_body_an_old_timestamp_and_a_wrong_key(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET) as (url, receiver):
        config = hook_config(url)
        did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
        drive(conn, did, Channels.from_config(config))
    (got,) = receiver.requests
    assert got.verified
    verify(SECRET, got.body, got.headers)
    # The signature is the spec's HMAC, computed here by hand as a second check.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers["webhook-signature"] == f"v1,{expected}"
    tampered = got.body.replace(b"flare.risk_high", b"flare.risk_low_")
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(SECRET, tampered, got.headers)
    other = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
    with pytest.raises(WebhookVerificationError):
        verify(other, got.body, got.headers)

    # A channel whose clock is ten minutes slow sends a timestamp the oracle calls too old.
    with webhook_receiver(SECRET) as (url, receiver):
        slow = WebhookChannel(url, SECRET, clock=lambda: datetime.now(UTC) - timedelta(minutes=10))
        channels = Channels(hook_config(url), {"webhook": slow})
        second, _ = enrol(conn)
        did2 = webhook_delivery(raise_flare_risk(conn, second, config=hook_config(url)), conn)
        out = deliver(conn, did2, channels=channels, now=NOW)
        conn.commit()
    (old,) = receiver.requests
    assert not old.verified and old.error == "Message timestamp too old"
    assert out.status == "failed"  # the receiver answered 400


def test_minimum_necessary_leaves_words_and_values_out_unless_the_channel_allows_them(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    with webhook_receiver(SECRET) as (url, receiver):
        bare = hook_config(url)
        drive(
            conn,
            webhook_delivery(raise_flare_risk(conn, pid, config=bare), conn),
            Channels.from_config(bare),
        )
        rich = hook_config(url, detail=frozenset({"webhook"}))
        second, _ = enrol(conn)
        drive(
            conn,
            webhook_delivery(raise_flare_risk(conn, second, config=rich), conn),
            Channels.from_config(rich),
        )
    plain, detailed = (json.loads(r.body) for r in receiver.requests)
    assert set(plain["alerts"][0]) == {
        "alert_id",
        "patient_id",
        "rule_id",
        "severity",
        "status",
        "window_start",
        "window_end",
    }
    assert b"2.5 points" not in receiver.requests[0].body
    assert "pain 2.5 points above your usual" in detailed["alerts"][0]["summary"]


def test_email_carries_a_stable_message_id_and_a_resend_after_a_crash_repeats_it(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        due = raise_flare_risk(conn, pid, config=config)
        (did,) = due
        channels = Channels.from_config(config)
        # The crash window: the server accepted the message, the commit never happened.
        assert attempt_then_crash(conn, did, channels) == "delivered"
        assert row_of(conn, did).status == "pending"
        again = deliver(conn, did, channels=channels, now=NOW)
        conn.commit()
        assert again.status == "delivered"
        third = deliver(conn, did, channels=channels, now=NOW + timedelta(hours=1))
        conn.commit()
        assert not third.attempted
    assert len(box.messages) == 2
    first, resent = box.messages
    assert first["Message-ID"] == resent["Message-ID"]
    key = row_of(conn, did).message_key
    assert first["Message-ID"] == f"<{key}@paceline.test>"
    assert first["From"] == "alerts@paceline.test"
    clinician_email = conn.execute(
        "SELECT email FROM clinician WHERE clinician_id = %s", (team[0],)
    ).fetchone()
    assert clinician_email is not None and box.envelopes[0][1] == [clinician_email[0]]
    body = first.get_payload()
    assert isinstance(body, str)
    assert "flare.risk_high" in body and "https://dash.example/" in body
    assert "2.5 points" not in body and "pain" not in body.lower().replace("paceline", "")


def test_a_transient_smtp_refusal_is_retried_and_a_permanent_one_is_not(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    other, _ = enrol(conn)
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        channels = Channels.from_config(config)
        box.refuse = ["451 4.3.0 try again later"]
        (did,) = raise_flare_risk(conn, pid, config=config)
        outcomes = drive(conn, did, channels)
        box.refuse = ["550 5.1.1 no such mailbox"]
        (did2,) = raise_flare_risk(conn, other, config=config)
        refused = drive(conn, did2, channels)
    assert [o.status for o in outcomes] == ["pending", "delivered"]
    assert [o.status for o in refused] == ["failed"]
    assert len(box.messages) == 1


def test_a_digest_sends_one_email_per_clinician_for_every_waiting_alert(
    conn: psycopg.Connection[Any],
) -> None:
    from paceline.pacing.alerts import raise_alerts
    from paceline.pacing.engine import persist_flags
    from paceline.pacing.flags import DaySignal, Severity, episodes
    from paceline.pacing.rules.overexertion import OVER_QUOTA
    from paceline.store import registry
    from tests.pacing.alerts.helpers import evaluation_of

    pid, team = enrol(conn)
    second, _ = enrol(conn)
    registry.assign_care_team(conn, clinician_id=team[0], patient_id=second)
    conn.commit()
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        for p in (pid, second):
            ctx = records.patient_context(conn, p)
            signal = DaySignal(
                START,
                enter=True,
                hold=True,
                severity=Severity.WARNING,
                evidence={"rule": "Over quota"},
            )
            outcomes, resolved = persist_flags(conn, ctx, START, episodes(OVER_QUOTA, [signal]))
            assert (
                raise_alerts(
                    conn, evaluation_of(p, START, outcomes, resolved), now=NOW, config=config
                )
                == []
            )
            conn.commit()
        assert due_digests(conn, NOW) == []
        at = NOW.replace(hour=8) + timedelta(days=1)
        leads = due_digests(conn, at)
        assert len(leads) == 2  # one per clinician: team[0] (both patients) and second's own
        for lead in leads:
            assert (
                deliver(conn, lead, channels=Channels.from_config(config), now=at).status
                == "delivered"
            )
            conn.commit()
        assert due_digests(conn, at + timedelta(days=1)) == []
    subjects = sorted(m["Subject"] for m in box.messages)
    assert subjects == ["Paceline daily digest: 1 alert(s)", "Paceline daily digest: 2 alert(s)"]


def test_an_alert_resolved_before_its_push_is_sent_is_cancelled_not_sent_and_audited(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    with smtp_server() as (url, box), webhook_receiver(SECRET) as (hook, receiver):
        config = replace(CONFIG, smtp_url=url, webhook_url=hook)
        channels = Channels.from_config(config)
        due = raise_flare_risk(conn, pid, config=config)
        assert {row_of(conn, d).channel for d in due} == {"email", "webhook"}
        (alert_id,) = {row_of(conn, d).alert_id for d in due}
        # The clinician resolved it from the inbox before any worker took the pushes.
        resolve(conn, alert_id, clinician_id=team[0], note="seen in clinic", now=NOW)
        outcomes = [deliver(conn, d, channels=channels, now=NOW) for d in due]
        conn.commit()
        again = [deliver(conn, d, channels=channels, now=NOW + timedelta(hours=1)) for d in due]
        conn.commit()
    assert [o.status for o in outcomes] == ["cancelled", "cancelled"]
    assert not any(o.attempted for o in outcomes + again)
    assert box.messages == [] and receiver.requests == []
    rows = [row_of(conn, d) for d in due]
    assert all(r.status == "cancelled" and r.attempts == 0 for r in rows)
    assert all(r.last_error == "its alerts were over (resolved) before it was sent" for r in rows)
    assert not set(due_deliveries(conn, NOW + timedelta(days=1))) & set(due), "nothing left"
    assert not {d.delivery_id for d in dead_letters(conn)} & set(due), "not a failure"
    audits = conn.execute(
        "SELECT actor, detail->'delivery_ids' FROM audit_log WHERE patient_id = %s"
        " AND action = 'alert.delivery.cancelled' ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert sorted(ids for _, ids in audits) == sorted([d] for d in due)
    assert {actor for actor, _ in audits} == {"alert-policy"}


def test_a_message_of_several_alerts_leaves_the_resolved_ones_out(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    with smtp_server() as (url, box):
        config = replace(CONFIG, smtp_url=url, webhook_url=None)
        (did,) = raise_flare_risk(conn, pid, config=config)
        (first,) = row_of(conn, did).alert_ids
        # Another alert to the same e-mail address, grouped with the first into one
        # message by hand (as one evaluation's pushes are): the first is resolved meanwhile.
        neighbour, _ = enrol(conn)
        (other,) = raise_flare_risk(conn, neighbour, config=config)
        second = row_of(conn, other).alert_id
        conn.execute(
            "UPDATE alert_delivery SET alert_ids = %s WHERE delivery_id = %s",
            ([first, second], other),
        )
        resolve(conn, first, clinician_id=team[0], note="rang", now=NOW)
        sent = deliver(conn, other, channels=Channels.from_config(config), now=NOW)
        conn.commit()
    assert sent.status == "delivered"
    (mail,) = box.messages
    raw = mail.get_payload(decode=True)
    assert isinstance(raw, bytes)
    assert f"alert {second}," in raw.decode() and f"alert {first}," not in raw.decode()


def test_backoff_doubles_with_bounded_jitter_and_statuses_classify() -> None:
    rng = random.Random(1)
    delays = [backoff(n, rng).total_seconds() for n in range(1, 8)]
    for n, d in enumerate(delays):
        assert 0.8 * 680 * 2**n <= d <= 1.2 * 680 * 2**n
    assert http_verdict(204) is Verdict.DELIVERED
    assert http_verdict(503) is Verdict.RETRY
    assert http_verdict(410) is Verdict.GONE
    assert http_verdict(401) is Verdict.FAILED


def test_the_worker_role_can_raise_deliver_and_read_dead_letters(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = enrol(conn)
    conn.execute("SET ROLE paceline_worker")
    conn.commit()
    try:
        with webhook_receiver(SECRET, script=[410]) as (url, receiver):
            config = hook_config(url)
            did = webhook_delivery(raise_flare_risk(conn, pid, config=config), conn)
            assert [o.status for o in drive(conn, did, Channels.from_config(config))] == [
                "disabled"
            ]
        assert did in [d.delivery_id for d in dead_letters(conn)]
        assert len(receiver.accepted) == 0 and len(receiver.requests) == 1
    finally:
        conn.rollback()
        conn.execute("RESET ROLE")
        records.enable_endpoint(conn, "endpoint:webhook")
        conn.commit()
