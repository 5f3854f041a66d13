"""STARTTLS against aiosmtpd with a self-signed certificate made in the test.

The server requires STARTTLS, so a message it accepts came over TLS; a client
that does not trust the certificate must refuse it, keep the delivery and
retry it until it is dead-lettered, sending nothing.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from paceline.pacing import records
from paceline.pacing.alerts import Channels, dead_letters, deliver
from paceline.pacing.alerts.channels import SmtpChannel
from paceline.pacing.alerts.channels.smtp import cleartext_login_allowed
from paceline.pacing.alerts.config import EMAIL
from paceline.pacing.alerts.errors import SmtpCleartextError, SmtpTlsError
from paceline.pacing.alerts.message import Message
from paceline.pacing.alerts.retry import MAX_ATTEMPTS, Verdict
from tests.pacing.alerts.helpers import CONFIG, START, enrol, morning_after, raise_flare_risk
from tests.pacing.alerts.servers import Mailbox, self_signed, smtp_server

NOW = morning_after(START)


@dataclass
class TlsServer:
    """An aiosmtpd server that requires STARTTLS with a self-signed certificate."""

    cert: Path
    url: str
    box: Mailbox

    def channels(self, *, trusted: bool) -> Channels:
        """E-mail to the server, trusting its certificate or only the system's trust store."""
        context = ssl.create_default_context(cafile=self.cert if trusted else None)
        config = replace(CONFIG, smtp_url=self.url, webhook_url=None)
        return Channels(
            config, {EMAIL: SmtpChannel(self.url, config.alert_from, ssl_context=context)}
        )


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsServer]:
    cert, server = self_signed(tmp_path)
    with smtp_server(tls=server) as (url, box):
        yield TlsServer(cert, url, box)


def _flare_risk_email(conn: psycopg.Connection[Any], channels: Channels) -> int:
    """A new patient's flare-risk alert; its one e-mail delivery."""
    pid, _ = enrol(conn)
    (did,) = raise_flare_risk(conn, pid, config=channels.config)
    return did


def test_starttls_delivers_to_a_server_whose_certificate_verifies(
    conn: psycopg.Connection[Any], tls: TlsServer
) -> None:
    channels = tls.channels(trusted=True)
    did = _flare_risk_email(conn, channels)
    out = deliver(conn, did, channels=channels, now=NOW)
    conn.commit()
    assert out.status == "delivered"
    assert tls.box.tls == [True]
    row = records.delivery(conn, did)
    assert row is not None
    assert tls.box.messages[0]["Message-ID"] == f"<{row.message_key}@paceline.test>"


def test_a_certificate_that_does_not_verify_is_refused_kept_and_in_the_end_dead_lettered(
    conn: psycopg.Connection[Any], tls: TlsServer
) -> None:
    # The system's trust store does not know the test's certificate.
    untrusting = tls.channels(trusted=False)
    did = _flare_risk_email(conn, untrusting)
    now, statuses = NOW, []
    for _ in range(MAX_ATTEMPTS):
        out = deliver(conn, did, channels=untrusting, now=now)
        conn.commit()
        statuses.append(out.status)
        if out.retry_at is None:
            break
        now = out.retry_at
    channel = untrusting.by_name[EMAIL]
    assert isinstance(channel, SmtpChannel)
    probe = channel.send(
        Message(0, uuid4(), EMAIL, "clinician:0", "dr@clinic.example", "digest", 0, (), "", False)
    )
    assert statuses == ["pending"] * (MAX_ATTEMPTS - 1) + ["dead"]
    assert tls.box.messages == [], "nothing is sent to a server that could not be verified"
    row = records.delivery(conn, did)
    assert row is not None and row.attempts == MAX_ATTEMPTS
    assert row.last_error == f"TLS with {tls.url} refused: self-signed certificate"
    assert did in [d.delivery_id for d in dead_letters(conn)]
    assert probe.verdict is Verdict.RETRY
    assert isinstance(probe.error, SmtpTlsError)
    assert probe.error.server == tls.url


def test_a_delivery_refused_for_its_certificate_is_delivered_once_the_certificate_is_trusted(
    conn: psycopg.Connection[Any], tls: TlsServer
) -> None:
    did = _flare_risk_email(conn, tls.channels(trusted=False))
    first = deliver(conn, did, channels=tls.channels(trusted=False), now=NOW)
    conn.commit()
    assert first.status == "pending" and first.retry_at is not None
    trusting = tls.channels(trusted=True)
    again = deliver(conn, did, channels=trusting, now=first.retry_at)
    conn.commit()
    later = deliver(conn, did, channels=trusting, now=first.retry_at + timedelta(hours=1))
    conn.commit()
    assert again.status == "delivered"
    assert not later.attempted
    assert len(tls.box.messages) == 1 and tls.box.tls == [True]


def _probe() -> Message:
    return Message(
        0, uuid4(), EMAIL, "clinician:0", "dr@clinic.example", "digest", 0, (), "", False
    )


def test_only_a_loopback_address_may_receive_a_login_without_tls() -> None:
    allowed = ["127.0.0.1", "127.0.0.53", "::1"]
    unspecified = "0.0.0.0"  # noqa: S104 - a host refused here, not an address bound
    refused = ["localhost", "mail.clinic.example", "10.0.0.25", "192.168.1.2", "::", unspecified]
    assert [cleartext_login_allowed(h) for h in allowed] == [True] * len(allowed)
    assert [cleartext_login_allowed(h) for h in refused] == [False] * len(refused)


def test_no_password_goes_to_a_named_server_that_offers_no_starttls(
    conn: psycopg.Connection[Any],
) -> None:
    """A server without STARTTLS (or a stripped EHLO reply) never sees the credentials.

    The server listens on 127.0.0.1, but the URL names it `localhost`, as it would
    name any relay: a name is not a loopback address, whatever it resolves to here.
    """
    with smtp_server(login=True) as (url, box):
        port = url.rsplit(":", 1)[1]
        named = f"smtp://alerts:s3cret@localhost:{port}"
        channel = SmtpChannel(named, CONFIG.alert_from)
        result = channel.send(_probe())
        config = replace(CONFIG, smtp_url=named, webhook_url=None)
        channels = Channels(config, {EMAIL: channel})
        did = _flare_risk_email(conn, channels)
        out = deliver(conn, did, channels=channels, now=NOW)
        conn.commit()
    assert result.verdict is Verdict.FAILED
    assert isinstance(result.error, SmtpCleartextError)
    assert result.error.server == "smtp://alerts:***@localhost:" + port
    assert "no STARTTLS" in str(result.error) and "smtps://" in str(result.error)
    assert box.logins == [] and box.messages == []
    # Not retried: the URL is the operator's to change; the inbox lists it as failed.
    assert (out.status, out.retry_at, out.attempts) == ("failed", None, 1)
    assert did in [d.delivery_id for d in dead_letters(conn)]


def test_a_login_without_tls_goes_to_a_loopback_address_only() -> None:
    with smtp_server(login=True) as (url, box):
        host_port = url.removeprefix("smtp://")
        result = SmtpChannel(f"smtp://alerts:s3cret@{host_port}", CONFIG.alert_from).send(_probe())
    assert result.verdict is Verdict.DELIVERED, result.detail
    assert box.logins == [("alerts", "s3cret", False)]
    assert len(box.messages) == 1


def test_a_login_to_a_named_server_goes_over_starttls(tmp_path: Path) -> None:
    cert, server = self_signed(tmp_path, host="localhost")
    with smtp_server(tls=server, login=True) as (url, box):
        port = url.rsplit(":", 1)[1]
        channel = SmtpChannel(
            f"smtp://alerts:s3cret@localhost:{port}",
            CONFIG.alert_from,
            ssl_context=ssl.create_default_context(cafile=cert),
        )
        result = channel.send(_probe())
    assert result.verdict is Verdict.DELIVERED, result.detail
    assert box.logins == [("alerts", "s3cret", True)]
    assert box.tls == [True]
