"""The alerts inbox's view model: alerts and failed deliveries as rows in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from paceline.dashboard.times import shown_at
from paceline.pacing.alerts import AlertRow, DeliveryRow
from paceline.pacing.flag_wording import rule_title
from paceline.pacing.overview import PatientLabel


def _who(patients: Mapping[int, PatientLabel], patient_id: int) -> str:
    label = patients.get(patient_id)
    return f"patient {patient_id}" if label is None else label.name


def _when(at: datetime, patients: Mapping[int, PatientLabel], patient_id: int) -> str:
    # A patient the session cannot see has no zone to hand: UTC, labelled as such.
    label = patients.get(patient_id)
    return shown_at(at, UTC if label is None else label.zone)


def alert_table(
    alerts: Sequence[AlertRow], patients: Mapping[int, PatientLabel]
) -> list[dict[str, object]]:
    """The alerts, newest first, as the inbox lists them; each opened in its patient's zone."""
    return [
        {
            "opened": _when(a.opened_at, patients, a.patient_id),
            "patient": _who(patients, a.patient_id),
            "about": rule_title(a.rule_id),
            "severity": a.severity,
            "status": a.status,
            "summary": a.summary,
            "note": a.ack_note or "",
        }
        for a in alerts
    ]


def choices(
    alerts: Sequence[AlertRow], patients: Mapping[int, PatientLabel]
) -> dict[str, AlertRow]:
    """The alerts by the label the picker shows."""
    return {
        f"#{a.alert_id} {_who(patients, a.patient_id)}: {rule_title(a.rule_id)} ({a.status})": a
        for a in alerts
    }


def dead_table(
    deliveries: Sequence[DeliveryRow], patients: Mapping[int, PatientLabel]
) -> list[dict[str, object]]:
    """Deliveries that gave up, with why; each last try in its patient's zone."""
    return [
        {
            "alert": d.alert_id,
            "patient": _who(patients, d.patient_id),
            "channel": d.channel,
            "to": d.recipient,
            "status": d.status,
            "attempts": d.attempts,
            "last try": None
            if d.last_attempt_at is None
            else _when(d.last_attempt_at, patients, d.patient_id),
            "last error": d.last_error or "",
        }
        for d in deliveries
    ]
