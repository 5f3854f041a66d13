"""What the browser tests share: Chromium, `paceline dashboard` as a subprocess, waits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from paceline.store import roles
from paceline.store.secrets import write_secret
from paceline.store.testing import role_password
from tests.dashboard.conftest import ROOT

CHROMIUM = Path(os.environ.get("PACELINE_CHROMIUM", "/usr/bin/chromium"))
WAIT_MS = 90_000  # a loaded 2-core machine; a wait, not a timed assertion


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    """Whether the Streamlit server at `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except OSError:
        return False


def require_chromium() -> None:
    """Fail (never skip) with how to install Chromium when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser test needs Chromium at {CHROMIUM}: run `apt-get install -y chromium`"
            " as root (python3 dev.py test does this when run as root), or point"
            " PACELINE_CHROMIUM at a Chromium binary"
        )


@contextmanager
def dashboard(
    db_dsn: str,
    dashboard_dsn: str,
    key_file: Path,
    workdir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """`paceline dashboard` on a free loopback port, as a deployment runs it; yields its URL.

    The app gets the dashboard role's URL and the login role's password as a
    secret file (compose mounts it in /run/secrets). Waits, without a deadline
    of its own (pytest's timeout bounds it), until the server answers.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets = workdir / "secrets"
    write_secret(secrets / f"{roles.LOGIN}.password", role_password(db_dsn, roles.LOGIN))
    env = {
        **os.environ,
        "PACELINE_DATABASE_URL": dashboard_dsn,
        "PACELINE_IDENTITY_KEY_FILE": str(key_file),
        "PACELINE_SECRETS_DIR": str(secrets),
        **(extra_env or {}),
    }
    with (workdir / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paceline.cli.main", "dashboard", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            while not healthy(url):
                if proc.poll() is not None:
                    pytest.fail(f"paceline dashboard exited with {proc.returncode}; see {log.name}")
                subprocess.run(["sleep", "0.2"], check=True)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def launch(pw: Playwright) -> Browser:
    """Headless Debian Chromium (no sandbox: the tests may run as root), with generous waits."""
    expect.set_options(timeout=WAIT_MS)
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)


def new_page(browser: Browser, width: int = 1400, height: int = 1000) -> Page:
    """A page of `width` x `height` whose every action waits up to `WAIT_MS`."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(WAIT_MS)
    return page
