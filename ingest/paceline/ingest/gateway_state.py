"""What the gateway remembers besides the queue: its bound devices, their step counters and facts.

Kept in the spool's file so that a daemon starting while the database is away still
knows its devices, and so that a restarted daemon continues each cumulative step counter
exactly where the spooled rows end (the counters are written in the same transaction as
the rows, by `Spool.append`). What each wearable said about itself on connecting (battery
level, Device Information) is kept beside them, for `paceline ingest status`.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Final

from paceline.devices.gatt import DeviceInformation
from paceline.ingest.spool_file import transaction


@dataclass(frozen=True)
class DeviceBinding:
    """A bound wearable as the daemon last saw it in the database (kept for when it is away)."""

    address: str
    device_id: int
    patient_id: int
    name: str | None
    profile: str


@dataclass(frozen=True)
class DeviceFacts:
    """What a wearable last said about itself: battery level and Device Information.

    `battery_at_us` is when the battery level was read or notified (epoch µs, the
    gateway's stamped clock); None where the device offered nothing.
    """

    battery_percent: int | None = None
    battery_at_us: int | None = None
    info: DeviceInformation = field(default_factory=DeviceInformation)


_INFO_FIELDS: Final = tuple(f.name for f in fields(DeviceInformation))


def save_device_facts(conn: sqlite3.Connection, facts: Mapping[int, DeviceFacts]) -> None:
    """Replace the stored facts of each device in `facts` (inside the caller's transaction)."""
    conn.executemany(
        "INSERT OR REPLACE INTO device_facts (device_id, battery_percent, battery_at_us,"
        " manufacturer, model, serial, firmware, hardware, software)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (d, f.battery_percent, f.battery_at_us, *(getattr(f.info, n) for n in _INFO_FIELDS))
            for d, f in facts.items()
        ],
    )


def load_device_facts(conn: sqlite3.Connection) -> dict[int, DeviceFacts]:
    """Every device's stored facts."""
    rows = conn.execute(
        "SELECT device_id, battery_percent, battery_at_us, manufacturer, model, serial, firmware,"
        " hardware, software FROM device_facts ORDER BY device_id"
    ).fetchall()
    return {
        int(d): DeviceFacts(
            pct, at, DeviceInformation(**dict(zip(_INFO_FIELDS, info, strict=True)))
        )
        for d, pct, at, *info in rows
    }


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

    def load_device_facts(self) -> dict[int, DeviceFacts]:
        """What each device last said about itself (battery level, Device Information)."""
        return load_device_facts(self._conn)

    def load_bindings(self) -> list[DeviceBinding]:
        """The bound devices saved last time."""
        rows = self._conn.execute(
            "SELECT address, device_id, patient_id, name, profile FROM binding ORDER BY device_id"
        ).fetchall()
        return [DeviceBinding(*row) for row in rows]


__all__ = [
    "DeviceBinding",
    "DeviceFacts",
    "GatewayState",
    "default_gateway_id",
    "load_device_facts",
    "save_device_facts",
]
