"""An alert's life cycle by a clinician: acknowledge (with a note) and resolve; each audited.

The dashboard and `paceline alerts ack|resolve` both call these. Acknowledging
stops repeats (and acknowledges the flag); resolving closes the alert. The
policy resolves alerts itself when their flag's episode ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.alerts.errors import (
    AlertError,
    AlertStateError,
    NotOnCareTeamError,
    UnknownAlertError,
)
from paceline.store.access import audit

MAX_NOTE: Final = 2000


def _note(note: str, *, required: bool) -> str:
    text = note.strip()
    if required and not text:
        raise AlertError("acknowledging an alert needs a note saying what was done")
    if len(text) > MAX_NOTE or "\x00" in text:
        raise AlertError(f"the note must be at most {MAX_NOTE} characters of text")
    return text


def _locked(conn: psycopg.Connection[Any], alert_id: int, clinician_id: int) -> records.AlertRow:
    row = records.get_alert(conn, alert_id, for_update=True)
    if row is None:
        raise UnknownAlertError(alert_id)
    if not records.on_care_team(conn, clinician_id, row.patient_id):
        raise NotOnCareTeamError(clinician_id, alert_id)
    return row


def _audit(
    conn: psycopg.Connection[Any],
    row: records.AlertRow,
    clinician_id: int,
    action: str,
    **detail: str,
) -> None:
    audit(
        conn,
        actor=f"clinician:{clinician_id}",
        action=action,
        obj="alert",
        patient_id=row.patient_id,
        clinician_id=clinician_id,
        detail={"alert_id": row.alert_id, **detail},
    )


def acknowledge(
    conn: psycopg.Connection[Any], alert_id: int, *, clinician_id: int, note: str, now: datetime
) -> records.AlertRow:
    """A clinician has seen an open alert and says what they did; no more repeats."""
    text = _note(note, required=True)
    with conn.transaction():
        row = _locked(conn, alert_id, clinician_id)
        if row.status != "open":
            raise AlertStateError(alert_id, row.status, "acknowledged")
        records.acknowledge_alert(conn, alert_id, clinician_id=clinician_id, note=text, now=now)
        if row.flag_id is not None:
            records.acknowledge_flag(conn, row.flag_id)
        _audit(conn, row, clinician_id, "alert.acknowledge", note=text)
        after = records.get_alert(conn, alert_id)
    assert after is not None
    return after


def resolve(
    conn: psycopg.Connection[Any],
    alert_id: int,
    *,
    clinician_id: int,
    note: str = "",
    now: datetime,
) -> records.AlertRow:
    """A clinician closes an open or acknowledged alert."""
    text = _note(note, required=False)
    with conn.transaction():
        row = _locked(conn, alert_id, clinician_id)
        if row.status == "resolved":
            raise AlertStateError(alert_id, row.status, "resolved again")
        records.resolve_alerts(
            conn, [alert_id], resolution="clinician", clinician_id=clinician_id, now=now
        )
        _audit(conn, row, clinician_id, "alert.resolve", note=text, resolution="clinician")
        after = records.get_alert(conn, alert_id)
    assert after is not None
    return after
