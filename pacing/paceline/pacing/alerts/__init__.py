"""Alerts: the policy, alerts in the evaluation's transaction, their life cycle and delivery.

Entry points (each runs inside the caller's transaction):

- `raise_alerts(conn, evaluation, *, now)`: alerts of one evaluated patient-day,
  returning the ids of the deliveries due now;
- `due_reminders(conn, now)`: today's diary reminders, returning the deliveries due now;
- `due_questionnaire_reminders(conn, now)`: reassessment questionnaires due, likewise;
- `deliver(conn, delivery_id, *, channels, now)`: one attempt, recorded;
- `due_deliveries(conn, now)`, `due_digests(conn, now)`: what the periodic jobs defer;
- `acknowledge`, `resolve`, `list_alerts`: what the dashboard and the CLI call.
"""

from __future__ import annotations

from paceline.pacing.alerts.channels import Channels
from paceline.pacing.alerts.config import DeliveryConfig
from paceline.pacing.alerts.delivery import (
    DeliveryOutcome,
    deliver,
    due_deliveries,
    due_digests,
)
from paceline.pacing.alerts.errors import (
    AlertError,
    AlertStateError,
    ChannelConfigError,
    NotOnCareTeamError,
    UnknownAlertError,
    UnknownDeliveryError,
)
from paceline.pacing.alerts.lifecycle import acknowledge, resolve
from paceline.pacing.alerts.policy import DEFAULT_POLICY, AlertPolicy
from paceline.pacing.alerts.raising import raise_alerts
from paceline.pacing.alerts.reminders import due_questionnaire_reminders, due_reminders
from paceline.pacing.records import AlertRow, DeliveryRow, dead_letters, list_alerts

__all__ = [
    "DEFAULT_POLICY",
    "AlertError",
    "AlertPolicy",
    "AlertRow",
    "AlertStateError",
    "ChannelConfigError",
    "Channels",
    "DeliveryConfig",
    "DeliveryOutcome",
    "DeliveryRow",
    "NotOnCareTeamError",
    "UnknownAlertError",
    "UnknownDeliveryError",
    "acknowledge",
    "dead_letters",
    "deliver",
    "due_deliveries",
    "due_digests",
    "due_questionnaire_reminders",
    "due_reminders",
    "list_alerts",
    "raise_alerts",
    "resolve",
]
