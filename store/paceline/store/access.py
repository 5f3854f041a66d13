"""Person sessions under row-level security, and the audit log.

A person's queries run in one transaction that has switched to the person's
role (`paceline_clinician` or `paceline_patient`) and carries a signed,
expiring identity token for this connection (`paceline.store.identity`). The
policies of migration 0008 verify the token and show only what that person may
see: a clinician their care team's patients, a patient themself.

The connection must log in as a role that cannot leave the person role for
anything stronger (`paceline_dashboard`): `RESET ROLE` or `SET SESSION
AUTHORIZATION DEFAULT` inside the session then only lands in a role with no
privileges. A session on a superuser or owner connection would be escapable,
so it is refused.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from paceline.store import roles
from paceline.store.errors import StoreError
from paceline.store.identity import DEFAULT_TTL_S, IdentityKey, Kind

CLINICIAN_ROLE: Final = roles.CLINICIAN
PATIENT_ROLE: Final = roles.PATIENT
_ROLE_OF: Final[dict[str, str]] = {"clinician": CLINICIAN_ROLE, "patient": PATIENT_ROLE}


class PersonSessionError(StoreError):
    """A person session cannot be opened safely on this connection."""


@dataclass(frozen=True)
class Person:
    """Who a person session speaks for."""

    kind: Kind
    person_id: int

    @property
    def actor(self) -> str:
        """The audit actor of this person ('clinician:<id>' or 'patient:<id>')."""
        return f"{self.kind}:{self.person_id}"


def editor_actor(patient_id: int, clinician_id: int | None) -> str:
    """The audit actor of a change to a patient's record: the clinician's, else the patient's own.

    Named as the database names the person of a session (`paceline_identity_actor`), so
    that a person's own change passes the audit log's row policy.
    """
    if clinician_id is None:
        return Person("patient", patient_id).actor
    return Person("clinician", clinician_id).actor


def audit_edit(
    conn: psycopg.Connection[Any],
    patient_id: int,
    clinician_id: int | None,
    action: str,
    detail: dict[str, Any],
    *,
    obj: str,
) -> None:
    """Audit a change to a patient's record (`obj`) in the name of its editor (`editor_actor`)."""
    audit(
        conn,
        actor=editor_actor(patient_id, clinician_id),
        action=action,
        obj=obj,
        patient_id=patient_id,
        clinician_id=clinician_id,
        detail=detail,
    )


# The person of each connection inside a session, so that the query layer
# (paceline.store.reads) knows a person is reading and audits it; a service's
# connection is never in here, so service reads are not audited.
_PEOPLE: weakref.WeakKeyDictionary[psycopg.Connection[Any], Person] = weakref.WeakKeyDictionary()


def current_person(conn: psycopg.Connection[Any]) -> Person | None:
    """The person `conn`'s open session speaks for, or None outside a person session."""
    return _PEOPLE.get(conn)


@contextmanager
def clinician_session(
    conn: psycopg.Connection[Any],
    clinician_id: int,
    *,
    key: IdentityKey,
    ttl_s: int = DEFAULT_TTL_S,
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction in which `conn` sees only `clinician_id`'s care team."""
    with _person_session(conn, "clinician", clinician_id, key, ttl_s):
        yield conn


@contextmanager
def patient_session(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    key: IdentityKey,
    ttl_s: int = DEFAULT_TTL_S,
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction in which `conn` sees only patient `patient_id`'s own data."""
    with _person_session(conn, "patient", patient_id, key, ttl_s):
        yield conn


@contextmanager
def _person_session(
    conn: psycopg.Connection[Any], kind: Kind, person_id: int, key: IdentityKey, ttl_s: int
) -> Iterator[None]:
    status = conn.info.transaction_status
    if status != TransactionStatus.IDLE:
        # SET LOCAL lasts until the outer transaction ends, not until a
        # savepoint is released: nested, the person role and identity would
        # outlive the block. Refuse rather than leak them.
        raise PersonSessionError(
            f"a {kind} session needs a connection with no open transaction"
            f" (it is {status.name.lower()}); commit or roll back first"
        )
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls OR pg_has_role(session_user, %s, 'MEMBER')"
        " FROM pg_roles WHERE rolname = session_user",
        (roles.OWNER,),
    ).fetchone()
    if not conn.autocommit:
        conn.rollback()  # the check opened a transaction; the session needs its own
    if row is None or row[0]:
        raise PersonSessionError(
            f"{conn.info.user!r} can leave a person role for a privileged one; open {kind}"
            f" sessions on a connection that logs in as {roles.DASHBOARD}"
        )
    token = key.sign(kind, person_id, backend_pid=conn.info.backend_pid, ttl_s=ttl_s)
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(_ROLE_OF[kind])))
        conn.execute("SELECT set_config('paceline.identity', %s, true)", (token,))
        _PEOPLE[conn] = Person(kind, person_id)
        try:
            yield
        finally:
            _PEOPLE.pop(conn, None)


@dataclass(frozen=True)
class _Entry:
    """One audit row waiting to be written (`detail` already JSON)."""

    actor: str | None
    clinician_id: int | None
    patient_id: int | None
    action: str
    obj: str
    detail: str


# The audit rows of each connection inside `deferred_audit`, written when it ends.
_PENDING: weakref.WeakKeyDictionary[psycopg.Connection[Any], list[_Entry]] = (
    weakref.WeakKeyDictionary()
)


_CAN_WRITE = (TransactionStatus.IDLE, TransactionStatus.INTRANS)


@contextmanager
def deferred_audit(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Write every audit row of the block on `conn` in one statement as the block ends.

    For a block of reads (a page's render): each read is audited as before, in the
    same transaction, but the block pays for one INSERT instead of one per read, and
    the audit chain's head (migration 0017 locks it from the first insert until
    commit) is held only from the end of the block. Rows audited inside a savepoint
    that is rolled back would still be written, so keep writes that may be rolled
    back out of the block. When the block raises, what it audited is still written
    while the transaction can commit (whatever was read stays audited); a nested
    block leaves the writing to the outer one.
    """
    if conn in _PENDING:
        yield
        return
    pending: list[_Entry] = []
    _PENDING[conn] = pending
    try:
        yield
    except BaseException:
        _PENDING.pop(conn, None)
        if pending and conn.info.transaction_status in _CAN_WRITE:
            _write(conn, pending)
        raise
    _PENDING.pop(conn, None)
    if pending:
        _write(conn, pending)


def _append(conn: psycopg.Connection[Any], entries: list[_Entry]) -> None:
    """Write `entries` now, or at the end of the connection's `deferred_audit` block."""
    pending = _PENDING.get(conn)
    if pending is None:
        _write(conn, entries)
    else:
        pending.extend(entries)


def _write(conn: psycopg.Connection[Any], entries: list[_Entry]) -> None:
    """One INSERT of `entries`, in their order (the audit chain numbers them so)."""
    try:
        conn.execute(
            "INSERT INTO audit_log (actor, clinician_id, patient_id, action, object, detail)"
            " SELECT coalesce(e.actor, paceline_identity_actor()), e.clinician_id,"
            " e.patient_id, e.action, e.object, e.detail::jsonb"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],"
            " %s::text[]) WITH ORDINALITY"
            " AS e (actor, clinician_id, patient_id, action, object, detail, n) ORDER BY e.n",
            (
                [e.actor for e in entries],
                [e.clinician_id for e in entries],
                [e.patient_id for e in entries],
                [e.action for e in entries],
                [e.obj for e in entries],
                [e.detail for e in entries],
            ),
        )
    except psycopg.errors.NotNullViolation as exc:
        raise PersonSessionError(
            "an audit entry needs an actor: pass actor= outside a person session"
        ) from exc


def audit(
    conn: psycopg.Connection[Any],
    *,
    action: str,
    obj: str,
    actor: str | None = None,
    patient_id: int | None = None,
    clinician_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (who did what to which patient's data).

    In a person session `actor` may be left out: it is then the verified
    person ('clinician:<id>' or 'patient:<id>'), which is also the only actor
    the policies accept from a person. Inside `deferred_audit` the entry is
    written as that block ends.
    """
    _append(
        conn,
        [_Entry(actor, clinician_id, patient_id, action, obj, json.dumps(detail or {}))],
    )


def record_reads(
    conn: psycopg.Connection[Any],
    *,
    obj: str,
    patient_ids: Iterable[int],
    detail: dict[str, Any] | None = None,
) -> int:
    """Audit that the session's person read `obj` of each patient; services are not audited.

    One statement, one row per patient (inside `deferred_audit`, part of that
    block's statement). Returns how many rows it wrote (0 outside a person session).
    """
    person = current_person(conn)
    ids = sorted(set(patient_ids))
    if person is None or not ids:
        return 0
    clinician_id = person.person_id if person.kind == "clinician" else None
    text = json.dumps(detail or {})
    _append(conn, [_Entry(person.actor, clinician_id, p, "read", obj, text) for p in ids])
    return len(ids)
