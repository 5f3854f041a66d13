"""Every table, view and function follows the security model, including ones added later.

A new table fails here until it is given an owner, row security and grants
that agree with the model: add it to `GRANTS` below with what each role may
do, and say in the migration why.
"""

from __future__ import annotations

from typing import Any

import psycopg

from paceline.store import roles

#: Relation -> role (without the paceline_ prefix) -> privileges. Nothing else is granted.
GRANTS: dict[str, dict[str, str]] = {
    "account": {},
    "audit_chain_head": {},
    "alert": {"clinician": "INSERT,SELECT,UPDATE", "worker": "DELETE,INSERT,SELECT,UPDATE"},
    "alert_delivery": {
        "clinician": "SELECT",
        "patient": "SELECT",
        "worker": "INSERT,SELECT,UPDATE",
    },
    "alert_endpoint": {"worker": "INSERT,SELECT,UPDATE"},
    "audit_log": {
        "clinician": "INSERT",
        "owner": "INSERT,SELECT",
        "patient": "INSERT",
        "worker": "INSERT",
    },
    "care_team": {"clinician": "SELECT", "worker": "SELECT"},
    "clinician": {"clinician": "SELECT", "worker": "SELECT"},
    # The job queue (0011 and paceline.store.queue_schema): only the workers run jobs.
    "clock_slot": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "evaluation_due": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "procrastinate_events": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "procrastinate_jobs": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "procrastinate_periodic_defers": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "procrastinate_workers": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "queue_schema": {"ingest": "SELECT", "worker": "SELECT"},
    "clinician_hr_sample": {"clinician": "SELECT", "patient": "SELECT"},
    "clinician_rr_interval": {"clinician": "SELECT", "patient": "SELECT"},
    "clinician_step_sample": {"clinician": "SELECT", "patient": "SELECT"},
    "daily_metrics": {
        "clinician": "SELECT",
        "patient": "SELECT",
        "worker": "DELETE,INSERT,SELECT,UPDATE",
    },
    # The worker imports dashboard uploads (0022): devices per source, samples, batches.
    "device": {
        "clinician": "SELECT",
        "ingest": "SELECT",
        "patient": "SELECT",
        "worker": "INSERT,SELECT,UPDATE",
    },
    # Migration 0019: clinicians prescribe and set targets, patients log sessions,
    # the engine adds target versions.
    "exercise_prescription": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "SELECT",
        "worker": "SELECT",
    },
    "exercise_session": {"clinician": "SELECT", "patient": "INSERT,SELECT", "worker": "SELECT"},
    "exercise_target": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "SELECT",
        "worker": "INSERT,SELECT",
    },
    "goal_link": {"clinician": "DELETE,INSERT,SELECT", "patient": "SELECT", "worker": "SELECT"},
    "valued_goal": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "INSERT,SELECT,UPDATE",
        "worker": "SELECT",
    },
    "exposure_item": {"clinician": "INSERT,SELECT,UPDATE", "patient": "SELECT", "worker": "SELECT"},
    # Migration 0021: the ladder's rating history (append-only: nobody may UPDATE or DELETE).
    "exposure_rating": {"clinician": "INSERT,SELECT", "patient": "SELECT", "worker": "SELECT"},
    "exposure_session": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "INSERT,SELECT,UPDATE",
        "worker": "SELECT",
    },
    "flag": {"clinician": "INSERT,SELECT,UPDATE", "worker": "DELETE,INSERT,SELECT,UPDATE"},
    "flare_risk": {
        "clinician": "SELECT",
        "patient": "SELECT",
        "worker": "DELETE,INSERT,SELECT,UPDATE",
    },
    "hr_sample": {"ingest": "INSERT,SELECT", "worker": "INSERT,SELECT"},
    "hrv_sdnn_sample": {"ingest": "INSERT,SELECT", "worker": "INSERT,SELECT"},
    "import_upload": {"worker": "SELECT,UPDATE"},
    "ingest_batch": {"ingest": "INSERT,SELECT,UPDATE", "worker": "INSERT,SELECT,UPDATE"},
    "ingest_incident": {"ingest": "INSERT,SELECT", "worker": "SELECT"},
    "ingest_quarantine": {"ingest": "INSERT,SELECT"},
    "ingest_spool": {"ingest": "INSERT,SELECT,UPDATE", "worker": "SELECT"},
    "paceline_identity_key": {},
    "pacing_plan": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "SELECT",
        "worker": "DELETE,INSERT,SELECT,UPDATE",
    },
    "pacing_state": {"worker": "DELETE,INSERT,SELECT,UPDATE"},
    "patient": {"clinician": "SELECT", "patient": "SELECT", "worker": "SELECT"},
    "patient_review": {"clinician": "INSERT,SELECT"},
    # Migration 0021: clinicians' progress notes (never edited; amended by a new note).
    "progress_note": {"clinician": "INSERT,SELECT"},
    # Migration 0020: patients write their screens and the pause a positive one opens;
    # clinicians clear pauses; workers mark screens evaluated.
    "progression_pause": {
        "clinician": "SELECT,UPDATE",
        "patient": "INSERT,SELECT",
        "worker": "SELECT",
    },
    "red_flag_screen": {
        "clinician": "SELECT",
        "patient": "INSERT,SELECT",
        "worker": "SELECT,UPDATE",
    },
    "questionnaire_response": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "INSERT,SELECT",
        "worker": "SELECT",
    },
    "rr_interval": {"ingest": "INSERT,SELECT", "worker": "INSERT,SELECT"},
    "sample_span": {"ingest": "INSERT", "worker": "DELETE,INSERT,SELECT,UPDATE"},
    "schema_migrations": {"ingest": "SELECT", "worker": "SELECT"},
    "self_report": {
        "clinician": "INSERT,SELECT,UPDATE",
        "patient": "INSERT,SELECT",
        "worker": "SELECT",
    },
    "step_sample": {"ingest": "INSERT,SELECT", "worker": "INSERT,SELECT"},
}
#: People read an upload's outcome (0022), never its bytes.
_UPLOAD_OUTCOME = (
    "upload_id",
    "patient_id",
    "requested_by",
    "filename",
    "size_bytes",
    "sha256",
    "status",
    "summary",
    "error",
    "requested_at",
    "started_at",
    "finished_at",
)
COLUMN_GRANTS = {
    *(
        ("import_upload", column, role, "SELECT")
        for column in _UPLOAD_OUTCOME
        for role in ("paceline_clinician", "paceline_patient")
    ),
    # Migration 0027: the gateway's uploader stores each wearable's battery level.
    ("device", "battery_at", "paceline_ingest", "UPDATE"),
    ("device", "battery_pct", "paceline_ingest", "UPDATE"),
    ("device", "last_seen", "paceline_ingest", "UPDATE"),
    ("patient", "birth_year", "paceline_ingest", "SELECT"),
    ("patient", "patient_id", "paceline_ingest", "SELECT"),
}
#: Tables people never read directly (TimescaleDB forbids row security on compressed
#: hypertables), and the key table nobody but the owner reads: no row security needed.
WITHOUT_ROW_SECURITY = {
    "hr_sample",
    "rr_interval",
    "step_sample",
    "paceline_identity_key",
    "audit_chain_head",
}
#: The job queue's tables: only the owner and the worker may read them, both see every
#: row, and procrastinate needs the key in unique-violation messages, which PostgreSQL
#: omits on tables with row security (see `paceline.store.queue_schema`).
WITHOUT_ROW_SECURITY |= {
    "procrastinate_events",
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}
#: The audit log and its chain belong to their own owner, whom only a superuser can become.
AUDIT_OBJECTS = {
    "audit_log",
    "audit_chain_head",
    "paceline_audit_content(audit_log)",
    "paceline_audit_chain()",
    "paceline_audit_reject()",
}
#: Functions that run with their owner's rights, each reviewed with the roles that may
#: call it (besides its owner; PUBLIC is everyone) and why that is safe for each of them.
#: A new SECURITY DEFINER function, or a new grant on one, fails here until it is added.
SECURITY_DEFINER: dict[str, frozenset[str]] = {
    # Return only what the session's own signed identity token allows (the person
    # id, their care team, whether they may see a patient): without a valid token
    # NULL or nothing, and a forged, expired or replayed one is an error.
    "paceline_verified_person(text)": frozenset({"PUBLIC"}),
    "paceline_clinician_patients()": frozenset({"PUBLIC"}),
    "paceline_may_see(bigint)": frozenset({"PUBLIC"}),
    # A trigger function (never callable directly), of the audit log's own owner.
    "paceline_audit_chain()": frozenset(),
    # Return password hashes and e-mail, lock accounts and replace hashes: only the
    # login role, which no dashboard session can become (migration 0025).
    "paceline_login_lookup(text)": frozenset({"login"}),
    "paceline_login_outcome(bigint,boolean,timestamp with time zone,integer,interval,text)": (
        frozenset({"login"})
    ),
    # Migration 0028: maps a single sign-on's e-mail to its account (no hash) and records
    # the sign-in; the login role's only, like the two above.
    "paceline_login_by_email(text,timestamp with time zone)": frozenset({"login"}),
    # Migration 0013: each refuses unless a signed administrator identity is present,
    # which only the dashboard process can mint.
    "paceline_admin_accounts()": frozenset({"dashboard"}),
    "paceline_admin_care_teams()": frozenset({"dashboard"}),
    "paceline_admin_audit(timestamp with time zone,timestamp with time zone,text,bigint,text,integer)": (
        frozenset({"dashboard"})
    ),
    "paceline_admin_set_disabled(text,boolean)": frozenset({"dashboard"}),
    # Migration 0022: refuses unless a signed person identity is present and may see the
    # patient (the person themself, or a clinician of the care team): it stores their
    # upload and defers its import, nothing a person could not ask for on the page.
    "paceline_request_import(bigint,text,bytea)": frozenset({"clinician", "patient"}),
    # Migration 0031: refuses unless a signed patient identity is present; queues only
    # that patient's evaluation, for one of their own unread positive red-flag screens.
    "paceline_queue_red_flag_evaluation(bigint)": frozenset({"patient"}),
}
PERSON_AND_SERVICE_ROLES = (*roles.PERSON_ROLES, *roles.SERVICE_ROLES)


def _relations(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, bool, bool]]:
    rows = conn.execute(
        "SELECT c.relname, c.relkind::text, c.relowner::regrole::text, c.relrowsecurity,"
        " c.relforcerowsecurity FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1"
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def test_every_relation_is_known_to_the_security_model(conn: psycopg.Connection[Any]) -> None:
    names = {r[0] for r in _relations(conn)}
    assert sorted(names - set(GRANTS)) == [], "add new relations to GRANTS with their grants"
    assert sorted(set(GRANTS) - names) == []


def test_every_relation_belongs_to_the_owner(conn: psycopg.Connection[Any]) -> None:
    owners = {name: owner for name, _, owner, _, _ in _relations(conn)}
    assert {name: owner for name, owner in owners.items() if owner != _owner_of(name)} == {}


def _owner_of(name: str) -> str:
    return roles.AUDIT_OWNER if name in AUDIT_OBJECTS else roles.OWNER


def test_every_table_forces_row_level_security(conn: psycopg.Connection[Any]) -> None:
    missing = [
        name
        for name, kind, _, enabled, forced in _relations(conn)
        if kind in "rp" and name not in WITHOUT_ROW_SECURITY and not (enabled and forced)
    ]
    assert missing == []


def test_grants_are_exactly_the_models(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT c.relname, a.grantee, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)"
        " FROM pg_class c, aclexplode(c.relacl) a WHERE c.relnamespace = 'public'::regnamespace"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.grantee <> c.relowner"
        " GROUP BY c.relname, a.grantee"
    ).fetchall()
    granted: dict[str, dict[str, str]] = {name: {} for name in GRANTS}
    for name, grantee, privileges in rows:
        role = "PUBLIC" if grantee == 0 else _role_name(conn, grantee)
        granted.setdefault(name, {})[role.removeprefix("paceline_")] = privileges
    assert granted == GRANTS
    columns = conn.execute(
        "SELECT c.relname, a.attname, x.grantee::regrole::text, x.privilege_type"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) x"
        " WHERE c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    assert set(columns) == COLUMN_GRANTS


def _role_name(conn: psycopg.Connection[Any], oid: int) -> str:
    row = conn.execute("SELECT rolname FROM pg_roles WHERE oid = %s", (oid,)).fetchone()
    assert row is not None
    return str(row[0])


def test_functions_belong_to_the_owner_and_definer_rights_are_reviewed(
    conn: psycopg.Connection[Any],
) -> None:
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.prosecdef"
        " FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
        " AND d.objid = p.oid AND d.deptype = 'e')"
    ).fetchall()
    assert {name: owner for name, owner, _ in rows if owner != _owner_of(name)} == {}
    assert {name for name, _, definer in rows if definer} == set(SECURITY_DEFINER)
    setter = conn.execute(
        "SELECT has_function_privilege(r, 'paceline_set_identity_key(bytea, bytea)', 'EXECUTE')"
        " FROM unnest(%s::text[]) r",
        (list(PERSON_AND_SERVICE_ROLES),),
    ).fetchall()
    assert setter == [(False,)] * len(PERSON_AND_SERVICE_ROLES)


def test_every_definer_function_searches_pg_temp_last(conn: psycopg.Connection[Any]) -> None:
    # Without pg_temp in it, a search_path searches the caller's temporary schema first
    # for relations and types ("Writing SECURITY DEFINER Functions Safely", CREATE
    # FUNCTION in the PostgreSQL documentation): tests/security/test_temp_shadowing.py.
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, (SELECT substr(c, length('search_path=') + 1)"
        "  FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')"
        " FROM pg_proc p WHERE p.prosecdef"
        " AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
        # An extension's own functions (TimescaleDB's) are its maintainers' to keep safe.
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
        " AND d.objid = p.oid AND d.deptype = 'e')"
    ).fetchall()
    assert {name for name, _ in rows} >= set(SECURITY_DEFINER)
    unsafe = {
        name: path
        for name, path in rows
        if path is None or [s.strip() for s in path.split(",")][-1] != "pg_temp"
    }
    assert unsafe == {}


def test_definer_functions_are_executable_by_their_reviewed_roles_only(
    conn: psycopg.Connection[Any],
) -> None:
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, CASE WHEN a.grantee = 0 THEN 'PUBLIC'"
        " ELSE a.grantee::regrole::text END FROM pg_proc p,"
        " aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef"
        " AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner"
    ).fetchall()
    granted: dict[str, set[str]] = {name: set() for name in SECURITY_DEFINER}
    for name, grantee in rows:
        granted.setdefault(name, set()).add(grantee.removeprefix("paceline_"))
    assert granted == {name: set(who) for name, who in SECURITY_DEFINER.items()}


def test_no_role_is_privileged_and_memberships_are_the_models(
    conn: psycopg.Connection[Any],
) -> None:
    rows = conn.execute(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname LIKE 'paceline\\_%'"
    ).fetchall()
    assert {r[0] for r in rows} >= {*PERSON_AND_SERVICE_ROLES, roles.OWNER}
    assert [r[0] for r in rows if any(r[1:])] == []
    members = conn.execute(
        "SELECT u.rolname, r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " JOIN pg_roles u ON u.oid = m.member"
        " WHERE u.rolname LIKE 'paceline\\_%' AND r.rolname LIKE 'paceline\\_%'"
    ).fetchall()
    assert set(members) == {
        (roles.MIGRATE, roles.OWNER),
        (roles.OWNER, roles.CLINICIAN),
        (roles.DASHBOARD, roles.CLINICIAN),
        (roles.DASHBOARD, roles.PATIENT),
    }
    inherit = dict(
        conn.execute(
            "SELECT rolname, rolinherit FROM pg_roles WHERE rolname = ANY(%s)",
            ([roles.MIGRATE, roles.DASHBOARD, roles.LOGIN],),
        ).fetchall()
    )
    assert inherit == {roles.MIGRATE: False, roles.DASHBOARD: False, roles.LOGIN: False}


def test_no_chunk_grants_more_than_its_hypertable(
    conn: psycopg.Connection[Any], require_timescaledb: None
) -> None:
    rows = conn.execute(
        "SELECT c.oid::regclass::text, p.relname FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE p.relnamespace = 'public'::regnamespace"
    ).fetchall()
    for chunk, parent in rows:
        for role in roles.PERSON_ROLES:
            granted = conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", (role, chunk)
            ).fetchone()
            assert granted == (False,), (chunk, parent, role)
