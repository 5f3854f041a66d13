"""A seeded physiological model of one patient, stepped one simulated second at a time.

What it reproduces, and from where:

- Maximal heart rate from age, HRmax = 208 − 0.7·age (Tanaka, Monahan & Seals 2001).
- The heart rate an activity asks for as a fraction of heart-rate reserve,
  HR = HRrest + intensity·(HRmax − HRrest) (Karvonen 1957).
- First-order heart-rate kinetics towards that target, faster on the way up than on the
  way down: on-transient time constants of 20–40 s at moderate intensity and a slower
  recovery (Cole et al. 1999 on heart-rate recovery), plus a slow Ornstein–Uhlenbeck drift.
- Beat-to-beat (RR) intervals by integrate-and-fire on that rate, modulated by
  respiratory sinus arrhythmia, a sinusoid at the breathing frequency whose amplitude falls
  as intensity rises (vagal withdrawal; Task Force of ESC/NASPE 1996), plus white noise.
  Resting RMSSD lands around 20–50 ms, within the range reported for adults with chronic
  pain and for healthy adults (Shaffer & Ginsberg 2017; Tracy et al. 2016).
- Steps only while walking, at a cadence of ~95–125 steps/min (Tudor-Locke et al. 2018).
- A daily routine (sleep, rest, chores, walks) on the simulated wall clock.

Pure: no clock and no I/O. `PatientModel.step()` advances one second and says what
happened in it; the simulated wearable decides what of that it can sense and send.
"""

from __future__ import annotations

import bisect
import enum
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

SECONDS_PER_DAY: Final = 86_400


class Activity(enum.StrEnum):
    """What the patient is doing."""

    SLEEP = "sleep"
    REST = "rest"
    LIGHT = "light"
    WALK = "walk"
    BRISK_WALK = "brisk_walk"


@dataclass(frozen=True, slots=True)
class ActivityLevel:
    """How an activity loads the body.

    `intensity` is the fraction of heart-rate reserve (negative while asleep, when the rate
    falls below the daytime resting value); `cadence_spm` is 0 for activities without
    steps; `breaths_per_min` sets the respiratory frequency that drives RSA.
    """

    intensity: float
    cadence_spm: float
    step_length_m: float
    breaths_per_min: float


ACTIVITY_LEVELS: Final[dict[Activity, ActivityLevel]] = {
    Activity.SLEEP: ActivityLevel(-0.08, 0.0, 0.0, 12.0),
    Activity.REST: ActivityLevel(0.0, 0.0, 0.0, 14.0),
    # Chores move the arms and the heart but are scored here as no steps, which keeps
    # "steps only while walking" exact in the ground truth.
    Activity.LIGHT: ActivityLevel(0.15, 0.0, 0.0, 16.0),
    Activity.WALK: ActivityLevel(0.35, 105.0, 0.68, 20.0),
    Activity.BRISK_WALK: ActivityLevel(0.5, 120.0, 0.75, 24.0),
}

WALKING: Final = frozenset({Activity.WALK, Activity.BRISK_WALK})

TAU_RISE_S: Final = 30.0
"""Time constant of the heart rate climbing to a higher target (Cole et al. 1999 range)."""

TAU_RECOVERY_S: Final = 75.0
"""Time constant of recovery: slower than the rise, slower still in deconditioned patients."""

DRIFT_SD_BPM: Final = 2.0
"""Standard deviation of the slow heart-rate drift (posture, thought, digestion)."""

DRIFT_TAU_S: Final = 180.0
"""Correlation time of that drift."""

RR_MIN_MS: Final = 300.0
"""Shortest RR interval generated (200 bpm): no walking patient goes beyond."""

RR_MAX_MS: Final = 2000.0
"""Longest RR interval generated (30 bpm): below that a strap reports dropouts, not beats."""


@dataclass(frozen=True, slots=True)
class RoutineBlock:
    """From `start_s` (seconds after midnight) until the next block, the patient does `activity`."""

    start_s: float
    activity: Activity


@dataclass(frozen=True, slots=True)
class Routine:
    """A day of activities, repeating every day; the first block starts at midnight."""

    blocks: tuple[RoutineBlock, ...]

    def __post_init__(self) -> None:
        """Check the blocks start at midnight and are in order within one day."""
        starts = [block.start_s for block in self.blocks]
        if not starts or starts[0] != 0:
            raise ValueError("a routine's first block must start at 0 s (midnight)")
        if starts != sorted(starts) or starts[-1] >= SECONDS_PER_DAY:
            raise ValueError("routine blocks must be in order and start within one day")

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, Activity]]) -> Routine:
        """Build a routine from ("HH:MM", activity) pairs."""
        blocks: list[RoutineBlock] = []
        for clock_time, activity in pairs:
            hours, minutes = clock_time.split(":")
            blocks.append(RoutineBlock(int(hours) * 3600 + int(minutes) * 60, activity))
        return cls(tuple(blocks))

    @classmethod
    def constant(cls, activity: Activity) -> Routine:
        """A routine doing one thing all day (handy in tests)."""
        return cls((RoutineBlock(0, activity),))

    def activity_at(self, second_of_day: float) -> Activity:
        """The activity at a time of day (seconds after midnight, any day)."""
        position = second_of_day % SECONDS_PER_DAY
        starts = [block.start_s for block in self.blocks]
        return self.blocks[bisect.bisect_right(starts, position) - 1].activity


DEFAULT_ROUTINE: Final = Routine.of(
    [
        ("00:00", Activity.SLEEP),
        ("07:00", Activity.REST),
        ("07:30", Activity.LIGHT),
        ("08:00", Activity.REST),
        ("10:00", Activity.WALK),
        ("10:20", Activity.REST),
        ("12:30", Activity.LIGHT),
        ("13:00", Activity.REST),
        ("15:00", Activity.WALK),
        ("15:30", Activity.BRISK_WALK),
        ("15:40", Activity.WALK),
        ("15:50", Activity.REST),
        ("18:00", Activity.LIGHT),
        ("19:00", Activity.REST),
        ("22:30", Activity.SLEEP),
    ]
)
"""A graded-activity day: two short walks, one with a brisk stretch, chores, sleep."""


@dataclass(frozen=True, slots=True)
class Patient:
    """The physiological constants of one simulated patient."""

    age_years: float = 45.0
    resting_hr_bpm: float = 66.0
    rsa_amplitude_ms: float = 25.0
    rr_noise_ms: float = 12.0
    weight_kg: float = 75.0

    @property
    def max_hr_bpm(self) -> float:
        """Maximal heart rate, 208 − 0.7·age (Tanaka, Monahan & Seals 2001)."""
        return 208.0 - 0.7 * self.age_years

    @classmethod
    def sample(cls, seed: int) -> Patient:
        """A plausible patient drawn from population ranges with a fixed seed."""
        rng = random.Random(seed)

        def draw(mean: float, sd: float, low: float, high: float) -> float:
            """One normal draw clipped to a plausible range."""
            return min(high, max(low, rng.gauss(mean, sd)))

        return cls(
            age_years=draw(48, 12, 20, 80),
            resting_hr_bpm=draw(68, 6, 52, 85),
            rsa_amplitude_ms=draw(24, 6, 10, 40),
            rr_noise_ms=draw(12, 2, 6, 18),
            weight_kg=draw(78, 12, 50, 130),
        )


@dataclass(frozen=True, slots=True)
class SecondOfLife:
    """What happened in one simulated second.

    `t_s` is the end of the second in model time; `rr_ms` holds the beats that ended
    within it (oldest first, possibly none below 60 bpm); `steps` the whole steps taken in it.
    """

    t_s: float
    activity: Activity
    hr_bpm: float
    rr_ms: tuple[float, ...]
    steps: int
    cadence_spm: float
    speed_m_s: float


class PatientModel:
    """The patient's heart and legs, advanced one second at a time from a fixed seed."""

    def __init__(
        self,
        patient: Patient,
        routine: Routine = DEFAULT_ROUTINE,
        *,
        seed: int = 0,
        start_second_of_day: float = 0.0,
    ) -> None:
        """Start the patient at the steady heart rate of the activity the routine has at that time of day."""
        self.patient = patient
        self.routine = routine
        # random.Random rather than numpy: one scalar draw per beat, and numpy's per-call
        # overhead would dominate a simulated day.
        self._rng = random.Random(seed)
        self._start_second_of_day = start_second_of_day
        self._t_s = 0.0
        first = routine.activity_at(start_second_of_day)
        self._hr_bpm = self._target_bpm(first)
        self._drift_bpm = 0.0
        self._breath_phase = self._rng.uniform(0, 2 * math.pi)
        # The first beat falls somewhere within the first RR so streams do not all start in phase.
        self._next_beat_s = self._rng.uniform(0, 60.0 / self._hr_bpm)
        self._last_beat_s = self._next_beat_s - 60.0 / self._hr_bpm
        self._step_carry = 0.0
        self._cadence_offset = 0.0

    @property
    def elapsed_s(self) -> float:
        """Model seconds simulated so far."""
        return self._t_s

    @property
    def hr_bpm(self) -> float:
        """The current (true, instantaneous) heart rate."""
        return self._hr_bpm

    def activity_now(self) -> Activity:
        """The activity of the routine at the current model time."""
        return self.routine.activity_at(self._start_second_of_day + self._t_s)

    def _target_bpm(self, activity: Activity) -> float:
        """Karvonen: resting rate plus the activity's fraction of heart-rate reserve."""
        level = ACTIVITY_LEVELS[activity]
        reserve = self.patient.max_hr_bpm - self.patient.resting_hr_bpm
        return self.patient.resting_hr_bpm + level.intensity * reserve

    def _vagal_fraction(self, activity: Activity) -> float:
        """How much of the resting RSA remains: it fades as intensity rises (vagal withdrawal)."""
        intensity = ACTIVITY_LEVELS[activity].intensity
        return max(0.15, 1.0 - 2.0 * max(0.0, intensity))

    def step(self) -> SecondOfLife:
        """Advance one second and return what happened in it."""
        activity = self.activity_now()
        level = ACTIVITY_LEVELS[activity]
        rng = self._rng

        # Ornstein–Uhlenbeck drift, exact discretisation for a 1 s step.
        decay = math.exp(-1.0 / DRIFT_TAU_S)
        self._drift_bpm = self._drift_bpm * decay + DRIFT_SD_BPM * math.sqrt(
            1 - decay * decay
        ) * rng.gauss(0.0, 1.0)
        target = self._target_bpm(activity) + self._drift_bpm
        tau = TAU_RISE_S if target > self._hr_bpm else TAU_RECOVERY_S
        self._hr_bpm += (target - self._hr_bpm) * (1.0 - math.exp(-1.0 / tau))

        start = self._t_s
        end = start + 1.0
        vagal = self._vagal_fraction(activity)
        breath_hz = level.breaths_per_min / 60.0
        beats: list[float] = []
        while self._next_beat_s < end:
            beat = self._next_beat_s
            beats.append((beat - self._last_beat_s) * 1000.0)
            self._last_beat_s = beat
            phase = self._breath_phase + 2 * math.pi * breath_hz * (beat - start)
            base_ms = 60_000.0 / self._hr_bpm
            rr_ms = (
                base_ms
                + self.patient.rsa_amplitude_ms * vagal * math.sin(phase)
                + self.patient.rr_noise_ms * (0.5 + 0.5 * vagal) * rng.gauss(0.0, 1.0)
            )
            self._next_beat_s = beat + min(RR_MAX_MS, max(RR_MIN_MS, rr_ms)) / 1000.0
        self._breath_phase = (self._breath_phase + 2 * math.pi * breath_hz) % (2 * math.pi)

        steps = 0
        cadence = 0.0
        speed = 0.0
        if activity in WALKING:
            # Cadence wanders a few steps/min around the activity's typical value.
            self._cadence_offset = 0.95 * self._cadence_offset + 0.9 * rng.gauss(0.0, 1.0)
            cadence = max(0.0, level.cadence_spm + self._cadence_offset)
            self._step_carry += cadence / 60.0
            steps = math.floor(self._step_carry)
            self._step_carry -= steps
            speed = cadence / 60.0 * level.step_length_m
        else:
            self._cadence_offset = 0.0
            self._step_carry = 0.0

        self._t_s = end
        return SecondOfLife(end, activity, self._hr_bpm, tuple(beats), steps, cadence, speed)

    def run(self, seconds: int) -> list[SecondOfLife]:
        """Advance `seconds` seconds and return each of them."""
        return [self.step() for _ in range(seconds)]


__all__ = [
    "ACTIVITY_LEVELS",
    "DEFAULT_ROUTINE",
    "SECONDS_PER_DAY",
    "WALKING",
    "Activity",
    "ActivityLevel",
    "Patient",
    "PatientModel",
    "Routine",
    "RoutineBlock",
    "SecondOfLife",
]
