"""What the store knows about gateway spools: identities, acknowledged sequences, incidents.

The batch writer keeps each spool's highest acknowledged sequence (`ingest_spool`) in the
batch's own transaction. What the ingest path refused or found lost (a spool that went
back in time, a batch id offered again with other rows, a spool that replaced a lost one)
is recorded here, in `ingest_incident`, for `paceline ingest status` and for a person.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import psycopg

IncidentKind = Literal["regression", "conflict", "replaced"]
INCIDENT_KINDS: Final = ("regression", "conflict", "replaced")


@dataclass(frozen=True)
class Incident:
    """One recorded incident of a spool."""

    spool_id: str
    source: str
    kind: str
    detail: Mapping[str, Any]
    reported_at: datetime


def register_spool(
    conn: psycopg.Connection[Any],
    spool_id: str,
    *,
    source: str,
    replaces: str | None = None,
    reason: str | None = None,
) -> int:
    """Make the store know `spool_id`; return its acknowledged sequence.

    A spool that replaces another (its file was lost or emptied and it started afresh)
    says which: the first registration records a `replaced` incident naming how far the
    store had acknowledged the lost one, so what it still held is known to be gone.
    """
    with conn.transaction():
        created = conn.execute(
            "INSERT INTO ingest_spool (spool_id, source, replaces) VALUES (%s, %s, %s)"
            " ON CONFLICT (spool_id) DO NOTHING RETURNING acked_seq",
            (spool_id, source, replaces),
        ).fetchone()
        if created is not None and replaces is not None:
            old = conn.execute(
                "SELECT acked_seq, last_seen FROM ingest_spool WHERE spool_id = %s", (replaces,)
            ).fetchone()
            record_incident(
                conn,
                spool_id,
                source=source,
                kind="replaced",
                detail={
                    "replaces": replaces,
                    "reason": reason or "",
                    "replaced_acked_seq": None if old is None else int(old[0]),
                    "replaced_last_seen": None if old is None else old[1].isoformat(),
                },
            )
        row = conn.execute(
            "UPDATE ingest_spool SET last_seen = now() WHERE spool_id = %s RETURNING acked_seq",
            (spool_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def record_incident(
    conn: psycopg.Connection[Any],
    spool_id: str,
    *,
    source: str,
    kind: IncidentKind,
    detail: Mapping[str, Any],
) -> None:
    """Record what a person must know about a spool (in the caller's transaction, if any)."""
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"incident kind must be one of {INCIDENT_KINDS}, not {kind!r}")
    conn.execute(
        "INSERT INTO ingest_incident (spool_id, source, kind, detail) VALUES (%s, %s, %s, %s)",
        (spool_id, source, kind, json.dumps(dict(detail), default=str)),
    )


def incidents(conn: psycopg.Connection[Any], *, source: str | None = None) -> list[Incident]:
    """Recorded incidents, newest first (of one gateway's spools when `source` is given)."""
    rows = conn.execute(
        "SELECT spool_id, source, kind, detail, reported_at FROM ingest_incident"
        " WHERE %(source)s::text IS NULL OR source = %(source)s"
        " ORDER BY reported_at DESC, incident_id DESC",
        {"source": source},
    ).fetchall()
    return [Incident(str(s), str(src), str(k), dict(d), at) for s, src, k, d, at in rows]


__all__ = [
    "INCIDENT_KINDS",
    "Incident",
    "IncidentKind",
    "incidents",
    "record_incident",
    "register_spool",
]
