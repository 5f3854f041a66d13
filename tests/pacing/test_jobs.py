"""The queue's units of work in process: transactional deferral, queueing locks, the work lists.

The workers themselves run as real subprocesses in `test_queue_e2e.py`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from paceline.pacing import records
from paceline.pacing.alerts import DeliveryConfig
from paceline.pacing.errors import PacingError
from paceline.pacing.jobs import tasks
from paceline.pacing.jobs.queue import EVALUATE_QUEUE, defer
from paceline.pacing.rollup import rollup
from paceline.store import roles
from paceline.store.connection import connect
from paceline.store.testing import service_dsn
from tests.factories import enrolled_patient, store_simulated_day

ENROLLED = datetime(2026, 3, 1, tzinfo=UTC)


def _enrol(conn: psycopg.Connection[Any], *, tz: str = "UTC") -> tuple[int, int]:
    """A patient enrolled on `ENROLLED` and living in `tz`."""
    return enrolled_patient(conn, tz=tz, enrolled=ENROLLED)


def _pending(conn: psycopg.Connection[Any], task: str, patient_id: int) -> int:
    """How many jobs of `task` for the patient wait in the queue."""
    row = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'"
        " AND (args->>'patient_id')::bigint = %s",
        (task, patient_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _due(conn: psycopg.Connection[Any], patient_id: int) -> list[date]:
    return [d for _, d in records.due_evaluations(conn, patient_id)]


# Deferral in the caller's transaction --------------------------------------------------


def test_a_deferred_job_rolls_back_with_the_write_that_deferred_it(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = _enrol(conn)
    tasks.defer_evaluation(conn, pid, [date(2026, 3, 2)])
    assert _pending(conn, tasks.EVALUATE, pid) == 1  # visible inside the transaction
    conn.rollback()
    assert _pending(conn, tasks.EVALUATE, pid) == 0
    assert _due(conn, pid) == []

    tasks.defer_evaluation(conn, pid, [date(2026, 3, 2)])
    conn.commit()
    assert _pending(conn, tasks.EVALUATE, pid) == 1
    assert _due(conn, pid) == [date(2026, 3, 2)]
    conn.commit()


def test_one_pending_evaluation_per_patient_and_the_caller_goes_on(
    conn: psycopg.Connection[Any],
) -> None:
    pid, _ = _enrol(conn)
    other, _ = _enrol(conn)
    tasks.defer_evaluation(conn, pid, [date(2026, 3, 2)])
    tasks.defer_evaluation(conn, pid, [date(2026, 3, 3)])  # refused by the queueing lock
    tasks.defer_evaluation(conn, other, [date(2026, 3, 3)])  # the transaction is still usable
    conn.commit()
    assert _pending(conn, tasks.EVALUATE, pid) == 1
    assert _pending(conn, tasks.EVALUATE, other) == 1
    # The pending job reads the work list when it runs, so neither day is lost.
    assert _due(conn, pid) == [date(2026, 3, 2), date(2026, 3, 3)]
    conn.commit()
    again = defer(
        conn,
        tasks.EVALUATE,
        queue=EVALUATE_QUEUE,
        queueing_lock=f"evaluate:{pid}",
        patient_id=pid,
    )
    assert again is None
    conn.rollback()


def test_the_rollup_defers_the_evaluation_it_makes_necessary_in_its_transaction(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = _enrol(conn)
    store_simulated_day(conn, pid, did, date(2026, 3, 2))
    conn.commit()

    def fail_after_deferring(c: psycopg.Connection[Any], patient_id: int, days: list[date]) -> None:
        """Defer, then fail as a crash before the commit would."""
        tasks.defer_evaluation(c, patient_id, days)
        raise psycopg.errors.QueryCanceled("cancelled before the commit")

    result = rollup(conn, patient_id=pid, after=fail_after_deferring)
    conn.commit()
    assert result.failed == (pid,)
    assert _pending(conn, tasks.EVALUATE, pid) == 0  # the job went with the metrics
    assert conn.execute(
        "SELECT count(*) FROM daily_metrics WHERE patient_id = %s", (pid,)
    ).fetchone() == (0,)
    assert records.patients_with_new_samples(conn).count(pid) == 1  # the spans stay queued

    result = rollup(conn, patient_id=pid, after=tasks.defer_evaluation)
    conn.commit()
    assert result.days == 1
    assert _pending(conn, tasks.EVALUATE, pid) == 1
    assert _due(conn, pid) == [date(2026, 3, 2)]
    conn.commit()


# Evaluating the work list --------------------------------------------------------------


def test_evaluate_due_evaluates_each_listed_day_once_and_clears_the_list(
    conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    pid, _ = _enrol(conn)
    records.queue_evaluations(
        conn,
        [(pid, date(2026, 3, 3)), (pid, date(2026, 3, 2)), (pid, date(2026, 3, 3))],
    )
    records.queue_evaluations(conn, [(pid, date(2026, 2, 1))])  # before enrolment
    conn.commit()
    with caplog.at_level(logging.ERROR, logger="paceline.pacing.jobs.tasks"):
        done = tasks.evaluate_due(conn, pid, config=DeliveryConfig())
    conn.commit()
    assert done == [date(2026, 3, 2), date(2026, 3, 3)]
    assert _due(conn, pid) == []
    assert any("2026-02-01" in r.getMessage() for r in caplog.records)
    plans = conn.execute("SELECT count(*) FROM pacing_plan WHERE patient_id = %s", (pid,))
    assert plans.fetchone() == (1,)
    conn.commit()


# Deferring in batches ------------------------------------------------------------------


def _defer_calls(conn: psycopg.Connection[Any]) -> int:
    """How many times this transaction called procrastinate's insert function."""
    row = conn.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
        " WHERE funcname = 'procrastinate_defer_jobs_v1'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_many_evaluations_are_deferred_in_one_statement_skipping_pending_ones(
    conn: psycopg.Connection[Any],
) -> None:
    pids = [_enrol(conn)[0] for _ in range(12)]
    tasks.defer_evaluation(conn, pids[3], [date(2026, 3, 2)])
    conn.commit()
    conn.execute("SET track_functions = 'pl'")
    queued = tasks.defer_evaluations(
        conn, {p: [date(2026, 3, 3)] for p in pids} | {pids[0]: [date(2026, 3, 4)]}
    )
    assert queued == len(pids)
    assert _defer_calls(conn) == 1  # one insert, not one savepoint and insert per patient
    conn.commit()
    assert [_pending(conn, tasks.EVALUATE, p) for p in pids] == [1] * len(pids)
    assert _due(conn, pids[3]) == [date(2026, 3, 2), date(2026, 3, 3)]
    assert _due(conn, pids[0]) == [date(2026, 3, 4)]
    conn.commit()


def test_a_batch_that_meets_a_job_committed_meanwhile_defers_all_the_others(
    conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    pids = [_enrol(conn)[0] for _ in range(9)]
    racer = pids[5]
    with connect(db_dsn) as other:
        # Another transaction defers the racer's evaluation and has not committed yet: the
        # batch's look at the pending locks cannot see it, and its insert waits for it.
        tasks.defer_evaluation(other, racer, [date(2026, 3, 2)])
        done = threading.Event()
        failure: list[Exception] = []

        def batch() -> None:
            try:
                with connect(db_dsn) as mine:
                    tasks.defer_evaluations(mine, {p: [date(2026, 3, 3)] for p in pids})
                    mine.commit()
            except (psycopg.Error, PacingError) as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=batch)
        worker.start()
        while not done.is_set() and not _waits_on_a_lock(conn):
            done.wait(0.05)
        other.commit()  # the racer's job lands first; the batch's insert of it now fails
        worker.join()
    assert failure == []
    assert [_pending(conn, tasks.EVALUATE, p) for p in pids] == [1] * len(pids)
    assert _due(conn, racer) == [date(2026, 3, 2), date(2026, 3, 3)]
    conn.commit()


def _waits_on_a_lock(conn: psycopg.Connection[Any]) -> bool:
    """Whether another backend of this database waits for a lock (the batch behind the racer)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    conn.commit()
    return bool(row and row[0])


# The nightly pass at each patient's local time -------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "utc"),
    [
        ("Europe/Berlin", date(2026, 3, 28), datetime(2026, 3, 28, 0, 0, tzinfo=UTC)),
        ("Europe/Berlin", date(2026, 3, 29), datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),  # CET
        ("Europe/Berlin", date(2026, 3, 30), datetime(2026, 3, 29, 23, 0, tzinfo=UTC)),  # CEST
        ("Europe/Berlin", date(2026, 10, 25), datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),
        ("Europe/Berlin", date(2026, 10, 26), datetime(2026, 10, 26, 0, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 6, 0, tzinfo=UTC)),  # EST
        ("America/New_York", date(2026, 3, 9), datetime(2026, 3, 9, 5, 0, tzinfo=UTC)),  # EDT
        ("Asia/Kolkata", date(2026, 3, 29), datetime(2026, 3, 28, 19, 30, tzinfo=UTC)),
    ],
)
def test_the_nightly_time_is_local_wall_time_across_dst_changes(
    zone: str, day: date, utc: datetime
) -> None:
    assert tasks.nightly_instant(day, ZoneInfo(zone)) == utc


def test_each_local_day_has_one_nightly_slot_through_a_year_of_dst_changes() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
    windows = [(start + timedelta(minutes=15 * i)) for i in range(4 * 24 * 365 + 1)]
    seen = [d for a, b in itertools.pairwise(windows) for d in tasks.nightly_days(a, b, tz)]
    assert seen == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    # One window over the whole year finds the same days.
    assert list(tasks.nightly_days(windows[0], windows[-1], tz)) == seen


def test_the_nightly_pass_queues_the_day_that_ended_for_patients_whose_night_it_is(
    conn: psycopg.Connection[Any],
) -> None:
    berlin, _ = _enrol(conn, tz="Europe/Berlin")
    new_york, _ = _enrol(conn, tz="America/New_York")
    # 23:00-23:15 UTC on 29 March: 01:00-01:15 CEST in Berlin, 19:00 EDT in New York.
    since = datetime(2026, 3, 29, 22, 55, tzinfo=UTC)
    until = datetime(2026, 3, 29, 23, 10, tzinfo=UTC)
    tasks.nightly_pass(conn, since, until)
    conn.commit()
    assert _due(conn, berlin) == [date(2026, 3, 29)]
    assert _due(conn, new_york) == []
    assert _pending(conn, tasks.EVALUATE, berlin) == 1
    conn.commit()


def test_the_worker_role_is_told_a_job_is_already_pending(db_dsn: str) -> None:
    # As paceline_worker, procrastinate learns of a taken queueing lock from the key in
    # PostgreSQL's unique-violation message, which row security on its tables would hide.
    with connect(service_dsn(db_dsn, roles.WORKER)) as worker:
        pid = int(worker.execute("SELECT min(patient_id) FROM patient").fetchone()[0])  # type: ignore[index]
        first = defer(
            worker, tasks.EVALUATE, queue=EVALUATE_QUEUE, queueing_lock=f"w:{pid}", patient_id=pid
        )
        again = defer(
            worker, tasks.EVALUATE, queue=EVALUATE_QUEUE, queueing_lock=f"w:{pid}", patient_id=pid
        )
        worker.rollback()
    assert first is not None
    assert again is None
