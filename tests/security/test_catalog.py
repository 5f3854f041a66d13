"""Catalog statistics a person role can read: none of Paceline's tables' column statistics or chunk catalog."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from paceline.store import connect, roles
from paceline.store.testing import service_dsn
from tests.security.conftest import Session, World


def test_column_statistics_show_a_person_nothing(
    conn: psycopg.Connection[Any], as_clinician: Session, as_patient: Session, world: World
) -> None:
    conn.execute("ANALYZE")
    conn.commit()
    assert conn.execute(
        "SELECT count(*) > 0 FROM pg_stats WHERE schemaname = 'public' AND tablename = 'patient'"
    ).fetchone() == (True,)
    conn.rollback()
    for session in (as_clinician, as_patient):
        with session() as s:
            seen = s.execute(
                "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = 'public'"
            ).fetchall()
            extended = s.execute(
                "SELECT count(*) FROM pg_stats_ext WHERE schemaname = 'public'"
            ).fetchone()
        assert seen == []
        assert extended == (0,)


TIMESCALE_CATALOG = (
    ("timescaledb_information", "chunks"),
    ("timescaledb_information", "hypertables"),
    ("timescaledb_information", "dimensions"),
    ("_timescaledb_catalog", "dimension_slice"),
    ("_timescaledb_catalog", "chunk"),
)


@pytest.mark.parametrize(("schema", "relation"), TIMESCALE_CATALOG)
def test_timescaledb_chunk_ranges_are_for_services_only(
    db_dsn: str, as_clinician: Session, require_timescaledb: None, schema: str, relation: str
) -> None:
    query = sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(relation)
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_clinician() as s:
        s.execute(query)
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        worker.execute(query)
