"""Fixtures for the attacks: two care teams with a patient each, and sessions as each person."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from paceline.store import Batch, HrRows, connect, registry, write_batch
from paceline.store.access import clinician_session, patient_session
from paceline.store.identity import IdentityKey
from tests.factories import patient_with_device

Session = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


@dataclass(frozen=True)
class World:
    """Two clinicians, each with one patient on their care team, each patient with data."""

    me: int
    other: int
    mine: int
    theirs: int


@pytest.fixture(scope="module")
def world(db_dsn: str) -> World:
    """Build the two care teams once per module, with a row in every patient table."""
    with connect(db_dsn) as conn:
        mine, my_device = patient_with_device(conn)
        theirs, their_device = patient_with_device(conn)
        me = registry.create_clinician(conn, username=f"a{uuid.uuid4().hex[:8]}", display_name="A")
        other = registry.create_clinician(
            conn, username=f"b{uuid.uuid4().hex[:8]}", display_name="B"
        )
        registry.assign_care_team(conn, clinician_id=me, patient_id=mine)
        registry.assign_care_team(conn, clinician_id=other, patient_id=theirs)
        t = datetime(2026, 5, 1, tzinfo=UTC)
        for pid in (mine, theirs):
            conn.execute(
                "INSERT INTO self_report (patient_id, reported_at, pain_now) VALUES (%s, %s, 4)",
                (pid, t),
            )
            conn.execute(
                "INSERT INTO daily_metrics (patient_id, day, wear_min, zone_min)"
                " VALUES (%s, %s, 600, '{1,2,3,4,5}')",
                (pid, t.date()),
            )
        conn.commit()
        for pid, did in ((mine, my_device), (theirs, their_device)):
            write_batch(
                conn,
                Batch(
                    f"sec-{pid}",
                    hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[61]),
                ),
            )
    return World(me=me, other=other, mine=mine, theirs=theirs)


@pytest.fixture
def as_clinician(
    dashboard_conn: psycopg.Connection[Any], world: World, identity_key: IdentityKey
) -> Session:
    """Open a session as clinician `world.me` on a dashboard connection."""
    return lambda: clinician_session(dashboard_conn, world.me, key=identity_key)


@pytest.fixture
def as_patient(
    dashboard_conn: psycopg.Connection[Any], world: World, identity_key: IdentityKey
) -> Session:
    """Open a session as patient `world.mine` on a dashboard connection."""
    return lambda: patient_session(dashboard_conn, world.mine, key=identity_key)


@pytest.fixture
def superuser_name(conn: psycopg.Connection[Any]) -> Iterator[str]:
    """The name of the server's bootstrap superuser (postgres, or whoever ran initdb)."""
    row = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()
    conn.rollback()
    assert row is not None
    yield str(row[0])
