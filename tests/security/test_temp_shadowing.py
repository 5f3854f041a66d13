"""A caller's temporary objects never take the place of what a definer function names.

PostgreSQL searches the session's temporary schema first for relation and type
names unless `pg_temp` is listed (last) in the function's search_path ("Writing
SECURITY DEFINER Functions Safely", CREATE FUNCTION in the PostgreSQL
documentation). The attacker here is the login role, which may call the login
functions and, like PUBLIC by default, create temporary objects. It shadows
`timestamptz`, which `paceline_login_outcome` declares a variable of, with a
domain whose CHECK calls the attacker's own function: were the domain used, that
function would run with the definer's rights, and it notes whose rights it ran with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from paceline.store import connect, roles
from paceline.store.testing import service_dsn

SHADOW = (
    # Functions are never looked up in pg_temp unqualified, so the CHECK names it explicitly.
    "CREATE FUNCTION pg_temp.noted(v pg_catalog.timestamptz) RETURNS boolean LANGUAGE sql"
    " AS $$ SELECT pg_catalog.set_config('attack.ran_as', current_user, false) IS NOT NULL $$",
    "CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.noted(VALUE))",
)


@pytest.fixture
def login(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the login role, its temporary shadows in place."""
    with connect(service_dsn(db_dsn, roles.LOGIN)) as conn:
        conn.autocommit = True
        for statement in SHADOW:
            conn.execute(statement)
        # The shadows work where nothing protects against them: the session's own
        # unqualified names resolve to them.
        found = conn.execute(
            "SELECT typnamespace = pg_my_temp_schema() FROM pg_type"
            " WHERE oid = 'timestamptz'::regtype"
        ).fetchone()
        assert found == (True,)
        yield conn


def _ran_as(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT current_setting('attack.ran_as', true)").fetchone()
    assert row is not None
    return None if row[0] in (None, "") else str(row[0])


def test_a_temporary_domain_does_not_run_inside_the_login_outcome(
    login: psycopg.Connection[Any],
) -> None:
    # No such account: the function still declares, assigns and returns its timestamptz.
    row = login.execute(
        "SELECT paceline_login_outcome(-1, false, now(), 5, interval '1 minute')"
    ).fetchone()
    assert row == (None,)
    assert _ran_as(login) is None, "the caller's pg_temp domain ran with the definer's rights"
