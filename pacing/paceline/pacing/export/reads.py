"""What an export reads: one patient's days, diary entries and questionnaires in a range.

The rows come from `paceline.pacing.records` (pacing's SQL); this module only
puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from paceline.pacing import records
from paceline.pacing.diary import DiaryRecord
from paceline.pacing.records import ExportDay, ExportPatient, QuestionnaireRow

__all__ = ["DiaryRecord", "ExportData", "ExportDay", "ExportPatient", "QuestionnaireRow"]


@dataclass(frozen=True)
class ExportData:
    """Everything an export of `patient` for `start` … `end` holds."""

    patient: ExportPatient
    start: date
    end: date
    days: list[ExportDay]
    diary: list[DiaryRecord]
    questionnaires: list[QuestionnaireRow]

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Local midnight to midnight of `day` in the patient's time zone."""
        return self.patient.day_start(day), self.patient.day_start(day + timedelta(days=1))


def read(
    conn: psycopg.Connection[Any], patient: ExportPatient, start: date, end: date
) -> ExportData:
    """Read the export's rows (inside the caller's transaction, so under its row security)."""
    return ExportData(
        patient,
        start,
        end,
        records.export_days(conn, patient.patient_id, start, end),
        records.diary_records(conn, patient, start, end),
        records.questionnaire_rows(conn, patient, start, end),
    )


def patient(conn: psycopg.Connection[Any], patient_id: int) -> ExportPatient | None:
    """The patient, if this connection may see them."""
    return records.export_patient(conn, patient_id)
