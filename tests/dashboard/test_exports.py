"""The patient page's exports, made in a clinician's person session as the dashboard makes them."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from paceline.cli.importing import import_for_patient
from paceline.dashboard.exports import downloads
from paceline.pacing.export import ExportError
from paceline.store import access, registry
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey

DATA = Path(__file__).resolve().parent.parent / "data"
DAY = date(2017, 6, 11)


def test_a_clinician_downloads_their_patients_exports_and_only_theirs(
    db_dsn: str, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with connect(db_dsn) as conn:
        me = registry.create_clinician(conn, username="exp.me", display_name="Dr Me")
        mine = registry.create_patient(
            conn, external_ref="EXP-D-1", display_name="Mine", birth_year=1980
        ).patient_id
        theirs = registry.create_patient(
            conn, external_ref="EXP-D-2", display_name="Theirs", birth_year=1980
        ).patient_id
        registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
        conn.commit()
        import_for_patient(conn, DATA / "fitparse-garmin-fenix-5-walk.fit", mine)
    with access.clinician_session(dashboard_conn, me, key=identity_key) as c:
        files = downloads(c, mine, DAY, DAY, clinician_id=me)
    bundle = json.loads(files[0].data)
    assert bundle["resourceType"] == "Bundle"
    assert any(
        e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "8867-4"
        for e in bundle["entry"]
    )
    with zipfile.ZipFile(io.BytesIO(files[1].data)) as archive:
        assert sorted(archive.namelist()) == [
            "daily_metrics.csv",
            "diary.csv",
            "questionnaires.csv",
        ]
    with (
        pytest.raises(ExportError),
        access.clinician_session(dashboard_conn, me, key=identity_key) as c,
    ):
        downloads(c, theirs, DAY, DAY, clinician_id=me)
    with connect(db_dsn) as conn:
        actors = conn.execute(
            "SELECT actor, action FROM audit_log WHERE patient_id = %s AND action LIKE 'export.%%'"
            " ORDER BY action",
            (mine,),
        ).fetchall()
    assert actors == [(f"clinician:{me}", "export.csv"), (f"clinician:{me}", "export.fhir")]
