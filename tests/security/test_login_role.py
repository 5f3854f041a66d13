"""SQL injected into the dashboard reaches no password hash, no e-mail and no lockout.

The attacker here has what SQL injection in any dashboard page gives: arbitrary
statements on a connection that logs in as `paceline_dashboard`, inside a
person session or outside one. They try every role change the connection
allows, then every way to the accounts: the table, the login functions, the
administrator functions without an administrator's signed identity, and any
SECURITY DEFINER function at all. The account must be exactly as it was.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.dashboard import auth
from paceline.dashboard.backend import Backend, BackendError
from paceline.store import accounts, connect, registry, roles
from paceline.store.access import clinician_session, patient_session
from paceline.store.accounts import Role
from paceline.store.identity import IdentityKey
from paceline.store.testing import service_dsn
from tests.security.conftest import World

PASSWORD = "a long login passphrase"  # noqa: S105 - a test login

#: Role changes an attacker tries first; each is refused or lands in a role checked below.
ROLE_CHANGES = {
    "stay": None,
    "reset_role": sql.SQL("RESET ROLE"),
    "set_role_none": sql.SQL("SET ROLE NONE"),
    "set_role_clinician": sql.SQL("SET ROLE paceline_clinician"),
    "set_role_patient": sql.SQL("SET ROLE paceline_patient"),
    "set_role_login": sql.SQL("SET ROLE paceline_login"),
    "set_role_owner": sql.SQL("SET ROLE paceline_owner"),
    "session_authorization_login": sql.SQL("SET SESSION AUTHORIZATION paceline_login"),
    "set_config_role_login": sql.SQL("SELECT set_config('role', 'paceline_login', false)"),
}


class Target:
    """The account the attacker is after, and what it must still be afterwards."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        tag = uuid.uuid4().hex[:8]
        clinician = registry.create_clinician(conn, username=f"v{tag}", display_name="Victim")
        self.username = f"victim{tag}"
        self.email = f"{self.username}@clinic.example"
        self.password_hash = auth.hash_password(PASSWORD)
        self.account_id = accounts.create_account(
            conn,
            username=self.username,
            role=Role.CLINICIAN,
            clinician_id=clinician,
            password_hash=self.password_hash,
            email=self.email,
        )
        conn.commit()

    def state(self, conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        """The columns an attacker would read or change."""
        row = conn.execute(
            "SELECT password_hash, email, failed_attempts, locked_until, disabled, last_login_at"
            " FROM account WHERE account_id = %s",
            (self.account_id,),
        ).fetchone()
        conn.rollback()
        assert row is not None
        return tuple(row)


@pytest.fixture(scope="module")
def target(db_dsn: str) -> Target:
    """One account with a password and an e-mail."""
    with connect(db_dsn) as conn:
        return Target(conn)


def _attacks(t: Target) -> dict[str, tuple[sql.SQL, tuple[Any, ...]]]:
    return {
        "read_table": (sql.SQL("SELECT password_hash, email FROM account"), ()),
        "lookup": (sql.SQL("SELECT * FROM paceline_login_lookup(%s)"), (t.username,)),
        "lookup_by_email": (sql.SQL("SELECT * FROM paceline_login_lookup(%s)"), (t.email,)),
        # Single sign-on's mapping: who an e-mail is, and a recorded sign-in (migration 0031).
        "sign_on_by_email": (
            sql.SQL("SELECT * FROM paceline_login_by_email(%s, now())"),
            (t.email,),
        ),
        "lock": (
            sql.SQL("SELECT paceline_login_outcome(%s, false, now(), 1, interval '1 year')"),
            (t.account_id,),
        ),
        "replace_hash": (
            sql.SQL("SELECT paceline_login_outcome(%s, true, now(), 5, interval '1 s', %s)"),
            (t.account_id, auth.hash_password("attacker's own password")),
        ),
        "admin_list": (sql.SQL("SELECT email FROM paceline_admin_accounts()"), ()),
        "admin_lock": (sql.SQL("SELECT paceline_admin_set_disabled(%s, true)"), (t.username,)),
    }


def _session(
    name: str, dashboard_conn: psycopg.Connection[Any], world: World, key: IdentityKey
) -> AbstractContextManager[Any]:
    if name == "clinician":
        return clinician_session(dashboard_conn, world.me, key=key)
    if name == "patient":
        return patient_session(dashboard_conn, world.mine, key=key)
    return dashboard_conn.transaction()


@pytest.mark.parametrize("change", sorted(ROLE_CHANGES))
@pytest.mark.parametrize("session", ["no_person", "clinician", "patient"])
def test_no_dashboard_session_reads_or_changes_an_account(
    conn: psycopg.Connection[Any],
    dashboard_conn: psycopg.Connection[Any],
    world: World,
    identity_key: IdentityKey,
    target: Target,
    *,
    session: str,
    change: str,
) -> None:
    before = target.state(conn)
    for name, (statement, params) in _attacks(target).items():
        outcome = _attempt(
            dashboard_conn,
            _session(session, dashboard_conn, world, identity_key),
            change,
            statement,
            params,
        )
        assert outcome in ("refused", []), (session, change, name, outcome)
    assert target.state(conn) == before
    assert dashboard_conn.execute("SELECT current_user").fetchone() == (roles.DASHBOARD,)


def _attempt(
    conn: psycopg.Connection[Any],
    session: AbstractContextManager[Any],
    change: str,
    statement: sql.SQL,
    params: tuple[Any, ...],
) -> str | list[Any]:
    """Run `change` then `statement` in `session`; 'refused' or the rows it returned."""
    try:
        with session:
            step = ROLE_CHANGES[change]
            if step is not None:
                conn.execute(step)
            return conn.execute(statement, params).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return "refused"
    finally:
        conn.rollback()
        conn.execute("RESET ROLE")  # a session-level SET ROLE outlives the transaction
        conn.execute("RESET SESSION AUTHORIZATION")
        conn.commit()


def _reachable(conn: psycopg.Connection[Any], role: str) -> list[str]:
    """`role` and every role it can become with SET ROLE."""
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'MEMBER') ORDER BY 1", (role,)
    ).fetchall()
    conn.rollback()
    return [str(r[0]) for r in rows]


def test_the_dashboard_reaches_only_definer_functions_that_need_a_signed_identity(
    conn: psycopg.Connection[Any],
) -> None:
    reachable = _reachable(conn, roles.DASHBOARD)
    assert reachable == [roles.CLINICIAN, roles.DASHBOARD, roles.PATIENT]
    rows = conn.execute(
        "SELECT DISTINCT p.oid::regprocedure::text FROM pg_proc p, unnest(%s::text[]) r"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef"
        " AND has_function_privilege(r, p.oid, 'EXECUTE')",
        (reachable,),
    ).fetchall()
    # Each of these refuses or returns nothing without a token signed with the key
    # that only the dashboard process and the owner hold (tests/security/test_escapes.py);
    # test_schema_model.SECURITY_DEFINER says why each is safe for whoever may call it.
    assert {r[0] for r in rows} == {
        "paceline_verified_person(text)",
        "paceline_clinician_patients()",
        "paceline_may_see(bigint)",
        "paceline_admin_accounts()",
        "paceline_admin_care_teams()",
        "paceline_admin_audit(timestamp with time zone,timestamp with time zone,text,bigint,text,integer)",
        "paceline_admin_set_disabled(text,boolean)",
        # Stores an upload for a patient the verified person may see (migration 0022).
        "paceline_request_import(bigint,text,bytea)",
        # Queues the verified patient's own red-flag evaluation (migration 0031).
        "paceline_queue_red_flag_evaluation(bigint)",
    }


def test_no_role_but_the_owner_has_any_right_on_any_account_column(
    conn: psycopg.Connection[Any],
) -> None:
    rows = conn.execute(
        "SELECT a.attname, r.rolname, x.priv FROM pg_attribute a, pg_roles r,"
        " unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) x(priv)"
        " WHERE a.attrelid = 'public.account'::regclass AND a.attnum > 0"
        " AND starts_with(r.rolname, 'paceline_') AND r.rolname <> %s"
        " AND has_column_privilege(r.oid, a.attrelid, a.attnum, x.priv)",
        (roles.OWNER,),
    ).fetchall()
    conn.rollback()
    assert rows == []


def test_the_login_role_checks_passwords_and_can_do_nothing_else(
    db_dsn: str, conn: psycopg.Connection[Any], target: Target
) -> None:
    assert _reachable(conn, roles.LOGIN) == [roles.LOGIN]
    members = conn.execute(
        "SELECT count(*) FROM pg_auth_members WHERE roleid = %s::regrole", (roles.LOGIN,)
    ).fetchone()
    conn.rollback()
    assert members == (0,)
    with connect(service_dsn(db_dsn, roles.LOGIN)) as login:
        who = auth.authenticate(login, target.username, PASSWORD, now=auth_now(login))
        assert who.account_id == target.account_id
        signed_on = auth.identity_for_email(login, target.email, now=auth_now(login))
        assert signed_on == who
        for statement in (
            "SELECT password_hash FROM account",
            "SELECT display_name FROM patient",
            "SELECT * FROM paceline_admin_accounts()",
            "SET ROLE paceline_dashboard",
            "SET ROLE paceline_clinician",
            "SET ROLE paceline_owner",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                login.execute(statement)
            login.rollback()


def auth_now(conn: psycopg.Connection[Any]) -> Any:
    """The server's clock, which the lockout compares with."""
    row = conn.execute("SELECT now()").fetchone()
    conn.rollback()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("swap", ["login_as_dashboard", "person_as_login"])
def test_the_backend_refuses_a_pool_logged_in_as_the_wrong_role(
    db_dsn: str, identity_key: IdentityKey, swap: str
) -> None:
    dashboard, login = service_dsn(db_dsn, roles.DASHBOARD), service_dsn(db_dsn, roles.LOGIN)
    dsns = (dashboard, dashboard) if swap == "login_as_dashboard" else (login, login)
    with pytest.raises(BackendError, match="must log in as"):
        Backend(dsns[0], identity_key, login_dsn=dsns[1])
