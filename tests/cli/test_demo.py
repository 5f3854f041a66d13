"""`paceline demo`: the README's first command as a new user runs it, in a subprocess.

A small cohort and a short history keep it quick; everything else is the real
thing: the embedded server in a temporary data directory, the back-fill through
spool and uploader, the worker, the scheduler and the dashboard as child
processes, the SMTP sink and webhook receiver, the live stream, and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from paceline.cli import demo
from paceline.cli.errors import CliError
from paceline.cli.settings import Settings
from paceline.store.connection import connect
from paceline.store.embedded import EmbeddedServer

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
#: Generous limits for waiting on a loaded machine (waits, not timed assertions).
START_LIMIT_S = 400.0
STOP_LIMIT_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACELINE_")}
    return {**env, "PACELINE_DATA_DIR": str(data)}


def _wait(what: str, ready: Callable[[], bool], proc: subprocess.Popen[str] | None) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while not ready():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the demo ended before {what}: exit {proc.returncode}\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {START_LIMIT_S:g} s")
        time.sleep(1.0)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _processes_of(data: Path) -> list[str]:
    """Processes that still use the data directory (in their command line or environment)."""
    needle = str(data).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {shown}")
    return found


def _released(data: Path) -> bool:
    return not _processes_of(data) and not (data / "pgdata" / "postmaster.pid").exists()


def _stored(data: Path, query: str, *params: Any) -> Any:
    server = EmbeddedServer.start(data)
    try:
        with connect(server.dsn) as conn:
            row = conn.execute(query, params).fetchone()
            assert row is not None
            return row[0]
    finally:
        server.stop()


def _demo(data: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "paceline.cli.main", "demo", "--patients", "2", "--days", "12"]
    argv += ["--live", "1", "--port", str(port), *extra]
    return subprocess.Popen(
        argv,
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's Ctrl-C is the SIGINT sent below
    )


@pytest.mark.slow
# Two demo starts and a stop, each waited on up to its own limit: the suite's 300 s
# timeout would cut the waits short on a loaded machine (it did, at a load of 20).
@pytest.mark.timeout(2 * START_LIMIT_S + STOP_LIMIT_S + 60)
def test_the_demo_serves_the_clinic_and_stops_cleanly_then_continues(server_dir: Path) -> None:
    data = server_dir / "data"
    port = _free_port()
    proc = _demo(data, port)
    try:
        _wait("dashboard health", lambda: _healthy(port), proc)
        mail = data / demo.MAIL_DIR
        _wait("alert e-mail", lambda: any(mail.glob("*.eml")), proc)
        hooks = data / demo.WEBHOOK_DIR
        _wait("webhook", lambda: any(hooks.glob("*.json")), proc)
        flags = subprocess.run(
            [sys.executable, "-m", "paceline.cli.main", "flags", "list", "--json"],
            env=_env(data),
            capture_output=True,
            text=True,
            check=True,
        )
        rules = {f["rule_id"] for f in json.loads(flags.stdout)}
        assert any(r.startswith(("boom.", "cycling.")) for r in rules), rules
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=STOP_LIMIT_S)
        # Shown by pytest when the test fails, a wait's timeout included: what the demo
        # had done by then (its story and the tail of its log).
        print(out)
        print(err, file=sys.stderr)
        log = data / demo.LOG_FILE
        if log.exists():
            print("\n".join(log.read_text().splitlines()[-60:]))
    assert proc.returncode == 0, err
    # The story on stdout, the log lines in the log file.
    assert not [line for line in out.splitlines() if LOG_LINE.match(line)], out
    assert "paceline.ingest" in (data / demo.LOG_FILE).read_text()
    for said in (f"http://127.0.0.1:{port}/", "login clinician", "login admin", "login patient"):
        assert said in out
    assert str(mail) in out and str(hooks) in out
    assert "stopped" in out
    messages = [m.read_text() for m in mail.glob("*.eml")]
    assert any(
        "To: clinician@clinic.demo.invalid" in m and "Subject: Paceline" in m for m in messages
    )
    hook = json.loads(next(hooks.glob("*.json")).read_text())
    assert hook["verified"] is True
    # No child left behind, and the embedded server released (its watcher stops it once
    # the last user is gone).
    _wait("release of the data directory", lambda: _released(data), None)

    # The back-fill's history resolved most of its alerts as it went: their e-mails were
    # cancelled, not sent; what went out was about alerts still open when it was sent.
    stale = _stored(
        data,
        "SELECT count(*) FROM alert_delivery d WHERE d.status = 'delivered'"
        " AND d.channel <> 'inbox' AND NOT EXISTS (SELECT 1 FROM alert a"
        " WHERE a.alert_id = ANY(d.alert_ids)"
        " AND (a.resolved_at IS NULL OR a.resolved_at > d.delivered_at))",
    )
    cancelled = _stored(data, "SELECT count(*) FROM alert_delivery WHERE status = 'cancelled'")
    assert (stale, cancelled > 0) == (0, True), (stale, cancelled)
    newest: datetime = _stored(data, "SELECT max(time) FROM hr_sample")
    again = _demo(data, port, "--duration", "20")
    out, err = again.communicate(timeout=START_LIMIT_S)
    assert again.returncode == 0, err
    assert out.count("back-fill up to date") == 2, out
    # It continued in time: new minutes after the first run's, never a second set
    # of samples laid between the stored ones.
    assert _stored(data, "SELECT count(*) FROM hr_sample WHERE time > %s", newest) > 0
    doubled = _stored(
        data,
        "SELECT count(*) FROM (SELECT time - lag(time) OVER (PARTITION BY device_id ORDER BY"
        " time) AS gap FROM hr_sample) g WHERE gap < interval '500 milliseconds'",
    )
    assert doubled == 0
    _wait("release after the second run", lambda: _released(data), None)


def test_fresh_removes_the_demo_data_and_refuses_a_real_database(tmp_path: Path) -> None:
    for name in (demo.LOG_FILE, demo.LOGINS_FILE):
        (tmp_path / name).write_text("x")
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("17")
    (tmp_path / "keep.txt").write_text("not the demo's")
    demo._start_over(Settings.from_env({"PACELINE_DATA_DIR": str(tmp_path)}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    with pytest.raises(CliError, match="--fresh deletes the embedded server's data"):
        demo._start_over(
            Settings.from_env(
                {"PACELINE_DATA_DIR": str(tmp_path), "PACELINE_DATABASE_URL": "postgresql:///x"}
            )
        )


@pytest.mark.slow
def test_ctrl_c_during_the_backfill_stops_it_even_when_started_with_sigint_ignored(
    server_dir: Path,
) -> None:
    data = server_dir / "data"
    argv = [sys.executable, "-m", "paceline.cli.main", "demo", "--patients", "1", "--days", "40"]
    proc = subprocess.Popen(
        [*argv, "--port", str(_free_port())],
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # What `paceline demo &` in a script gives it: SIGINT ignored from the start.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("3. cohort"):
            break
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=STOP_LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM stops it cleanly, so that a failure leaves nothing behind
        proc.communicate(timeout=STOP_LIMIT_S)
        pytest.fail("SIGINT did not stop the demo")
    assert proc.returncode == 0, "".join(seen) + out + err
    assert "stopped" in out
    assert "4. dashboard" not in out  # it stopped in the back-fill, before the services
    _wait("release of the data directory", lambda: _released(data), None)
