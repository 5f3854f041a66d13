"""The store's typed errors fit the exception families their callers already handle."""

from __future__ import annotations

import psycopg
import pytest

from paceline.store import ServerUnreachableError, StoreError, connect


def test_an_unreachable_server_is_a_psycopg_operational_error_too() -> None:
    """As psycopg's own pool errors are, so `except psycopg.OperationalError` handles it."""
    error = ServerUnreachableError("host=db.invalid user=paceline", "connection refused")
    assert isinstance(error, psycopg.OperationalError)
    assert isinstance(error, StoreError)


def test_connect_to_nothing_raises_it_for_both_kinds_of_handler(tmp_path: object) -> None:
    dsn = f"host={tmp_path} port=1 dbname=nothing user=nobody connect_timeout=1"
    with pytest.raises(psycopg.OperationalError, match="cannot reach PostgreSQL") as caught:
        connect(dsn)
    assert isinstance(caught.value, ServerUnreachableError)
