"""What a delivery says outside Paceline: the minimum necessary, unless a channel is allowed more.

By default an e-mail or webhook carries ids, rule, severity, status, the
episode's window and a link to the dashboard, never the diary, the evidence
or the numbers behind a flag: whoever reads a mailbox or a webhook log learns
that patient 12 has an open overexertion alert, not their pain scores. A
channel listed in `PACELINE_ALERT_DETAIL` also gets each alert's summary (the
rule in words and, for flare risk, the contributing factors with their values).
A re-notification about a new finding (a new positive red-flag answer while
the pause is open) says what is new in the same minimum (`Message.news`: the
screen's id, the day it was answered and the care it asks for, emergency or
urgent, never the question or the pathology). Messages to patients carry
fixed wording only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from paceline.pacing.alerts.policy import DIARY_REMINDER, PLAN_PROGRESSED, REMINDER_TEXT

#: What a patient's e-mail says, per rule, when details are not allowed.
PATIENT_TEXT: Final = {
    DIARY_REMINDER: REMINDER_TEXT,
    PLAN_PROGRESSED: "Good news: your plan moved up a step. Open Paceline to see your new goal.",
}


@dataclass(frozen=True)
class Item:
    """One alert inside a message."""

    alert_id: int
    patient_id: int
    rule_id: str
    severity: str
    status: str
    audience: str
    window_start: datetime
    window_end: datetime | None
    summary: str

    def as_json(self, *, detail: bool) -> dict[str, Any]:
        """The item as the webhook body lists it."""
        out: dict[str, Any] = {
            "alert_id": self.alert_id,
            "patient_id": self.patient_id,
            "rule_id": self.rule_id,
            "severity": self.severity,
            "status": self.status,
            "window_start": self.window_start.isoformat(),
            "window_end": None if self.window_end is None else self.window_end.isoformat(),
        }
        if detail:
            out["summary"] = self.summary
        return out


@dataclass(frozen=True)
class Message:
    """A rendered delivery: who, what, and the stable key its ids are made from."""

    delivery_id: int
    message_key: UUID
    channel: str
    recipient: str
    address: str | None
    kind: str
    notice: int
    items: tuple[Item, ...]
    link: str
    detail: bool
    #: What this notice is the first to tell about (None: nothing new beyond the alert).
    news: str | None = None

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same on every retry of this delivery."""
        return f"msg_{self.message_key.hex}"

    def message_id(self, sender: str) -> str:
        """The e-mail Message-ID (RFC 5322 §3.6.4): the same on every retry of this delivery."""
        domain = sender.rpartition("@")[2] or "paceline.invalid"
        return f"<{self.message_key}@{domain}>"

    @property
    def to_patient(self) -> bool:
        """Whether the message is for the patient (fixed wording) rather than the care team."""
        return self.recipient.startswith("patient:")

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook."""
        return {
            "type": "paceline.alert." + ("digest" if self.kind == "digest" else "notice"),
            "delivery_id": self.delivery_id,
            "notice": self.notice,
            "alerts": [i.as_json(detail=self.detail) for i in self.items],
            "link": self.link,
        } | ({"news": self.news} if self.news else {})

    def subject(self) -> str:
        """An e-mail subject that names no clinical detail beyond rule and severity."""
        if self.to_patient:
            return "Paceline: a note for you"
        if self.kind == "digest":
            return f"Paceline daily digest: {len(self.items)} alert(s)"
        lead = self.items[0]
        more = f" and {len(self.items) - 1} more" if len(self.items) > 1 else ""
        again = " (new answer)" if self.news else " (reminder)" if self.notice > 0 else ""
        return f"Paceline {lead.severity}: {lead.rule_id}{more}, patient {lead.patient_id}{again}"

    def text(self) -> str:
        """The plain-text e-mail body."""
        if self.to_patient:
            lines = [
                i.summary if self.detail else PATIENT_TEXT.get(i.rule_id, "Open Paceline.")
                for i in self.items
            ]
            return "\n\n".join([*lines, self.link]) + "\n"
        lines = []
        for i in self.items:
            window = f"{i.window_start:%Y-%m-%d}"
            if i.window_end is not None:
                window += f" to {i.window_end:%Y-%m-%d}"
            lines.append(
                f"- alert {i.alert_id}, patient {i.patient_id}: {i.rule_id} ({i.severity},"
                f" {i.status}), {window}"
            )
            if self.detail:
                lines.append(f"  {i.summary}")
        if self.news:
            lines += ["", f"New since the last notice: {self.news}."]
        return "\n".join([*lines, "", f"Open the dashboard: {self.link}"]) + "\n"


def render(
    *,
    delivery_id: int,
    message_key: UUID,
    channel: str,
    recipient: str,
    address: str | None,
    kind: str,
    notice: int,
    items: Sequence[Item],
    dashboard_url: str,
    detail: bool,
    news: str | None = None,
) -> Message:
    """A message with a link to the dashboard's alert (or inbox, for a digest)."""
    if kind == "digest" or not items:
        link = f"{dashboard_url}/?page=alerts"
    else:
        link = f"{dashboard_url}/?page=alerts&alert={items[0].alert_id}"
    return Message(
        delivery_id,
        message_key,
        channel,
        recipient,
        address,
        kind,
        notice,
        tuple(items),
        link,
        detail,
        news,
    )
