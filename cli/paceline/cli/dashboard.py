"""`paceline dashboard [--port N] [--host ADDR]`: the Streamlit web app for clinicians and patients."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey, IdentityKeyError
from paceline.store.migrate import migrate

DEFAULT_PORT = 8501


def register(commands: Any) -> None:
    """Add the `dashboard` command."""
    cmd = commands.add_parser("dashboard", help="the web app for clinicians and patients")
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    cmd.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: put a TLS proxy in front to serve others)",
    )
    cmd.set_defaults(handler=run_dashboard)


def app_script() -> Path:
    """Where `streamlit_app.py` is: packaged beside `paceline.dashboard`, or in the source tree."""
    import paceline.dashboard  # noqa: PLC0415 - only the dashboard command needs it

    package = Path(next(iter(paceline.dashboard.__path__)))
    for candidate in (
        package / "web" / "streamlit_app.py",
        package.parents[1] / "streamlit_app.py",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"streamlit_app.py not found beside {package}")


def streamlit_argv(script: Path, *, host: str, port: int) -> list[str]:
    """The command line that serves the app headless on `host:port`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        # A traceback would show people internals (SQL, paths); the server log keeps it.
        "--client.showErrorDetails=none",
        "--server.fileWatcherType=none",
    ]


def _access(settings: Settings, dsn: str) -> tuple[str, Path]:
    """The dashboard role's DSN and the identity key file for the app.

    With `PACELINE_DATABASE_URL` the deployment gives the dashboard its own
    role's URL and the key file (`PACELINE_IDENTITY_KEY_FILE`) that its
    migration installed. On the embedded server this command is the
    administrator: it migrates, installs the key (created 0600 on first use)
    and gives the dashboard role a fresh password for this run.
    """
    key_path = settings.identity_key_path
    if settings.database_url:
        if not key_path.exists():
            raise IdentityKeyError(key_path, "does not exist; set PACELINE_IDENTITY_KEY_FILE")
        return dsn, key_path
    key = IdentityKey.load_or_create(key_path)
    password = roles.generate_password()
    with connect(dsn, autocommit=True) as admin:
        migrate(admin, identity_key=key, passwords={roles.DASHBOARD: password})
    return roles.role_dsn(dsn, roles.DASHBOARD, password), key_path


def run_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the dashboard until interrupted."""
    if importlib.util.find_spec("streamlit") is None:
        print(
            "paceline: error: the dashboard needs the dashboard extra:"
            " pip install 'paceline[dashboard]'",
            file=sys.stderr,
        )
        return 2
    script = app_script()
    with database_dsn(settings) as dsn:
        dashboard_dsn, key_path = _access(settings, dsn)
        env = {
            **os.environ,
            "PACELINE_DASHBOARD_DSN": dashboard_dsn,
            "PACELINE_IDENTITY_KEY_FILE": str(key_path),
        }
        print(f"paceline dashboard: http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
        proc = subprocess.Popen(streamlit_argv(script, host=args.host, port=args.port), env=env)
        # SIGTERM stops the server first, so the embedded database stops after its last user.
        signal.signal(signal.SIGTERM, lambda _sig, _frame: proc.terminate())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            return 130
