"""Role bootstraps serialise across the databases of one server: roles are cluster-wide."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from paceline.store import connect, roles
from paceline.store.testing import temporary_database


def _bootstrap(dsn: str, errors: list[BaseException], barrier: threading.Barrier | None) -> None:
    try:
        with connect(dsn, autocommit=True) as conn:
            if barrier is not None:
                barrier.wait()
            roles.bootstrap(conn)
    except BaseException as exc:  # noqa: BLE001 - the test reports whatever a thread raised
        errors.append(exc)


def _waiting_on_a_lock(admin: psycopg.Connection[Any], dbname: str) -> bool:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (dbname,),
    ).fetchone()
    return bool(row and row[0])


def test_a_bootstrap_waits_for_one_in_another_database_of_the_server(pg_server_dsn: str) -> None:
    with (
        temporary_database(pg_server_dsn, "roles_a", migrated=False) as a,
        temporary_database(pg_server_dsn, "roles_b", migrated=False) as b,
        connect(pg_server_dsn, autocommit=True) as admin,
        connect(a) as holder,
    ):
        errors: list[BaseException] = []
        second = threading.Thread(target=_bootstrap, args=(b, errors, None))
        with holder.transaction():
            roles.lock_roles(holder)  # what a bootstrap in database a holds while it runs
            second.start()
            dbname = psycopg.conninfo.conninfo_to_dict(b)["dbname"]
            waited = False
            while second.is_alive() and not waited:
                waited = _waiting_on_a_lock(admin, str(dbname))
                time.sleep(0.01)
        second.join()
        assert waited, "the bootstrap in database b did not wait for the one in database a"
        assert errors == []


def test_concurrent_bootstraps_in_two_databases_of_one_server_both_succeed(
    pg_server_dsn: str,
) -> None:
    with (
        temporary_database(pg_server_dsn, "roles_c", migrated=False) as c,
        temporary_database(pg_server_dsn, "roles_d", migrated=False) as d,
    ):
        errors: list[BaseException] = []
        for _round in range(3):
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=_bootstrap, args=(dsn, errors, barrier)) for dsn in (c, d)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
