"""The seeded patient model: physiological properties within tolerance, as NeuroKit2 tests do."""

from __future__ import annotations

import numpy as np
import pytest

from paceline.devices.simulator.physiology import (
    DEFAULT_ROUTINE,
    WALKING,
    Activity,
    Patient,
    PatientModel,
    Routine,
    SecondOfLife,
)

SEEDS = [0, 1, 2, 3, 4]

# Rest 10 min, walk 20 min, rest 30 min (a graded-activity session).
SESSION = Routine.of([("00:00", Activity.REST), ("00:10", Activity.WALK), ("00:30", Activity.REST)])


def run_session(seed: int) -> tuple[Patient, list[SecondOfLife]]:
    """One hour of the session for a seeded patient."""
    patient = Patient.sample(seed)
    return patient, PatientModel(patient, SESSION, seed=seed).run(3600)


def mean_hr(seconds: list[SecondOfLife]) -> float:
    """The mean instantaneous heart rate over some seconds."""
    return float(np.mean([second.hr_bpm for second in seconds]))


def rr_of(seconds: list[SecondOfLife]) -> np.ndarray:
    """Every RR interval that ended in these seconds."""
    return np.array([rr for second in seconds for rr in second.rr_ms])


def rmssd(rr_ms: np.ndarray) -> float:
    """Root mean square of successive RR differences (Task Force 1996)."""
    return float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))


def test_same_seed_same_life() -> None:
    """The model is deterministic for a seed, and different seeds give different lives."""
    assert run_session(7)[1] == run_session(7)[1]
    assert run_session(7)[1] != run_session(8)[1]


@pytest.mark.parametrize("seed", SEEDS)
def test_resting_heart_rate_is_in_the_adult_range(seed: int) -> None:
    """Resting heart rate lands between 50 and 90 bpm and near the patient's own value."""
    patient, seconds = run_session(seed)
    resting = mean_hr(seconds[120:600])
    assert 50 <= resting <= 90
    assert resting == pytest.approx(patient.resting_hr_bpm, abs=6)


@pytest.mark.parametrize("seed", SEEDS)
def test_heart_rate_rises_with_walking_and_recovers(seed: int) -> None:
    """HR climbs at least 15 bpm while walking, stays below HRmax, and returns to rest afterwards."""
    patient, seconds = run_session(seed)
    rest = mean_hr(seconds[300:600])
    walking = mean_hr(seconds[1200:1800])
    recovered = mean_hr(seconds[3000:3600])
    assert walking > rest + 15
    assert max(second.hr_bpm for second in seconds) < patient.max_hr_bpm
    assert recovered == pytest.approx(rest, abs=6)
    # Recovery is gradual, not a step: a minute after stopping HR is still well above rest.
    assert mean_hr(seconds[1800:1830]) > rest + 10


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_rr_matches_heart_rate(seed: int) -> None:
    """Mean RR ≈ 60000 / mean HR, at rest and while walking (within 3 %)."""
    _, seconds = run_session(seed)
    for block in (seconds[120:600], seconds[1200:1800]):
        assert float(rr_of(block).mean()) == pytest.approx(60_000 / mean_hr(block), rel=0.03)


@pytest.mark.parametrize("seed", SEEDS)
def test_resting_rmssd_is_plausible_and_falls_with_exercise(seed: int) -> None:
    """Resting RMSSD 15–70 ms; vagal withdrawal makes it smaller while walking."""
    _, seconds = run_session(seed)
    resting = rmssd(rr_of(seconds[120:600]))
    walking = rmssd(rr_of(seconds[1200:1800]))
    assert 15 <= resting <= 70
    assert walking < resting


def test_rr_shows_respiratory_sinus_arrhythmia() -> None:
    """The RR series has a spectral peak at the breathing frequency (14/min at rest)."""
    patient = Patient(rr_noise_ms=4.0)
    seconds = PatientModel(patient, Routine.constant(Activity.REST), seed=3).run(600)
    rr = rr_of(seconds)
    beat_times = np.cumsum(rr) / 1000
    grid = np.arange(beat_times[0], beat_times[-1], 0.25)
    tachogram = np.interp(grid, beat_times, rr)
    spectrum = np.abs(np.fft.rfft(tachogram - tachogram.mean()))
    freqs = np.fft.rfftfreq(len(tachogram), d=0.25)
    assert freqs[int(np.argmax(spectrum))] == pytest.approx(14 / 60, abs=0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_steps_only_while_walking(seed: int) -> None:
    """Steps appear in walking seconds only, at a walking cadence."""
    _, seconds = run_session(seed)
    assert all(second.steps == 0 for second in seconds if second.activity not in WALKING)
    walking = [second for second in seconds if second.activity in WALKING]
    steps_per_min = sum(second.steps for second in walking) / (len(walking) / 60)
    assert 95 <= steps_per_min <= 125


def test_daily_routine_sleeps_walks_and_rests() -> None:
    """The default day: asleep at 03:00, walking at 10:10, lower HR asleep than awake at rest."""
    assert DEFAULT_ROUTINE.activity_at(3 * 3600) is Activity.SLEEP
    assert DEFAULT_ROUTINE.activity_at(10 * 3600 + 600) is Activity.WALK
    assert DEFAULT_ROUTINE.activity_at(86_400 + 10 * 3600 + 600) is Activity.WALK
    patient = Patient.sample(11)
    night = PatientModel(patient, DEFAULT_ROUTINE, seed=11, start_second_of_day=2 * 3600).run(1800)
    day = PatientModel(patient, DEFAULT_ROUTINE, seed=11, start_second_of_day=8 * 3600).run(1800)
    assert mean_hr(night[600:]) < mean_hr(day[600:])


def test_a_full_day_has_walks_and_plausible_totals() -> None:
    """A simulated day: tens of thousands of beats, a few thousand steps, all within walks."""
    seconds = PatientModel(Patient.sample(5), DEFAULT_ROUTINE, seed=5).run(86_400)
    beats = sum(len(second.rr_ms) for second in seconds)
    steps = sum(second.steps for second in seconds)
    assert 80_000 <= beats <= 120_000
    assert 4_000 <= steps <= 12_000


@pytest.mark.parametrize(
    "blocks",
    [(), ((60, Activity.REST),), ((0, Activity.REST), (10, Activity.WALK), (5, Activity.REST))],
)
def test_malformed_routines_are_refused(blocks: tuple[tuple[int, Activity], ...]) -> None:
    """A routine starts at midnight and is ordered."""
    from paceline.devices.simulator.physiology import RoutineBlock

    with pytest.raises(ValueError, match="routine"):
        Routine(tuple(RoutineBlock(start, activity) for start, activity in blocks))
