"""Webhooks signed per Standard Webhooks (https://www.standardwebhooks.com/).

Headers: `webhook-id` (the delivery's stable id, the same on every retry, for
the receiver to deduplicate), `webhook-timestamp` (Unix seconds of this
attempt, from the wall clock: receivers reject stale ones), and
`webhook-signature`: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``
with the secret's key. Signing uses the `standardwebhooks` package's
`Webhook.sign` (it takes the key in the same `whsec_` form and is the
reference implementation). Redirects are not followed: a webhook's URL is
configured, and following one would send the signed body somewhere else.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from standardwebhooks import Webhook

from paceline.pacing.alerts.channels.base import SendResult
from paceline.pacing.alerts.config import check_secret
from paceline.pacing.alerts.message import Message
from paceline.pacing.alerts.retry import Verdict, http_verdict

USER_AGENT: Final = "Paceline-Alerts/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def body_of(message: Message) -> str:
    """The JSON body (compact, keys sorted: the bytes that are signed)."""
    return json.dumps(message.payload(), separators=(",", ":"), sort_keys=True)


class WebhookChannel:
    """Posts signed JSON to one endpoint."""

    def __init__(
        self,
        url: str,
        secret: str,
        timeout_s: float = 10.0,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        check_secret(secret)
        self.url = url
        self.signer = Webhook(secret)
        self.timeout_s = timeout_s
        self.clock = clock
        self.opener = urllib.request.build_opener(_NoRedirect)

    def headers(self, message: Message, body: str) -> dict[str, str]:
        """The Standard Webhooks headers of one attempt."""
        # Whole seconds, in UTC: `Webhook.sign` replaces (not converts) the zone with UTC.
        at = self.clock().astimezone(UTC).replace(microsecond=0)
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self.signer.sign(message.webhook_id, at, body),
        }

    def send(self, message: Message) -> SendResult:
        """One signed POST; the status code decides what happens next."""
        body = body_of(message)
        request = urllib.request.Request(  # noqa: S310 - the URL is checked to be http(s)
            self.url, data=body.encode(), headers=self.headers(message, body), method="POST"
        )
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            exc.close()
        except TimeoutError as exc:
            return SendResult(Verdict.RETRY, f"timed out: {exc}")
        except (urllib.error.URLError, OSError) as exc:
            return SendResult(Verdict.RETRY, f"{type(exc).__name__}: {exc}")
        return SendResult(http_verdict(status), f"HTTP {status}", status)
