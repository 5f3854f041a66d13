"""The patient page's upload: stored by the clinician, imported by a real `paceline worker`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from paceline.cli.importing import run_upload
from paceline.dashboard.times import shown_at
from paceline.store import roles, uploads
from paceline.store.connection import connect
from paceline.store.testing import service_dsn
from tests.dashboard.conftest import ROOT, Clinic, _person_accounts, login

DATA = Path(__file__).resolve().parent.parent / "data"
WALK = DATA / "fitparse-garmin-fenix-5-walk.fit"
#: A hang guard for the worker on a loaded machine, never an expectation.
WORKER_GUARD_S = 300


@pytest.fixture(scope="module")
def clinic(db_dsn: str) -> Iterator[Clinic]:
    """Two clinicians with one patient each and no data yet (the uploads bring it)."""
    from paceline.store import registry

    with connect(db_dsn) as conn:
        a = registry.create_clinician(conn, username="up.a", display_name="Dr Up")
        b = registry.create_clinician(conn, username="up.b", display_name="Dr Other")
        mine = registry.create_patient(
            conn,
            external_ref="UP-1",
            display_name="Uma Upload",
            birth_year=1980,
            timezone="America/Los_Angeles",
        ).patient_id
        theirs = registry.create_patient(
            conn, external_ref="UP-2", display_name="Theo Theirs"
        ).patient_id
        registry.assign_care_team(conn, clinician_id=a, patient_id=mine)
        registry.assign_care_team(conn, clinician_id=b, patient_id=theirs)
        _person_accounts(conn, {"a": a, "b": b, "team_a": [mine]})
        conn.commit()
    yield Clinic(db_dsn, a, b, (mine,), (theirs,), "pat.a", mine)


def _patient_page(app: AppTest, patient_id: int, *, signed_in: bool = False) -> AppTest:
    at = app if signed_in else login(app, "dr.a")
    at.switch_page("app_pages/patient.py")
    at.query_params["patient"] = str(patient_id)
    at = at.run()
    assert not at.exception, at.exception
    return at


def _upload_table(at: AppTest) -> Any:
    return next(df.value for df in at.dataframe if "file" in df.value.columns)


def _worker(db_dsn: str) -> None:
    """`paceline worker --until-idle` on the import queue, as the worker role."""
    env = {**os.environ, "PACELINE_DATABASE_URL": service_dsn(db_dsn, roles.WORKER)}
    done = subprocess.run(
        [sys.executable, "-m", "paceline.cli.main", "worker", "--until-idle", "--queue", "import"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_GUARD_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_clinician_uploads_a_fit_file_and_a_worker_imports_it(
    app: AppTest, clinic: Clinic, db_dsn: str
) -> None:
    at = _patient_page(app, clinic.patient_id)
    assert any("No uploads yet" in t.value for t in at.text)
    at.file_uploader(key="patient_import_file").upload(WALK.name, WALK.read_bytes()).run()
    at.button(key="patient_import").click().run()
    assert not at.exception, at.exception
    assert (
        [s.value for s in at.success]
        == [s.value for s in at.success if "queued for import" in s.value]
        != []
    )
    table = _upload_table(at)
    assert list(table["status"]) == ["waiting for a worker"]
    assert list(table["uploaded by"]) == [f"clinician:{clinic.clinician_a}"]
    with connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT u.requested_at, p.timezone FROM import_upload u JOIN patient p"
            " USING (patient_id) WHERE patient_id = %s",
            (clinic.patient_id,),
        ).fetchone()
    assert row is not None
    # The patient's data, so the patient's wall time, with the zone's label.
    assert list(table["uploaded"]) == [shown_at(row[0], ZoneInfo(row[1]))]

    _worker(db_dsn)

    with connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT status, summary, error, content IS NULL FROM import_upload"
            " WHERE patient_id = %s",
            (clinic.patient_id,),
        ).fetchone()
        assert row is not None
        status, summary, error, dropped = row
        stored = conn.execute(
            "SELECT count(*) FROM hr_sample WHERE patient_id = %s", (clinic.patient_id,)
        ).fetchone()
        days = conn.execute(
            "SELECT count(*) FROM daily_metrics WHERE patient_id = %s", (clinic.patient_id,)
        ).fetchone()
        done = conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'import.done' AND patient_id = %s",
            (clinic.patient_id,),
        ).fetchall()
    assert (status, error, dropped) == ("done", None, True)
    assert summary["format"] == "fit" and summary["hr"] > 0
    assert stored == (summary["hr"],)
    assert days is not None and days[0] >= 1  # the days it touched are rolled up
    assert done == [("import-worker",)]

    at = _patient_page(at, clinic.patient_id, signed_in=True)
    table = _upload_table(at)
    assert list(table["status"]) == ["imported"]
    assert f"{summary['hr']:,} HR" in table["stored"].iloc[0]


def test_an_upload_of_no_known_format_is_recorded_as_refused(
    clinic: Clinic, db_dsn: str, dashboard_conn: psycopg.Connection[Any]
) -> None:
    from paceline.store.access import clinician_session
    from paceline.store.testing import TEST_IDENTITY_KEY

    with clinician_session(dashboard_conn, clinic.clinician_a, key=TEST_IDENTITY_KEY) as c:
        upload = uploads.request_import(c, clinic.patient_id, "holiday.png", b"\x89PNG" + bytes(64))
    # The worker's function, on the worker's role, as the job runs it.
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        assert run_upload(worker, upload) == "failed"
        assert run_upload(worker, upload) is None  # finished: a second run does nothing
        row = worker.execute(
            "SELECT status, error, summary FROM import_upload WHERE upload_id = %s", (upload,)
        ).fetchone()
    assert row is not None
    assert row[0] == "failed" and row[2] is None
    assert row[1].startswith("holiday.png: not a FIT file")


def test_a_file_over_the_limit_is_refused_on_the_page(
    app: AppTest, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1024)
    at = _patient_page(app, clinic.patient_id)
    before = len(_upload_table(at)) if any("file" in d.value.columns for d in at.dataframe) else 0
    at.file_uploader(key="patient_import_file").upload("big.fit", bytes(2048)).run()
    at.button(key="patient_import").click().run()
    assert [e.value for e in at.error if "an upload holds" in e.value] != []
    after = len(_upload_table(at)) if any("file" in d.value.columns for d in at.dataframe) else 0
    assert after == before


def test_another_teams_patient_gets_no_upload(app: AppTest, clinic: Clinic) -> None:
    at = login(app, "dr.a")
    at.switch_page("app_pages/patient.py")
    at.query_params["patient"] = str(clinic.team_b[0])
    at = at.run()
    assert not at.file_uploader  # the page stops before it offers an upload


def test_a_clinician_prepares_both_exports_on_the_patient_page(
    app: AppTest, clinic: Clinic, db_dsn: str
) -> None:
    at = _patient_page(app, clinic.patient_id)
    at.button(key="patient_export").click().run()
    assert not at.exception, at.exception
    labels = [str(getattr(b, "label", "")) for b in at.get("download_button")]
    assert any(label.endswith(".fhir.json") for label in labels), labels
    assert any(label.endswith(".csv.zip") for label in labels), labels
