"""The progress report: one patient's range as a PDF for the record or the primary provider.

`progress_report(conn, patient_id, start, end)` reads the content through the
components' public functions (`content.read`) in one transaction with its
audit entry (a report is a view of the patient's data), draws the charts
(`charts`, matplotlib) and lays the pages out (`pdf`, reportlab). Both
libraries are the ``report`` extra; `paceline report` and the clinician's
patient page call this.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.errors import PacingError, UnknownPatientError
from paceline.store import registry
from paceline.store.access import audit

#: The longest range one report may cover (ten years of days, as the exports).
MAX_DAYS: Final = 3660


class ReportError(PacingError, ValueError):
    """A report that cannot be made: unknown patient, or a range that is not one."""


def progress_report(
    conn: psycopg.Connection[Any],
    patient_id: int,
    start: date | None = None,
    end: date | None = None,
    *,
    actor: str | None = None,
    clinician_id: int | None = None,
    now: datetime | None = None,
) -> bytes:
    """The PDF progress report of `patient_id`'s days `start` … `end`, audited as a read.

    The range defaults to the whole programme: from the local day of enrolment
    to the patient's local today.

    In a person session `actor` is left out (the audit entry names the
    verified person) and a clinician passes their `clinician_id`; elsewhere
    `actor` says who made it (``cli:<user>``).
    """
    # Imported here: the PDF libraries are the `report` extra, not needed to import pacing.
    from paceline.pacing.report import content, pdf  # noqa: PLC0415

    moment = now or datetime.now(UTC)
    with conn.transaction():
        try:
            if start is None or end is None:
                ctx = records.patient_context(conn, patient_id)
                start = start or ctx.enrolled_day
                end = end or ctx.local_day(moment)
            if end < start or (end - start).days > MAX_DAYS:
                raise ReportError(
                    f"report range {start} … {end} must run forward, at most {MAX_DAYS} days"
                )
            data = content.read(conn, patient_id, start, end, now=moment)
        except (registry.NotFoundError, UnknownPatientError):
            raise ReportError(f"no patient {patient_id} (or not one this login may see)") from None
        audit(
            conn,
            action="report.pdf",
            obj="patient",
            actor=actor,
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={
                "from": start.isoformat(),
                "to": end.isoformat(),
                "days": sum(1 for d in data.timeline.loads if d.reported),
                "questionnaires": len(data.trends.questionnaires),
                "ladder_items": len(data.ladder),
                "alerts": len(data.alerts),
                "notes": len(data.notes),
            },
        )
    return pdf.render(data)


__all__ = ["MAX_DAYS", "ReportError", "progress_report"]
