"""Opening connections to the PostgreSQL server that holds Paceline's data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from paceline.store.errors import DatabaseUrlError, ServerUnreachableError

# Long enough for a server that is starting or far away, short enough that a
# wrong host fails while the operator is still looking at the terminal.
CONNECT_TIMEOUT_S = 10
_URL_SCHEMES = ("postgresql://", "postgres://")
KEEPALIVE: Final[Mapping[str, int]] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
"""TCP keepalive for connections that must notice a dead network: probe after 5 s idle,
every 2 s, give up after 3 misses, and fail a write unacknowledged for 15 s. Behind a
dead network (a gateway whose Wi-Fi dropped mid-COPY, a scheduler leader cut off) a
blocked call then fails within about 20 s, and the server drops the session (releasing
its locks), rather than after the kernel's two-hour default. libpq parameters
(PostgreSQL docs, 34.1.2 Parameter Key Words)."""


def check_dsn(dsn: str) -> None:
    """Raise `DatabaseUrlError` unless `dsn` is a PostgreSQL URL or key=value conninfo."""
    if not dsn.strip():
        raise DatabaseUrlError(dsn, "it is empty")
    if "://" in dsn and not dsn.startswith(_URL_SCHEMES):
        scheme = dsn.split("://", 1)[0]
        raise DatabaseUrlError(dsn, f"scheme {scheme!r} is not postgresql:// or postgres://")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUrlError(dsn, str(exc).strip()) from exc
    # libpq accepts any text here and fails only when connecting, with a
    # message that reads like a network problem; say what is wrong up front.
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise DatabaseUrlError(dsn, f"port {port!r} is not a number from 1 to 65535")


def connect(
    dsn: str, *, autocommit: bool = False, keepalive: bool = False, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Connect to `dsn`, turning connection failures into `ServerUnreachableError`.

    `keepalive` turns on `KEEPALIVE`, for connections that must notice a dead network.
    """
    check_dsn(dsn)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    if keepalive:
        kwargs = {**KEEPALIVE, **kwargs}
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise ServerUnreachableError(dsn, _first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__
