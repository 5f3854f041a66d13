"""Checking the audit log's hash chain (migration 0017) from outside the database.

Each row stores the previous row's hash and its own, SHA-256(prev_hash ||
content), where content is the database's canonical encoding of the row
(`paceline_audit_content`). `verify` recomputes every hash here, in Python, so
a tampered row, a deleted or reordered one, or a cut-off tail is found even if
the stored hashes were rewritten to match the change without the chain's
later rows being rewritten too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from paceline.store.errors import StoreError

GENESIS: Final = bytes(32)
#: Rows fetched per round trip while streaming the log.
_FETCH: Final = 5000


class AuditChainError(StoreError):
    """The audit log's hash chain is broken at `seq` (the first bad link)."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit log broken at entry {seq}: {reason}")


@dataclass(frozen=True)
class ChainReport:
    """What `verify` checked."""

    entries: int
    head_hash: bytes


def verify(conn: psycopg.Connection[Any]) -> ChainReport:
    """Recompute the whole chain; raise `AuditChainError` at the first broken link."""
    prev, expected = GENESIS, 1
    with conn.transaction(), conn.cursor(name="paceline_audit_verify") as cur:
        # The join reads the rows and the head in one snapshot.
        cur.itersize = _FETCH
        cur.execute(
            "SELECT a.seq, a.prev_hash, a.row_hash, paceline_audit_content(a),"
            " h.seq, h.row_hash FROM audit_log a, audit_chain_head h ORDER BY a.seq"
        )
        head: tuple[int, bytes] | None = None
        for seq, prev_hash, row_hash, content, head_seq, head_hash in cur:
            head = (head_seq, bytes(head_hash))
            if seq != expected:
                raise AuditChainError(expected, f"entry {expected} is missing (next is {seq})")
            if bytes(prev_hash) != prev:
                raise AuditChainError(seq, "its link to the previous entry does not match")
            if hashlib.sha256(prev + bytes(content)).digest() != bytes(row_hash):
                raise AuditChainError(seq, "its content does not match its hash")
            prev, expected = bytes(row_hash), expected + 1
        if head is None:
            row = conn.execute("SELECT seq, row_hash FROM audit_chain_head").fetchone()
            head = (int(row[0]), bytes(row[1])) if row else (0, GENESIS)
    if head != (expected - 1, prev):
        raise AuditChainError(
            expected,
            f"the chain head records {head[0]} entries but the log holds {expected - 1}"
            " that chain up to it",
        )
    return ChainReport(entries=expected - 1, head_hash=prev)
