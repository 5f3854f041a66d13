"""The ingest daemon in a child process, for the kill test; it journals what its simulator emits.

Run as `python -m tests.ingest.child_daemon DSN SPOOL JOURNAL START_ISO SPEED FIRST_INDEX`.
Every heart-rate notification the simulated wearables send is appended to JOURNAL (and
flushed to the operating system) as it is recorded, so the journal survives a SIGKILL of
this process and the test can compare the database with what was emitted.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any, SupportsIndex

from paceline.devices.simulator import Activity, Routine, SimulatedBleakClient, WearableKind
from paceline.devices.simulator.wearable import EmittedHeartRate
from paceline.ingest.daemon import DaemonConfig, IngestDaemon
from paceline.ingest.simulation import build_fleet, register_fleet
from paceline.store import connect

KINDS = (WearableKind.CHEST_STRAP, WearableKind.BAND)


class JournaledList(list[EmittedHeartRate]):
    """A ground-truth list that also writes each appended notification to a file."""

    def __init__(self, address: str, out: IO[str]) -> None:
        super().__init__()
        self._address = address
        self._out = out

    def append(self, item: EmittedHeartRate) -> None:
        """Record and journal one notification."""
        super().append(item)
        rr = ",".join(str(v) for v in item.rr_1024)
        self._out.write(f"{self._address} {item.bpm} {rr}\n")
        self._out.flush()

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        """The journal is append-only."""
        raise TypeError("append only")


def fleet_args(start: datetime, speed: float, first_index: int) -> dict[str, Any]:
    """How parent and child build the same fleet."""
    return {
        "speed": speed,
        "start": start,
        "seed": 11,
        "kinds": KINDS,
        "routine": Routine.constant(Activity.WALK),
        "first_index": first_index,
    }


def main(argv: list[str]) -> int:
    """Stream the fleet until killed or sent SIGTERM."""
    dsn, spool, journal, start, speed, first_index = argv
    fleet = build_fleet(
        len(KINDS), **fleet_args(datetime.fromisoformat(start), float(speed), int(first_index))
    )
    with connect(dsn) as conn:
        bindings = register_fleet(conn, fleet)
    with Path(journal).open("a") as out:
        for wearable in fleet.wearables:
            wearable.truth.heart_rate = JournaledList(wearable.address, out)
        daemon = IngestDaemon(
            bindings,
            spool_path=Path(spool),
            dsn=dsn,
            locate=fleet.locate,
            clock=fleet.clock,
            backend=SimulatedBleakClient,
            client_kwargs=fleet.client_kwargs(),
            config=DaemonConfig(upload_idle_s=0.05),
        )
        print("running", flush=True)
        asyncio.run(daemon.run())
    print("stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
