"""Small builders of real rows for tests (through the store's own API, never raw fakes)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from paceline.signal.simulate import SimulatedDay, simulate_day
from paceline.store import Batch, HrRows, RrRows, StepRows, registry, write_batch


def patient_with_device(
    conn: psycopg.Connection[Any], *, birth_year: int = 1980, sex: str = "female"
) -> tuple[int, int]:
    """Enrol a patient, register and bind one wearable; return (patient_id, device_id)."""
    tag = uuid.uuid4().hex[:10]
    patient = registry.create_patient(
        conn, external_ref=f"P-{tag}", display_name=f"Patient {tag}", birth_year=birth_year, sex=sex
    )
    address = ":".join(tag[i : i + 2] for i in range(0, 10, 2)) + ":00"
    registry.register_device(conn, address=address, name="HR strap", profile="heart_rate_strap")
    device = registry.bind_device(conn, address=address, patient_id=patient.patient_id)
    conn.commit()
    return patient.patient_id, device.device_id


def enrolled_patient(
    conn: psycopg.Connection[Any], *, tz: str = "UTC", enrolled: datetime
) -> tuple[int, int]:
    """A patient with a bound device, enrolled at `enrolled` and living in `tz`."""
    pid, did = patient_with_device(conn)
    conn.execute(
        "UPDATE patient SET timezone = %s, enrolled_at = %s WHERE patient_id = %s",
        (tz, enrolled, pid),
    )
    conn.commit()
    return pid, did


#: When `hr_rows` starts by default.
HR_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def hr_rows(
    patient_id: int, device_id: int, n: int, start: datetime = HR_START, bpm: int = 70
) -> HrRows:
    """`n` heart-rate rows of one device, one a second from `start`, all at `bpm`."""
    times = np.datetime64(start.replace(tzinfo=None), "us") + np.arange(n) * np.timedelta64(1, "s")
    return HrRows.of(
        patient_id=[patient_id] * n, device_id=[device_id] * n, time=times, bpm=[bpm] * n
    )


def store_simulated_day(
    conn: psycopg.Connection[Any], patient_id: int, device_id: int, day: date, tz: str = "UTC"
) -> None:
    """Store one simulated local day of samples as the ingest path would (queues its span)."""
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    sim = simulate_day(start_us=int(start.timestamp()) * 1_000_000, seed=patient_id)
    store_simulated(conn, patient_id, device_id, sim)


def store_simulated(
    conn: psycopg.Connection[Any],
    patient_id: int,
    device_id: int,
    sim: SimulatedDay,
    label: str = "sim",
) -> None:
    """Store a simulated day as the ingest path would: no-reading (0 bpm) samples are not stored."""
    reading = sim.hr_bpm > 0
    n_hr, n_rr, n_st = int(reading.sum()), sim.rr_time_us.size, sim.step_time_us.size
    write_batch(
        conn,
        Batch(
            f"{label}-{uuid.uuid4()}",
            hr=HrRows.of(
                patient_id=np.full(n_hr, patient_id),
                device_id=np.full(n_hr, device_id),
                time=sim.hr_time_us[reading].astype("datetime64[us]"),
                bpm=np.round(sim.hr_bpm[reading]),
                sensor_contact=[None if c < 0 else bool(c) for c in sim.hr_contact[reading]],
            ),
            rr=RrRows.of(
                patient_id=np.full(n_rr, patient_id),
                device_id=np.full(n_rr, device_id),
                time=sim.rr_time_us.astype("datetime64[us]"),
                rr_ms=sim.rr_ms,
            ),
            steps=StepRows.of(
                patient_id=np.full(n_st, patient_id),
                device_id=np.full(n_st, device_id),
                time=sim.step_time_us.astype("datetime64[us]"),
                steps=sim.steps,
            ),
        ),
    )


def patient_and_clinician(conn: psycopg.Connection[Any], *, enrolled: datetime) -> tuple[int, int]:
    """A patient enrolled at `enrolled` (no device) and a clinician; return (patient, clinician)."""
    tag = uuid.uuid4().hex[:10]
    p = registry.create_patient(
        conn, external_ref=f"PC-{tag}", display_name=f"Patient {tag}", enrolled_at=enrolled
    )
    cid = registry.create_clinician(conn, username=f"dr{tag}", display_name="Dr Physio")
    conn.commit()
    return p.patient_id, cid
