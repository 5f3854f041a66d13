"""`paceline demo`: the running product on the embedded database, with a simulated clinic.

1. The embedded PostgreSQL (unless `PACELINE_DATABASE_URL` says otherwise),
   migrated; a clinician, an administrator and one patient login, printed.
2. A local SMTP sink and a webhook receiver that save what the alerts send.
3. A cohort of simulated patients (personas of `paceline.pacing.simulate`)
   back-filled day by day through the spool, the uploader, the rollup and the
   evaluation (`paceline.cli.demo_cohort`), with a progress bar per stage.
4. `paceline worker`, `paceline scheduler run` and `paceline dashboard` as
   child processes, and the first patients' watches streaming live through the
   real ingest daemon (simulated BLE), until Ctrl-C.

Everything it creates is labelled simulated (`DEMO-…`). Log lines go to
`demo.log` in the data directory; the terminal gets the story.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import psycopg

from paceline.cli.database import administrator_secrets, database_dsn, identity_key, role_password
from paceline.cli.demo_cohort import KIND, Member, Progress, backfill, enrol, plan_history
from paceline.cli.demo_sinks import Sink, smtp_sink, webhook_receiver, webhook_secret
from paceline.cli.errors import CliError
from paceline.cli.scheduler import SchedulerSettings
from paceline.cli.settings import Settings
from paceline.devices.simulator import SimulatedBleakClient
from paceline.ingest.daemon import DaemonConfig, IngestDaemon
from paceline.ingest.gateway_state import DeviceBinding
from paceline.ingest.simulation import build_fleet, continue_after
from paceline.ingest.spool import Spool
from paceline.ingest.spool_file import spool_path
from paceline.ingest.uploader import Uploader
from paceline.pacing.alerts import DeliveryConfig
from paceline.pacing.jobs.timesource import REAL_TIME, TimeSource
from paceline.pacing.records import set_clinician_contact
from paceline.store import accounts, registry, roles
from paceline.store.accounts import Role
from paceline.store.connection import connect
from paceline.store.migrate import migrate

logger = logging.getLogger(__name__)

LOG_FILE: Final = "demo.log"
"""The demo's log, in `PACELINE_DATA_DIR`: the terminal gets the story, the file the detail."""
LOGINS_FILE: Final = "demo-logins.json"
MAIL_DIR: Final = "demo-mail"
WEBHOOK_DIR: Final = "demo-webhooks"
DEMO_FILES: Final = (LOG_FILE, LOGINS_FILE, MAIL_DIR, WEBHOOK_DIR, "pgdata", "spool")
"""What `--fresh` removes from the data directory (the secrets and the identity key stay)."""

LIVE_CHUNK_S: Final = 120.0
"""Real seconds the live stream runs before it re-plans its speed (see `_stream_live`)."""
STOP_GRACE_S: Final = 20.0
"""How long a child process gets to stop after SIGTERM before it is killed."""
STATUS_EVERY_S: Final = 15.0
GATEWAY: Final = "demo-gateway"
DEMO_ROLLUP_EVERY: Final = "30s"
"""The scheduler's rollup tick in the demo (5 min in production): live data shows up sooner."""


def register(commands: Any) -> None:
    """Add the `demo` command."""
    demo = commands.add_parser(
        "demo",
        help="the running product on simulated patients: dashboard, alerts, live wearables",
    )
    demo.add_argument(
        "--patients", type=int, default=8, metavar="N", help="cohort size (default 8)"
    )
    demo.add_argument(
        "--days", type=int, default=60, metavar="D", help="days of history to back-fill (60)"
    )
    demo.add_argument(
        "--no-backfill", action="store_true", help="skip the history: only live data from now on"
    )
    demo.add_argument("--fresh", action="store_true", help="delete the demo's data and start over")
    demo.add_argument(
        "--live", type=int, default=3, metavar="N", help="patients streaming live (default 3)"
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="X",
        help="fastest simulated seconds per real second of the live stream (default 60)",
    )
    demo.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop by itself after S seconds of live running (default: run until Ctrl-C)",
    )
    demo.set_defaults(handler=run_demo)


@contextmanager
def logging_to(path: Path, level: int = logging.INFO) -> Iterator[None]:
    """Send log records of `level` and above to `path` (appended) instead of the terminal.

    Only the plain terminal handlers are set aside (what `main`'s basicConfig installs);
    others, such as a test runner's capture, keep receiving records. Everything is
    restored on exit.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    was_level = root.level
    root.setLevel(level)
    terminal = [h for h in root.handlers if type(h) is logging.StreamHandler]
    for handler in terminal:
        root.removeHandler(handler)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    try:
        yield
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler in terminal:
            root.addHandler(handler)
        root.setLevel(was_level)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo until Ctrl-C (or `--duration`), logging to `LOG_FILE` in the data directory."""
    for name, value, low in (("--patients", args.patients, 1), ("--days", args.days, 1)):
        if value < low:
            raise CliError(value, f"{name} must be at least {low}; got {value}")
    if args.live < 0:
        raise CliError(args.live, f"--live must be 0 or more; got {args.live}")
    args.live = min(args.live, args.patients)  # a cohort of one streams at most one
    if args.speed < 1:
        raise CliError(args.speed, "--speed must be at least 1")
    if args.fresh:
        _start_over(settings)
    log_path = settings.data_dir / LOG_FILE
    with logging_to(log_path, logging.DEBUG if getattr(args, "verbose", False) else logging.INFO):
        # SIGTERM ends the demo the way Ctrl-C does, so the same clean-up runs; and Ctrl-C
        # works even when the demo was started with SIGINT ignored (`cmd &` in a script).
        previous = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt),
            signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        }
        try:
            return _run(args, settings, log_path)
        except KeyboardInterrupt:
            print("\nstopped.", flush=True)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _start_over(settings: Settings) -> None:
    """Delete what the demo stored (embedded server only: a real database is not the demo's)."""
    if settings.database_url:
        raise CliError(
            settings.database_url, "--fresh deletes the embedded server's data; unset the URL"
        )
    for name in DEMO_FILES:
        path = settings.data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    print(f"--fresh: removed the demo's data in {settings.data_dir}", flush=True)


@dataclass(frozen=True)
class Demo:
    """What the stages of one demo run share: its options, databases, sinks and environment."""

    args: argparse.Namespace
    settings: Settings
    log_path: Path
    dsn: str
    """The administrator's connection (the embedded server's superuser)."""
    worker_dsn: str
    ingest_dsn: str
    mail: Sink
    hooks: Sink
    env: dict[str, str]
    """The `PACELINE_*` settings the child processes and the in-process jobs get."""
    clock: TimeSource = REAL_TIME
    """The scheduler's clock (`PACELINE_CLOCK_START`): the history ends at its yesterday,
    the live stream stays behind it, as the worker and the scheduler children do."""


@dataclass(frozen=True)
class Login:
    """A demo login and its password."""

    username: str
    password: str
    role: str
    who: str


def _logins(
    conn: psycopg.Connection[Any], data_dir: Path, clinician_id: int, patient: Member
) -> list[Login]:
    """The three demo logins, created on first use; their passwords kept in `LOGINS_FILE`."""
    from paceline.dashboard.auth import hash_password  # noqa: PLC0415 - the dashboard extra

    path = data_dir / LOGINS_FILE
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    set_clinician_contact(conn, clinician_id, email="clinician@clinic.demo.invalid", timezone="UTC")
    wanted = (
        ("clinician", Role.CLINICIAN, clinician_id, None, "Dr Demo, the cohort's clinician"),
        ("admin", Role.ADMIN, None, None, "administrator (accounts, audit log)"),
        ("patient", Role.PATIENT, None, patient.patient_id, patient.display_name),
    )
    known = {a.username for a in accounts.list_accounts(conn)}
    logins = []
    for username, role, for_clinician, for_patient, who in wanted:
        password = stored.get(username)
        if password is None and username in known:
            # The file was lost: a new password, so that the one printed is the one that works.
            password = secrets.token_urlsafe(12)
            accounts.set_password_hash(conn, username, hash_password(password))
        password = password or secrets.token_urlsafe(12)
        if username not in known:
            accounts.create_account(
                conn,
                username=username,
                role=role,
                password_hash=hash_password(password),
                clinician_id=for_clinician,
                patient_id=for_patient,
            )
        stored[username] = password
        logins.append(Login(username, password, role.value, who))
    conn.commit()
    path.touch(0o600)
    path.write_text(json.dumps(stored, indent=2))
    return logins


def _run(args: argparse.Namespace, settings: Settings, log_path: Path) -> int:
    data_dir = settings.data_dir
    print(f"Paceline demo · data in {data_dir} · log lines in {log_path}\n", flush=True)
    with ExitStack() as stack:
        dsn = stack.enter_context(database_dsn(settings, announce=False))
        with connect(dsn, autocommit=True) as admin:
            done = migrate(
                admin,
                compress_after=settings.compress_after,
                retention=settings.retention,
                identity_key=identity_key(settings),
                passwords=administrator_secrets(settings),
            )
        where = "embedded PostgreSQL" if not settings.database_url else "the database at the URL"
        print(
            f"1. database: {where}, "
            + (
                f"{len(done.applied)} migration(s) applied" if done.applied else "schema up to date"
            ),
            flush=True,
        )
        worker_dsn, ingest_dsn = dsn, dsn
        if not settings.database_url:
            worker_dsn = roles.role_dsn(
                dsn, roles.WORKER, role_password(settings.secrets, roles.WORKER)
            )
            ingest_dsn = roles.role_dsn(
                dsn, roles.INGEST, role_password(settings.secrets, roles.INGEST)
            )

        secret = webhook_secret()
        mail = stack.enter_context(smtp_sink(data_dir / MAIL_DIR))
        hooks = stack.enter_context(webhook_receiver(data_dir / WEBHOOK_DIR, secret))
        url = f"http://127.0.0.1:{args.port}/"
        env = {
            "PACELINE_SMTP_URL": mail.url,
            "PACELINE_ALERT_FROM": "paceline-demo@clinic.demo.invalid",
            "PACELINE_WEBHOOK_URL": hooks.url,
            "PACELINE_WEBHOOK_SECRET": secret,
            "PACELINE_DASHBOARD_URL": url.rstrip("/"),
            "PACELINE_ROLLUP_EVERY": DEMO_ROLLUP_EVERY,
        }
        clock = SchedulerSettings.from_env().now()
        demo = Demo(args, settings, log_path, dsn, worker_dsn, ingest_dsn, mail, hooks, env, clock)
        print(f"2. alert e-mails are saved in {mail.folder} (SMTP sink at {mail.url})")
        print(f"   webhooks are saved in {hooks.folder} (receiver at {hooks.url})", flush=True)

        today = clock.now().date()
        with connect(dsn) as conn:
            clinician_id = _clinician_id(conn)
            members = enrol(
                conn, args.patients, clinician_id=clinician_id, days=args.days, today=today
            )
            logins = _logins(conn, data_dir, clinician_id, members[0])
            total = 0 if args.no_backfill else plan_history(conn, members, today)
        _say_cohort(members)
        if total:
            _backfill(demo, members, total)
        else:
            print("   history: nothing to back-fill (it is up to date, or --no-backfill)")

        children = stack.enter_context(_services(demo))
        print(f"\n4. dashboard: {url}  (worker and scheduler running; pids {children})")
        for login in logins:
            print(f"   login {login.username:<10} password {login.password}   {login.who}")
        print(
            f"\n{args.live} patient(s) stream live through the ingest daemon; flags, alerts"
            f" and e-mails appear as the worker runs.  Ctrl-C stops everything.\n",
            flush=True,
        )
        _stream_live(demo, members[: args.live])
    print("stopped: dashboard, worker, scheduler, sinks and the embedded server.", flush=True)
    return 0


def _clinician_id(conn: psycopg.Connection[Any]) -> int:
    """The demo clinician, created on first use (the cohort's care team)."""
    found = conn.execute("SELECT clinician_id FROM clinician WHERE username = 'clinician'")
    row = found.fetchone()
    if row is not None:
        return int(row[0])
    return registry.create_clinician(
        conn, username="clinician", display_name="Dr Demo (simulated clinician)"
    )


def _say_cohort(members: list[Member]) -> None:
    print(f"3. cohort: {len(members)} simulated patients")
    for m in members:
        span = f"{m.days[0]} to {m.days[-1]}" if m.days else "up to date"
        print(f"   {m.patient_id:>4}  {m.display_name:<40} back-fill {span}")
    sys.stdout.flush()


def _backfill(demo: Demo, members: list[Member], total: int) -> None:
    """The history, with a progress bar (and an ETA) per stage."""
    from rich import progress as bar  # noqa: PLC0415 - only the demo draws bars

    started = time.monotonic()
    with (
        Spool.open(spool_path(demo.settings.data_dir), gateway_id=GATEWAY) as spool,
        bar.Progress(
            bar.TextColumn("   {task.description:<34}"),
            bar.BarColumn(),
            bar.MofNCompleteColumn(),
            bar.TimeElapsedColumn(),
            bar.TextColumn("ETA"),
            bar.TimeRemainingColumn(),
        ) as bars,
    ):
        uploader = Uploader(spool, demo.ingest_dsn)
        spooled = bars.add_task("watches → gateway spool (days)", total=total)
        uploaded = bars.add_task("spool → store, uploader (rows)", total=None)
        evaluated = bars.add_task("rollup + evaluation (days)", total=total)
        try:
            backfill(
                members,
                admin_dsn=demo.dsn,
                worker_dsn=demo.worker_dsn,
                uploader=uploader,
                spool=spool,
                config=DeliveryConfig.from_env(demo.env),
                now=demo.clock,
                progress=Progress(
                    spooled=lambda n: bars.advance(spooled, n),
                    uploaded=lambda n: bars.advance(uploaded, n),
                    evaluated=lambda n: bars.advance(evaluated, n),
                ),
            )
        finally:
            uploader.close()
        bars.update(uploaded, total=bars.tasks[uploaded].completed)
    logger.info("back-filled %s patient-days in %.1f s", total, time.monotonic() - started)
    print(f"   history: {total} patient-days in {time.monotonic() - started:.0f} s", flush=True)


@contextmanager
def _services(demo: Demo) -> Iterator[list[int]]:
    """The worker, the scheduler and the dashboard as child processes; stopped on exit.

    Each is started in a process group of its own, so that a Ctrl-C in the terminal
    reaches only this process, which stops them in order (SIGTERM, then SIGKILL
    after `STOP_GRACE_S`) and waits for each: none is left behind, and the
    embedded server stops when the last of them has released it.
    """
    paceline = [sys.executable, "-m", "paceline.cli.main"]
    commands = (
        ("worker", [*paceline, "worker", "--concurrency", "2"]),
        ("scheduler", [*paceline, "scheduler", "run"]),
        ("dashboard", [*paceline, "dashboard", "--port", str(demo.args.port)]),
    )
    child_env = {**os.environ, **demo.env, "PACELINE_DATA_DIR": str(demo.settings.data_dir)}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    log: IO[bytes] = demo.log_path.open("ab")
    try:
        for name, argv in commands:
            proc = subprocess.Popen(
                argv,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                process_group=0,
            )
            logger.info("started %s as pid %s", name, proc.pid)
            procs.append((name, proc))
        yield [p.pid for _, p in procs]
    finally:
        # A second Ctrl-C while the children stop must not leave one of them running.
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for name, proc in reversed(procs):
                _stop_child(name, proc)
        finally:
            for sig, handler in held.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            log.close()


def _stop_child(name: str, proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM `proc`'s group, wait, and SIGKILL it if it does not stop in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %s s; killing it", name, STOP_GRACE_S)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    logger.info("%s stopped (exit %s)", name, proc.returncode)


def _stream_live(demo: Demo, members: list[Member]) -> None:
    """Stream the first members' watches through the ingest daemon until stopped.

    Simulated time continues after the newest sample stored (or spooled) for those
    watches and runs as fast as `--speed` allows while staying behind the real
    clock. Because a simulated clock has one speed, the stream is re-planned every
    `LIVE_CHUNK_S`: each stretch starts where the last one ended, at the speed that
    keeps it behind the clock, so the stream catches up with the present and then
    runs at real time.
    """
    deadline = None if demo.args.duration is None else time.monotonic() + demo.args.duration
    resume: datetime | None = None
    stop = asyncio.Event()

    async def run() -> None:
        nonlocal resume
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            loop.add_signal_handler(sig, stop.set)
        status = asyncio.create_task(_status(demo, stop))
        try:
            while not stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                chunk = LIVE_CHUNK_S if left is None else min(LIVE_CHUNK_S, left)
                if not members:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), chunk)
                    continue
                resume = await _live_stretch(demo, members, chunk, resume, stop)
        finally:
            stop.set()
            await status
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                # asyncio leaves SIG_DFL behind; the demo's own handling must come back.
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    asyncio.run(run())


async def _live_stretch(
    demo: Demo, members: list[Member], chunk_s: float, resume: datetime | None, stop: asyncio.Event
) -> datetime:
    """One stretch of the live stream; returns the simulated time it reached."""
    with connect(demo.dsn, autocommit=True) as conn:
        newest = registry.newest_sample_time(conn, [(m.patient_id, m.device_id) for m in members])
    if resume is not None and (newest is None or resume > newest):
        newest = resume  # spooled, perhaps not uploaded yet: never lay samples over them
    span = continue_after(
        newest, speed=demo.args.speed, covers_s=chunk_s, now=demo.clock.now(), daytime=True
    )
    fleet = build_fleet(len(members), speed=span.speed, start=span.start, kinds=(KIND,))
    bindings = [
        DeviceBinding(m.address, m.device_id, m.patient_id, f"PineTime {m.number:02d}", "pinetime")
        for m in members
    ]
    daemon = IngestDaemon(
        bindings,
        spool_path=spool_path(demo.settings.data_dir),
        dsn=demo.ingest_dsn,
        config=DaemonConfig(progress_every_s=None),
        gateway_id=GATEWAY,
        locate=fleet.locate,
        clock=fleet.clock,
        backend=SimulatedBleakClient,
        client_kwargs=fleet.client_kwargs(),
    )
    logger.info(
        "live stretch from %s at %.3gx for %.0f s", span.start.isoformat(), span.speed, chunk_s
    )
    waiter = asyncio.create_task(stop.wait())
    runner = asyncio.create_task(daemon.run(duration_s=chunk_s, signals=False))
    await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    daemon.stop()
    await runner
    waiter.cancel()
    reached = fleet.clock.wall()
    fleet.stop()
    return reached


async def _status(demo: Demo, stop: asyncio.Event) -> None:
    """A line every `STATUS_EVERY_S`: newest sample, open flags, alerts, e-mails and webhooks."""
    last = ""
    while not stop.is_set():
        try:
            line = await asyncio.to_thread(_status_line, demo)
        except psycopg.Error as exc:
            line = f"(status unavailable: {exc})"
        if line != last:
            print(f"[{datetime.now(UTC):%H:%M:%S} UTC] {line}", flush=True)
            last = line
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)


def _status_line(demo: Demo) -> str:
    with connect(demo.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM flag WHERE status <> 'resolved'),"
            " (SELECT count(*) FROM alert WHERE status <> 'resolved'),"
            " (SELECT max(time) FROM hr_sample)"
        ).fetchone()
    assert row is not None
    newest = "-" if row[2] is None else f"{row[2]:%Y-%m-%d %H:%M:%S} UTC"
    mails = sum(1 for _ in demo.mail.folder.glob("*.eml"))
    posts = sum(1 for _ in demo.hooks.folder.glob("*.json"))
    return (
        f"newest sample {newest} · {row[0]} open flags · {row[1]} open alerts ·"
        f" {mails} e-mails · {posts} webhooks"
    )


__all__ = ["LOG_FILE", "logging_to", "register", "run_demo"]
