"""`paceline devices scan`, `paceline devices bind` and `paceline devices list`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bleak.exc import BleakError

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.devices.simulator import SimulatedBleakScanner
from paceline.devices.transport import ScanResult, scan
from paceline.ingest.simulation import build_fleet
from paceline.store.connection import connect
from paceline.store.registry import (
    bind_device,
    get_patient,
    list_devices,
    normalize_address,
    register_device,
)


def register(commands: Any) -> None:
    """Add the `devices` command group."""
    devices = commands.add_parser("devices", help="find wearables and assign them to patients")
    sub = devices.add_subparsers(dest="devices_command", required=True, metavar="SUBCOMMAND")

    scan_cmd = sub.add_parser("scan", help="list nearby wearables and what each can give")
    scan_cmd.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds to listen (default 5)"
    )
    scan_cmd.add_argument(
        "--all", action="store_true", help="also list devices that match no known profile"
    )
    scan_cmd.add_argument(
        "--register",
        action="store_true",
        help="record the wearables found in the database (so that they can be bound)",
    )
    scan_cmd.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="scan N simulated wearables instead of the radio",
    )
    scan_cmd.set_defaults(handler=run_scan)

    bind = sub.add_parser("bind", help="assign a wearable to a patient")
    bind.add_argument("address", metavar="ADDRESS", help="the wearable's Bluetooth address")
    bind.add_argument("--patient", type=int, required=True, metavar="ID", help="patient id")
    bind.add_argument("--name", help="a name for the device (default: as scanned)")
    bind.add_argument(
        "--profile", default="unknown", help="device profile, if not recorded by a scan"
    )
    bind.set_defaults(handler=run_bind)

    listing = sub.add_parser("list", help="registered wearables and whom they are bound to")
    listing.add_argument("--bound", action="store_true", help="only devices bound to a patient")
    listing.set_defaults(handler=run_list)


def _streams(result: ScanResult) -> str:
    if result.profile is None:
        return "-"
    return ", ".join(sorted(str(s) for s in result.profile.streams))


def format_scan(results: list[ScanResult]) -> str:
    """The scan results as a table an operator reads."""
    if not results:
        return "no wearables heard"
    lines = [f"{'ADDRESS':<18} {'RSSI':>5}  {'PROFILE':<11} {'STREAMS':<24} NAME"]
    for r in results:
        profile = r.profile.name if r.profile else "unknown"
        lines.append(f"{r.address:<18} {r.rssi:>5}  {profile:<11} {_streams(r):<24} {r.name or ''}")
    return "\n".join(lines)


def run_scan(args: argparse.Namespace, settings: Settings) -> int:
    """Scan and print what was heard (optionally recording it)."""
    kwargs: dict[str, Any] = {}
    if args.simulate:
        fleet = build_fleet(args.simulate)
        kwargs = {"scanner_backend": SimulatedBleakScanner, "registry": fleet.registry}
    try:
        results = asyncio.run(scan(args.timeout, known_only=not args.all, **kwargs))
    except (BleakError, OSError) as exc:
        # No adapter, no BlueZ, no D-Bus socket: say so instead of a traceback.
        print(
            f"paceline: error: cannot scan for Bluetooth devices: {exc or type(exc).__name__}"
            " (is BlueZ running? try --simulate N)",
            file=sys.stderr,
        )
        return 2
    print(format_scan(results))
    if args.register and results:
        with database_dsn(settings) as dsn, connect(dsn) as conn:
            for r in results:
                register_device(
                    conn,
                    address=r.address,
                    name=r.name,
                    profile=r.profile.name if r.profile else "unknown",
                )
            conn.commit()
        print(
            f"recorded {len(results)} device(s); bind one with: paceline devices bind ADDRESS --patient ID"
        )
    return 0


def run_bind(args: argparse.Namespace, settings: Settings) -> int:
    """Register the address if needed and bind it to the patient, all or nothing.

    A malformed address or an unknown patient raises before anything is committed
    (`main` prints it and exits 2), so a failed bind never leaves a device behind.
    """
    address = normalize_address(args.address)
    with database_dsn(settings) as dsn, connect(dsn) as conn:
        get_patient(conn, args.patient)
        register_device(conn, address=address, name=args.name, profile=args.profile)
        device = bind_device(conn, address=address, patient_id=args.patient)
        conn.commit()
    print(
        f"device {device.device_id} ({device.address}, {device.profile}) is bound to patient"
        f" {device.patient_id}"
    )
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the registered wearables."""
    with database_dsn(settings) as dsn, connect(dsn) as conn:
        devices = list_devices(conn, bound_only=args.bound)
    if not devices:
        print("no devices registered")
        return 0
    print(f"{'ID':>4}  {'ADDRESS':<18} {'PROFILE':<11} {'PATIENT':>7}  LAST SEEN")
    for d in devices:
        patient = "-" if d.patient_id is None else str(d.patient_id)
        print(
            f"{d.device_id:>4}  {d.address:<18} {d.profile:<11} {patient:>7}  "
            f"{d.last_seen:%Y-%m-%d %H:%M:%S}"
        )
    return 0
