"""Simulated patients whose trajectories are known: vignettes for tests and demo, and a cohort.

`SimPatient` plays one of five personas day by day against whatever quota the
plan sets (closed loop with the engine). `cohort` generates many patients with
flares from a known rule, for the flare-risk validation in `bench/flare_risk.py`.
Everything is seeded; nothing here touches the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

import numpy as np

from paceline.pacing.load import FloatArray, load_state

VALID_WEAR: Final = 840.0
STEPS_PER_ACTIVE_MIN: Final = 95
BACKGROUND_STEPS: Final = 1500
TRIMP_PER_ACTIVE_MIN: Final = 1.3


class Persona(StrEnum):
    """The vignettes of the pacing issue."""

    STEADY = "steady"
    BOOM_BUST = "boom_bust"
    AVOIDER = "avoider"
    FLARE_AFTER_SPIKE = "flare_after_spike"
    MISSING_WEAR = "missing_wear"


@dataclass(frozen=True)
class SimDay:
    """One simulated day: a daily-metrics row (unless the device was silent) and a diary."""

    day: date
    reported: bool
    wear_min: float
    active_min: float
    steps: int
    trimp: float
    above_ceiling_min: float
    hr_samples: int
    pain: int | None
    sleep: int | None
    fear: int | None

    def metrics_row(self) -> dict[str, object]:
        """The `daily_metrics` columns of the day."""
        return {
            "day": self.day,
            "wear_min": self.wear_min,
            "zone_min": [
                float(self.wear_min - self.active_min),
                float(self.active_min),
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            "above_ceiling_min": self.above_ceiling_min,
            "trimp_banister": self.trimp,
            "steps": self.steps,
            "active_min": self.active_min,
            "hr_samples": self.hr_samples,
        }


def _clip(x: float) -> int:
    return int(min(10, max(0, round(x))))


@dataclass
class SimPatient:
    """One persona played day by day; `next_day` gets the quota in effect for the day."""

    persona: Persona
    seed: int = 0
    tolerance_min: float = 40.0
    spike_day: int = 20
    index: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)
    _last_boom: int = field(default=-100, init=False)

    def __post_init__(self) -> None:
        """Seed the generator."""
        self._rng = np.random.default_rng(self.seed)

    def _u(self, lo: float, hi: float) -> float:
        return float(self._rng.uniform(lo, hi))

    def next_day(self, day: date, quota: float | None) -> SimDay:
        """Simulate the next day given the quota in effect (None during the baseline)."""
        i = self.index
        self.index += 1
        target = quota if quota is not None else self.tolerance_min
        pain = 4.0 + float(self._rng.normal(0, 0.35))
        sleep, fear = 7.0, 3.0
        wear, reported, diary = VALID_WEAR, True, True
        p = self.persona
        if p is Persona.STEADY:
            active = target * (self._u(0.95, 1.05) if quota is None else self._u(1.02, 1.12))
        elif p is Persona.BOOM_BUST:
            phase = i % 4
            active = target * (self._u(1.7, 1.9), self._u(0.35, 0.5), self._u(0.4, 0.6), 1.0)[phase]
            if phase == 0:
                self._last_boom = i
            since = i - self._last_boom
            pain = 5.0 + {1: 3.0, 2: 2.0}.get(since, 0.0) + float(self._rng.normal(0, 0.3))
            sleep = 4.0 if since in (1, 2) else 6.0
        elif p is Persona.AVOIDER:
            active = target * (self._u(0.95, 1.05) if quota is None else self._u(0.35, 0.55))
            pain, fear = 5.0 + float(self._rng.normal(0, 0.35)), 8.0
        elif p is Persona.FLARE_AFTER_SPIKE:
            active = target * (self._u(0.95, 1.05) if quota is None else self._u(1.02, 1.12))
            since = i - self.spike_day
            if since == 0:
                active = target * 2.2
            pain = 3.0 + {1: 3.5, 2: 4.0, 3: 3.5, 4: 3.0}.get(since, 0.0)
            pain += float(self._rng.normal(0, 0.3))
            sleep = 4.0 if 1 <= since <= 4 else 7.0
        else:
            active = target * (self._u(0.95, 1.05) if quota is None else self._u(1.02, 1.12))
            if 8 <= i <= 10:
                wear, active = 200.0, active * 0.25
            if 18 <= i <= 20:
                reported = False
            diary = not 25 <= i <= 27
        above = max(0.0, active - 1.6 * target) if p is Persona.BOOM_BUST else 0.0
        return SimDay(
            day=day,
            reported=reported,
            wear_min=wear if reported else 0.0,
            active_min=round(active, 1) if reported else 0.0,
            steps=int(BACKGROUND_STEPS + STEPS_PER_ACTIVE_MIN * active) if reported else 0,
            trimp=round(TRIMP_PER_ACTIVE_MIN * active, 1) if reported else 0.0,
            above_ceiling_min=round(above, 1),
            hr_samples=int(wear * 60) if reported else 0,
            pain=_clip(pain) if diary else None,
            sleep=_clip(sleep + float(self._rng.normal(0, 0.3))) if diary else None,
            fear=_clip(fear) if diary else None,
        )


@dataclass(frozen=True)
class CohortPatient:
    """One simulated patient of the flare-risk cohort, with the ground truth."""

    loads: FloatArray
    pain: FloatArray
    sleep: FloatArray
    flare_onsets: tuple[int, ...]
    in_flare: np.ndarray[tuple[int], np.dtype[np.bool_]]
    sensitivity: float


# The known flare rule: logistic hazard of a flare starting on day t.
HAZARD_INTERCEPT: Final = -4.6
HAZARD_EXCESS: Final = 3.0
HAZARD_SLEEP: Final = 0.35
HAZARD_ACWR: Final = 1.0
HAZARD_NOISE_SD: Final = 0.6
REFRACTORY_DAYS: Final = 4
#: Pain build-up before a flare's onset, as fractions of the flare's size (days s, s+1).
BUILD_UP_FRACTIONS: Final = (0.25, 0.5)
BUILD_UP_DAYS: Final = len(BUILD_UP_FRACTIONS)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def cohort_patient(rng: np.random.Generator, n_days: int) -> CohortPatient:
    """Simulate one patient: habitual load with spikes, sleep, pain, and flares by a known rule.

    The rule (ground truth, unknown to the score): on a day s not in a flare, its
    build-up or the 4-day aftermath, a flare is triggered with probability
    ``sigmoid(-4.6 + 3.0 * s_p * max(x_{s-1}, x_{s-2}) + 0.35 * sleep_deficit_{s-1}
    + 1.0 * max(ACWR_{s-1} - 1, 0) + u_s)``, ``u_s ~ N(0, 0.6)`` unobserved, where
    ``s_p`` is the patient's sensitivity (log-normal), ``x`` the load excess over
    the chronic load, ACWR the rolling acute:chronic ratio and the sleep deficit
    is against the patient's normal sleep. A triggered flare builds up: pain
    rises by about a quarter and then a half of the flare's size on days s and
    s+1 (and sleep suffers), and the flare itself (its onset, 2.5-4 points above
    usual for 3-6 days, decaying) starts on day s+2. Flares in people with
    chronic pain are commonly preceded by such a prodrome of rising pain and poor
    sleep (Affleck et al. 1996; Suri et al. 2018).

    References
    ----------
    Affleck G et al. Sequential daily relations of sleep, pain intensity, and attention
    to pain among women with fibromyalgia. Pain 1996;68:363-368.
    Suri P, Rainville J, de Schepper E, et al. Do physical activities trigger flare-ups
    during an acute low back pain episode? Spine 2018;43:427-433.
    """
    sensitivity = float(rng.lognormal(0.0, 0.5))
    habitual = float(rng.uniform(20, 70))
    spike_p = float(rng.uniform(0.03, 0.15))
    base_pain = float(rng.uniform(2.5, 6.0))
    normal_sleep = float(rng.uniform(5.5, 8.0))
    loads = np.full(n_days, np.nan)
    true_loads = np.zeros(n_days)
    trend = float(rng.uniform(-0.002, 0.006))
    for t in range(n_days):
        level = habitual * (1 + trend * t) * float(rng.lognormal(0, 0.18))
        if rng.random() < spike_p:
            level *= float(rng.uniform(1.6, 2.8))
        true_loads[t] = level
    state = load_state(true_loads)
    excess = np.nan_to_num(state.excess)
    ratio = np.nan_to_num(state.ratio, nan=1.0)
    pain = np.full(n_days, np.nan)
    sleep = np.full(n_days, np.nan)
    true_sleep = np.zeros(n_days)
    in_flare = np.zeros(n_days, dtype=bool)
    onsets: list[int] = []
    flare_left, flare_size, flare_len, last_end = 0, 0.0, 1, -100
    building: list[float] = []
    noise = 0.0
    for t in range(n_days):
        true_sleep[t] = normal_sleep + float(rng.normal(0, 0.8))
        if t > 0 and excess[t - 1] > 0.5:
            true_sleep[t] -= 0.8
        prodrome = 0.0
        if building:
            prodrome = building.pop(0)
            true_sleep[t] -= 0.8
            if not building:
                onsets.append(t + 1)
                flare_len = int(rng.integers(3, 7))
                flare_left = flare_len
        elif flare_left > 0:
            true_sleep[t] -= 1.5
        elif t >= 2 and t - last_end > REFRACTORY_DAYS and t + BUILD_UP_DAYS < n_days:
            deficit = max(normal_sleep - true_sleep[t - 1], 0.0)
            z = (
                HAZARD_INTERCEPT
                + HAZARD_EXCESS * sensitivity * max(excess[t - 1], excess[t - 2])
                + HAZARD_SLEEP * deficit
                + HAZARD_ACWR * max(ratio[t - 1] - 1.0, 0.0)
                + float(rng.normal(0, HAZARD_NOISE_SD))
            )
            if rng.random() < _sigmoid(z):
                flare_size = float(rng.uniform(2.5, 4.0))
                building = [flare_size * f for f in BUILD_UP_FRACTIONS]
                prodrome = building.pop(0)
                true_sleep[t] -= 0.8
        flare_effect = prodrome
        if flare_left > 0 and not prodrome:
            in_flare[t] = True
            flare_effect = flare_size * (flare_left / flare_len) ** 0.5
            flare_left -= 1
            if flare_left == 0:
                last_end = t
        noise = 0.5 * noise + float(rng.normal(0, 0.5))
        lagged = 0.3 * excess[t] + 0.5 * (excess[t - 1] if t >= 1 else 0.0)
        lagged += 0.3 * (excess[t - 2] if t >= 2 else 0.0)
        value = base_pain + sensitivity * lagged + flare_effect + noise
        if rng.random() > 0.1:
            pain[t] = _clip(value)
            sleep[t] = _clip(true_sleep[t])
        if rng.random() > 0.08:
            loads[t] = true_loads[t]
    return CohortPatient(loads, pain, sleep, tuple(onsets), in_flare, sensitivity)


def cohort(n_patients: int, n_days: int, seed: int) -> list[CohortPatient]:
    """A seeded cohort for validating the flare-risk score."""
    rng = np.random.default_rng(seed)
    return [cohort_patient(rng, n_days) for _ in range(n_patients)]
