"""What the dashboard's own database role can reach, tried with arbitrary SQL.

The dashboard connects as `paceline_dashboard`. Whatever SQL runs in one of its
sessions (a bug, or an injection), PostgreSQL shows only what the signed-in
person may see; the administrator's functions refuse without an admin token.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.store import access, accounts
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey
from tests.dashboard.conftest import Clinic

# Every relation a person role can read that holds patient rows.
PATIENT_RELATIONS = (
    "patient",
    "device",
    "self_report",
    "questionnaire_response",
    "exposure_item",
    "exposure_session",
    "daily_metrics",
    "pacing_plan",
    "flare_risk",
    "clinician_hr_sample",
    "clinician_step_sample",
    "clinician_rr_interval",
)
CLINICIAN_ONLY = ("flag", "alert", "patient_review")


def _visible(conn: psycopg.Connection[Any], relation: str) -> set[int]:
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT patient_id FROM {}").format(sql.Identifier(relation))
    ).fetchall()
    return {int(r[0]) for r in rows}


def test_a_clinician_session_shows_only_the_care_team(
    clinic: Clinic, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with connect(clinic.dsn) as admin:
        everyone = {int(r[0]) for r in admin.execute("SELECT patient_id FROM patient").fetchall()}
    assert set(clinic.team_b) <= everyone
    with access.clinician_session(dashboard_conn, clinic.clinician_a, key=identity_key) as c:
        for relation in (*PATIENT_RELATIONS, *CLINICIAN_ONLY):
            assert _visible(c, relation) <= set(clinic.team_a), relation
        assert _visible(c, "patient") == set(clinic.team_a)
        assert _visible(c, "daily_metrics") == set(clinic.team_a)
        # Asking for another team's patient by id finds nothing at all.
        other = clinic.team_b[0]
        assert c.execute(
            "SELECT count(*) FROM self_report WHERE patient_id = %s", (other,)
        ).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT * FROM account")


def test_a_patient_session_shows_only_the_patient(
    clinic: Clinic, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with access.patient_session(dashboard_conn, clinic.patient_id, key=identity_key) as c:
        for relation in PATIENT_RELATIONS:
            assert _visible(c, relation) <= {clinic.patient_id}, relation
        assert _visible(c, "self_report") == {clinic.patient_id}
    for relation in CLINICIAN_ONLY:
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            access.patient_session(dashboard_conn, clinic.patient_id, key=identity_key) as c,
        ):
            c.execute(sql.SQL("SELECT 1 FROM {}").format(sql.Identifier(relation)))


def test_leaving_the_person_role_lands_in_a_role_that_sees_nothing(
    clinic: Clinic, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        access.clinician_session(dashboard_conn, clinic.clinician_a, key=identity_key) as c,
    ):
        c.execute("RESET ROLE")
        c.execute("SELECT count(*) FROM self_report")
    dashboard_conn.rollback()
    for relation in ("patient", "self_report", "daily_metrics", "audit_log", "account"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            dashboard_conn.execute(sql.SQL("SELECT 1 FROM {}").format(sql.Identifier(relation)))
        dashboard_conn.rollback()


def test_the_admin_functions_need_an_admin_identity(
    clinic: Clinic, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    for call in (
        sql.SQL("SELECT * FROM paceline_admin_accounts()"),
        sql.SQL("SELECT * FROM paceline_admin_care_teams()"),
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="administrator"):
            dashboard_conn.execute(call)
        dashboard_conn.rollback()
        # A clinician's token is not an administrator's.
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            access.clinician_session(dashboard_conn, clinic.clinician_a, key=identity_key) as c,
        ):
            c.execute("RESET ROLE")
            c.execute(call)
        dashboard_conn.rollback()
    # A forged admin token (signed with another key) is refused.
    forged = IdentityKey.generate().sign("admin", 1, backend_pid=dashboard_conn.info.backend_pid)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="signature"):
        dashboard_conn.execute("SELECT set_config('paceline.identity', %s, true)", (forged,))
        dashboard_conn.execute("SELECT * FROM paceline_admin_accounts()")
    dashboard_conn.rollback()
    # A patient's account id signed as admin names no administrator.
    with connect(clinic.dsn) as owner:
        (patient_account,) = owner.execute(
            "SELECT account_id FROM account WHERE username = 'pat.a'"
        ).fetchone() or (0,)
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="administrator"),
        accounts.admin_session(dashboard_conn, patient_account, key=identity_key) as c,
    ):
        accounts.admin_accounts(c)
    dashboard_conn.rollback()


def test_an_admin_session_lists_accounts_and_reads_the_audit_log(
    clinic: Clinic, dashboard_conn: psycopg.Connection[Any], identity_key: IdentityKey
) -> None:
    with connect(clinic.dsn) as owner:
        (admin_id,) = owner.execute(
            "SELECT account_id FROM account WHERE username = 'admin'"
        ).fetchone() or (0,)
    with accounts.admin_session(dashboard_conn, admin_id, key=identity_key) as c:
        names = {a.username for a in accounts.admin_accounts(c)}
        assert {"dr.a", "dr.b", "pat.a", "admin"} <= names
        links = accounts.admin_care_teams(c)
        assert {
            link.patient_id for link in links if link.clinician_id == clinic.clinician_b
        } == set(clinic.team_b)
        accounts.admin_set_disabled(c, "dr.b", disabled=True)
        log = accounts.admin_audit(c, action="account.")
        assert [(e.actor, e.action, e.detail) for e in log[:1]] == [
            ("admin:admin", "account.lock", {"username": "dr.b"})
        ]
        # Still no clinical data in an admin session.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT * FROM self_report")
    with accounts.admin_session(dashboard_conn, admin_id, key=identity_key) as c:
        accounts.admin_set_disabled(c, "dr.b", disabled=False)
