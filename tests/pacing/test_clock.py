"""The clock: periodic jobs deferred once per slot, catch-up after downtime, leader election, the CLI."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from paceline.cli import scheduler as scheduler_cli
from paceline.cli.settings import Settings, SettingsError
from paceline.pacing.errors import PacingError
from paceline.pacing.jobs import tasks
from paceline.pacing.jobs.clock import (
    Clock,
    ClockError,
    ClockStatus,
    Deferred,
    Periodic,
    default_periodic,
    defer_due,
)
from paceline.pacing.jobs.leader import LEADER_LOCK_KEY
from paceline.pacing.jobs.timesource import REAL_TIME, TimeSource
from paceline.store.connection import connect
from paceline.store.testing import stoppable_server, temporary_database

ROOT = Path(__file__).resolve().parents[2]
# Hang guards, not expectations: every wait below ends as soon as its event happens. A
# subprocess's start-up alone (imports) took over 20 s at a load average of 20.
HANG_GUARD_S = 120.0
FAST: dict[str, Any] = {"standby_poll_s": 0.05}


def _fast_periodic(tag: str) -> tuple[Periodic, ...]:
    """A rollup tick every 0.1 s under a `clock_slot` name of the test's own."""
    return (Periodic(f"rollup-{tag}", tasks.ROLLUP_TICK, timedelta(seconds=0.1)),)


def _lock_holder(conn: psycopg.Connection[Any], key: int) -> int | None:
    """The backend pid holding session advisory lock `key` in this database, if any."""
    row = conn.execute(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND d.datname = current_database() AND l.classid::bigint = %s AND l.objid::bigint = %s",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchone()
    conn.commit()
    return None if row is None else int(row[0])


def _eventually(check: Callable[[], bool], timeout_s: float = HANG_GUARD_S) -> bool:
    """Poll `check` until it holds; False only if the hang guard runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _key() -> int:
    """A leader-lock key of this test's own, so that tests never compete with each other."""
    return 0x7E570000 + uuid.uuid4().int % 0xFFFF


@pytest.fixture
def clocks(db_dsn: str) -> Iterator[Callable[..., Clock]]:
    """Build fast clocks against the module database; stop every one after the test."""
    made: list[Clock] = []
    tag = uuid.uuid4().hex[:8]

    def make(cls: type[Clock] = Clock, **kwargs: Any) -> Clock:
        """A clock (of `cls`) with the fast intervals unless told otherwise."""
        s = cls(db_dsn, **{**FAST, "periodic": _fast_periodic(tag), **kwargs})
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop(timeout_s=5)


# Slots and catch-up ---------------------------------------------------------------------

T0 = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def _jobs(conn: psycopg.Connection[Any], task: str) -> list[dict[str, Any]]:
    """The queue's jobs of one task, oldest first, with their arguments."""
    rows = conn.execute(
        "SELECT args FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", (task,)
    ).fetchall()
    conn.commit()
    return [r[0] for r in rows]


def _periodic(name: str, every: timedelta) -> Periodic:
    """A nightly-pass job under a `clock_slot` name of the test's own."""
    return Periodic(f"{name}-{uuid.uuid4().hex[:8]}", tasks.NIGHTLY, every)


def test_slots_are_whole_multiples_of_the_interval_since_the_epoch() -> None:
    p = Periodic("x", tasks.NIGHTLY, timedelta(minutes=15))
    assert p.slot(datetime(2026, 3, 29, 6, 14, 59, tzinfo=UTC)) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    assert p.slot(datetime(2026, 3, 29, 6, 15, tzinfo=UTC)) == datetime(
        2026, 3, 29, 6, 15, tzinfo=UTC
    )


def test_a_slot_is_deferred_once_however_often_the_clock_fires(
    conn: psycopg.Connection[Any],
) -> None:
    p = _periodic("once", timedelta(minutes=15))
    first = defer_due(conn, [p], T0 + timedelta(minutes=1))
    again = defer_due(conn, [p], T0 + timedelta(minutes=14))
    conn.commit()
    assert [(d.since, d.until) for d in first] == [(T0 - timedelta(minutes=15), T0)]
    assert again == []
    mine = [a for a in _jobs(conn, tasks.NIGHTLY) if a["until"] == T0.isoformat()]
    assert len(mine) >= 1
    assert first[0].job_id is not None


def test_after_six_hours_down_each_missed_job_runs_once_covering_the_gap(
    conn: psycopg.Connection[Any],
) -> None:
    nightly = _periodic("nightly", timedelta(minutes=15))
    rollup = _periodic("rollup", timedelta(minutes=5))
    assert len(defer_due(conn, [nightly, rollup], T0)) == 2
    back = T0 + timedelta(hours=6, minutes=7)  # 24 nightly and 73 rollup slots missed

    caught_up = defer_due(conn, [nightly, rollup], back)
    then = defer_due(conn, [nightly, rollup], back + timedelta(seconds=30))
    conn.commit()

    assert {d.job: (d.since, d.until) for d in caught_up} == {
        nightly.name: (T0, T0 + timedelta(hours=6)),
        rollup.name: (T0, T0 + timedelta(hours=6, minutes=5)),
    }
    assert then == []
    ids = {d.job_id for d in caught_up}
    assert None not in ids
    assert len(ids) == 2


def test_two_clocks_claiming_the_same_slot_at_once_defer_it_once(db_dsn: str) -> None:
    p = _periodic("race", timedelta(minutes=15))
    results: list[list[Deferred]] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        """Defer on a connection of this thread's own, both threads at once."""
        with psycopg.connect(db_dsn, autocommit=True) as c:
            barrier.wait()
            results.append(defer_due(c, [p], T0))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD_S)
    assert sorted(len(r) for r in results) == [0, 1]


def test_now_without_a_time_zone_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(ClockError, match="time zone"):
        defer_due(conn, default_periodic(), datetime(2026, 3, 3, 12, 0))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("rollup_every", timedelta(0)),
        ("nightly_every", timedelta(hours=-1)),
        ("recover_every", timedelta(0)),
    ],
)
def test_a_non_positive_interval_is_refused(setting: str, value: timedelta) -> None:
    with pytest.raises(ClockError, match=setting):
        default_periodic(**{setting: value})


def test_a_non_positive_poll_is_refused() -> None:
    with pytest.raises(ClockError, match="standby_poll_s"):
        Clock("postgresql://localhost/x", standby_poll_s=0)


# Leader election --------------------------------------------------------------------


def _both_tried(a: Clock, b: Clock) -> Callable[[], bool]:
    """A check: both instances have competed for the lock and one of them won it."""

    def check() -> bool:
        """Both tried (twice, or won) and one leads."""
        sa, sb = a.status(), b.status()
        tried_a = sa.lock_attempts >= 2 or sa.leader
        tried_b = sb.lock_attempts >= 2 or sb.leader
        return tried_a and tried_b and (sa.leader or sb.leader)

    return check


def test_exactly_one_of_two_instances_leads_and_the_standby_takes_over_when_it_stops(
    clocks: Callable[..., Clock], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    a, b = clocks(lock_key=key), clocks(lock_key=key)
    a.start()
    b.start()
    assert _eventually(_both_tried(a, b))
    assert [a.is_leader, b.is_leader].count(True) == 1
    leader, standby = (a, b) if a.is_leader else (b, a)
    assert _lock_holder(conn, key) == leader.lock_backend_pid
    assert leader.wait_for(lambda s: s.deferred >= 1, HANG_GUARD_S)
    assert standby.status().deferred == 0  # a standby defers nothing

    leader.stop()

    assert standby.wait_for(lambda s: s.leader, HANG_GUARD_S)
    assert _lock_holder(conn, key) == standby.lock_backend_pid
    assert standby.wait_for(lambda s: s.deferred >= 1, HANG_GUARD_S)
    assert not leader.is_leader


def test_the_standby_takes_over_when_the_leaders_lock_connection_is_killed(
    clocks: Callable[..., Clock], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    # The instance that lost its connection sits out long enough for the standby to win.
    a = clocks(lock_key=key, rejoin_delay_s=60.0)
    b = clocks(lock_key=key)
    a.start()
    assert a.wait_for(lambda s: s.leader, HANG_GUARD_S)
    b.start()
    assert b.wait_for(lambda s: s.lock_attempts >= 1, HANG_GUARD_S)
    killed = a.lock_backend_pid
    assert killed is not None
    assert _lock_holder(conn, key) == killed

    conn.execute("SELECT pg_terminate_backend(%s)", (killed,))
    conn.commit()

    assert a.wait_for(lambda s: s.step_downs == 1 and not s.leader, HANG_GUARD_S)
    assert b.wait_for(lambda s: s.leader, HANG_GUARD_S)
    assert _lock_holder(conn, key) == b.lock_backend_pid != killed
    assert b.wait_for(lambda s: s.deferred >= 1, HANG_GUARD_S)
    assert not a.is_leader


def test_stop_releases_the_lock(
    clocks: Callable[..., Clock], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    s = clocks(lock_key=key)
    s.start()
    assert s.wait_for(lambda st: st.leader, HANG_GUARD_S)
    assert _lock_holder(conn, key) is not None
    s.stop()
    assert s.status().stopped
    assert _lock_holder(conn, key) is None
    with pytest.raises(ClockError, match="cannot start again"):
        s.start()


class StuckClock(Clock):
    """A deferral that hangs in the database until it is cancelled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()

    def defer_pass(
        self, conn: psycopg.Connection[Any], periodic: Periodic, now: datetime
    ) -> list[Deferred]:
        """Sleep in the server far longer than any test waits."""
        self.entered.set()
        conn.execute("SELECT pg_sleep(600)")
        return []


def test_stop_is_bounded_even_when_a_job_hangs(
    clocks: Callable[..., Clock], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    s = clocks(StuckClock, lock_key=key)
    assert isinstance(s, StuckClock)
    s.start()
    assert s.entered.wait(HANG_GUARD_S)
    stopper = threading.Thread(target=s.stop, kwargs={"timeout_s": 0.2})
    stopper.start()
    stopper.join(HANG_GUARD_S)  # far below the job's 600 s sleep
    assert not stopper.is_alive()
    assert _lock_holder(conn, key) is None
    # Cancelled, logged, counted: `stop()` waits a bounded grace for the cancelled
    # deferral to record its failure; on a loaded machine it may record it just after.
    assert s.wait_for(lambda st: st.failures >= 1, HANG_GUARD_S)
    status = s.status()
    assert status.failures == 1
    assert status.last_error is not None
    assert "QueryCanceled" in status.last_error


# Failures ---------------------------------------------------------------------------


class FlakyClock(Clock):
    """Its first two deferrals fail as if the database had gone away; then it is the real one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def defer_pass(
        self, conn: psycopg.Connection[Any], periodic: Periodic, now: datetime
    ) -> list[Deferred]:
        """Fail twice, then defer."""
        self.calls += 1
        if self.calls <= 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return super().defer_pass(conn, periodic, now)


def test_jobs_keep_running_after_a_job_raises(
    clocks: Callable[..., Clock], caplog: pytest.LogCaptureFixture
) -> None:
    s = clocks(FlakyClock, lock_key=_key())
    with caplog.at_level(logging.WARNING, logger="paceline.pacing.jobs.clock"):
        s.start()

        def recovered(st: ClockStatus) -> bool:
            """Deferrals went on after failing twice."""
            return st.failures >= 2 and st.deferred >= 2

        assert s.wait_for(recovered, HANG_GUARD_S)
    status = s.status()
    assert status.leader
    assert status.failures == 2
    assert status.step_downs == 0  # a failing job is not a lost lock
    assert status.last_error is not None
    assert "server closed the connection" in status.last_error
    failures = [r for r in caplog.records if "failed; it is due again" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None for r in failures)
    assert status.last_deferred


def test_the_service_rides_out_a_database_outage() -> None:
    with stoppable_server() as server, temporary_database(server.dsn, "outage") as dsn:
        s = Clock(dsn, periodic=_fast_periodic("outage"), **FAST)
        try:
            s.start()
            assert s.wait_for(lambda st: st.leader and st.deferred >= 1, HANG_GUARD_S)
            server.stop()  # ends every session, the lock connection's included
            assert s.wait_for(lambda st: not st.leader and st.step_downs == 1, HANG_GUARD_S)
            before = s.status().deferred
            server.start()
            assert s.wait_for(
                lambda st: st.leader and st.leaderships == 2 and st.deferred > before,
                HANG_GUARD_S,
            )
        finally:
            s.stop(timeout_s=5)


# The command ------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse `argv` with a parser that has only the scheduler command."""
    parser = argparse.ArgumentParser(prog="paceline")
    scheduler_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_scheduler_run_once_defers_what_is_due_and_then_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg_server_dsn: str
) -> None:
    with temporary_database(pg_server_dsn, "once") as dsn:
        monkeypatch.setenv("PACELINE_DATABASE_URL", dsn)
        monkeypatch.setenv("PACELINE_CLOCK_START", "2026-03-29T06:01:00+00:00")
        args = _parse(["scheduler", "run", "--once"])
        assert args.handler(args, Settings.from_env()) == 0
        first = capsys.readouterr().out
        assert args.handler(args, Settings.from_env()) == 0
        second = capsys.readouterr().out
    assert "deferred rollup for (2026-03-29T05:55:00+00:00, 2026-03-29T06:00:00+00:00]" in first
    assert "deferred nightly for (2026-03-29T05:45:00+00:00, 2026-03-29T06:00:00+00:00]" in first
    assert "deferred recover" in first
    assert second.startswith("nothing due")


def test_scheduler_settings_come_from_the_environment() -> None:
    own = scheduler_cli.SchedulerSettings.from_env(
        {
            "PACELINE_ROLLUP_EVERY": "90s",
            "PACELINE_NIGHTLY_EVERY": "1h",
            "PACELINE_CLOCK_START": "2026-03-29T06:00:00Z",
        }
    )
    assert own.rollup_every == timedelta(seconds=90)
    assert own.nightly_every == timedelta(hours=1)
    assert own.standby_poll == timedelta(seconds=10)
    assert own.now()() >= datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    with pytest.raises(SettingsError, match="PACELINE_STANDBY_POLL="):
        scheduler_cli.SchedulerSettings.from_env({"PACELINE_STANDBY_POLL": "soon"})
    with pytest.raises(SettingsError, match="time zone"):
        scheduler_cli.SchedulerSettings.from_env({"PACELINE_CLOCK_START": "2026-03-29T06:00"})


def test_the_clock_start_moves_every_reader_of_the_time_alike() -> None:
    start = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    clock = scheduler_cli.SchedulerSettings.from_env({"PACELINE_CLOCK_START": "2026-03-29T06:00Z"})
    source = clock.now()
    assert isinstance(source, TimeSource) and source.simulated
    before = datetime.now(UTC)
    shown = source.now()
    after = datetime.now(UTC)
    # The clock advances with the real time from its start (what it shows lies within
    # the real time spent since it was made, shifted to the start).
    assert start <= shown <= start + (after - source.real(start))
    # The real instant at which the clock shows an instant: what the queue schedules by.
    retry = shown + timedelta(minutes=11)
    assert before + timedelta(minutes=11) <= source.real(retry) <= after + timedelta(minutes=11)
    unset = scheduler_cli.SchedulerSettings.from_env({}).now()
    assert unset is REAL_TIME and not unset.simulated
    assert unset.real(start) == start
    with pytest.raises(PacingError, match="time zone"):
        TimeSource.starting_at(datetime(2026, 3, 29, 6, 0))


def test_scheduler_help_documents_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(["scheduler", "run", "--help"])
    out = capsys.readouterr().out
    for name, _, _ in scheduler_cli.SCHEDULER_SETTINGS:
        assert name in out
    assert f"{LEADER_LOCK_KEY:#x}" in out


_SERVICE = textwrap.dedent(
    """
    import argparse, logging, sys
    from paceline.cli import scheduler
    from paceline.cli.settings import Settings
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    scheduler.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scheduler", "run"])
    sys.exit(args.handler(args, Settings.from_env()))
    """
)


def test_the_service_stops_cleanly_on_sigterm_and_releases_the_lock(
    pg_server_dsn: str, tmp_path: Path
) -> None:
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with (
        temporary_database(pg_server_dsn, "sigterm") as dsn,
        connect(dsn) as conn,
        out_path.open("wb") as out,
        err_path.open("wb") as err,
    ):
        env = {
            **os.environ,
            "PACELINE_DATABASE_URL": dsn,
            "PACELINE_STANDBY_POLL": "0.1s",
            "PACELINE_ROLLUP_EVERY": "0.2s",
        }
        # Files, not pipes: nobody reads a pipe while the test waits, and a full one
        # would block the service's logging.
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVICE], cwd=ROOT, env=env, stdout=out, stderr=err
        )

        def logs() -> str:
            """What the service wrote so far (for failure messages)."""
            return out_path.read_text() + err_path.read_text()

        def deferred() -> bool:
            """The service has led: it deferred a rollup slot (or it died)."""
            row = conn.execute("SELECT count(*) FROM clock_slot WHERE job = 'rollup'").fetchone()
            conn.commit()
            return proc.poll() is not None or (row is not None and row[0] >= 1)

        try:
            # Not merely "the lock is held": between winning the lock and counting that
            # as leadership there is an instant in which a SIGTERM rightly stops the
            # service as a standby ("leader 0 time(s)"); a deferred slot comes after it.
            assert _eventually(deferred), f"no slot deferred\n{logs()}"
            assert proc.poll() is None, logs()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=HANG_GUARD_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, logs()
        assert "SIGTERM or Ctrl-C stops it" in out_path.read_text()
        assert "stopped: leader 1 time(s)" in out_path.read_text(), logs()
        assert "released the leader lock" in err_path.read_text()
        assert _lock_holder(conn, LEADER_LOCK_KEY) is None
