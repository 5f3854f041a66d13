"""TimescaleDB features, used when the server has the extension and plain tables otherwise.

With TimescaleDB the raw sample tables become hypertables with 1-day chunks,
compressed after `PACELINE_COMPRESS_AFTER` (segmented by patient and device so
that one patient's day compresses into a few segments) and, when configured,
dropped after a retention interval. Without it the same tables stay plain with
the same columns and indexes, and every query works unchanged (bucketing uses
`date_bin`, which both have).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

SAMPLE_TABLES = ("hr_sample", "rr_interval", "step_sample")
CHUNK_INTERVAL = timedelta(days=1)
DEFAULT_COMPRESS_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class TimescaleState:
    """Whether TimescaleDB is usable on this server and, if not, why."""

    available: bool
    active: bool
    version: str | None
    reason: str


@dataclass(frozen=True)
class HypertableStatus:
    """Chunk and policy state of one sample table."""

    table: str
    hypertable: bool
    chunks: int
    compressed_chunks: int
    compress_after: str | None
    retention: str | None


def probe(conn: psycopg.Connection[Any]) -> TimescaleState:
    """Report whether the extension is installed, and whether it is active in this database."""
    row = conn.execute(
        "SELECT default_version, installed_version FROM pg_available_extensions"
        " WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return TimescaleState(False, False, None, "the timescaledb extension is not installed")
    default_version, installed_version = row
    if installed_version is None:
        return TimescaleState(
            True, False, default_version, "available but not created in this database"
        )
    return TimescaleState(True, True, installed_version, "active")


def configure(
    conn: psycopg.Connection[Any],
    *,
    compress_after: timedelta = DEFAULT_COMPRESS_AFTER,
    retention: timedelta | None = None,
) -> TimescaleState:
    """Create the extension if the server offers it, then hypertables and policies.

    Idempotent: policies are replaced only when their interval changed.
    `conn` must be in autocommit mode.
    """
    state = enable_extension(conn)
    if not state.active:
        return state
    for table in SAMPLE_TABLES:
        _make_hypertable(conn, table, compress_after, retention)
    return state


def enable_extension(conn: psycopg.Connection[Any]) -> TimescaleState:
    """Create the extension in this database if the server offers it (needs a superuser)."""
    state = probe(conn)
    if not state.available or state.active:
        return state
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        # Typically "must be preloaded": the server has the files but not
        # shared_preload_libraries = 'timescaledb'. Plain tables still work.
        reason = str(exc).strip().splitlines()[0]
        logger.warning("TimescaleDB is installed but cannot be used: %s", reason)
        return TimescaleState(True, False, state.version, f"cannot be enabled: {reason}")
    return probe(conn)


def _make_hypertable(
    conn: psycopg.Connection[Any],
    table: str,
    compress_after: timedelta,
    retention: timedelta | None,
) -> None:
    conn.execute(
        "SELECT create_hypertable(%s::regclass, 'time', chunk_time_interval => %s,"
        " if_not_exists => true, migrate_data => true)",
        (table, CHUNK_INTERVAL),
    )
    enabled = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = current_schema() AND hypertable_name = %s",
        (table,),
    ).fetchone()
    if not (enabled and enabled[0]):
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'patient_id, device_id',"
                " timescaledb.compress_orderby = 'time')"
            ).format(sql.Identifier(table))
        )
    _set_policy(conn, table, "policy_compression", "compress_after", compress_after)
    _set_policy(conn, table, "policy_retention", "drop_after", retention)


def _set_policy(
    conn: psycopg.Connection[Any],
    table: str,
    proc: str,
    key: str,
    interval: timedelta | None,
) -> None:
    current = conn.execute(
        "SELECT (config ->> %s)::interval FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = %s",
        (key, proc, table),
    ).fetchone()
    if current is not None and interval is not None and current[0] == interval:
        return
    kind = "compression" if proc == "policy_compression" else "retention"
    if current is not None:
        conn.execute(
            sql.SQL("SELECT {}(%s::regclass, if_exists => true)").format(
                sql.Identifier(f"remove_{kind}_policy")
            ),
            (table,),
        )
    if interval is not None:
        conn.execute(
            sql.SQL("SELECT {}(%s::regclass, %s)").format(sql.Identifier(f"add_{kind}_policy")),
            (table, interval),
        )


def table_status(conn: psycopg.Connection[Any]) -> list[HypertableStatus]:
    """Chunks, compressed chunks and policies of each sample table (plain tables: zeros)."""
    if not probe(conn).active:
        return [HypertableStatus(t, False, 0, 0, None, None) for t in SAMPLE_TABLES]
    result = []
    for table in SAMPLE_TABLES:
        row = conn.execute(
            """
            SELECT h.hypertable_name IS NOT NULL,
                   (SELECT count(*) FROM timescaledb_information.chunks c
                     WHERE c.hypertable_name = %(t)s),
                   (SELECT count(*) FROM timescaledb_information.chunks c
                     WHERE c.hypertable_name = %(t)s AND c.is_compressed),
                   (SELECT config ->> 'compress_after' FROM timescaledb_information.jobs
                     WHERE proc_name = 'policy_compression' AND hypertable_name = %(t)s),
                   (SELECT config ->> 'drop_after' FROM timescaledb_information.jobs
                     WHERE proc_name = 'policy_retention' AND hypertable_name = %(t)s)
            FROM (SELECT 1) one
            LEFT JOIN timescaledb_information.hypertables h ON h.hypertable_name = %(t)s
            """,
            {"t": table},
        ).fetchone()
        assert row is not None
        result.append(HypertableStatus(table, bool(row[0]), row[1], row[2], row[3], row[4]))
    return result


#: TimescaleDB's schemas that show chunk ranges, sizes and jobs of every hypertable.
CATALOG_SCHEMAS = ("timescaledb_information", "_timescaledb_catalog", "timescaledb_experimental")


def restrict_catalog(conn: psycopg.Connection[Any], readers: Sequence[str]) -> None:
    """Let only `readers` (the service roles) read TimescaleDB's information views and catalog.

    PUBLIC may read them by default: any role, a person session included,
    would see every chunk's time range and size. TimescaleDB's own code reads
    its catalog without these privileges, so inserts, chunk creation and the
    background jobs are unaffected. Needs a superuser (the extension's owner).
    """
    if not probe(conn).active:
        return
    for schema in CATALOG_SCHEMAS:
        found = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()
        if not (found and found[0]):
            continue
        name = sql.Identifier(schema)
        conn.execute(sql.SQL("REVOKE SELECT ON ALL TABLES IN SCHEMA {} FROM PUBLIC").format(name))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                name, sql.SQL(", ").join(sql.Identifier(r) for r in readers)
            )
        )
