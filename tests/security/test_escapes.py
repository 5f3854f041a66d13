"""SQL inside a person session cannot leave it: role escapes and forged identities."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.store.access import PersonSessionError, clinician_session
from paceline.store.identity import IdentityKey
from tests.security.conftest import Session, World

ESCAPES = {
    "reset_role": sql.SQL("RESET ROLE"),
    "set_role_superuser": sql.SQL("SET ROLE {superuser}"),
    "set_role_owner": sql.SQL("SET ROLE paceline_owner"),
    "set_role_migrate": sql.SQL("SET ROLE paceline_migrate"),
    "set_config_role_none": sql.SQL("SELECT set_config('role', 'none', false)"),
    "session_authorization_default": sql.SQL("SET SESSION AUTHORIZATION DEFAULT"),
    "session_authorization_superuser": sql.SQL("SET SESSION AUTHORIZATION {superuser}"),
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_no_role_escape_reaches_privileges_or_other_patients(
    as_clinician: Session, superuser_name: str, world: World, escape: str
) -> None:
    statement = ESCAPES[escape].format(superuser=sql.Identifier(superuser_name))
    with as_clinician() as conn:
        try:
            with conn.transaction():
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return  # refused outright
        row = conn.execute(
            "SELECT current_user, r.rolsuper, pg_has_role(current_user, 'paceline_owner', 'USAGE')"
            " FROM pg_roles r WHERE r.rolname = current_user"
        ).fetchone()
        assert row is not None
        assert row[1:] == (False, False), row
        try:
            with conn.transaction():
                seen = {r[0] for r in conn.execute("SELECT patient_id FROM patient").fetchall()}
        except psycopg.errors.InsufficientPrivilege:
            seen = set()
        assert world.theirs not in seen
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


def test_setting_the_old_clinician_id_shows_nothing_more(
    as_clinician: Session, world: World
) -> None:
    with as_clinician() as conn:
        conn.execute("SELECT set_config('paceline.clinician_id', %s, true)", (str(world.other),))
        seen = {r[0] for r in conn.execute("SELECT patient_id FROM self_report").fetchall()}
        samples = {r[0] for r in conn.execute("SELECT patient_id FROM clinician_hr_sample")}
    assert seen == {world.mine}
    assert samples == {world.mine}


def _forge(key: IdentityKey, conn: psycopg.Connection[Any], how: str, world: World) -> str:
    pid = conn.info.backend_pid
    if how == "other_key":
        return IdentityKey.generate().sign("clinician", world.other, backend_pid=pid)
    if how == "tampered_person":
        good = key.sign("clinician", world.me, backend_pid=pid).split("|")
        good[2] = str(world.other)
        return "|".join(good)
    if how == "tampered_kind":
        good = key.sign("patient", world.theirs, backend_pid=pid).split("|")
        good[1] = "clinician"
        return "|".join(good)
    if how == "expired":
        return key.sign("clinician", world.other, backend_pid=pid, now_s=time.time() - 3600)
    if how == "other_backend":
        return key.sign("clinician", world.other, backend_pid=pid + 1)
    if how == "garbage":
        return "v1|clinician|1|9999999999|1|" + "0" * 63
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["other_key", "tampered_person", "tampered_kind", "expired", "other_backend", "garbage"],
)
def test_a_forged_or_replayed_identity_is_refused(
    as_clinician: Session, identity_key: IdentityKey, world: World, how: str
) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"paceline\.identity"),
        as_clinician() as conn,
    ):
        token = _forge(identity_key, conn, how, world)
        conn.execute("SELECT set_config('paceline.identity', %s, true)", (token,))
        conn.execute("SELECT patient_id FROM patient").fetchall()


def test_the_identity_key_is_unreadable_from_a_session(as_clinician: Session) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_clinician() as conn:
        conn.execute("SELECT * FROM paceline_identity_key")


def test_a_person_cannot_install_their_own_key(as_clinician: Session) -> None:
    pads = (b"\x36" * 64, b"\x5c" * 64)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_clinician() as conn:
        conn.execute("SELECT paceline_set_identity_key(%s, %s)", pads)


def test_a_person_session_is_refused_on_a_superuser_connection(
    conn: psycopg.Connection[Any], world: World, identity_key: IdentityKey
) -> None:
    with (
        pytest.raises(PersonSessionError, match="paceline_dashboard"),
        clinician_session(conn, world.me, key=identity_key),
    ):
        pass


def test_a_person_session_refuses_to_nest_in_an_open_transaction(
    dashboard_conn: psycopg.Connection[Any], world: World, identity_key: IdentityKey
) -> None:
    dashboard_conn.execute("SELECT 1")
    with (
        pytest.raises(PersonSessionError, match="open transaction"),
        clinician_session(dashboard_conn, world.me, key=identity_key),
    ):
        pass
    dashboard_conn.rollback()
    with clinician_session(dashboard_conn, world.me, key=identity_key):
        pass
    role = dashboard_conn.execute("SELECT current_user, current_setting('paceline.identity', true)")
    assert role.fetchone() in {("paceline_dashboard", None), ("paceline_dashboard", "")}
