"""The daily-metrics rollup: incremental, per local day, equal to the pure computation."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from paceline.pacing.localday import day_bounds, days_touched
from paceline.pacing.rollup import physiology, rollup
from paceline.signal.daily import daily_metrics
from paceline.signal.simulate import simulate_day
from paceline.store import Batch, HrRows, RrRows, StepRows, registry, write_batch
from tests.factories import store_simulated as _store_day

US_PER_DAY = 86_400_000_000
DAY1 = date(2026, 3, 2)


def _patient(conn: psycopg.Connection[Any], tz: str = "UTC") -> tuple[int, int]:
    tag = uuid.uuid4().hex[:10]
    p = registry.create_patient(
        conn,
        external_ref=f"R-{tag}",
        display_name="Rollup",
        birth_year=1975,
        sex="male",
        timezone=tz,
    )
    address = ":".join(tag[i : i + 2] for i in range(0, 10, 2)) + ":01"
    registry.register_device(conn, address=address)
    d = registry.bind_device(conn, address=address, patient_id=p.patient_id)
    conn.commit()
    return p.patient_id, d.device_id


def _start_us(day: date, tz: str = "UTC") -> int:
    start, _ = day_bounds(day, ZoneInfo(tz))
    return int(start.timestamp()) * 1_000_000


def _computed_at(conn: psycopg.Connection[Any], pid: int) -> dict[date, datetime]:
    rows = conn.execute(
        "SELECT day, computed_at FROM daily_metrics WHERE patient_id = %s", (pid,)
    ).fetchall()
    conn.commit()
    return dict(rows)


def test_rollup_stores_what_the_pure_daily_function_computes(conn: psycopg.Connection[Any]) -> None:
    pid, did = _patient(conn)
    sim = simulate_day(start_us=_start_us(DAY1), seed=3)
    _store_day(conn, pid, did, sim, "d1")
    result = rollup(conn)
    assert (result.patients, result.days) == (1, 1)
    reading = sim.hr_bpm > 0
    expected = daily_metrics(
        start=sim.start_us,
        end=sim.start_us + US_PER_DAY,
        profile=physiology(conn, pid, DAY1),
        hr_time=sim.hr_time_us[reading],
        hr_bpm=np.round(sim.hr_bpm[reading]),
        hr_contact=sim.hr_contact[reading],
        rr_time=sim.rr_time_us,
        rr_ms=sim.rr_ms,
        step_time=sim.step_time_us,
        step_count=sim.steps,
    ).to_row()
    row = conn.execute(
        "SELECT wear_min, steps, active_min, trimp_banister, rmssd_ms, hr_samples, rr_intervals"
        " FROM daily_metrics WHERE patient_id = %s AND day = %s",
        (pid, DAY1),
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(expected["wear_min"], rel=1e-6)
    assert row[1] == expected["steps"] == int(sim.steps.sum())
    assert row[2] == pytest.approx(expected["active_min"], rel=1e-6)
    assert row[3] == pytest.approx(expected["trimp_banister"], rel=1e-6)
    assert row[4] == pytest.approx(expected["rmssd_ms"], rel=1e-6)
    assert (row[5], row[6]) == (expected["hr_samples"], expected["rr_intervals"])
    assert 1_300 < row[0] < 1_440  # the simulated day has two off-body breaks


def test_only_days_that_received_new_samples_are_recomputed(conn: psycopg.Connection[Any]) -> None:
    pid, did = _patient(conn)
    for offset in (0, 1):
        day = DAY1 + timedelta(days=offset)
        _store_day(
            conn, pid, did, simulate_day(start_us=_start_us(day), seed=offset), f"inc{offset}"
        )
    assert rollup(conn).days == 2
    before = _computed_at(conn, pid)
    assert rollup(conn).days == 0
    assert _computed_at(conn, pid) == before

    late = simulate_day(start_us=_start_us(DAY1 + timedelta(days=1)), seed=9)
    t = late.hr_time_us[-5:].astype("datetime64[us]") + np.timedelta64(500, "ms")
    write_batch(
        conn,
        Batch(
            f"late-{uuid.uuid4()}",
            hr=HrRows.of(patient_id=[pid] * 5, device_id=[did] * 5, time=t, bpm=[80] * 5),
        ),
    )
    assert rollup(conn).days == 1
    after = _computed_at(conn, pid)
    assert after[DAY1] == before[DAY1]
    assert after[DAY1 + timedelta(days=1)] > before[DAY1 + timedelta(days=1)]


def test_a_replayed_batch_queues_no_recomputation(conn: psycopg.Connection[Any]) -> None:
    pid, did = _patient(conn)
    t = datetime(2026, 3, 5, 12, tzinfo=UTC)
    batch = Batch(
        f"r-{uuid.uuid4()}", hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[70])
    )
    write_batch(conn, batch)
    assert rollup(conn).days == 1
    write_batch(conn, batch)
    assert rollup(conn).days == 0


def test_days_are_the_patients_local_calendar_days(conn: psycopg.Connection[Any]) -> None:
    pid, did = _patient(conn, tz="America/New_York")
    # 03:00 UTC on 3 March is 22:00 on 2 March in New York.
    t = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    write_batch(
        conn,
        Batch(
            f"tz-{uuid.uuid4()}",
            hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[70]),
        ),
    )
    rollup(conn)
    assert set(_computed_at(conn, pid)) == {date(2026, 3, 2)}


def test_a_dst_change_day_is_23_hours_long() -> None:
    start, end = day_bounds(date(2026, 3, 8), ZoneInfo("America/New_York"))
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2026, 11, 1), ZoneInfo("America/New_York"))
    assert end - start == timedelta(hours=25)


def test_a_span_over_midnight_touches_both_days() -> None:
    tz = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 local
    last = datetime(2026, 6, 1, 22, 30, tzinfo=UTC)  # 00:30 local next day
    assert days_touched(first, last, tz) == [date(2026, 6, 1), date(2026, 6, 2)]


def test_a_patient_that_cannot_be_computed_stays_queued_and_others_go_on(
    conn: psycopg.Connection[Any],
) -> None:
    bad, bad_device = _patient(conn)
    good, good_device = _patient(conn)
    # registry refuses unknown zones; this is what an edit behind its back looks like
    conn.execute("UPDATE patient SET timezone = 'Mars/Olympus_Mons' WHERE patient_id = %s", (bad,))
    conn.commit()
    t = datetime(2026, 3, 6, 12, tzinfo=UTC)
    for pid, did in ((bad, bad_device), (good, good_device)):
        write_batch(
            conn,
            Batch(
                f"f-{uuid.uuid4()}",
                hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[70]),
            ),
        )
    result = rollup(conn)
    assert (result.patients, result.days, result.failed) == (1, 1, (bad,))
    assert set(_computed_at(conn, good)) == {date(2026, 3, 6)}
    queued = conn.execute(
        "SELECT patient_id, count(*) FROM sample_span WHERE patient_id IN (%s, %s)"
        " GROUP BY patient_id",
        (bad, good),
    ).fetchall()
    assert queued == [(bad, 1)]
    conn.execute("UPDATE patient SET timezone = 'UTC' WHERE patient_id = %s", (bad,))
    conn.commit()
    assert rollup(conn).days == 1


def _second_device(conn: psycopg.Connection[Any], pid: int) -> int:
    address = ":".join(uuid.uuid4().hex[i : i + 2] for i in range(0, 10, 2)) + ":02"
    registry.register_device(conn, address=address)
    device = registry.bind_device(conn, address=address, patient_id=pid)
    conn.commit()
    return device.device_id


def test_two_wearables_counting_the_same_walk_do_not_double_the_steps(
    conn: psycopg.Connection[Any],
) -> None:
    pid, band = _patient(conn)
    watch = _second_device(conn, pid)
    minutes = [datetime(2026, 3, 9, 10, m, tzinfo=UTC) for m in range(1, 31)]
    # The band reports once a minute; the watch twice a minute, a little lower.
    band_rows = StepRows.of(
        patient_id=[pid] * 30, device_id=[band] * 30, time=minutes, steps=[100] * 30
    )
    halves = [t - timedelta(seconds=30) for t in minutes] + minutes
    watch_rows = StepRows.of(
        patient_id=[pid] * 60, device_id=[watch] * 60, time=sorted(halves), steps=[45] * 60
    )
    write_batch(conn, Batch(f"s-{uuid.uuid4()}", steps=band_rows))
    write_batch(conn, Batch(f"s-{uuid.uuid4()}", steps=watch_rows))
    rollup(conn)
    row = conn.execute(
        "SELECT steps FROM daily_metrics WHERE patient_id = %s AND day = '2026-03-09'", (pid,)
    ).fetchone()
    assert row == (3000,)


def test_rr_intervals_come_from_one_device_not_two_interleaved(
    conn: psycopg.Connection[Any],
) -> None:
    pid, strap = _patient(conn)
    watch = _second_device(conn, pid)
    start = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    strap_rr = 800.0 + 40.0 * np.sin(np.arange(600) / 3.0)
    strap_t = [start + timedelta(milliseconds=float(x)) for x in np.cumsum(strap_rr)]
    watch_rr = np.full(300, 1000.0)
    watch_t = [start + timedelta(milliseconds=float(x) + 1) for x in np.cumsum(watch_rr)]
    write_batch(
        conn,
        Batch(
            f"rr-{uuid.uuid4()}",
            rr=RrRows.of(
                patient_id=[pid] * 600, device_id=[strap] * 600, time=strap_t, rr_ms=strap_rr
            ),
        ),
    )
    write_batch(
        conn,
        Batch(
            f"rr-{uuid.uuid4()}",
            rr=RrRows.of(
                patient_id=[pid] * 300, device_id=[watch] * 300, time=watch_t, rr_ms=watch_rr
            ),
        ),
    )
    rollup(conn)
    row = conn.execute(
        "SELECT rr_intervals FROM daily_metrics WHERE patient_id = %s AND day = '2026-03-10'",
        (pid,),
    ).fetchone()
    assert row == (600,)


def test_a_database_error_on_one_patient_leaves_the_others_computed(
    conn: psycopg.Connection[Any],
) -> None:
    bad, bad_device = _patient(conn)
    good, good_device = _patient(conn)
    t = datetime(2026, 3, 11, 12, tzinfo=UTC)
    for pid, did in ((bad, bad_device), (good, good_device)):
        write_batch(
            conn,
            Batch(
                f"e-{uuid.uuid4()}",
                hr=HrRows.of(patient_id=[pid], device_id=[did], time=[t], bpm=[70]),
            ),
        )
    # A trigger stands in for a database failure (disk full, timeout) on one patient's row.
    conn.execute(
        "CREATE FUNCTION fail_for() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.patient_id = {bad} THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER fail_for BEFORE INSERT ON daily_metrics FOR EACH ROW EXECUTE FUNCTION fail_for()"
    )
    conn.commit()
    try:
        result = rollup(conn)
    finally:
        conn.execute("DROP TRIGGER fail_for ON daily_metrics")
        conn.execute("DROP FUNCTION fail_for")
        conn.commit()
    assert result.failed == (bad,)
    assert set(_computed_at(conn, good)) == {date(2026, 3, 11)}
    assert rollup(conn).days == 1
