"""A back-filled day in the daemon's record format: the numbers asked for, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from paceline.devices.simulator.physiology import Patient
from paceline.ingest import IngestError
from paceline.ingest.backfill import HR_EVERY_S, BackfillError, WornDay, day_chunks, day_end
from paceline.signal.activity import ACTIVE_CADENCE, ACTIVE_HRR_FRACTION

START = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
PATIENT = Patient()


def test_a_day_has_the_asked_wear_steps_and_active_minutes() -> None:
    day = WornDay(START, wear_min=840, active_min=43, steps=5_585)
    hr, steps = day_chunks(7, 3, PATIENT, day, seed=1)
    assert (hr.stream, hr.patient_id, hr.device_id) == ("hr", 7, 3)
    assert (steps.stream, steps.patient_id, steps.device_id) == ("steps", 7, 3)
    per_min = steps.samples()["steps"]
    assert per_min.size == 840 and int(per_min.sum()) == 5_585
    assert int((per_min >= ACTIVE_CADENCE).sum()) == 43
    beats = hr.samples()
    assert beats.size == 840 * 60 // HR_EVERY_S
    assert np.all(np.diff(beats["time_us"]) == HR_EVERY_S * 1_000_000)
    assert beats["time_us"][-1] == int(day_end(day).timestamp() * 1e6)
    # Walking is moderate by heart rate too (>= 40 % of the reserve), resting is not.
    moderate = PATIENT.resting_hr_bpm + ACTIVE_HRR_FRACTION * (
        PATIENT.max_hr_bpm - PATIENT.resting_hr_bpm
    )
    by_minute = beats["bpm"].reshape(840, -1).mean(axis=1)
    walking = per_min >= ACTIVE_CADENCE
    assert np.median(by_minute[walking]) > moderate > np.median(by_minute[~walking])
    assert set(beats["contact"].tolist()) == {-1}  # a PineTime sends no contact bit


def test_the_same_seed_gives_the_same_day_and_an_unworn_day_gives_nothing() -> None:
    day = WornDay(START, wear_min=200, active_min=10, steps=2_450)
    first = day_chunks(1, 1, PATIENT, day, seed=5)
    assert [c.data for c in first] == [c.data for c in day_chunks(1, 1, PATIENT, day, seed=5)]
    assert day_chunks(1, 1, PATIENT, WornDay(START, 0, 0, 0), seed=5) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"wear_min": -1, "active_min": 0, "steps": 0}, "wear_min"),
        ({"wear_min": 1441, "active_min": 0, "steps": 0}, "wear_min"),
        ({"wear_min": 30, "active_min": 31, "steps": 0}, "active_min"),
        ({"wear_min": 30, "active_min": 0, "steps": -5}, "steps"),
    ],
)
def test_an_impossible_day_is_a_typed_error(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(BackfillError) as caught:
        WornDay(START, **kwargs)
    assert caught.value.field == field and isinstance(caught.value, IngestError)
    with pytest.raises(BackfillError, match="aware"):
        WornDay(START.replace(tzinfo=None), 10, 0, 0)
