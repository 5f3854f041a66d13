"""The database roles of Paceline and the administrator's one-time set-up of them.

Roles are cluster-wide, so `bootstrap` creates them once per server (and is
safe to repeat); the schema grants of each role come from the migrations.

- `paceline_owner` (NOLOGIN) owns every table, view and function; migrations
  run as it.
- `paceline_audit_owner` (NOLOGIN) owns the audit log and nothing else, so the
  owner of everything else cannot rewrite it.
- `paceline_clinician`, `paceline_patient` (NOLOGIN): the person roles; the
  policies read a signed identity (see `paceline.store.identity`).
- LOGIN service roles, none a superuser and none able to act as the owner
  except `paceline_migrate`, whose job is changing the schema:
  `paceline_migrate` (NOINHERIT member of the owner: it holds no privilege of
  its own and acts as the owner only by `SET ROLE`), `paceline_ingest` (the
  gateway uploader), `paceline_worker` (scheduler and queue workers),
  `paceline_dashboard` (NOINHERIT member of the two person roles only) and
  `paceline_login` (the dashboard's password checks: it may call the two
  login functions and nothing else). The login functions return password
  hashes and can lock or re-hash any account, so they belong to a role that
  the dashboard's person sessions cannot become: SQL injected into one of
  those sessions can `RESET ROLE` to `paceline_dashboard`, but never reach
  `paceline_login`, whose connections run only the dashboard's fixed,
  parameterised login queries.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from paceline.store.errors import StoreError

OWNER: Final = "paceline_owner"
AUDIT_OWNER: Final = "paceline_audit_owner"
CLINICIAN: Final = "paceline_clinician"
PATIENT: Final = "paceline_patient"
MIGRATE: Final = "paceline_migrate"
INGEST: Final = "paceline_ingest"
WORKER: Final = "paceline_worker"
DASHBOARD: Final = "paceline_dashboard"
LOGIN: Final = "paceline_login"

#: The roles a Paceline process logs in as, one per service.
SERVICE_ROLES: Final = (MIGRATE, INGEST, WORKER, DASHBOARD, LOGIN)
PERSON_ROLES: Final = (CLINICIAN, PATIENT)


@dataclass(frozen=True)
class RoleSpec:
    """How one role is created: login or not, inherit or not, and whom it may become."""

    name: str
    login: bool
    inherit: bool
    member_of: tuple[str, ...] = ()


ROLES: Final = (
    RoleSpec(OWNER, login=False, inherit=True),
    RoleSpec(AUDIT_OWNER, login=False, inherit=True),
    # Migration 0003 grants the clinician role to whoever runs it (it used to
    # be the owner switching into clinician sessions); migrations now run as
    # the owner, so the owner holds the membership that check looks for. The
    # owner already has every privilege the clinician role has.
    RoleSpec(CLINICIAN, login=False, inherit=True),
    RoleSpec(PATIENT, login=False, inherit=True),
    RoleSpec(MIGRATE, login=True, inherit=False, member_of=(OWNER,)),
    RoleSpec(INGEST, login=True, inherit=True),
    RoleSpec(WORKER, login=True, inherit=True),
    RoleSpec(DASHBOARD, login=True, inherit=False, member_of=(CLINICIAN, PATIENT)),
    RoleSpec(LOGIN, login=True, inherit=False),
)
_OWNER_MEMBER_OF: Final = (CLINICIAN,)


class RoleSetupError(StoreError):
    """The roles cannot be set up: the connection lacks the rights, or a role is misconfigured."""


def generate_password() -> str:
    """A random password for a service role (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_superuser(conn: psycopg.Connection[Any]) -> bool:
    """Whether the session user of `conn` is a superuser."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").fetchone()
    return bool(row and row[0])


def roles_exist(conn: psycopg.Connection[Any]) -> bool:
    """Whether every Paceline role exists on the server."""
    row = conn.execute(
        "SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", ([r.name for r in ROLES],)
    ).fetchone()
    return bool(row and row[0] == len(ROLES))


def bootstrap(conn: psycopg.Connection[Any], *, passwords: Mapping[str, str] | None = None) -> None:
    """Create (or repair) the roles, their memberships and the database prerequisites.

    Needs a superuser, once per server and once per database; repeating it
    changes nothing but the passwords given. `passwords` maps a LOGIN role to
    the password it logs in with (SCRAM-hashed by the server).
    """
    if not is_superuser(conn):
        raise RoleSetupError(
            "setting up Paceline's roles needs a PostgreSQL superuser once per server;"
            " run `paceline db migrate` as the administrator first"
        )
    given = dict(passwords or {})
    unknown = set(given) - {r.name for r in ROLES if r.login}
    if unknown:
        raise RoleSetupError(f"passwords given for roles that do not log in: {sorted(unknown)}")
    if not conn.autocommit:
        raise RoleSetupError("setting up the roles needs a connection in autocommit mode")
    with conn.transaction():
        lock_roles(conn)
        timescale = conn.execute(
            "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        for spec in ROLES:
            if spec.name == OWNER and timescale and timescale[0]:
                # TimescaleDB runs compression and retention jobs as the hypertable
                # owner and refuses owners that cannot log in (timescale/timescaledb
                # #1662, #1709). The owner gets LOGIN with no password: password
                # authentication can never succeed for it.
                _ensure_role(conn, RoleSpec(OWNER, login=True, inherit=True), None)
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(OWNER)))
                continue
            _ensure_role(conn, spec, given.get(spec.name))
        for member_of in _OWNER_MEMBER_OF:
            _ensure_member(conn, OWNER, member_of)
        for spec in ROLES:
            for parent in spec.member_of:
                _ensure_member(conn, spec.name, parent)
        # PostgreSQL 15 no longer lets PUBLIC create in schema public; a database
        # made from an older template may still, and the SECURITY DEFINER
        # functions rely on nobody but the owner creating objects there.
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(OWNER))
        )
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(str(conn.info.dbname)),
                sql.SQL(", ").join(sql.Identifier(r) for r in SERVICE_ROLES),
            )
        )


def lock_roles(conn: psycopg.Connection[Any]) -> None:
    """Serialise role changes across the whole server until the transaction ends.

    Two services starting at once bootstrap concurrently, and CREATE ROLE has no
    IF NOT EXISTS. Roles are cluster-wide while an advisory lock belongs to one
    database, so two databases of one server bootstrapping at once would not wait
    for each other; `pg_authid` is a shared catalog, and a lock on it is one lock
    for the whole cluster. It must be the transaction's first statement: taking a
    relation lock reads the catalog changes committed while it waited (an
    advisory lock does not, and the ALTER ROLE after it then fails with "tuple
    concurrently updated"). It conflicts with nothing but other role changes.
    """
    conn.execute("LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE")


def _ensure_role(conn: psycopg.Connection[Any], spec: RoleSpec, password: str | None) -> None:
    attributes = sql.SQL(
        "{login} {inherit} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    ).format(
        login=sql.SQL("LOGIN" if spec.login else "NOLOGIN"),
        inherit=sql.SQL("INHERIT" if spec.inherit else "NOINHERIT"),
    )
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.name,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(sql.SQL("{} {} {}").format(verb, sql.Identifier(spec.name), attributes))
    if password is not None:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(spec.name), sql.Literal(password)
            )
        )


def _ensure_member(conn: psycopg.Connection[Any], member: str, role: str) -> None:
    row = conn.execute(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s AND u.rolname = %s",
        (role, member),
    ).fetchone()
    if row is None:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(member)))


def role_dsn(dsn: str, role: str, password: str | None) -> str:
    """`dsn` with its user replaced by `role` (and its password by `password`, or none)."""
    params = _params(dsn)
    params["user"] = role
    params.pop("password", None)
    if password is not None:
        params["password"] = password
    return make_conninfo("", **params)


def with_password(dsn: str, password: str) -> str:
    """`dsn` with `password` as its password."""
    params = _params(dsn)
    params["password"] = password
    return make_conninfo("", **params)


def _params(dsn: str) -> dict[str, Any]:
    return {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
