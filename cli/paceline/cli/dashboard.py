"""`paceline dashboard [--port N] [--host ADDR]`: the Streamlit web app for clinicians and patients."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey, IdentityKeyError
from paceline.store.migrate import migrate
from paceline.store.secrets import SecretFileError, read_secret

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


def streamlit_argv(script: Path, *, host: str, port: int, secrets: Path | None = None) -> list[str]:
    """The command line that serves the app headless on `host:port` (with `secrets`, only them)."""
    argv = [
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
        # The pages write nothing by bare expressions; without magic Streamlit does not
        # rewrite each page's syntax tree when it compiles it.
        "--runner.magicEnabled=false",
    ]
    if secrets is not None:
        # Only this file: no secrets.toml in the checkout or the home directory mixes in.
        argv.append(f"--secrets.files={secrets}")
    return argv


@dataclass(frozen=True)
class DashboardAccess:
    """What the app is given: its two roles' DSNs and the identity key file."""

    dsn: str
    login_dsn: str
    key_path: Path


def _access(settings: Settings, dsn: str) -> DashboardAccess:
    """The dashboard role's and the login role's DSNs, and the identity key file for the app.

    With `PACELINE_DATABASE_URL` the deployment gives the dashboard its own
    role's URL, the key file (`PACELINE_IDENTITY_KEY_FILE`) that its
    migration installed, and `paceline_login`'s password as
    `$PACELINE_SECRETS_DIR/paceline_login.password` (the login role connects
    to the same server and database). On the embedded server this command is
    the administrator: it migrates, installs the key (created 0600 on first
    use) and gives both roles fresh passwords for this run.
    """
    key_path = settings.identity_key_path
    if settings.database_url:
        if not key_path.exists():
            raise IdentityKeyError(key_path, "does not exist; set PACELINE_IDENTITY_KEY_FILE")
        login_password = settings.secrets / f"{roles.LOGIN}.password"
        if not login_password.exists():
            raise SecretFileError(
                login_password,
                f"does not exist: the dashboard checks passwords as {roles.LOGIN}; mount its"
                " password there or set PACELINE_SECRETS_DIR",
            )
        login_dsn = roles.role_dsn(dsn, roles.LOGIN, read_secret(login_password))
        return DashboardAccess(dsn, login_dsn, key_path)
    key = IdentityKey.load_or_create(key_path)
    passwords = {role: roles.generate_password() for role in (roles.DASHBOARD, roles.LOGIN)}
    with connect(dsn, autocommit=True) as admin:
        migrate(admin, identity_key=key, passwords=passwords)
    return DashboardAccess(
        roles.role_dsn(dsn, roles.DASHBOARD, passwords[roles.DASHBOARD]),
        roles.role_dsn(dsn, roles.LOGIN, passwords[roles.LOGIN]),
        key_path,
    )


def run_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the dashboard until interrupted."""
    if importlib.util.find_spec("streamlit") is None:
        print(
            "paceline: error: the dashboard needs the dashboard extra:"
            " pip install 'paceline[dashboard]'",
            file=sys.stderr,
        )
        return 2
    # Imported here: the single sign-on settings need the dashboard extra's modules.
    from paceline.cli import oidc  # noqa: PLC0415

    script = app_script()
    sign_on = oidc.oidc_from_env(os.environ, host=args.host, port=args.port)
    with database_dsn(settings) as dsn, oidc.streamlit_secrets(sign_on) as secrets:
        access = _access(settings, dsn)
        env = {
            **os.environ,
            "PACELINE_DASHBOARD_DSN": access.dsn,
            "PACELINE_DASHBOARD_LOGIN_DSN": access.login_dsn,
            "PACELINE_IDENTITY_KEY_FILE": str(access.key_path),
        }
        env.pop(oidc.APP_FLAG, None)
        if sign_on is not None:
            env[oidc.APP_FLAG] = sign_on.name
        print(f"paceline dashboard: http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
        argv = streamlit_argv(script, host=args.host, port=args.port, secrets=secrets)
        proc = subprocess.Popen(argv, env=env)
        # SIGTERM stops the server first, so the embedded database stops after its last user.
        signal.signal(signal.SIGTERM, lambda _sig, _frame: proc.terminate())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            return 130
