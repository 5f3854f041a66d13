"""Real servers on loopback for the delivery tests: aiosmtpd for SMTP, http.server for webhooks.

The webhook receiver verifies every request with the `standardwebhooks`
package (the independent oracle) and answers with scripted status codes.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received; `refuse` scripts replies for the first messages."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    #: For each accepted message, whether it came over TLS (STARTTLS).
    tls: list[bool] = field(default_factory=list)
    #: Each login the server accepted: user, password, and whether it came over TLS.
    logins: list[tuple[str, str, bool]] = field(default_factory=list)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept any login, noting what was sent and how (aiosmtpd's authenticator)."""
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode(), session.ssl is not None)
        self.logins.append(login)
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse.pop(0)
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"


def _subject_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@contextmanager
def smtp_server(
    *, tls: ssl.SSLContext | None = None, login: bool = False
) -> Iterator[tuple[str, Mailbox]]:
    """An SMTP server on 127.0.0.1; yields its smtp:// URL and the mailbox.

    With `tls`, the server offers STARTTLS with that context and refuses mail
    sent without it (aiosmtpd's ``require_starttls``). With `login`, it offers
    AUTH (over TLS only when it has `tls`) and notes each login in the mailbox.
    """
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=tls is not None,
        authenticator=box.authenticate if login else None,
        auth_require_tls=tls is not None,
    )
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", box
    finally:
        controller.stop()


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for `host` (an IP address or a name) made now with `cryptography`.

    Returns the certificate's PEM file (what a client must trust) and a server
    context that presents it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paceline test SMTP")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([_subject_name(host)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return cert_file, server


@dataclass
class Received:
    """One request the webhook receiver saw."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    answered: int


@dataclass
class Receiver:
    """A webhook endpoint: scripted answers, every request kept and checked with the oracle."""

    secret: str
    script: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.verified and 200 <= r.answered < 300]


def verify(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """The oracle: standardwebhooks' own verification (raises WebhookVerificationError)."""
    return Webhook(secret).verify(body, headers)


@contextmanager
def webhook_receiver(
    secret: str, *, script: list[int] | None = None, default: int = 200
) -> Iterator[tuple[str, Receiver]]:
    """An HTTP receiver on 127.0.0.1 in a thread; yields its URL and its record."""
    receiver = Receiver(secret, list(script or []), default)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verify(secret, body, headers)
                ok, error = True, None
            except WebhookVerificationError as exc:
                ok, error = False, str(exc)
            status = receiver.answer() if ok else 400
            with receiver.lock:
                receiver.requests.append(Received(headers, body, ok, error, status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/paceline", receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
