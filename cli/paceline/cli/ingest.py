"""`paceline ingest run` (the daemon, on real or simulated wearables) and `paceline ingest status`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any, Final

from bleak.backends.scanner import BaseBleakScanner

from paceline.cli.database import database_dsn
from paceline.cli.scheduler import SchedulerSettings
from paceline.cli.settings import Settings
from paceline.devices import AdapterUnavailableError
from paceline.devices.simulator import SimulatedBleakClient
from paceline.devices.transport import require_adapter
from paceline.ingest import IngestError
from paceline.ingest.daemon import (
    DaemonConfig,
    IngestDaemon,
    Progress,
    load_bindings,
    scan_locator,
)
from paceline.ingest.gateway_state import DeviceFacts
from paceline.ingest.simulation import (
    SimulatedSpan,
    build_fleet,
    continue_after,
    register_fleet,
)
from paceline.ingest.spool import Spool, SpoolStatus
from paceline.ingest.spool_file import spool_path
from paceline.store import registry, roles
from paceline.store.connection import connect
from paceline.store.migrate import migrate

FOREVER_S = 7 * 24 * 3600.0
"""How much simulated time an open-ended `--simulate` run is planned for (it starts that far
back, so that even a long accelerated run never produces samples from the future)."""


def register(commands: Any) -> None:
    """Add the `ingest` command group."""
    ingest = commands.add_parser("ingest", help="the gateway daemon: wearables → spool → database")
    sub = ingest.add_subparsers(dest="ingest_command", required=True, metavar="SUBCOMMAND")

    run = sub.add_parser("run", help="run the ingest daemon for all bound devices")
    run.add_argument(
        "--simulate", type=int, default=0, metavar="N", help="stream N simulated wearables instead"
    )
    run.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="simulated seconds per real second (with --simulate; default 1)",
    )
    run.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    run.add_argument(
        "--progress",
        type=float,
        default=5.0,
        metavar="S",
        help="print progress every S seconds (0: never; default 5)",
    )
    run.add_argument("--gateway-id", default=None, help="name of this gateway in batch ids")
    run.set_defaults(handler=run_daemon)

    status = sub.add_parser("status", help="spool backlog, upload lag and per-device counters")
    status.set_defaults(handler=run_status)


def _progress_printer(started: float) -> Any:
    def show(progress: Progress) -> None:
        elapsed = time.monotonic() - started
        for d in progress.devices:
            print(
                f"[{elapsed:7.1f}s] {d.address} {d.state:<10} received {d.received:>8}"
                f"  spooled {d.spooled:>8}  uploaded {d.uploaded:>8}"
                f"  zero-hr {d.zero_hr}  malformed {d.malformed}  reconnects {d.reconnects}"
                + (f"  last error: {d.last_error}" if d.last_error else ""),
                flush=True,
            )
        error = f"  upload error: {progress.upload_error}" if progress.upload_error else ""
        print(
            f"[{elapsed:7.1f}s] backlog {progress.backlog_rows} rows, lag {progress.lag_s:.1f} s{error}",
            flush=True,
        )

    return show


NO_ADAPTER_HINT: Final = (
    "check that the host has a Bluetooth adapter (`bluetoothctl list`) and that BlueZ is"
    " running (`systemctl status bluetooth`), or stream simulated wearables with --simulate N"
)


def run_daemon(args: argparse.Namespace, settings: Settings) -> int:
    """Run the daemon until Ctrl-C, SIGTERM or `--duration`; 2 when it cannot run at all."""
    try:
        return _run_daemon(args, settings)
    except IngestError as exc:
        print(f"paceline: error: {exc}", file=sys.stderr)
        return 2
    except AdapterUnavailableError as exc:
        print(f"paceline: error: {exc}; {NO_ADAPTER_HINT}", file=sys.stderr)
        return 2


def _run_daemon(args: argparse.Namespace, settings: Settings) -> int:
    with (
        database_dsn(settings) as dsn,
        database_dsn(settings, role=roles.INGEST, announce=False) as upload_dsn,
    ):
        return stream(args, settings, dsn, upload_dsn=upload_dsn)


def stream(
    args: argparse.Namespace,
    settings: Settings,
    dsn: str,
    *,
    scanner_backend: type[BaseBleakScanner] | None = None,
    upload_dsn: str | None = None,
) -> int:
    """Run the daemon against `dsn` as `args` say (`simulate`, `speed`, `duration`, …).

    On real hardware the adapter is checked first: with no Bluetooth at all this raises
    `AdapterUnavailableError` before anything starts, instead of device tasks retrying
    a scan that can never work; a transient adapter error is left to their retries.
    `scanner_backend` replaces bleak's platform scanner (tests script its failures).
    The uploader connects to `upload_dsn` (the gateway uploader's own role) when given.
    """
    path = spool_path(settings.data_dir)
    config = DaemonConfig(progress_every_s=args.progress or None)
    started = time.monotonic()
    kwargs: dict[str, Any] = {}
    if args.simulate:
        covers = args.duration if args.duration is not None else FOREVER_S / args.speed
        with connect(dsn, autocommit=True) as conn:
            migrate(conn, compress_after=settings.compress_after, retention=settings.retention)
        with connect(dsn) as conn:
            # The addresses are fixed by the count, so any fleet of this size registers.
            bindings = register_fleet(conn, build_fleet(args.simulate))
            newest = registry.newest_sample_time(
                conn, [(b.patient_id, b.device_id) for b in bindings]
            )
        # Simulated time is placed from the same clock as the scheduler's: the real time,
        # or PACELINE_CLOCK_START (so a run can be placed at any time of day, as the
        # README's enrolment test does).
        now = SchedulerSettings.from_env().now()()
        span = continue_after(newest, speed=args.speed, covers_s=covers, now=now, daytime=True)
        fleet = build_fleet(args.simulate, speed=span.speed, start=span.start)
        _say_where_time_starts(span)
        kwargs = {
            "locate": fleet.locate,
            "clock": fleet.clock,
            "backend": SimulatedBleakClient,
            "client_kwargs": fleet.client_kwargs(),
        }
        print(f"simulating {len(bindings)} wearable(s) at {span.speed:g}x", flush=True)
    else:
        asyncio.run(require_adapter(scanner_backend=scanner_backend))
        if scanner_backend is not None:
            kwargs = {
                "locate": scan_locator(config.locate_timeout_s, scanner_backend=scanner_backend)
            }
        with Spool.open(path, gateway_id=args.gateway_id) as spool:
            bindings = load_bindings(dsn, spool)
        if not bindings:
            print(
                "no bound devices: scan with `paceline devices scan`, then"
                " `paceline devices bind ADDRESS --patient ID` (or try --simulate 3)",
                file=sys.stderr,
            )
            return 1
    for b in bindings:
        print(f"device {b.device_id} {b.address} ({b.profile}) → patient {b.patient_id}")
    print(f"spool: {path}", flush=True)
    daemon = IngestDaemon(
        bindings,
        spool_path=path,
        dsn=upload_dsn or dsn,
        config=config,
        gateway_id=args.gateway_id,
        on_progress=_progress_printer(started),
        **kwargs,
    )
    asyncio.run(daemon.run(duration_s=args.duration))
    with Spool.open(path) as spool:
        print(format_status(spool.status()))
    return 0


def _say_where_time_starts(span: SimulatedSpan) -> None:
    """Tell the operator which simulated minutes this run adds."""
    if span.resumed_after is None:
        print(f"simulated time starts at {span.start:%Y-%m-%d %H:%M:%S} UTC", flush=True)
        return
    print(
        f"continuing after the newest stored sample ({span.resumed_after:%Y-%m-%d %H:%M:%S}"
        f" UTC), so this run adds new minutes instead of overlaying old ones",
        flush=True,
    )
    if span.speed < span.asked_speed:
        print(
            f"running at {span.speed:.3g}x instead of {span.asked_speed:g}x so that simulated"
            " time stays behind the real clock",
            flush=True,
        )


def format_status(status: SpoolStatus) -> str:
    """The spool status as the lines an operator reads."""
    lines = [
        f"spool:        {status.path}",
        f"gateway:      {status.gateway_id} (spool {status.spool_id})",
        f"records:      {status.last_seq} spooled, {status.acked_seq} acknowledged",
        f"backlog:      {status.pending_rows} rows in {status.pending_records} records",
        f"lag:          {status.lag_s():.1f} s",
        f"in flight:    {status.in_flight or '-'}",
        f"dropped:      {status.dropped_rows} rows (spool unwritable, e.g. a full disk)",
    ]
    if status.replaces:
        lines.append(f"replaces:     spool {status.replaces}")
    for incident in status.incidents:
        at = datetime.fromtimestamp(incident.at_us / 1e6, UTC).isoformat(timespec="seconds")
        lines.append(f"incident:     {at} {incident.kind}: {incident.detail}")
    names = (
        "received",
        "zero_hr",
        "malformed",
        "spooled",
        "uploaded",
        "quarantined",
        "corrupt_records",
        "dropped",
    )
    if status.counters:
        lines.append("device " + " ".join(f"{n:>12}" for n in names))
        for device_id, counts in sorted(status.counters.items()):
            label = "gw" if device_id == 0 else str(device_id)
            lines.append(f"{label:>6} " + " ".join(f"{counts.get(n, 0):>12}" for n in names))
    for device_id, facts in sorted(status.devices.items()):
        lines.append(f"device {device_id}: {describe_device(facts)}")
    return "\n".join(lines)


def describe_device(facts: DeviceFacts) -> str:
    """What a wearable last said about itself, as an operator reads it."""
    if facts.battery_percent is None:
        battery = "battery unknown"
    else:
        battery = f"battery {facts.battery_percent} %"
        if facts.battery_at_us is not None:
            at = datetime.fromtimestamp(facts.battery_at_us / 1e6, UTC)
            battery += f" at {at.isoformat(timespec='seconds')}"
    info = facts.info
    identity = " ".join(v for v in (info.manufacturer, info.model) if v) or "model unknown"
    parts = [battery, identity]
    if info.firmware:
        parts.append(f"firmware {info.firmware}")
    if info.serial:
        parts.append(f"serial {info.serial}")
    return ", ".join(parts)


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the spool's backlog, lag and counters."""
    path = spool_path(settings.data_dir)
    if not path.exists():
        print(f"no spool at {path}: the daemon has not run here yet")
        return 1
    try:
        with Spool.open(path) as spool:
            print(format_status(spool.status()))
    except IngestError as exc:
        print(f"paceline: error: {exc}", file=sys.stderr)
        return 2
    return 0
