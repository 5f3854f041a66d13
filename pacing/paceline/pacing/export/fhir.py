"""One patient's results as a FHIR R4 ``Bundle`` of type ``collection``.

Resources (FHIR R4, hl7.org/fhir/R4; codes from LOINC, units in UCUM):

- ``Patient``: the patient's external reference as identifier; every other
  resource points at it (``subject``) by its ``urn:uuid`` full URL.
- Heart rate, one ``Observation`` per day: the day's mean heart rate, LOINC
  8867-4, category ``vital-signs``, the vital-signs heart-rate profile
  (``http://hl7.org/fhir/StructureDefinition/heartrate``), UCUM ``/min``,
  ``effectivePeriod`` the local day.
- Daily steps: LOINC 41950-7 "Number of steps in 24 hour Measured", category
  ``activity``, UCUM ``/d``.
- HRV RMSSD: LOINC has no code for RMSSD (80404-7 is the standard deviation of
  the RR intervals, i.e. SDNN, a different measure), so it is coded in
  Paceline's own code system (`CODE_SYSTEM`, code ``hrv-rmssd``), UCUM ``ms``.
- Pain: each diary entry's current pain, LOINC 72514-3 "Pain severity - 0-10
  verbal numeric rating [Score] - Reported", category ``survey``, UCUM ``{score}``.
- ``QuestionnaireResponse`` for each TSK-11, PCS and PSEQ: the item answers
  (``linkId`` 1…n), and the total and subscale scores as further items.

Ids are UUIDs derived from the patient and the row (uuid5), so exporting the
same range twice gives the same bundle apart from its time stamp.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from paceline.pacing.export.reads import DiaryRecord, ExportData, ExportDay, QuestionnaireRow

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
HEART_RATE_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/heartrate"
#: Paceline's code system for measures LOINC does not code (HRV RMSSD).
CODE_SYSTEM: Final = "https://paceline.dev/fhir/CodeSystem/metrics"
#: Canonical URLs of the questionnaires the responses answer.
QUESTIONNAIRES: Final = {
    "TSK-11": "https://paceline.dev/fhir/Questionnaire/tsk-11",
    "PCS": "https://paceline.dev/fhir/Questionnaire/pcs",
    "PSEQ": "https://paceline.dev/fhir/Questionnaire/pseq",
}
_NAMESPACE: Final = uuid.UUID("0c7d5e3a-41f6-5b2c-9f0e-2d6a8b1c3e5f")


@dataclass(frozen=True)
class DailyObservation:
    """How one `daily_metrics` column becomes one ``Observation`` per day."""

    key: str
    column: str
    category: tuple[str, str]
    coding: Mapping[str, str]
    text: str
    unit: str
    ucum: str
    profile: str | None = None


VITAL_SIGNS: Final = ("vital-signs", "Vital Signs")
DAILY_OBSERVATIONS: Final = (
    DailyObservation(
        "hr",
        "mean_hr_bpm",
        VITAL_SIGNS,
        {"system": LOINC, "code": "8867-4", "display": "Heart rate"},
        "Mean heart rate over the day",
        "beats/minute",
        "/min",
        HEART_RATE_PROFILE,
    ),
    DailyObservation(
        "steps",
        "steps",
        ("activity", "Activity"),
        {"system": LOINC, "code": "41950-7", "display": "Number of steps in 24 hour Measured"},
        "Steps over the day",
        "steps/day",
        "/d",
    ),
    DailyObservation(
        "rmssd",
        "rmssd_ms",
        VITAL_SIGNS,
        {
            "system": CODE_SYSTEM,
            "code": "hrv-rmssd",
            "display": "Heart rate variability, RMSSD of the day's RR intervals",
        },
        "HRV RMSSD (root mean square of successive RR differences)",
        "ms",
        "ms",
    ),
)


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, ':'.join(map(str, parts)))}"


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": CATEGORY, "code": code, "display": display}]}]


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": round(float(value), 2), "unit": unit, "system": UCUM, "code": code}


def _iso(value: datetime) -> str:
    return value.isoformat()


class _Builder:
    def __init__(self, data: ExportData) -> None:
        self.data = data
        self.patient_url = _urn("patient", data.patient.patient_id)
        self.entries: list[dict[str, Any]] = []

    def add(self, url: str, resource: dict[str, Any]) -> None:
        resource["id"] = url.removeprefix("urn:uuid:")
        self.entries.append({"fullUrl": url, "resource": resource})

    def observation(
        self,
        key: tuple[object, ...],
        *,
        category: tuple[str, str],
        coding: Mapping[str, str],
        text: str,
        value: dict[str, Any],
        effective: dict[str, Any],
        profile: str | None = None,
    ) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": _category(*category),
            "code": {"coding": [dict(coding)], "text": text},
            "subject": {"reference": self.patient_url},
            **effective,
            "valueQuantity": value,
        }
        if profile:
            resource["meta"] = {"profile": [profile]}
        self.add(_urn(self.data.patient.patient_id, *key), resource)

    def day(self, row: ExportDay) -> None:
        lo, hi = self.data.day_bounds(row.day)
        period = {"effectivePeriod": {"start": _iso(lo), "end": _iso(hi)}}
        for m in DAILY_OBSERVATIONS:
            value = getattr(row, m.column)
            if value is None:
                continue  # not measured that day (no heart rate, too few beats)
            self.observation(
                (m.key, row.day),
                category=m.category,
                coding=m.coding,
                text=m.text,
                value=_quantity(value, m.unit, m.ucum),
                effective=period,
                profile=m.profile,
            )

    def pain(self, row: DiaryRecord) -> None:
        self.observation(
            ("pain", row.reported_at.isoformat()),
            category=("survey", "Survey"),
            coding={
                "system": LOINC,
                "code": "72514-3",
                "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            },
            text="Pain now (0-10)",
            value=_quantity(row.pain_now, "{score}", "{score}"),
            effective={"effectiveDateTime": _iso(row.reported_at)},
        )

    def questionnaire(self, row: QuestionnaireRow) -> None:
        items: list[dict[str, Any]] = [
            {"linkId": str(i), "answer": [{"valueInteger": int(v)}]}
            for i, v in enumerate(row.items, start=1)
        ]
        items.append(
            {"linkId": "total", "text": "Total score", "answer": [{"valueInteger": row.total}]}
        )
        subscales = row.scores.get("subscales", {})
        if isinstance(subscales, dict):
            for name, value in sorted(subscales.items()):
                items.append(
                    {
                        "linkId": f"subscale-{name}",
                        "text": f"Subscale {name}",
                        "answer": [{"valueInteger": int(value)}],
                    }
                )
        self.add(
            _urn(self.data.patient.patient_id, "questionnaire", row.response_id),
            {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "questionnaire": QUESTIONNAIRES[row.instrument],
                "subject": {"reference": self.patient_url},
                "authored": _iso(row.answered_at),
                "item": items,
            },
        )


def bundle(data: ExportData, *, now: datetime) -> dict[str, Any]:
    """The FHIR R4 collection Bundle of `data` (JSON-able), stamped `now`."""
    builder = _Builder(data)
    builder.add(
        builder.patient_url,
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "https://paceline.dev/fhir/patient", "value": data.patient.external_ref}
            ],
        },
    )
    for day in data.days:
        builder.day(day)
    for entry in data.diary:
        builder.pain(entry)
    for response in data.questionnaires:
        builder.questionnaire(response)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(now),
        "entry": builder.entries,
    }
