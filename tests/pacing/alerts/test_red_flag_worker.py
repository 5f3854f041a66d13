"""Red flags through the real queue: `paceline worker` as a subprocess, and no clock.

A patient answers yes to a red-flag question in their own dashboard session;
later, while the pause is still open, yes to another. Each answer reaches the
care team's mailbox (a real aiosmtpd on 127.0.0.1) once: the first as the
new critical alert, the second as a re-notification of the same alert saying
what is new. No scheduler runs, so no rollup tick: the answer's own
transaction queued its evaluation (migration 0031). Every wait ends as soon
as its condition holds; the deadline is a hang guard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from paceline.pacing import intake, replay
from paceline.pacing.intake import ScreenOutcome
from paceline.pacing.redflags import CODES
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import roles
from paceline.store.access import patient_session
from paceline.store.connection import connect
from paceline.store.identity import IdentityKey
from paceline.store.testing import service_dsn
from tests.pacing.alerts import helpers
from tests.pacing.alerts.servers import Mailbox, smtp_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
HANG_GUARD_S = 60.0
NO = dict.fromkeys(CODES, False)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "paceline.cli.main", *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def services(db_dsn: str, tmp_path: Path) -> Iterator[Callable[[str], list[Path]]]:
    """Start the worker (nothing else: no clock) against `smtp_url`."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(smtp_url: str) -> list[Path]:
        env = {
            **os.environ,
            "PACELINE_DATABASE_URL": service_dsn(db_dsn, roles.WORKER),
            "PACELINE_SMTP_URL": smtp_url,
            "PACELINE_ALERT_FROM": "alerts@paceline.test",
            "PACELINE_DASHBOARD_URL": "https://dash.example",
            "PACELINE_WORKER_HEARTBEAT": "0.5s",
        }
        logs = [tmp_path / "worker.log"]
        procs.append(_start(["worker", "--concurrency", "2"], env, logs[0]))
        return logs

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _wait(
    conn: psycopg.Connection[Any], check: Callable[[], bool], logs: list[Path], what: str
) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    state = {
        table: conn.execute(query).fetchall()
        for table, query in (
            (
                "jobs",
                "SELECT task_name, status, count(*) FROM procrastinate_jobs"
                " WHERE task_name <> 'paceline.rollup_tick' GROUP BY 1, 2",
            ),
            ("screens", "SELECT screen_id, positive, evaluated_at FROM red_flag_screen"),
            ("flags", "SELECT rule_id, status, window_start FROM flag"),
            ("alerts", "SELECT rule_id, status, notices, notified_findings FROM alert"),
            (
                "deliveries",
                "SELECT channel, notice, status, attempts, last_error FROM alert_delivery",
            ),
        )
    }
    conn.rollback()
    errors = "\n".join(
        line
        for p in logs
        for line in p.read_text(errors="replace").splitlines()
        if "ERROR" in line or "Error" in line
    )
    pytest.fail(f"timed out waiting for {what}\n{state}\n{errors[-4000:]}")


def _emails(conn: psycopg.Connection[Any], pid: int) -> list[tuple[int, str, int]]:
    rows = conn.execute(
        "SELECT d.notice, d.status, d.attempts FROM alert_delivery d JOIN alert a USING (alert_id)"
        " WHERE d.patient_id = %s AND d.channel = 'email' AND a.rule_id = 'safety.red_flag'"
        " ORDER BY d.notice, d.delivery_id",
        (pid,),
    ).fetchall()
    conn.commit()
    return [(int(n), str(s), int(a)) for n, s, a in rows]


def _settled(conn: psycopg.Connection[Any], box: Mailbox, pid: int, notices: int) -> bool:
    """`notices` red-flag e-mails delivered and received, no screen unread, no job left to run.

    The care team's other e-mails (the data flags' digest at 08:00) and the
    patient's questionnaire reminder are not immediate, or not theirs.
    """
    busy = conn.execute(
        "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        "  AND queue_name IN ('evaluate', 'deliver'))"
        " + (SELECT count(*) FROM evaluation_due)"
        " + (SELECT count(*) FROM red_flag_screen WHERE evaluated_at IS NULL"
        "    AND cardinality(positive) > 0)"
    ).fetchone()
    conn.commit()
    emails = _emails(conn, pid)
    return bool(
        busy == (0,)
        and len(emails) == notices
        and all(s == "delivered" for _, s, _ in emails)
        and len(_red(box)) == notices
    )


def _red(box: Mailbox) -> list[Any]:
    """The red-flag e-mails the SMTP server received."""
    return [m for m in box.messages if "safety.red_flag" in m["Subject"]]


def test_each_red_flag_yes_reaches_the_care_team_once_through_the_worker(
    db_dsn: str,
    dashboard_dsn: str,
    identity_key: IdentityKey,
    services: Callable[[str], list[Path]],
) -> None:
    now = datetime.now(UTC)
    with (
        connect(db_dsn) as conn,
        connect(dashboard_dsn) as dashboard,
        smtp_server() as (smtp_url, box),
    ):

        def answer(code: str, at: datetime) -> ScreenOutcome:
            """The patient ticks `code` on the dashboard (their own session)."""
            with patient_session(dashboard, pid, key=identity_key) as mine:
                return intake.submit_red_flag_screen(mine, pid, {**NO, code: True}, answered_at=at)

        pid, _ = helpers.enrol(conn)
        # Midnight six days ago: the simulated days' diaries (20:00) are all after it,
        # whatever the time of day the test runs at.
        enrolled = datetime.combine((now - timedelta(days=6)).date(), datetime.min.time(), UTC)
        conn.execute("UPDATE patient SET enrolled_at = %s WHERE patient_id = %s", (enrolled, pid))
        sim = SimPatient(Persona.STEADY, seed=5)
        for i in range(5):
            replay.store_sim_day(conn, pid, sim.next_day(enrolled.date() + timedelta(days=i), None))
        conn.commit()
        logs = services(smtp_url)
        first = answer("night_pain", now - timedelta(minutes=5))
        _wait(conn, lambda: _settled(conn, box, pid, 1), logs, "the first yes e-mailed")
        second = answer("bladder_bowel", datetime.now(UTC))
        assert second.pause_id == first.pause_id, "one pause"
        _wait(conn, lambda: _settled(conn, box, pid, 2), logs, "the second yes e-mailed")
        emails = _emails(conn, pid)
        alerts = conn.execute(
            "SELECT count(*), min(status) FROM alert WHERE patient_id = %s"
            " AND rule_id = 'safety.red_flag'",
            (pid,),
        ).fetchone()
        conn.commit()
    # One alert, two notices, each e-mailed once at one go, with its own Message-ID.
    assert alerts == (1, "open")
    assert emails == [(0, "delivered", 1), (1, "delivered", 1)]
    red = _red(box)
    assert len({m["Message-ID"] for m in red}) == 2
    assert [m["Subject"].endswith("(new answer)") for m in red] == [False, True]
    body = red[1].get_payload(decode=True).decode()
    assert f"screen {second.screen_id} answered" in body and "emergency care" in body
    assert "bladder" not in body.lower() and "cauda" not in body.lower()
