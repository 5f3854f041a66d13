"""The intraday view's minute buckets are the patient's local minutes, whatever the session's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from paceline.dashboard import patient_view
from paceline.pacing import overview
from paceline.store import Batch, HrRows, StepRows, write_batch
from tests.factories import enrolled_patient

#: Clocks in Los Angeles go back from 02:00 PDT to 01:00 PST on this day: it has 25 hours.
FALL_BACK = date(2026, 11, 1)
LA_MIDNIGHT = datetime(2026, 11, 1, 7, tzinfo=UTC)  # 00:00 PDT (UTC-7)


def test_a_los_angeles_day_across_the_clock_change_in_a_utc_session(
    conn: psycopg.Connection[Any],
) -> None:
    pid, did = enrolled_patient(
        conn, tz="America/Los_Angeles", enrolled=LA_MIDNIGHT - timedelta(days=30)
    )
    conn.commit()
    at = [
        LA_MIDNIGHT - timedelta(seconds=30),  # 23:59:30 the day before: not this day
        LA_MIDNIGHT + timedelta(seconds=30),  # 00:00:30 PDT
        datetime(2026, 11, 1, 8, 30, 10, tzinfo=UTC),  # 01:30:10 PDT
        datetime(2026, 11, 1, 9, 30, 20, tzinfo=UTC),  # 01:30:20 PST, an hour later
        datetime(2026, 11, 2, 7, 59, 40, tzinfo=UTC),  # 23:59:40 PST
        datetime(2026, 11, 2, 8, 0, 5, tzinfo=UTC),  # 00:00:05 the next day: not this day
    ]
    write_batch(
        conn,
        Batch(
            f"tz-{pid}",
            hr=HrRows.of(
                patient_id=[pid] * 6, device_id=[did] * 6, time=at, bpm=[61 + i for i in range(6)]
            ),
            steps=StepRows.of(patient_id=[pid], device_id=[did], time=[at[3]], steps=[12]),
        ),
    )
    conn.execute("SET TimeZone = 'UTC'")
    buckets = overview.minute_buckets(
        conn, pid, FALL_BACK, hr_view="hr_sample", steps_view="step_sample"
    )
    conn.rollback()
    assert [(b.minute, b.max_hr_bpm, b.steps) for b in buckets] == [
        (datetime(2026, 11, 1, 0, 0), 62, 0),
        (datetime(2026, 11, 1, 1, 30), 63, 0),
        (datetime(2026, 11, 1, 1, 30), 64, 12),
        (datetime(2026, 11, 1, 23, 59), 65, 0),
    ]
    minutes = patient_view.minute_table(buckets).column("minute").to_pylist()
    assert minutes[0] == "2026-11-01T00:00:00" and minutes[-1] == "2026-11-01T23:59:00"
