"""Delivery settings from `PACELINE_*` environment variables.

Their defaults and meanings are in the one settings table,
`paceline.cli.settings.SETTINGS`, which `paceline --help` prints.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from paceline.pacing.alerts.errors import ChannelConfigError

INBOX: Final = "inbox"
EMAIL: Final = "email"
WEBHOOK: Final = "webhook"
CHANNELS: Final = (INBOX, EMAIL, WEBHOOK)
#: The recipient key of the one webhook endpoint a deployment has.
WEBHOOK_ENDPOINT: Final = "endpoint:webhook"


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_smtp(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ChannelConfigError("PACELINE_SMTP_URL", redact_url(url), "use smtp:// or smtps://")
    try:
        parts.port  # noqa: B018 - parsing the port raises on a bad one
    except ValueError:
        raise ChannelConfigError("PACELINE_SMTP_URL", redact_url(url), "bad port") from None
    if not parts.hostname:
        raise ChannelConfigError("PACELINE_SMTP_URL", redact_url(url), "no host")
    return url


def _check_webhook(url: str, secret: str | None) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError("PACELINE_WEBHOOK_URL", url, "use an http:// or https:// URL")
    if not secret:
        raise ChannelConfigError(
            "PACELINE_WEBHOOK_SECRET", "", "required when PACELINE_WEBHOOK_URL is set"
        )
    check_secret(secret)
    return url


def check_secret(secret: str) -> bytes:
    """The key bytes of a Standard Webhooks secret (`whsec_` + base64), or `ChannelConfigError`."""
    shown = secret[:6] + "…"
    if not secret.startswith("whsec_"):
        raise ChannelConfigError("PACELINE_WEBHOOK_SECRET", shown, "must start with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ChannelConfigError(
            "PACELINE_WEBHOOK_SECRET", shown, "the part after whsec_ is not base64"
        ) from None
    if len(key) < 24:
        raise ChannelConfigError(
            "PACELINE_WEBHOOK_SECRET", shown, "the key must be at least 24 bytes (192 bits)"
        )
    return key


@dataclass(frozen=True)
class DeliveryConfig:
    """Where alerts go beyond the inbox, and how much they may say there."""

    smtp_url: str | None = None
    alert_from: str = "paceline@localhost"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    dashboard_url: str = "http://localhost:8501"
    detail: frozenset[str] = frozenset()
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeliveryConfig:
        """Read and check the settings (default: the process environment)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        smtp = get("PACELINE_SMTP_URL")
        hook, secret = get("PACELINE_WEBHOOK_URL"), get("PACELINE_WEBHOOK_SECRET")
        detail = frozenset(
            c.strip() for c in (get("PACELINE_ALERT_DETAIL") or "").split(",") if c.strip()
        )
        if not detail <= {EMAIL, WEBHOOK}:
            raise ChannelConfigError(
                "PACELINE_ALERT_DETAIL", ",".join(sorted(detail)), "list email and/or webhook"
            )
        timeout_text = get("PACELINE_ALERT_TIMEOUT") or "10"
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 300:
            raise ChannelConfigError(
                "PACELINE_ALERT_TIMEOUT", timeout_text, "seconds, more than 0 and at most 300"
            )
        return cls(
            smtp_url=None if smtp is None else _check_smtp(smtp),
            alert_from=get("PACELINE_ALERT_FROM") or cls.alert_from,
            webhook_url=None if hook is None else _check_webhook(hook, secret),
            webhook_secret=secret if hook else None,
            dashboard_url=(get("PACELINE_DASHBOARD_URL") or cls.dashboard_url).rstrip("/"),
            detail=detail,
            timeout_s=timeout,
        )

    @property
    def enabled(self) -> frozenset[str]:
        """The channels deliveries are written for: the inbox always, the others when set."""
        out = {INBOX}
        if self.smtp_url:
            out.add(EMAIL)
        if self.webhook_url:
            out.add(WEBHOOK)
        return frozenset(out)
