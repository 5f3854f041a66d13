"""Delivery channels: the dashboard inbox, e-mail over SMTP, signed webhooks.

A channel takes a rendered `Message` and makes one attempt, answering with a
`SendResult`; the retry policy and the bookkeeping live in `delivery`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from paceline.pacing.alerts.channels.base import Channel, SendResult
from paceline.pacing.alerts.channels.smtp import SmtpChannel
from paceline.pacing.alerts.channels.webhook import WebhookChannel
from paceline.pacing.alerts.config import EMAIL, WEBHOOK, DeliveryConfig

__all__ = ["Channel", "Channels", "SendResult", "SmtpChannel", "WebhookChannel"]


@dataclass(frozen=True)
class Channels:
    """The configured channels, by name, with the settings that shape messages."""

    config: DeliveryConfig
    by_name: Mapping[str, Channel]

    @classmethod
    def from_config(cls, config: DeliveryConfig) -> Channels:
        """SMTP and webhook channels for the configured ones."""
        found: dict[str, Channel] = {}
        if config.smtp_url:
            found[EMAIL] = SmtpChannel(config.smtp_url, config.alert_from, config.timeout_s)
        if config.webhook_url and config.webhook_secret:
            found[WEBHOOK] = WebhookChannel(
                config.webhook_url, config.webhook_secret, config.timeout_s
            )
        return cls(config, found)

    @classmethod
    def from_env(cls) -> Channels:
        """The channels the environment configures."""
        return cls.from_config(DeliveryConfig.from_env())
