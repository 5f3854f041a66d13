"""What every channel shares: one attempt's result and the channel protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from paceline.pacing.alerts.errors import AlertError
from paceline.pacing.alerts.message import Message
from paceline.pacing.alerts.retry import Verdict


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt on one channel (`error`: the typed cause of a failure)."""

    verdict: Verdict
    detail: str
    status: int | None = None
    error: AlertError | None = None


class Channel(Protocol):
    """Something that can make one delivery attempt."""

    def send(self, message: Message) -> SendResult:
        """Try once to deliver `message`."""
        ...
