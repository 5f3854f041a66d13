"""Seeded synthetic heart rate, RR intervals and steps with known ground truth.

For tests, benchmarks and demos. Beats come from an integral pulse frequency modulation
(IPFM) model (Bayly 1968; Mateo & Laguna 2000): the instantaneous heart rate is a target
profile modulated by respiratory sinus arrhythmia (RSA, HF band) and a Mayer-wave (LF
band) component, and a beat fires each time its integral crosses a whole number. RSA
shrinks as heart rate rises (vagal withdrawal), so exercise lowers RMSSD as it should.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import signal as scipy_signal

from paceline.signal.errors import ParameterError
from paceline.signal.timebase import (
    US_PER_MIN,
    US_PER_S,
    BoolArray,
    FloatArray,
    Int8Array,
    IntArray,
)

_FS: Final = 4.0  # Hz, resolution of the modulation signal
_RESP_HZ: Final = 0.25
_LF_BAND_HZ: Final = (0.05, 0.15)


def _slow_noise(rng: np.random.Generator, n: int, *, tau_s: float, fs: float) -> FloatArray:
    """Unit-variance Ornstein-Uhlenbeck noise with time constant `tau_s`."""
    a = float(np.exp(-1.0 / (tau_s * fs)))
    white = rng.standard_normal(n) * np.sqrt(1.0 - a * a)
    out, _ = scipy_signal.lfilter([1.0], [1.0, -a], white, zi=np.array([a * rng.standard_normal()]))
    return np.asarray(out, dtype=np.float64)


def ipfm_beats(
    hr_bpm_1hz: FloatArray,
    *,
    rng: np.random.Generator,
    rsa_fraction: float = 0.04,
    lf_fraction: float = 0.015,
    jitter_ms: float = 2.0,
) -> tuple[FloatArray, FloatArray]:
    """Beat times (s from the start) and RR intervals (ms) for a 1 Hz target heart rate.

    ``m(t) = HR(t) / 60 * (1 + a_HF(t) sin(2 pi f_resp t) + a_LF * LF(t))`` and beat
    ``k`` at ``integral_0^t m = k`` (IPFM; Mateo & Laguna 2000). ``a_HF(t) =
    rsa_fraction * (60 / HR(t))^3`` shrinks the RSA with rising heart rate. White
    jitter of `jitter_ms` models the detector. RR interval ``i`` ends at beat ``i + 1``.

    References
    ----------
    Bayly EJ. Spectral analysis of pulse frequency modulation in the nervous systems.
    IEEE Trans Biomed Eng 1968;15(4):257-265. Mateo J, Laguna P. Improved heart rate
    variability signal analysis from the beat occurrence times according to the IPFM
    model. IEEE Trans Biomed Eng 2000;47(8):985-996.
    """
    if rsa_fraction < 0 or lf_fraction < 0 or jitter_ms < 0:
        raise ParameterError(
            "rsa_fraction/lf_fraction/jitter_ms",
            (rsa_fraction, lf_fraction, jitter_ms),
            "must be >= 0",
        )
    n_s = hr_bpm_1hz.shape[0]
    n = int(n_s * _FS)
    t = np.arange(n) / _FS
    hr = np.interp(t, np.arange(n_s, dtype=np.float64), hr_bpm_1hz)
    resp_hz = _RESP_HZ * (1.0 + 0.1 * _slow_noise(rng, n, tau_s=120.0, fs=_FS))
    resp_phase = 2.0 * np.pi * np.cumsum(resp_hz) / _FS + rng.uniform(0, 2 * np.pi)
    sos = scipy_signal.butter(2, _LF_BAND_HZ, btype="bandpass", fs=_FS, output="sos")
    lf = scipy_signal.sosfilt(sos, rng.standard_normal(n))
    lf = np.asarray(lf, dtype=np.float64) / max(float(np.std(lf)), 1e-12)
    rsa = rsa_fraction * (60.0 / hr) ** 3
    rate_hz = hr / 60.0 * (1.0 + rsa * np.sin(resp_phase) + lf_fraction * lf)
    phase = np.concatenate(([0.0], np.cumsum(rate_hz) / _FS))
    t_phase = np.arange(n + 1) / _FS
    beats = np.interp(np.arange(1.0, np.floor(phase[-1]) + 1.0), phase, t_phase)
    beats = beats + rng.normal(0.0, jitter_ms / 1000.0, beats.shape[0])
    beats.sort()
    rr_ms = np.diff(beats) * 1000.0
    return beats[1:], rr_ms


def simulate_rr(
    duration_s: float,
    *,
    mean_hr_bpm: float = 65.0,
    seed: int = 0,
    rsa_fraction: float = 0.04,
    lf_fraction: float = 0.015,
    hr_sd_bpm: float = 3.0,
) -> FloatArray:
    """A stationary resting RR series (ms) with realistic variability, from `ipfm_beats`.

    The target heart rate wanders around `mean_hr_bpm` as Ornstein-Uhlenbeck noise
    (SD `hr_sd_bpm`, time constant 60 s). At 65 bpm the defaults give an RMSSD of
    roughly 30-45 ms and an SDNN of roughly 40-60 ms, typical of healthy adults at rest
    (Nunan et al. 2010).

    References
    ----------
    Nunan D, Sandercock GRH, Brodie DA. A quantitative systematic review of normal
    values for short-term heart rate variability in healthy adults. Pacing Clin
    Electrophysiol 2010;33(11):1407-1417.
    """
    if duration_s < 10 or not 30.0 <= mean_hr_bpm <= 200.0:
        raise ParameterError(
            "duration_s/mean_hr_bpm", (duration_s, mean_hr_bpm), "need >= 10 s and 30-200 bpm"
        )
    rng = np.random.default_rng(seed)
    n_s = int(duration_s)
    hr = mean_hr_bpm + hr_sd_bpm * _slow_noise(rng, n_s, tau_s=60.0, fs=1.0)
    _, rr = ipfm_beats(hr, rng=rng, rsa_fraction=rsa_fraction, lf_fraction=lf_fraction)
    return rr


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    """One synthetic patient-day in the shapes `daily.daily_metrics` takes, with truth.

    Ground truth per minute: ``true_worn`` (the sensor was on the body) and
    ``true_active`` (a planned walk or exercise was under way).
    """

    start_us: int
    hr_time_us: IntArray
    hr_bpm: FloatArray
    hr_contact: Int8Array
    rr_time_us: IntArray
    rr_ms: FloatArray
    step_time_us: IntArray
    steps: IntArray
    true_worn: BoolArray
    true_active: BoolArray
    n_spikes: int
    n_ectopic: int


# (start minute, length minutes, target bpm, cadence steps/min): planned activities.
_ACTIVITIES: Final = (
    (8 * 60 + 30, 20, 105.0, 105.0),
    (12 * 60 + 30, 30, 110.0, 108.0),
    (17 * 60, 25, 140.0, 130.0),
)
_SLEEP_END_MIN: Final = 6 * 60 + 30
_SLEEP_START_MIN: Final = 23 * 60
_SHOWER: Final = (7 * 60, 20)  # not worn, sensor reports no contact
_ON_TABLE: Final = (14 * 60, 30)  # not worn, sensor repeats a stuck value


def simulate_day(
    *,
    start_us: int = 1_700_006_400_000_000,
    seed: int = 0,
    rest_bpm: float = 55.0,
    day_bpm: float = 72.0,
    n_spikes: int = 20,
    ectopic_rate: float = 0.002,
) -> SimulatedDay:
    """A 24-hour day at 1 Hz: sleep, a shower and a table break off-body, three activities.

    Timeline (minutes from `start_us`): asleep until 06:30 and from 23:00 near
    `rest_bpm`; awake near `day_bpm`; not worn 07:00-07:20 (contact 0, bpm 0, no RR) and
    14:00-14:30 (contact unknown, stuck at one value, no RR); walks at 08:30 (20 min,
    ~105 bpm, ~105 steps/min) and 12:30 (30 min, ~110 bpm, ~108 steps/min), a jog at
    17:00 (25 min, ~140 bpm, ~130 steps/min). Heart rate follows the targets with a
    30 s first-order lag, is reported every second as ``60000 / mean of the last three
    RR`` rounded to whole bpm, and carries `n_spikes` isolated +45 bpm artefacts. A
    fraction `ectopic_rate` of beats are premature (RR x 0.65) with a compensatory pause.
    86,400 heart-rate rows, ~100,000 RR rows, 1,440 step rows.
    """
    if start_us % US_PER_MIN:
        raise ParameterError("start_us", start_us, "must fall on a whole minute")
    rng = np.random.default_rng(seed)
    n_s = 86_400
    n_min = 1_440
    minute = np.arange(n_s) // 60
    asleep_s = (minute < _SLEEP_END_MIN) | (minute >= _SLEEP_START_MIN)
    target = np.where(asleep_s, rest_bpm, day_bpm)
    cadence_min = np.zeros(n_min)
    true_active = np.zeros(n_min, dtype=np.bool_)
    for start_min, length, bpm, cadence in _ACTIVITIES:
        target[start_min * 60 : (start_min + length) * 60] = bpm
        cadence_min[start_min : start_min + length] = cadence + rng.normal(0, 3, length)
        true_active[start_min : start_min + length] = True
    target = target + 3.0 * _slow_noise(rng, n_s, tau_s=300.0, fs=1.0)
    tau = 30.0
    lagged, _ = scipy_signal.lfilter(
        [1.0 / tau], [1.0, -(1.0 - 1.0 / tau)], target, zi=np.array([(1 - 1 / tau) * target[0]])
    )
    hr_target = np.asarray(lagged, dtype=np.float64)
    beat_s, rr = ipfm_beats(hr_target, rng=rng)
    # Premature beats: the interval shortens, the next lengthens by the same amount.
    n_ect = round(ectopic_rate * rr.shape[0])
    ect = rng.choice(np.arange(1, rr.shape[0] - 1), size=n_ect, replace=False)
    shift = 0.35 * rr[ect]
    rr[ect] -= shift
    rr[ect + 1] += shift
    beat_s = beat_s.copy()
    beat_s[ect] -= shift / 1000.0

    true_worn = np.ones(n_min, dtype=np.bool_)
    off_s = np.zeros(n_s, dtype=np.bool_)
    for off_start, off_len in (_SHOWER, _ON_TABLE):
        true_worn[off_start : off_start + off_len] = False
        off_s[off_start * 60 : (off_start + off_len) * 60] = True
    beat_on = ~off_s[np.minimum(beat_s.astype(np.int64), n_s - 1)]

    # Reported heart rate: 60000 / mean of the last three RR ending before each second.
    sec = np.arange(n_s, dtype=np.float64)
    last = np.searchsorted(beat_s, sec, side="right") - 1
    csum = np.concatenate(([0.0], np.cumsum(rr)))
    hi = np.clip(last + 1, 1, rr.shape[0])
    lo = np.clip(hi - 3, 0, None)
    bpm = np.round(60_000.0 / ((csum[hi] - csum[lo]) / (hi - lo)))
    spikes = rng.choice(np.flatnonzero(~off_s & (minute > 10)), size=n_spikes, replace=False)
    bpm[spikes] += 45.0
    contact = np.ones(n_s, dtype=np.int8)
    shower = slice(_SHOWER[0] * 60, (_SHOWER[0] + _SHOWER[1]) * 60)
    bpm[shower] = 0.0
    contact[shower] = 0
    table = slice(_ON_TABLE[0] * 60, (_ON_TABLE[0] + _ON_TABLE[1]) * 60)
    bpm[table] = 71.0
    contact[table] = -1

    awake_min = ~((np.arange(n_min) < _SLEEP_END_MIN) | (np.arange(n_min) >= _SLEEP_START_MIN))
    incidental = awake_min & true_worn & ~true_active & (rng.random(n_min) < 0.25)
    cadence_min[incidental] = rng.integers(2, 40, int(incidental.sum()))
    steps = np.round(np.where(true_worn, cadence_min, 0.0)).astype(np.int64)

    return SimulatedDay(
        start_us=start_us,
        hr_time_us=start_us + np.arange(n_s, dtype=np.int64) * US_PER_S,
        hr_bpm=bpm,
        hr_contact=contact,
        rr_time_us=start_us + np.round(beat_s[beat_on] * US_PER_S).astype(np.int64),
        rr_ms=rr[beat_on],
        step_time_us=start_us + (np.arange(n_min, dtype=np.int64) + 1) * US_PER_MIN,
        steps=steps,
        true_worn=true_worn,
        true_active=true_active,
        n_spikes=n_spikes,
        n_ectopic=n_ect,
    )


__all__ = ["SimulatedDay", "ipfm_beats", "simulate_day", "simulate_rr"]
