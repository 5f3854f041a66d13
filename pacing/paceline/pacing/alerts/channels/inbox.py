"""The dashboard inbox: every alert lands here as it is written (no attempt, nothing to retry).

`raise_alerts` writes each new alert's inbox rows already delivered; this
module is how the dashboard reads one person's inbox.
"""

from __future__ import annotations

from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.alerts.errors import AlertError


def inbox(
    conn: psycopg.Connection[Any],
    *,
    clinician_id: int | None = None,
    patient_id: int | None = None,
    limit: int = 200,
) -> list[records.AlertRow]:
    """The alerts in one person's inbox, newest first (resolved ones included)."""
    if (clinician_id is None) == (patient_id is None):
        raise AlertError("give exactly one of clinician_id and patient_id")
    recipient = f"clinician:{clinician_id}" if clinician_id is not None else f"patient:{patient_id}"
    ids = records.inbox_alert_ids(conn, recipient, limit=limit)
    rows = {a.alert_id: a for a in records.alerts_of(conn, ids)}
    return [rows[i] for i in ids if i in rows]
