"""FHIR and CSV exports, validated by an independent FHIR implementation (fhir.resources)."""

from __future__ import annotations

import copy
import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pydantic
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from paceline.cli.importing import import_for_patient
from paceline.cli.main import main
from paceline.pacing.export import ExportError, export_csv, export_fhir
from paceline.pacing.intake import submit_diary, submit_questionnaire
from paceline.store import registry

DATA = Path(__file__).resolve().parent.parent / "data"
MODELS: dict[str, Any] = {
    "Observation": Observation,
    "Patient": Patient,
    "QuestionnaireResponse": QuestionnaireResponse,
}
DAY = date(2017, 6, 11)


def validate(bundle: dict[str, Any]) -> None:
    """Raise pydantic.ValidationError unless the bundle and every resource in it are valid."""
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)


@pytest.fixture
def patient(conn: psycopg.Connection[Any]) -> int:
    p = registry.create_patient(
        conn,
        external_ref=f"EXP-{datetime.now(UTC).timestamp()}",
        display_name="Export test",
        birth_year=1975,
        timezone="America/Los_Angeles",
        enrolled_at=datetime(2017, 1, 1, tzinfo=UTC),
    )
    conn.commit()
    # Real data for the day: the fēnix 5 walk (heart rate and beat-to-beat RR).
    import_for_patient(conn, DATA / "fitparse-garmin-fenix-5-walk.fit", p.patient_id)
    at = datetime(2017, 6, 11, 20, 0, tzinfo=UTC)
    submit_diary(conn, p.patient_id, reported_at=at, pain_now=4, fatigue=3, note="walked", now=at)
    submit_questionnaire(conn, p.patient_id, "TSK-11", [2] * 11, answered_at=at, now=at)
    submit_questionnaire(conn, p.patient_id, "PCS", [1] * 13, answered_at=at, now=at)
    submit_questionnaire(conn, p.patient_id, "PSEQ", [4] * 10, answered_at=at, now=at)
    # A 17-minute walk is too short for the rollup's RMSSD; give the day one to export.
    conn.execute(
        "UPDATE daily_metrics SET rmssd_ms = 42.5 WHERE patient_id = %s AND day = %s",
        (p.patient_id, DAY),
    )
    conn.commit()
    return p.patient_id


def test_fhir_bundle_is_valid_r4_with_the_coded_observations(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    bundle = export_fhir(conn, patient, DAY, DAY, actor="test")
    conn.commit()
    validate(bundle)
    assert bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    codes = {
        c["code"]
        for r in resources
        if r["resourceType"] == "Observation"
        for c in r["code"]["coding"]
    }
    assert codes == {"8867-4", "41950-7", "72514-3", "hrv-rmssd"}
    hr = next(
        r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "8867-4"
    )
    assert hr["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]
    assert hr["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert hr["valueQuantity"]["code"] == "/min"
    metrics = conn.execute(
        "SELECT mean_hr_bpm, rmssd_ms FROM daily_metrics WHERE patient_id = %s AND day = %s",
        (patient, DAY),
    ).fetchone()
    conn.commit()
    assert metrics is not None
    assert hr["valueQuantity"]["value"] == pytest.approx(metrics[0], abs=0.01)
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    rmssd = next(r for r in observations if r["code"]["coding"][0]["code"] == "hrv-rmssd")
    assert rmssd["valueQuantity"] == {
        "value": 42.5,
        "unit": "ms",
        "system": "http://unitsofmeasure.org",
        "code": "ms",
    }
    patient_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert all(r["subject"]["reference"] == patient_url for r in resources if "subject" in r)
    responses = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    assert sorted(r["questionnaire"].rsplit("/", 1)[1] for r in responses) == [
        "pcs",
        "pseq",
        "tsk-11",
    ]
    tsk = next(r for r in responses if r["questionnaire"].endswith("tsk-11"))
    total = next(i for i in tsk["item"] if i["linkId"] == "total")
    assert total["answer"] == [{"valueInteger": 22}]


def test_an_invalid_bundle_fails_the_independent_validation(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    bundle = export_fhir(conn, patient, DAY, DAY, actor="test")
    conn.commit()
    broken = copy.deepcopy(bundle)
    obs = next(
        e["resource"] for e in broken["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    del obs["status"]  # required in R4
    with pytest.raises(pydantic.ValidationError):
        validate(broken)
    bad_time = copy.deepcopy(bundle)
    obs = next(
        e["resource"] for e in bad_time["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    obs.pop("effectivePeriod", None)
    obs["effectiveDateTime"] = "11 June 2017"  # not a FHIR dateTime
    with pytest.raises(pydantic.ValidationError):
        validate(bad_time)


def test_exports_are_audited(conn: psycopg.Connection[Any], patient: int, tmp_path: Path) -> None:
    export_fhir(conn, patient, DAY, DAY, actor="cli:tester")
    export_csv(conn, patient, DAY, DAY, tmp_path, actor="cli:tester")
    conn.commit()
    rows = conn.execute(
        "SELECT actor, action, detail->>'from' FROM audit_log WHERE patient_id = %s"
        " AND action LIKE 'export.%%' ORDER BY 2",
        (patient,),
    ).fetchall()
    conn.commit()
    assert rows == [
        ("cli:tester", "export.csv", "2017-06-11"),
        ("cli:tester", "export.fhir", "2017-06-11"),
    ]


def test_csv_export_writes_three_documented_files(
    conn: psycopg.Connection[Any], patient: int, tmp_path: Path
) -> None:
    paths = export_csv(conn, patient, DAY, DAY, tmp_path / "out", actor="test")
    conn.commit()
    assert [p.name for p in paths] == ["daily_metrics.csv", "diary.csv", "questionnaires.csv"]
    with paths[0].open() as fh:
        days = list(csv.DictReader(fh))
    assert [d["day"] for d in days] == ["2017-06-11"]
    assert int(days[0]["steps"]) >= 0 and float(days[0]["mean_hr_bpm"]) > 0
    with paths[1].open() as fh:
        diary = list(csv.DictReader(fh))
    assert (diary[0]["pain_now"], diary[0]["fatigue"], diary[0]["note"]) == ("4", "3", "walked")
    with paths[2].open() as fh:
        answers = list(csv.DictReader(fh))
    assert sorted(a["instrument"] for a in answers) == ["PCS", "PSEQ", "TSK-11"]
    assert next(a for a in answers if a["instrument"] == "TSK-11")["items"] == " ".join(["2"] * 11)


def test_a_range_backwards_or_an_unknown_patient_is_refused(
    conn: psycopg.Connection[Any], patient: int
) -> None:
    with pytest.raises(ExportError):
        export_fhir(conn, patient, DAY, date(2017, 6, 1), actor="test")
    with pytest.raises(ExportError):
        export_fhir(conn, 987_654_321, DAY, DAY, actor="test")


def test_paceline_export_fhir_writes_a_valid_file(
    db_dsn: str, patient: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    out = tmp_path / "bundle.json"
    args = [
        "export",
        "fhir",
        "--patient",
        str(patient),
        "--from",
        "2017-06-11",
        "--to",
        "2017-06-11",
    ]
    assert main([*args, "-o", str(out)]) == 0
    validate(json.loads(out.read_text()))
