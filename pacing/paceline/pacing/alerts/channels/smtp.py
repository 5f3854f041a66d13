"""E-mail over SMTP with `smtplib`: smtp:// (STARTTLS whenever the server offers it) or smtps://.

With a user in the URL, smtp:// logs in only after STARTTLS: a server that does
not offer it gets no password (an `SmtpCleartextError`, not retried: the URL is
the operator's to change), unless the host is a loopback address
(`cleartext_login_allowed`), where the password never leaves the machine.

TLS verifies the server's certificate and host name against the system's
trust store (`ssl.create_default_context`, which honours `SSL_CERT_FILE`); a
certificate that does not verify ends the attempt before anything is sent,
with an `SmtpTlsError` in the result, and the delivery is retried and in the
end dead-lettered like any other failure.

Each attempt opens a connection, sends one message and quits; alerts are rare
enough that a pooled connection would only add failure modes. The Message-ID
is made from the delivery's stored key, so a resend after a crash (see
`paceline.pacing.alerts.delivery`) carries the same Message-ID and a
receiving system can tell it is the same message.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from paceline.pacing.alerts.channels.base import SendResult
from paceline.pacing.alerts.config import redact_url
from paceline.pacing.alerts.errors import SmtpCleartextError, SmtpTlsError
from paceline.pacing.alerts.message import Message
from paceline.pacing.alerts.retry import Verdict, smtp_verdict


def cleartext_login_allowed(host: str) -> bool:
    """Whether credentials may go to `host` without TLS: only to a loopback address literal.

    127.0.0.0/8 and ::1 never leave the machine. A name, even ``localhost``, is
    resolved by whatever the resolver says, so it gets no exception.
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpChannel:
    """Sends alert e-mail through one SMTP server."""

    def __init__(
        self,
        url: str,
        sender: str,
        timeout_s: float = 10.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.shown = redact_url(url)

    def email(self, message: Message) -> EmailMessage:
        """The e-mail of a message (headers and plain-text body)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address or ""
        mail["Subject"] = message.subject()
        mail["Message-ID"] = message.message_id(self.sender)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        mail.set_content(message.text())
        return mail

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=self.ssl_context
            )
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        client.ehlo()
        if client.has_extn("starttls"):
            client.starttls(context=self.ssl_context)
            client.ehlo()
        elif self.user is not None and not cleartext_login_allowed(self.host):
            # A server that offers no STARTTLS (or a man in the middle stripping it
            # from the EHLO reply) would receive the password in clear: never log in.
            client.close()
            raise SmtpCleartextError(self.shown)
        return client

    def send(self, message: Message) -> SendResult:
        """One attempt: connect, (STARTTLS,) log in if configured, send, quit."""
        if not message.address:
            return SendResult(Verdict.FAILED, "the recipient has no e-mail address")
        mail = self.email(message)
        try:
            with self._connect() as client:
                if self.user is not None:
                    client.login(self.user, self.password or "")
                refused = client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return SendResult(smtp_verdict(code), f"recipient refused: {code} {text!r}", code)
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is the operator's to fix; keep the delivery until then.
            return SendResult(Verdict.RETRY, f"login refused by {self.shown}: {exc.smtp_code}")
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                smtp_verdict(exc.smtp_code), f"{exc.smtp_code} {exc.smtp_error!r}", exc.smtp_code
            )
        except ssl.SSLCertVerificationError as exc:
            error = SmtpTlsError(self.shown, exc.verify_message or str(exc))
            return SendResult(Verdict.RETRY, str(error), error=error)
        except SmtpTlsError as error:
            return SendResult(Verdict.RETRY, str(error), error=error)
        except SmtpCleartextError as error:
            return SendResult(Verdict.FAILED, str(error), error=error)
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(Verdict.RETRY, f"{type(exc).__name__}: {exc} ({self.shown})")
        if refused:
            code, text = next(iter(refused.values()))
            return SendResult(smtp_verdict(code), f"recipient refused: {code} {text!r}", code)
        return SendResult(Verdict.DELIVERED, "accepted", 250)
