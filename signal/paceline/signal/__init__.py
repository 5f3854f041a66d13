"""Pure numpy/scipy signal processing: cleaning, wear, zones, load, HRV, daily summaries.

Nothing in this package does I/O of any kind, and it imports nothing from the other
Paceline packages. Import modules by their full name — ``from paceline.signal import
zones`` — never a bare ``signal``, which is the standard library's.

Modules: `clean` (heart rate and RR cleaning), `wear` (worn vs not worn), `zones`
(HRmax, resting HR, zones, hysteresis, pacing ceiling), `trimp` (Banister, Edwards),
`steps` (cadence, step load), `activity` (active minutes, bouts), `hrv` (time-domain
HRV), `ewma` (acute/chronic load, monotony, strain), `daily` (one patient-day →
`DailyMetrics`), `simulate` (seeded synthetic data), `timebase` and `runs` (grids and
run-length helpers).
"""

from __future__ import annotations

from paceline.signal.daily import DailyConfig, DailyMetrics, PatientPhysiology, daily_metrics
from paceline.signal.errors import (
    InputShapeError,
    InsufficientDataError,
    ParameterError,
    SignalError,
    TimeTypeError,
    UnknownMethodError,
    UnsortedTimeError,
)

__all__ = [
    "DailyConfig",
    "DailyMetrics",
    "InputShapeError",
    "InsufficientDataError",
    "ParameterError",
    "PatientPhysiology",
    "SignalError",
    "TimeTypeError",
    "UnknownMethodError",
    "UnsortedTimeError",
    "daily_metrics",
]
