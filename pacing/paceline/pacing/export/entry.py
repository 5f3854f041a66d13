"""The export entry points: read in one transaction with the audit entry, then build."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from paceline.pacing.errors import PacingError
from paceline.pacing.export import fhir, reads, tables
from paceline.store.access import audit

#: The longest range one export may cover (ten years of days).
MAX_DAYS = 3660


class ExportError(PacingError, ValueError):
    """An export that cannot be made: unknown patient, or a range that is not one."""


def _read(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: date,
    end: date,
    *,
    kind: str,
    actor: str | None,
    clinician_id: int | None,
) -> reads.ExportData:
    if end < start or (end - start).days > MAX_DAYS:
        raise ExportError(f"export range {start} … {end} must run forward, at most {MAX_DAYS} days")
    with conn.transaction():
        patient = reads.patient(conn, patient_id)
        if patient is None:
            raise ExportError(f"no patient {patient_id} (or not one this login may see)")
        data = reads.read(conn, patient, start, end)
        audit(
            conn,
            action=f"export.{kind}",
            obj="patient",
            actor=actor,
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={
                "from": start.isoformat(),
                "to": end.isoformat(),
                "days": len(data.days),
                "diary": len(data.diary),
                "questionnaires": len(data.questionnaires),
            },
        )
    return data


def export_fhir(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: date,
    end: date,
    *,
    actor: str | None = None,
    clinician_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The FHIR R4 Bundle of `patient_id`'s days `start` … `end`, audited as read.

    In a person session `actor` is left out (the audit entry then names the
    verified person) and a clinician passes their `clinician_id` (the audit
    policy requires it); elsewhere `actor` says who exports (``cli:<user>``).
    """
    data = _read(conn, patient_id, start, end, kind="fhir", actor=actor, clinician_id=clinician_id)
    return fhir.bundle(data, now=now or datetime.now(UTC))


def export_csv(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: date,
    end: date,
    directory: Path,
    *,
    actor: str | None = None,
    clinician_id: int | None = None,
) -> list[Path]:
    """Write `patient_id`'s daily metrics, diary and questionnaires as CSV files, audited."""
    data = _read(conn, patient_id, start, end, kind="csv", actor=actor, clinician_id=clinician_id)
    return tables.write(data, directory)
