"""What the gateway remembers besides the queue: its bound devices and their step counters.

Kept in the spool's file so that a daemon starting while the database is away still
knows its devices, and so that a restarted daemon continues each cumulative step counter
exactly where the spooled rows end (the counters are written in the same transaction as
the rows, by `Spool.append`).
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from paceline.ingest.spool_file import transaction


@dataclass(frozen=True)
class DeviceBinding:
    """A bound wearable as the daemon last saw it in the database (kept for when it is away)."""

    address: str
    device_id: int
    patient_id: int
    name: str | None
    profile: str


def default_gateway_id() -> str:
    """The host name, which tells an operator which gateway a batch came from."""
    name = socket.gethostname().split(".")[0] or "gateway"
    return name[:64]


class GatewayState:
    """The gateway state in one spool connection (use the `Spool`'s: `spool.gateway`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def save_bindings(self, bindings: Iterable[DeviceBinding]) -> None:
        """Remember the bound devices, for a daemon that starts while the database is away."""
        with transaction(self._conn):
            self._conn.execute("DELETE FROM binding")
            self._conn.executemany(
                "INSERT INTO binding (address, device_id, patient_id, name, profile)"
                " VALUES (?, ?, ?, ?, ?)",
                [(b.address, b.device_id, b.patient_id, b.name, b.profile) for b in bindings],
            )

    def load_step_counts(self) -> dict[int, int]:
        """Each device's cumulative step counter as of the last committed rows."""
        rows = self._conn.execute("SELECT device_id, last_count FROM step_state").fetchall()
        return {int(d): int(c) for d, c in rows}

    def load_bindings(self) -> list[DeviceBinding]:
        """The bound devices saved last time."""
        rows = self._conn.execute(
            "SELECT address, device_id, patient_id, name, profile FROM binding ORDER BY device_id"
        ).fetchall()
        return [DeviceBinding(*row) for row in rows]


__all__ = ["DeviceBinding", "GatewayState", "default_gateway_id"]
