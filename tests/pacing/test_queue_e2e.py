"""The queue end to end: the real `paceline scheduler run` and `paceline worker` as subprocesses.

Every wait ends as soon as its condition holds; the deadlines are hang guards
for a loaded machine, never expectations. Time is injected with
`PACELINE_CLOCK_START` (the clock starts at that instant and advances with the
real time), so six hours of downtime take no six hours.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from paceline.pacing import records, replay
from paceline.pacing.alerts import DeliveryConfig
from paceline.pacing.alerts.retry import BASE_DELAY, JITTER
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.jobs import tasks
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.testing import service_dsn, temporary_database
from tests.factories import enrolled_patient, store_simulated_day
from tests.pacing.alerts import helpers as alert_helpers
from tests.pacing.alerts.helpers import SECRET
from tests.pacing.alerts.servers import self_signed, smtp_server, verify, webhook_receiver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 120.0
# The engine's per-patient transaction lock (`records.lock_patient`), taken here at
# session level so that a worker's evaluation waits inside its job.
ENGINE_LOCK_CLASS = 0x70636E67


class Fleet:
    """Scheduler and worker subprocesses against one database; every one killed at the end."""

    def __init__(self, dsn: str, tmp: Path, **env: str) -> None:
        # Every process logs in as the worker role, with only the grants it has in production.
        self.env = {
            **os.environ,
            "PACELINE_DATABASE_URL": service_dsn(dsn, roles.WORKER),
            "PACELINE_STANDBY_POLL": "0.2s",
            # The production heartbeat (10 s; jobs put back after 30 s without one). A
            # short one made live workers on a loaded machine look dead: their running
            # jobs were put back and run twice, and a worker starting up deleted their
            # rows (procrastinate prunes stale workers), so their next fetch failed on
            # the foreign key and they exited. A killed worker's heartbeat is aged
            # instead (`_age_heartbeat`).
            "PACELINE_RECOVER_EVERY": "1s",
            **env,
        }
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start `paceline ARGS` with its output in a log file of its own."""
        log = (self.tmp / f"proc-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "paceline.cli.main", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        """Every process's errors and the end of its output (for failure messages)."""
        out = []
        for path in sorted(self.tmp.glob("proc-*.log")):
            text = path.read_text(errors="replace")
            errors = [line for line in text.splitlines() if "ERROR" in line or "Error:" in line]
            out.append(f"--- {path.name}\n" + "\n".join(errors[:20]) + f"\n...\n{text[-3000:]}")
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM every live process, then SIGKILL what has not exited."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def dsn(pg_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database of the test's own (dropped after its fleet has stopped)."""
    with temporary_database(pg_server_dsn, request.node.name[-24:]) as fresh:
        yield fresh


@pytest.fixture
def fleet_factory(dsn: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """Build fleets against the test's database; stop each one after the test."""
    made: list[Fleet] = []

    def make(**env: str) -> Fleet:
        """A fleet with extra environment."""
        fleet = Fleet(dsn, tmp_path, **env)
        made.append(fleet)
        return fleet

    yield make
    for f in made:
        f.stop()


def _wait(check: Callable[[], bool], fleet: Fleet, what: str) -> None:
    """Poll `check` until it holds; fail with the processes' logs after the hang guard."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if check():
            return
        dead = [p.args for p in fleet.procs if p.poll() not in (None, 0, -signal.SIGKILL)]
        assert not dead, f"{dead} exited while waiting for {what}\n{fleet.logs()}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{fleet.logs()}")


def _age_heartbeat(conn: psycopg.Connection[Any], task: str) -> int:
    """Make the worker running `task`'s job (killed by the test) look silent for a day.

    What 30 s without its heartbeats would show, without waiting for them and without
    making live workers' thresholds tight. How many workers were aged (0 if a worker
    starting up has already pruned it, which leaves its job to be put back too).
    """
    aged = conn.execute(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 day'"
        " WHERE id IN (SELECT worker_id FROM procrastinate_jobs"
        " WHERE task_name = %s AND status = 'doing')",
        (task,),
    ).rowcount
    conn.commit()
    return aged


def _one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """The single value of a query (committed, so the next read sees new rows)."""
    row = conn.execute(query, params).fetchone()
    conn.commit()
    assert row is not None
    return row[0]


def _enrol(conn: psycopg.Connection[Any], tz: str, enrolled: datetime) -> tuple[int, int]:
    return enrolled_patient(conn, tz=tz, enrolled=enrolled)


def _queue_idle(conn: psycopg.Connection[Any]) -> bool:
    """No per-patient job waiting or running, and no evaluation listed."""
    busy = _one(
        conn,
        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND queue_name IN ('rollup', 'evaluate')",
    )
    due = _one(conn, "SELECT count(*) FROM evaluation_due")
    return bool(busy == 0 and due == 0)


def _windows(conn: psycopg.Connection[Any], task: str) -> list[tuple[datetime, datetime]]:
    rows = conn.execute(
        "SELECT (args->>'since')::timestamptz, (args->>'until')::timestamptz"
        " FROM procrastinate_jobs WHERE task_name = %s ORDER BY 1",
        (task,),
    ).fetchall()
    conn.commit()
    return [(a, b) for a, b in rows]


def _runs_overlap(conn: psycopg.Connection[Any]) -> list[str]:
    """Locks whose jobs ran at overlapping times (from procrastinate's event log)."""
    rows = conn.execute(
        "SELECT j.lock, e.job_id, e.type::text, e.at FROM procrastinate_events e"
        " JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.lock IS NOT NULL"
        " AND e.type IN ('started', 'succeeded', 'failed', 'deferred_for_retry')"
        # By id, not by `at`: `at` is now() of the writing transaction, i.e. when it
        # began, so a long transaction under load files its event out of order.
        " ORDER BY j.lock, e.id"
    ).fetchall()
    conn.commit()
    bad = []
    running: dict[str, int] = {}
    for lock, job_id, kind, _ in rows:
        if kind == "started":
            if lock in running:
                bad.append(f"{lock}: job {job_id} started while job {running[lock]} ran")
            running[lock] = job_id
        elif running.get(lock) == job_id:
            del running[lock]
    return bad


def _pending_overlap(conn: psycopg.Connection[Any]) -> list[str]:
    """Queueing locks that had two jobs waiting at once (from procrastinate's event log)."""
    rows = conn.execute(
        "SELECT j.queueing_lock, e.job_id, e.type::text FROM procrastinate_events e"
        " JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.queueing_lock IS NOT NULL"
        # By id (see _runs_overlap): a job can only be deferred under a queueing lock
        # after the previous holder's 'started' committed, so ids follow that order.
        " AND e.type IN ('deferred', 'started', 'cancelled') ORDER BY e.id"
    ).fetchall()
    conn.commit()
    bad = []
    waiting: dict[str, int] = {}
    for lock, job_id, kind in rows:
        if kind == "deferred":
            if lock in waiting:
                bad.append(f"{lock}: job {job_id} deferred while job {waiting[lock]} waited")
            waiting[lock] = job_id
        elif waiting.get(lock) == job_id:
            del waiting[lock]
    return bad


def test_two_schedulers_and_three_workers_do_each_piece_of_work_once(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    with connect(dsn) as conn:
        enrolled = datetime(2026, 3, 1, tzinfo=UTC)
        patients = [_enrol(conn, "UTC", enrolled) for _ in range(3)]
        for pid, did in patients:
            store_simulated_day(conn, pid, did, date(2026, 3, 2))
        conn.commit()
        # The clock starts ten seconds before 01:00 UTC on 3 March: the nightly slot of
        # every patient comes while the fleet runs.
        fleet = fleet_factory(
            PACELINE_CLOCK_START="2026-03-03T00:59:50+00:00",
            PACELINE_ROLLUP_EVERY="1s",
            PACELINE_NIGHTLY_EVERY="5s",
        )
        for _ in range(2):
            fleet.start("scheduler", "run")
        for _ in range(3):
            fleet.start("worker", "--concurrency", "2")
        ids = [pid for pid, _ in patients]

        def done() -> bool:
            """Every patient rolled up and evaluated, the 01:00 nightly slot passed."""
            metrics = _one(
                conn, "SELECT count(*) FROM daily_metrics WHERE patient_id = ANY(%s)", ids
            )
            nightly = _one(conn, "SELECT max(last_slot) FROM clock_slot WHERE job = 'nightly'")
            passed = nightly is not None and nightly >= datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
            return metrics == 3 and passed and _queue_idle(conn)

        _wait(done, fleet, "the rollups, the nightly pass and the evaluations")

        # Each periodic slot was deferred once by one of the two schedulers: the windows
        # of each periodic job follow one another without gap or overlap.
        for task in (tasks.ROLLUP_TICK, tasks.NIGHTLY):
            windows = _windows(conn, task)
            assert windows, task
            for (_, until), (since, _) in itertools.pairwise(windows):
                assert since == until, (task, windows)
        # At most one rollup and one evaluation pending per patient at any time (the
        # queueing locks), and each patient's day rolled up into one row and one plan.
        assert _pending_overlap(conn) == []
        rows = _one(conn, "SELECT count(*) FROM daily_metrics WHERE patient_id = ANY(%s)", ids)
        assert rows == 3
        plans = _one(conn, "SELECT count(*) FROM pacing_plan WHERE patient_id = ANY(%s)", ids)
        assert plans == 3
        # The nightly slot at 01:00 was deferred once and queued each patient once.
        nightly_runs = [w for w in _windows(conn, tasks.NIGHTLY) if w[0] < w[1]]
        at_one = [w for w in nightly_runs if w[0] < datetime(2026, 3, 3, 1, 0, tzinfo=UTC) <= w[1]]
        assert len(at_one) == 1
        # Per patient, one job ran at a time (the lock), and nothing failed.
        assert _runs_overlap(conn) == []
        failed = conn.execute(
            "SELECT id, task_name, args FROM procrastinate_jobs WHERE status = 'failed'"
        ).fetchall()
        conn.commit()
        assert failed == [], fleet.logs()
        # Both schedulers and all workers are still up.
        assert all(p.poll() is None for p in fleet.procs), fleet.logs()


def test_a_worker_killed_mid_job_leaves_the_job_to_be_finished_after_restart(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    with (
        connect(dsn) as conn,
        connect(dsn, autocommit=True) as blocker,
    ):
        pid, _ = _enrol(conn, "UTC", datetime(2026, 3, 1, tzinfo=UTC))
        # Hold the patient's engine lock so that the evaluation waits inside its job.
        blocker.execute("SELECT pg_advisory_lock(%s, %s)", (ENGINE_LOCK_CLASS, pid))
        tasks.defer_evaluation(conn, pid, [date(2026, 3, 2)])
        conn.commit()
        # A clock far from 01:00 UTC: on the real clock between 01:00 and 01:15 UTC
        # the scheduler's nightly slot would queue a second evaluation of this patient.
        fleet = fleet_factory(PACELINE_CLOCK_START="2026-03-02T12:00:00+00:00")
        fleet.start("scheduler", "run")
        victim = fleet.start("worker")

        def waiting_in_job() -> bool:
            """The evaluation is running and blocked on the engine's lock."""
            return bool(
                _one(
                    conn,
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid::bigint = %s AND objid::bigint = %s",
                    ENGINE_LOCK_CLASS,
                    pid,
                )
            )

        _wait(waiting_in_job, fleet, "the evaluation to be running")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=HANG_GUARD_S)
        blocker.execute("SELECT pg_advisory_unlock(%s, %s)", (ENGINE_LOCK_CLASS, pid))
        # The killed worker's transaction rolled back: nothing evaluated, the job still
        # shows as running until its missing heartbeats get it put back.
        assert _one(conn, "SELECT count(*) FROM pacing_plan WHERE patient_id = %s", pid) == 0
        _age_heartbeat(conn, tasks.EVALUATE)
        fleet.start("worker")

        def finished() -> bool:
            """The job succeeded and the work list is empty."""
            return bool(
                _one(
                    conn,
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s"
                    " AND status = 'succeeded'",
                    tasks.EVALUATE,
                )
            ) and _queue_idle(conn)

        _wait(finished, fleet, "the evaluation to finish after the restart")
        assert _one(conn, "SELECT count(*) FROM pacing_plan WHERE patient_id = %s", pid) == 1
        starts = _one(
            conn,
            "SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j"
            " ON j.id = e.job_id WHERE j.task_name = %s AND e.type = 'started'",
            tasks.EVALUATE,
        )
        assert starts == 2  # once in the killed worker, once after it was put back
        assert (
            _one(
                conn, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", tasks.EVALUATE
            )
            == 1
        )


def test_a_scheduler_down_for_six_hours_runs_each_missed_job_once(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    down_since = datetime(2026, 3, 28, 23, 45, tzinfo=UTC)
    back = datetime(2026, 3, 29, 5, 45, 20, tzinfo=UTC)  # six hours later
    enrolled = datetime(2026, 3, 1, tzinfo=UTC)
    with connect(dsn) as conn:
        # Local 01:00 on 29 March: Berlin 00:00 UTC (CET, the night the clocks go
        # forward), UTC 01:00, New York 05:00 (EDT) fall in the six hours; Kolkata
        # (19:30 UTC the day before) and Auckland (12:00 UTC the day before) do not.
        zones = ["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]
        pids = {tz: _enrol(conn, tz, enrolled)[0] for tz in zones}
        # A job that succeeded eight days ago: the catch-up housekeeping forgets it.
        old = conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
            " VALUES ('clock', %s, '{}') RETURNING id",
            (tasks.ROLLUP_TICK,),
        ).fetchone()
        assert old is not None
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (old[0],))
        conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (old[0],))
        conn.execute(
            "UPDATE procrastinate_events SET at = now() - interval '8 days' WHERE job_id = %s",
            (old[0],),
        )
        # The clock last deferred every periodic job at 23:45, then went down.
        for job in ("rollup", "nightly", "recover"):
            conn.execute(
                "INSERT INTO clock_slot (job, last_slot) VALUES (%s, %s)", (job, down_since)
            )
        conn.commit()
        fleet = fleet_factory(PACELINE_CLOCK_START=back.isoformat())
        fleet.start("scheduler", "run")
        fleet.start("worker")

        def caught_up() -> bool:
            """The catch-up nightly job ran and its evaluations are done."""
            ran = _one(
                conn,
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s"
                " AND status = 'succeeded'",
                tasks.NIGHTLY,
            )
            swept = _one(conn, "SELECT count(*) FROM procrastinate_jobs WHERE id = %s", old[0])
            return ran >= 1 and swept == 0 and _queue_idle(conn)

        _wait(caught_up, fleet, "the catch-up run and the housekeeping")

        for task in (tasks.ROLLUP_TICK, tasks.NIGHTLY, tasks.RECOVER_STALLED):
            windows = _windows(conn, task)
            assert windows[0][0] == down_since, (task, windows)  # one run covers the gap
            assert sum(1 for since, _ in windows if since == down_since) == 1
            for (_, until), (since, _) in itertools.pairwise(windows):
                assert since == until, (task, windows)
        evaluated = dict(
            conn.execute(
                "SELECT (args->>'patient_id')::bigint, count(*) FROM procrastinate_jobs"
                " WHERE task_name = %s AND status = 'succeeded' GROUP BY 1",
                (tasks.EVALUATE,),
            ).fetchall()
        )
        conn.commit()
        inside = {pids["Europe/Berlin"], pids["UTC"], pids["America/New_York"]}
        assert evaluated == dict.fromkeys(inside, 1)
        days = conn.execute(
            "SELECT patient_id, day FROM flare_risk UNION SELECT patient_id, valid_from::date"
            " FROM pacing_plan WHERE patient_id = ANY(%s)",
            (list(inside),),
        ).fetchall()
        conn.commit()
        assert {p for p, _ in days} <= inside


class HeldReceiver:
    """A webhook endpoint that holds its first answer until released; every request kept."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.first = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()


@contextmanager
def held_receiver() -> Iterator[tuple[str, HeldReceiver]]:
    """An HTTP receiver on 127.0.0.1 whose first request waits for `release` before 200."""
    held = HeldReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verify(SECRET, body, headers)  # the oracle: a forged request fails the test
            with held.lock:
                held.requests.append(headers)
                first = len(held.requests) == 1
            if first:
                held.first.set()
                held.release.wait(HANG_GUARD_S)
            with contextlib.suppress(OSError):  # the first one's client may be dead by now
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/paceline", held
    finally:
        held.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def _webhook_deliveries(conn: psycopg.Connection[Any], due: list[int]) -> list[int]:
    rows = conn.execute(
        "SELECT delivery_id FROM alert_delivery WHERE delivery_id = ANY(%s) AND channel = 'webhook'"
        " ORDER BY delivery_id",
        (due,),
    ).fetchall()
    conn.commit()
    return [int(r[0]) for r in rows]


def test_a_worker_killed_mid_delivery_finishes_it_after_restart_with_at_most_one_resend(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    with connect(dsn) as conn, held_receiver() as (url, hook):
        config = DeliveryConfig(webhook_url=url, webhook_secret=SECRET)
        pid, _ = alert_helpers.enrol(conn)
        hooks = _webhook_deliveries(conn, alert_helpers.raise_flare_risk(conn, pid, config=config))
        assert len(hooks) == 1
        tasks.defer_deliveries(conn, hooks)
        conn.commit()
        fleet = fleet_factory(
            PACELINE_WEBHOOK_URL=url,
            PACELINE_WEBHOOK_SECRET=SECRET,
            PACELINE_ALERT_TIMEOUT="100",  # the held answer must not time out first
        )
        fleet.start("scheduler", "run")
        victim = fleet.start("worker")
        _wait(hook.first.is_set, fleet, "the webhook request to arrive")
        victim.send_signal(signal.SIGKILL)  # the receiver has the message; no commit yet
        victim.wait(timeout=HANG_GUARD_S)
        hook.release.set()
        status = "SELECT status, attempts FROM alert_delivery WHERE delivery_id = %s"
        assert conn.execute(status, hooks).fetchone() == ("pending", 0)
        conn.commit()
        _age_heartbeat(conn, tasks.DELIVER)
        fleet.start("worker")

        def delivered() -> bool:
            row = conn.execute(status, hooks).fetchone()
            conn.commit()
            return row is not None and row[0] == "delivered"

        _wait(delivered, fleet, "the delivery to complete after the restart")
        assert conn.execute(status, hooks).fetchone() == ("delivered", 1)
        conn.commit()
        # The documented duplicate: the message the killed worker sent, and its resend,
        # with the same webhook-id so that the receiver can drop the second.
        ids = [r["webhook-id"] for r in hook.requests]
        assert len(ids) == 2
        assert len(set(ids)) == 1


def test_three_workers_deliver_each_alert_once_per_channel(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    with connect(dsn) as conn, webhook_receiver(SECRET) as (url, receiver):
        config = DeliveryConfig(webhook_url=url, webhook_secret=SECRET)
        hooks: list[int] = []
        for _ in range(4):
            pid, _ = alert_helpers.enrol(conn, clinicians=2)
            due = alert_helpers.raise_flare_risk(
                conn, pid, config=config, now=datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
            )
            hooks += _webhook_deliveries(conn, due)
        conn.commit()
        assert len(hooks) >= 4
        # Nothing deferred by hand: the schedulers' delivery sweep finds them, twice over
        # (both schedulers start as the leader's standby and its successor), and three
        # workers race for the jobs.
        fleet = fleet_factory(
            PACELINE_CLOCK_START="2026-03-03T00:59:50+00:00",
            PACELINE_WEBHOOK_URL=url,
            PACELINE_WEBHOOK_SECRET=SECRET,
        )
        for _ in range(2):
            fleet.start("scheduler", "run")
        for _ in range(3):
            fleet.start("worker", "--concurrency", "2")

        def all_delivered() -> bool:
            n = _one(
                conn,
                "SELECT count(*) FROM alert_delivery WHERE delivery_id = ANY(%s)"
                " AND status = 'delivered'",
                hooks,
            )
            return bool(n == len(hooks))

        _wait(all_delivered, fleet, "every webhook delivery")
        ids = [r.headers["webhook-id"] for r in receiver.accepted]
        assert len(ids) == len(hooks)
        assert len(set(ids)) == len(hooks)  # no duplicate delivery
        assert all(r.verified for r in receiver.requests)


def test_workers_remind_deliver_and_retry_on_the_schedulers_clock(
    dsn: str, fleet_factory: Callable[..., Fleet]
) -> None:
    # A clock forty days ahead of the real time, at 12:00 UTC: a worker that decided by
    # the real time would find the reminder "not yet due" forever and date its attempts
    # and backoff forty days early.
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=40), dtime(12), UTC)
    with (
        connect(dsn) as conn,
        smtp_server() as (smtp_url, box),
        webhook_receiver(SECRET, default=500) as (hook_url, receiver),
    ):
        config = DeliveryConfig(webhook_url=hook_url, webhook_secret=SECRET)
        pid, _ = alert_helpers.enrol(conn)
        records.set_patient_contact(conn, pid, email="p@example.org", diary_reminder_at=dtime(11))
        # A critical alert raised a minute before the clock starts: pushed at once, the
        # e-mail delivered, the webhook answered 500 and retried.
        due = alert_helpers.raise_flare_risk(
            conn, pid, score=0.7, config=config, now=start - timedelta(minutes=1)
        )
        (hook,) = _webhook_deliveries(conn, due)
        conn.commit()
        fleet = fleet_factory(
            PACELINE_CLOCK_START=start.isoformat(),
            PACELINE_SMTP_URL=smtp_url,
            PACELINE_ALERT_FROM="alerts@paceline.test",
            PACELINE_WEBHOOK_URL=hook_url,
            PACELINE_WEBHOOK_SECRET=SECRET,
        )
        real_before = datetime.now(UTC)
        fleet.start("scheduler", "run")
        fleet.start("worker", "--concurrency", "2")
        reminder = (
            "SELECT d.status FROM alert_delivery d JOIN alert a USING (alert_id)"
            " WHERE a.patient_id = %s AND a.rule_id = 'diary.reminder' AND d.channel = 'email'"
        )
        attempt = (
            "SELECT status, attempts, last_attempt_at, next_attempt_at FROM alert_delivery"
            " WHERE delivery_id = %s"
        )

        def reminded_and_tried() -> bool:
            """The reminder e-mail delivered and the webhook's first attempt recorded."""
            sent = conn.execute(reminder, (pid,)).fetchall()
            tried = conn.execute(attempt, (hook,)).fetchone()
            conn.commit()
            return sent == [("delivered",)] and tried is not None and tried[1] >= 1

        _wait(reminded_and_tried, fleet, "the reminder e-mail and the first webhook attempt")
        real_after = datetime.now(UTC)
        row = conn.execute(attempt, (hook,)).fetchone()
        assert row is not None
        status, attempts, last_at, next_at = row
        retry = conn.execute(
            "SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = %s"
            " AND (args->>'delivery_id')::bigint = %s AND status = 'todo'",
            (tasks.DELIVER, hook),
        ).fetchall()
        conn.commit()
    assert "p@example.org" in {rcpt for _, rcpts in box.envelopes for rcpt in rcpts}
    assert [r.answered for r in receiver.requests] == [500]
    # The attempt and its backoff are on the scheduler's clock ...
    assert (status, attempts) == ("pending", 1)
    assert start <= last_at <= start + (real_after - real_before)
    low, high = retry_backoff_bounds(1)
    assert low <= next_at - last_at <= high
    # ... and the retry job waits for the real instant at which that clock shows it.
    assert len(retry) == 1
    assert real_before + low <= retry[0][0] <= real_after + high


def retry_backoff_bounds(attempt: int) -> tuple[timedelta, timedelta]:
    """The least and the most `alerts.retry.backoff(attempt)` can be (its jitter)."""
    base = BASE_DELAY * 2 ** (attempt - 1)
    return base * (1 - JITTER), base * (1 + JITTER)


def _midday_zone(now: datetime) -> str:
    """A fixed-offset zone where `now` is about noon (no quiet hours while the test runs)."""
    offset = 12 - now.hour
    if offset < -12:
        offset += 24
    elif offset > 14:
        offset -= 24
    # POSIX-style names: Etc/GMT-5 is five hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def test_a_boom_vignette_emails_each_alert_once_to_the_care_team_over_starttls(
    dsn: str, fleet_factory: Callable[..., Fleet], tmp_path: Path
) -> None:
    # The fleet's clock starts at 03:00 UTC today, whatever the real time: the patient
    # (in UTC) is in quiet hours, the clinicians (in a zone where it is about noon) are not.
    now = datetime.combine(datetime.now(UTC).date(), dtime(3), UTC)
    today = now.date()
    # The vignette's day 0; day 22 was yesterday, while the flare risk of days 21-22 is
    # still open (from day 23 the pain is at flare level: a flare under way, not one
    # about to start, so the risk falls): a push whose alert resolves before it is sent
    # is cancelled (a flare risk that a later missed night closed would not be e-mailed).
    first = today - timedelta(days=23)
    clinic_zone = _midday_zone(now)
    sim = SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20)
    cert, server = self_signed(tmp_path)
    with connect(dsn) as conn, smtp_server(tls=server) as (smtp_url, box):
        pid, team = alert_helpers.enrol(conn, clinicians=2)
        conn.execute(
            "UPDATE patient SET enrolled_at = %s WHERE patient_id = %s",
            (datetime.combine(first, dtime(8), UTC), pid),
        )
        for cid in team:
            records.set_clinician_contact(
                conn, cid, email=f"dr{cid}@clinic.example", timezone=clinic_zone
            )
        conn.commit()
        # The first 20 days were evaluated before (the baseline weeks); the boom on day
        # 20 and what follows reach the fleet as the nights it missed.
        quota: float | None = None
        for i in range(20):
            d = first + timedelta(days=i)
            replay.store_sim_day(conn, pid, sim.next_day(d, quota))
            ev = evaluate_patient(conn, pid, d)
            conn.commit()
            quota = ev.next_plan.quota if ev.next_plan is not None else None
        for i in range(20, 23):
            replay.store_sim_day(conn, pid, sim.next_day(first + timedelta(days=i), quota))
        missed_since = tasks.nightly_instant(first + timedelta(days=21), ZoneInfo("UTC"))
        conn.execute(
            "INSERT INTO clock_slot (job, last_slot) VALUES ('nightly', %s)",
            (missed_since - timedelta(minutes=15),),
        )
        conn.commit()
        fleet = fleet_factory(
            PACELINE_SMTP_URL=smtp_url,
            PACELINE_ALERT_FROM="alerts@paceline.test",
            PACELINE_DASHBOARD_URL="https://dash.example",
            PACELINE_CLOCK_START=now.isoformat(),
            SSL_CERT_FILE=str(cert),  # the worker trusts the test's certificate, nothing else
        )
        fleet.start("scheduler", "run")
        fleet.start("worker", "--concurrency", "2")
        emails = (
            "SELECT delivery_id, alert_ids, recipient, address, kind, status, attempts,"
            " message_key::text, next_attempt_at FROM alert_delivery"
            " WHERE patient_id = %s AND channel = 'email' ORDER BY delivery_id"
        )

        def pushed() -> bool:
            """The missed days evaluated and every immediate e-mail out (or cancelled: its
            alerts resolved in a later missed night before the e-mail went)."""
            evaluated = _one(
                conn,
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s"
                " AND status = 'succeeded'",
                tasks.EVALUATE,
            )
            rows = conn.execute(emails, (pid,)).fetchall()
            conn.commit()
            immediate = [r for r in rows if r[4] == "immediate" and r[2] != f"patient:{pid}"]
            return bool(
                evaluated >= 1
                and _queue_idle(conn)
                and any(r[5] == "delivered" for r in immediate)
                and all(r[5] in ("delivered", "cancelled") for r in immediate)
            )

        _wait(pushed, fleet, "the missed nights evaluated and their e-mails delivered")
        rows = conn.execute(emails, (pid,)).fetchall()
        alerts = dict(
            conn.execute(
                "SELECT alert_id, rule_id FROM alert WHERE patient_id = %s"
                " AND audience = 'care_team'",
                (pid,),
            ).fetchall()
        )
        addresses = dict(
            conn.execute(
                "SELECT clinician_id, email FROM clinician WHERE clinician_id = ANY(%s)", (team,)
            ).fetchall()
        )
        resolved = {
            int(a)
            for (a,) in conn.execute(
                "SELECT alert_id FROM alert WHERE patient_id = %s AND status = 'resolved'", (pid,)
            ).fetchall()
        }
        conn.commit()
    assert "flare.risk_high" in alerts.values(), alerts
    immediate = [r for r in rows if r[4] == "immediate" and r[2] != f"patient:{pid}"]
    # A push whose alert a later missed night resolved before it was sent is cancelled
    # (paceline.pacing.alerts.delivery); the rest went out.
    cancelled = [r for r in immediate if r[5] == "cancelled"]
    assert all(set(r[1]) <= resolved and r[6] == 0 for r in cancelled), cancelled
    immediate = [r for r in immediate if r[5] == "delivered"]
    # The patient's own messages (the good news of a raised quota) wait for the end of
    # the night where the patient lives (UTC); none has gone out.
    for r in rows:
        if r[2] == f"patient:{pid}":
            assert r[5] == "pending" and r[8].astimezone(UTC).time() == dtime(7), r
    # Each immediate delivery went out at one go, as one message, over TLS.
    assert all(r[6] == 1 for r in immediate)
    sent = Counter(m["Message-ID"] for m in box.messages)
    assert sent == Counter(f"<{r[7]}@paceline.test>" for r in immediate)
    assert set(sent.values()) == {1}
    assert box.tls == [True] * len(box.messages)
    # Each pushed alert went to each care-team clinician in one e-mail (an evaluation's
    # pushes for one recipient are grouped), and to nobody else.
    per_alert = Counter((a, r[2]) for r in immediate for a in r[1])
    assert set(per_alert.values()) == {1}, per_alert
    recipients = {tuple(rcpt) for _, rcpt in box.envelopes}
    assert recipients == {(addresses[c],) for c in team}
    for alert_id in {a for a, _ in per_alert}:
        assert {r for a, r in per_alert if a == alert_id} == {f"clinician:{c}" for c in team}
    # What a message says: rule, severity, patient and a link; no diary text or values.
    risk = next(a for a, rule in alerts.items() if rule == "flare.risk_high")
    (key,) = {r[7] for r in immediate if risk in r[1] and r[2] == f"clinician:{team[0]}"}
    (mail,) = [m for m in box.messages if m["Message-ID"] == f"<{key}@paceline.test>"]
    assert mail["From"] == "alerts@paceline.test"
    assert mail["To"] == addresses[team[0]]
    assert mail["Subject"].startswith("Paceline ") and f"patient {pid}" in mail["Subject"]
    body = mail.get_payload()
    assert isinstance(body, str)
    assert f"alert {risk}, patient {pid}: flare.risk_high" in body
    assert "Open the dashboard: https://dash.example/" in body
    assert "contributing" not in body and "points" not in body
    # The digest entries wait for 08:00 at the clinicians' (the in-process vignette
    # test sends them); none went out early.
    digests = [r for r in rows if r[4] == "digest"]
    eight = datetime.combine(now.astimezone(ZoneInfo(clinic_zone)).date(), dtime(8))
    for r in digests:
        assert r[5] == "pending"
        local = r[8].astimezone(ZoneInfo(clinic_zone))
        assert local.time() == dtime(8) and local.replace(tzinfo=None) > eight - timedelta(days=1)
