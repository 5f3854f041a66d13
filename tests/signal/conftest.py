"""Shared data for the signal tests: the real Fitbit heart rate and a simulated day."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from paceline.signal.simulate import SimulatedDay, simulate_day
from paceline.signal.timebase import FloatArray, IntArray

FITBIT_CSV = Path(__file__).resolve().parent.parent / "data" / "fitbit-heartrate-5s-one-user.csv"
"""Kept in the repository with its source and licence (tests/data/README.md)."""
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class FitbitHR:
    """The Fitbit export as arrays; local wall-clock time is treated as UTC."""

    time_us: IntArray
    bpm: FloatArray

    def day_start_us(self, day: str) -> int:
        """Epoch µs of midnight starting `day` (``YYYY-MM-DD``)."""
        return int(np.datetime64(day, "us").astype(np.int64))


def _load_fitbit() -> FitbitHR:
    times: list[int] = []
    values: list[float] = []
    with FITBIT_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            stamp = datetime.strptime(row["Time"], "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC)
            times.append(int(stamp.timestamp()) * 1_000_000)
            values.append(float(row["Value"]))
    return FitbitHR(np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64))


@pytest.fixture(scope="session")
def fitbit() -> FitbitHR:
    """Real wrist heart rate of one Fitbit user, ~5 s spacing, three days with gaps."""
    return _load_fitbit()


@pytest.fixture(scope="session")
def sim_day() -> SimulatedDay:
    """One seeded synthetic patient-day with ground truth."""
    return simulate_day(seed=11)
