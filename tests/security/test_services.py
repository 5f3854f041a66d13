"""Each service works as its own role, and only as far as that role's grants go."""

from __future__ import annotations

import shutil
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.rollup import rollup
from paceline.store import Batch, HrRows, connect, roles, write_batch
from paceline.store.testing import server_tempdir, service_dsn
from tests.security.conftest import World

DAY = datetime(2026, 5, 4, tzinfo=UTC)


def _hour_of_samples(patient_id: int, device_id: int) -> Batch:
    times = [DAY + timedelta(hours=9, seconds=s) for s in range(3600)]
    return Batch(
        f"svc-{patient_id}",
        hr=HrRows.of(
            patient_id=[patient_id] * len(times),
            device_id=[device_id] * len(times),
            time=times,
            bpm=[70 + (s % 40) for s in range(len(times))],
        ),
    )


def _device_of(conn: psycopg.Connection[Any], patient_id: int) -> int:
    row = conn.execute("SELECT device_id FROM device WHERE patient_id = %s", (patient_id,))
    found = row.fetchone()
    conn.rollback()
    assert found is not None
    return int(found[0])


def test_the_uploader_role_writes_batches_and_reads_no_clinical_data(
    conn: psycopg.Connection[Any], db_dsn: str, world: World
) -> None:
    device = _device_of(conn, world.mine)
    with connect(service_dsn(db_dsn, roles.INGEST)) as ingest:
        result = write_batch(ingest, _hour_of_samples(world.mine, device))
        assert result.hr_rows == 3600
        # The uploader reads a patient's birth year (its lower bound for sample
        # times, migration 0010) and nothing else of any clinical table.
        for table, column in (
            ("self_report", "pain_now"),
            ("patient", "display_name"),
            ("audit_log", "actor"),
            ("daily_metrics", "steps"),
            ("account", "username"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ingest.execute(
                    sql.SQL("SELECT {} FROM {} LIMIT 1").format(
                        sql.Identifier(column), sql.Identifier(table)
                    )
                )
            ingest.rollback()


def test_the_worker_role_rolls_up_and_evaluates(
    conn: psycopg.Connection[Any], db_dsn: str, world: World
) -> None:
    device = _device_of(conn, world.theirs)
    write_batch(conn, _hour_of_samples(world.theirs, device))
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        done = rollup(worker, patient_id=world.theirs)
        worker.commit()
        assert done.patients == 1 and done.failed == ()
        # The patient was enrolled today (by the fixture), so today is the day to evaluate.
        evaluation = evaluate_patient(worker, world.theirs, datetime.now(UTC).date())
        worker.commit()
        assert evaluation.patient_id == world.theirs
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.execute("SELECT 1 FROM account LIMIT 1")
        worker.rollback()
    row = conn.execute(
        "SELECT hr_samples FROM daily_metrics WHERE patient_id = %s AND day = %s",
        (world.theirs, DAY.date()),
    ).fetchone()
    assert row is not None and row[0] == 3600


def test_the_dashboard_role_alone_can_read_nothing(
    dashboard_conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        dashboard_conn.execute("SELECT 1 FROM patient LIMIT 1")


def test_embedded_services_log_in_as_their_roles_with_private_passwords() -> None:
    data_dir = server_tempdir()
    try:
        settings = Settings.from_env({"PACELINE_DATA_DIR": str(data_dir)})
        with database_dsn(settings, role=roles.WORKER, announce=False) as dsn, connect(dsn) as c:
            assert c.execute("SELECT current_user, session_user").fetchone() == (
                roles.WORKER,
                roles.WORKER,
            )
        secret = data_dir / "secrets" / f"{roles.WORKER}.password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
