"""Clinician sessions under row-level security, and the audit log.

A clinician's queries run inside a transaction that has switched to the
`paceline_clinician` role with `paceline.clinician_id` set; the policies of
migration 0003 then show only the patients on that clinician's care team.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

CLINICIAN_ROLE = "paceline_clinician"


@contextmanager
def clinician_session(
    conn: psycopg.Connection[Any], clinician_id: int
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction in which `conn` sees only `clinician_id`'s care team."""
    with conn.transaction():
        conn.execute(f"SET LOCAL ROLE {CLINICIAN_ROLE}")
        conn.execute("SELECT set_config('paceline.clinician_id', %s, true)", (str(clinician_id),))
        yield conn


def audit(
    conn: psycopg.Connection[Any],
    *,
    actor: str,
    action: str,
    obj: str,
    patient_id: int | None = None,
    clinician_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (who did what to which patient's data)."""
    conn.execute(
        "INSERT INTO audit_log (actor, clinician_id, patient_id, action, object, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
        (actor, clinician_id, patient_id, action, obj, json.dumps(detail or {})),
    )
