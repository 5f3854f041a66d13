"""The typed errors of `paceline.store`; each carries the value that caused it."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg


class StoreError(Exception):
    """Root of every error raised by `paceline.store`."""


class DatabaseUrlError(StoreError, ValueError):
    """`PACELINE_DATABASE_URL` (or a DSN given in code) cannot be parsed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"invalid database URL {redact(url)!r}: {mask_passwords(reason)}")


class ServerUnreachableError(StoreError, psycopg.OperationalError):
    """The PostgreSQL server named by a DSN did not accept a connection.

    Also a `psycopg.OperationalError`, as psycopg's own pool errors are: code that
    handles a lost database the psycopg way handles this one too.
    """

    def __init__(self, dsn: str, reason: str) -> None:
        self.dsn = dsn
        super().__init__(f"cannot reach PostgreSQL at {redact(dsn)}: {mask_passwords(reason)}")


class DataDirError(StoreError):
    """The embedded server's data directory cannot be used (locked, foreign or unwritable)."""

    def __init__(self, data_dir: Path, reason: str) -> None:
        self.data_dir = data_dir
        super().__init__(f"embedded PostgreSQL data directory {data_dir}: {reason}")


class MigrationError(StoreError):
    """A schema migration is missing, altered after it was applied, or failed."""


class BatchRejectedError(StoreError, ValueError):
    """A batch holds a row no device could have sent; nothing of the batch was written."""

    def __init__(self, batch_id: str, stream: str, row: int, reason: str) -> None:
        self.batch_id = batch_id
        self.stream = stream
        self.row = row
        self.reason = reason
        super().__init__(f"batch {batch_id!r} rejected: {stream} row {row}: {reason}")


class BatchConflictError(StoreError, ValueError):
    """A batch id the store holds was offered again with other rows; nothing was written.

    Batch ids name their rows for good: a replay must hold the same number of rows with
    the same digest. Anything else is a sender that reused an id (a spool that lost
    state), and acknowledging it would silently drop the new rows.
    """

    def __init__(
        self, batch_id: str, *, stored: tuple[int | None, str], offered: tuple[int, str]
    ) -> None:
        self.batch_id = batch_id
        self.stored = stored
        self.offered = offered
        super().__init__(
            f"batch {batch_id!r} was stored with {stored[0]} rows (digest {stored[1][:12]}),"
            f" now offered with {offered[0]} rows (digest {offered[1][:12]}): the id is"
            " reused for other rows"
        )


class SpoolRegressionError(StoreError):
    """A spool sent records at or below the sequence the store already acknowledged for it.

    The spool went back in time (its WAL was lost, it was restored from a backup): the
    records it now numbers `first_seq`.. are not the ones the store acknowledged under
    those numbers. Nothing of the batch was written.
    """

    def __init__(self, spool_id: str, *, acked_seq: int, first_seq: int, batch_id: str) -> None:
        self.spool_id = spool_id
        self.acked_seq = acked_seq
        self.first_seq = first_seq
        self.batch_id = batch_id
        super().__init__(
            f"spool {spool_id!r} sent batch {batch_id!r} from sequence {first_seq}, but the"
            f" store acknowledged it up to {acked_seq}: the spool lost state"
        )


_MASK = "***"
# Textual masks for what libpq cannot parse (and for its error messages, which quote the
# text they failed on): URL userinfo, a `password` query parameter, a `password=` keyword
# (quoted, possibly unterminated, or bare).
_USERINFO_PASSWORD = re.compile(r"(://[^:@/?#\s]*:)[^\s]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#\s\"]*", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(
    r"((?<![?&])\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s\"]*)", re.IGNORECASE
)


def mask_passwords(text: str) -> str:
    """Mask anything in `text` that looks like a DSN password, parsable or not."""
    text = _USERINFO_PASSWORD.sub(rf"\1{_MASK}@", text)
    text = _QUERY_PASSWORD.sub(rf"\1{_MASK}", text)
    return _KEYWORD_PASSWORD.sub(rf"\1{_MASK}", text)


def redact(dsn: str) -> str:
    """Hide the password of a DSN or URL so that it can be logged, even when it does not parse."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return mask_passwords(dsn)
    if "password" in params:
        params["password"] = _MASK
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


class CopyFormatError(StoreError, ValueError):
    """Binary COPY data that is not what the reader expects (signature, flags, field layout)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"binary COPY data: {reason}")
