"""The scheduler service: one pass of the jobs, leader election, failover, failures, the CLI."""

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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from paceline.cli import scheduler as scheduler_cli
from paceline.cli.settings import Settings, SettingsError
from paceline.pacing.rollup import RollupResult, local_day_bounds
from paceline.pacing.scheduler import (
    LEADER_LOCK_KEY,
    EvaluationReport,
    Scheduler,
    SchedulerError,
    SchedulerStatus,
    evaluate_patients,
    run_jobs_once,
)
from paceline.signal.simulate import simulate_day
from paceline.store import Batch, HrRows, RrRows, StepRows, write_batch
from paceline.store.testing import stoppable_server, temporary_database
from tests.factories import patient_with_device

ROOT = Path(__file__).resolve().parents[2]
# Hang guards, not expectations: every wait below ends as soon as its event happens.
HANG_GUARD_S = 20.0
ENROLLED = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
FAST: dict[str, Any] = {
    "rollup_every": timedelta(seconds=0.1),
    "evaluate_every": timedelta(seconds=0.2),
    "standby_poll_s": 0.05,
}


def _enrol(conn: psycopg.Connection[Any], *, tz: str = "UTC") -> tuple[int, int]:
    """A patient with a bound device, enrolled on `ENROLLED` and living in `tz`."""
    pid, did = patient_with_device(conn)
    conn.execute(
        "UPDATE patient SET timezone = %s, enrolled_at = %s WHERE patient_id = %s",
        (tz, ENROLLED, pid),
    )
    conn.commit()
    return pid, did


def _store_day(conn: psycopg.Connection[Any], pid: int, did: int, day: date, tz: str) -> None:
    """Store one simulated local day of samples as the ingest path would."""
    start, _ = local_day_bounds(day, ZoneInfo(tz))
    sim = simulate_day(start_us=int(start.timestamp()) * 1_000_000, seed=pid)
    reading = sim.hr_bpm > 0
    n_hr, n_rr, n_st = int(reading.sum()), sim.rr_time_us.size, sim.step_time_us.size
    write_batch(
        conn,
        Batch(
            f"sched-{uuid.uuid4()}",
            hr=HrRows.of(
                patient_id=np.full(n_hr, pid),
                device_id=np.full(n_hr, did),
                time=sim.hr_time_us[reading].astype("datetime64[us]"),
                bpm=np.round(sim.hr_bpm[reading]),
                sensor_contact=[None if c < 0 else bool(c) for c in sim.hr_contact[reading]],
            ),
            rr=RrRows.of(
                patient_id=np.full(n_rr, pid),
                device_id=np.full(n_rr, did),
                time=sim.rr_time_us.astype("datetime64[us]"),
                rr_ms=sim.rr_ms,
            ),
            steps=StepRows.of(
                patient_id=np.full(n_st, pid),
                device_id=np.full(n_st, did),
                time=sim.step_time_us.astype("datetime64[us]"),
                steps=sim.steps,
            ),
        ),
    )


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
def schedulers(db_dsn: str) -> Iterator[Callable[..., Scheduler]]:
    """Build fast schedulers against the module database; stop every one after the test."""
    made: list[Scheduler] = []

    def make(cls: type[Scheduler] = Scheduler, **kwargs: Any) -> Scheduler:
        """A scheduler (of `cls`) with the fast intervals unless told otherwise."""
        s = cls(db_dsn, **{**FAST, **kwargs})
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop(timeout_s=5)


# One pass -----------------------------------------------------------------------------


def test_one_pass_rolls_up_samples_and_evaluates_yesterday_and_today_in_local_time(
    conn: psycopg.Connection[Any],
) -> None:
    london, london_dev = _enrol(conn, tz="UTC")
    auckland, auckland_dev = _enrol(conn, tz="Pacific/Auckland")  # UTC+13 in March
    _store_day(conn, london, london_dev, date(2026, 3, 2), "UTC")
    _store_day(conn, auckland, auckland_dev, date(2026, 3, 3), "Pacific/Auckland")

    report = run_jobs_once(conn, NOW)  # a non-autocommit connection: it commits per step

    assert report.ok, report.summary()
    assert report.rollup is not None
    assert report.rollup.patients == 2
    metrics = dict(
        ((pid, day), steps)
        for pid, day, steps in conn.execute(
            "SELECT patient_id, day, steps FROM daily_metrics WHERE patient_id = ANY(%s)",
            ([london, auckland],),
        ).fetchall()
    )
    assert metrics[(london, date(2026, 3, 2))] > 1_000
    assert metrics[(auckland, date(2026, 3, 3))] > 1_000
    mine = (london, auckland)
    evaluated = {(d.patient_id, d.day) for d in report.evaluation.days if d.patient_id in mine}
    # 12:00 UTC on 3 March is 01:00 on 4 March in Auckland.
    assert evaluated == {
        (london, date(2026, 3, 2)),
        (london, date(2026, 3, 3)),
        (auckland, date(2026, 3, 3)),
        (auckland, date(2026, 3, 4)),
    }
    plans = conn.execute(
        "SELECT patient_id, count(*) FROM pacing_plan WHERE patient_id = ANY(%s)"
        " GROUP BY patient_id",
        ([london, auckland],),
    ).fetchall()
    conn.commit()
    assert dict(plans) == {london: 1, auckland: 1}  # the first evaluation set the default plan

    again = run_jobs_once(conn, NOW)
    assert again.rollup == RollupResult(patients=0, days=0, rows_read=0)
    assert {(d.patient_id, d.day) for d in again.evaluation.days if d.patient_id in mine} == (
        evaluated
    )
    assert again.evaluation.plan_changes == 0  # idempotent: a re-run decides nothing new
    assert "rollup: 0 patient-day(s)" in again.summary()


def test_a_patient_whose_evaluation_fails_does_not_stop_the_others(
    conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    broken, _ = _enrol(conn, tz="Mars/Olympus_Mons")
    healthy, _ = _enrol(conn)
    assert broken < healthy  # the failure comes first in the pass
    try:
        with caplog.at_level(logging.ERROR, logger="paceline.pacing.scheduler"):
            report = evaluate_patients(conn, NOW)
    finally:
        conn.rollback()
        conn.execute("DELETE FROM patient WHERE patient_id = %s", (broken,))
        conn.commit()
    assert [f.patient_id for f in report.failures] == [broken]
    assert "Mars/Olympus_Mons" in report.failures[0].error
    assert {(d.patient_id, d.day) for d in report.days} >= {
        (healthy, date(2026, 3, 2)),
        (healthy, date(2026, 3, 3)),
    }
    assert report.complete
    logged = [r for r in caplog.records if f"patient {broken}" in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


def test_now_without_a_time_zone_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(SchedulerError, match="time zone"):
        evaluate_patients(conn, datetime(2026, 3, 3, 12, 0))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("rollup_every", timedelta(0)),
        ("evaluate_every", timedelta(hours=-1)),
        ("standby_poll_s", 0),
    ],
)
def test_a_non_positive_interval_is_refused(setting: str, value: object) -> None:
    kwargs: dict[str, Any] = {setting: value}
    with pytest.raises(SchedulerError, match=setting):
        Scheduler("postgresql://localhost/x", **kwargs)


# Leader election --------------------------------------------------------------------


def _both_tried(a: Scheduler, b: Scheduler) -> Callable[[], bool]:
    """A check: both instances have competed for the lock and one of them won it."""

    def check() -> bool:
        """Both tried (twice, or won) and one leads."""
        sa, sb = a.status(), b.status()
        tried_a = sa.lock_attempts >= 2 or sa.leader
        tried_b = sb.lock_attempts >= 2 or sb.leader
        return tried_a and tried_b and (sa.leader or sb.leader)

    return check


def test_exactly_one_of_two_instances_leads_and_the_standby_takes_over_when_it_stops(
    schedulers: Callable[..., Scheduler], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    a, b = schedulers(lock_key=key), schedulers(lock_key=key)
    a.start()
    b.start()
    assert _eventually(_both_tried(a, b))
    assert [a.is_leader, b.is_leader].count(True) == 1
    leader, standby = (a, b) if a.is_leader else (b, a)
    assert _lock_holder(conn, key) == leader.lock_backend_pid
    assert leader.wait_for(lambda s: s.rollup.runs >= 1 and s.evaluation.runs >= 1, HANG_GUARD_S)
    assert standby.status().rollup.runs == 0  # a standby runs nothing

    leader.stop()

    assert standby.wait_for(lambda s: s.leader, HANG_GUARD_S)
    assert _lock_holder(conn, key) == standby.lock_backend_pid
    assert standby.wait_for(lambda s: s.rollup.runs >= 1 and s.evaluation.runs >= 1, HANG_GUARD_S)
    assert not leader.is_leader


def test_the_standby_takes_over_when_the_leaders_lock_connection_is_killed(
    schedulers: Callable[..., Scheduler], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    # The instance that lost its connection sits out long enough for the standby to win.
    a = schedulers(lock_key=key, rejoin_delay_s=60.0)
    b = schedulers(lock_key=key)
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
    assert b.wait_for(lambda s: s.rollup.runs >= 1, HANG_GUARD_S)
    assert not a.is_leader


def test_stop_releases_the_lock(
    schedulers: Callable[..., Scheduler], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    s = schedulers(lock_key=key)
    s.start()
    assert s.wait_for(lambda st: st.leader, HANG_GUARD_S)
    assert _lock_holder(conn, key) is not None
    s.stop()
    assert s.status().stopped
    assert _lock_holder(conn, key) is None
    with pytest.raises(SchedulerError, match="cannot start again"):
        s.start()


class StuckScheduler(Scheduler):
    """A rollup that hangs in the database until it is cancelled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()

    def rollup_pass(self, conn: psycopg.Connection[Any]) -> RollupResult:
        """Sleep in the server far longer than any test waits."""
        self.entered.set()
        conn.execute("SELECT pg_sleep(600)")
        return RollupResult(0, 0, 0)


def test_stop_is_bounded_even_when_a_job_hangs(
    schedulers: Callable[..., Scheduler], conn: psycopg.Connection[Any]
) -> None:
    key = _key()
    s = schedulers(StuckScheduler, lock_key=key)
    assert isinstance(s, StuckScheduler)
    s.start()
    assert s.entered.wait(HANG_GUARD_S)
    stopper = threading.Thread(target=s.stop, kwargs={"timeout_s": 0.2})
    stopper.start()
    stopper.join(HANG_GUARD_S)  # far below the job's 600 s sleep
    assert not stopper.is_alive()
    assert _lock_holder(conn, key) is None
    status = s.status()
    assert status.rollup.failures == 1  # cancelled, logged, counted
    assert status.rollup.last_error is not None
    assert "QueryCanceled" in status.rollup.last_error


# Failures ---------------------------------------------------------------------------


class FlakyScheduler(Scheduler):
    """Its first two rollups fail as if the database had gone away; then it is the real one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def rollup_pass(self, conn: psycopg.Connection[Any]) -> RollupResult:
        """Fail twice, then roll up."""
        self.calls += 1
        if self.calls <= 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return super().rollup_pass(conn)


def test_jobs_keep_running_after_a_job_raises(
    schedulers: Callable[..., Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    s = schedulers(FlakyScheduler, lock_key=_key())
    with caplog.at_level(logging.WARNING, logger="paceline.pacing.scheduler"):
        s.start()

        def recovered(st: SchedulerStatus) -> bool:
            """The rollup ran twice more after failing twice; the evaluation ran."""
            return st.rollup.runs >= 4 and st.last_rollup is not None and st.evaluation.runs >= 1

        assert s.wait_for(recovered, HANG_GUARD_S)
    status = s.status()
    assert status.leader
    assert status.rollup.failures == 2
    assert status.step_downs == 0  # a failing job is not a lost lock
    assert status.rollup.last_error is not None
    assert "server closed the connection" in status.rollup.last_error
    failures = [r for r in caplog.records if "rollup job failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None for r in failures)
    assert isinstance(status.last_evaluation, EvaluationReport)


def test_the_service_rides_out_a_database_outage() -> None:
    with stoppable_server() as server, temporary_database(server.dsn, "outage") as dsn:
        s = Scheduler(dsn, **FAST)
        try:
            s.start()
            assert s.wait_for(lambda st: st.leader and st.rollup.runs >= 1, HANG_GUARD_S)
            server.stop()  # ends every session, the lock connection's included
            assert s.wait_for(lambda st: not st.leader and st.step_downs == 1, HANG_GUARD_S)
            before = s.status().rollup.runs
            server.start()
            assert s.wait_for(
                lambda st: st.leader and st.leaderships == 2 and st.rollup.runs > before,
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


def test_scheduler_run_once_prints_a_summary(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    args = _parse(["scheduler", "run", "--once"])
    assert args.handler(args, Settings.from_env()) == 0
    out = capsys.readouterr().out
    assert out.startswith("rollup: ")
    assert "evaluation: " in out
    assert "0 failure(s)" in out


def test_scheduler_settings_come_from_the_environment() -> None:
    own = scheduler_cli.SchedulerSettings.from_env(
        {"PACELINE_ROLLUP_EVERY": "90s", "PACELINE_EVALUATE_EVERY": "2h"}
    )
    assert own.rollup_every == timedelta(seconds=90)
    assert own.evaluate_every == timedelta(hours=2)
    assert own.standby_poll == timedelta(seconds=10)
    with pytest.raises(SettingsError, match="PACELINE_STANDBY_POLL="):
        scheduler_cli.SchedulerSettings.from_env({"PACELINE_STANDBY_POLL": "soon"})


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
    db_dsn: str, conn: psycopg.Connection[Any]
) -> None:
    env = {
        **os.environ,
        "PACELINE_DATABASE_URL": db_dsn,
        "PACELINE_STANDBY_POLL": "0.1s",
        "PACELINE_ROLLUP_EVERY": "0.2s",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVICE],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _eventually(
            lambda: proc.poll() is not None or _lock_holder(conn, LEADER_LOCK_KEY) is not None
        )
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "SIGTERM or Ctrl-C stops it" in out
    assert "stopped: leader 1 time(s)" in out
    assert "released the leader lock" in err
    assert _lock_holder(conn, LEADER_LOCK_KEY) is None
