"""Where the demo's alerts go: a local SMTP sink and a local webhook receiver, both on 127.0.0.1.

The SMTP sink (aiosmtpd) saves every message it is given as an `.eml` file; the
webhook receiver saves every POST as a JSON file with its headers and body and
whether its Standard Webhooks signature verifies with the demo's secret. Both
accept only connections from this machine and only for the demo's lifetime.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20
"""A webhook body larger than this is refused (the demo's alerts are a few kB)."""


def _free_port() -> int:
    # aiosmtpd's Controller needs a port it can connect to for its readiness check,
    # so port 0 cannot be handed to it; ask the kernel for a free one first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class _Names:
    """File names that sort in arrival order and never collide within one process."""

    def __init__(self) -> None:
        self._n = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, suffix: str) -> str:
        with self._lock:
            n = next(self._n)
        return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{n:05d}{suffix}"


class _SaveMessages:
    """An aiosmtpd handler that writes each message's bytes to `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names = _Names()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Save the message as it arrived (headers and body) and accept it."""
        path = self.folder / self.names.next(".eml")
        path.write_bytes(envelope.original_content or envelope.content or b"")
        logger.info("SMTP sink: saved a message for %s as %s", envelope.rcpt_tos, path.name)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Sink:
    """A running sink: where to send, and the folder that fills up."""

    url: str
    folder: Path


@contextmanager
def smtp_sink(folder: Path) -> Iterator[Sink]:
    """Run an SMTP server on 127.0.0.1 that saves every message to `folder`, for the block."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - only the demo needs it

    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    controller = Controller(_SaveMessages(folder), hostname=HOST, port=port)
    controller.start()
    try:
        yield Sink(f"smtp://{HOST}:{port}", folder)
    finally:
        controller.stop()


def webhook_secret() -> str:
    """A fresh Standard Webhooks secret (`whsec_` and 32 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool | None:
    """Whether the signature verifies (None when the `standardwebhooks` package is absent)."""
    try:
        from standardwebhooks.webhooks import Webhook  # noqa: PLC0415 - optional
    except ImportError:
        return None
    try:
        Webhook(secret).verify(body, headers)
    except Exception:  # noqa: BLE001 - any failure means "does not verify"
        return False
    return True


@contextmanager
def webhook_receiver(folder: Path, secret: str) -> Iterator[Sink]:
    """Run an HTTP receiver on 127.0.0.1 that saves every POST to `folder`, for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    names = _Names()

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body.decode("utf-8", "replace")
            record = {
                "path": self.path,
                "headers": headers,
                "verified": _verifies(secret, body, headers),
                "body": payload,
            }
            (folder / names.next(".json")).write_text(json.dumps(record, indent=2))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            logger.info("webhook receiver: %s", format % args)

    server = ThreadingHTTPServer((HOST, 0), Receive)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield Sink(f"http://{HOST}:{server.server_address[1]}/paceline", folder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
