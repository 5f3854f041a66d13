"""Heart-rate anchors and zones: HRmax, resting HR, %HRmax and Karvonen zones, pacing ceiling.

Zone ``0`` is everything below the first boundary; zone ``k`` (``1..K``) lies between
boundary ``k`` and ``k + 1``. The default boundaries 50/60/70/80/90 % give Edwards'
five zones (Edwards 1993) plus zone 0 below 50 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import (
    InsufficientDataError,
    ParameterError,
    UnknownMethodError,
)
from paceline.signal.timebase import (
    S_PER_MIN,
    BoolArray,
    FloatArray,
    Grid,
    Int8Array,
    Minutes,
)

HRMaxMethod = Literal["tanaka", "fox", "gellish"]

_HR_MAX_FORMULAS: Final[dict[str, Callable[[float], float]]] = {
    "tanaka": lambda age: 208.0 - 0.7 * age,
    "fox": lambda age: 220.0 - age,
    "gellish": lambda age: 207.0 - 0.7 * age,
}
HR_MAX_METHODS: Final[tuple[str, ...]] = tuple(_HR_MAX_FORMULAS)

#: Edwards (1993) zone boundaries as fractions of HRmax.
EDWARDS_FRACTIONS: Final = (0.5, 0.6, 0.7, 0.8, 0.9)
# Two bpm either side of a boundary is about the beat-to-beat jitter of a resting
# strap reading, so a heart rate sitting on a boundary stays in one zone.
DEFAULT_HYSTERESIS_BPM: Final = 2.0
DEFAULT_RESTING_WINDOW_MIN: Final = 10
# A minute counts toward a resting window only if at least this much of it had data.
DEFAULT_MIN_COVERAGE: Final = 0.5


def hr_max(
    age_years: float | None,
    *,
    measured_bpm: float | None = None,
    method: HRMaxMethod = "tanaka",
) -> float:
    """Maximal heart rate: the measured value when known, else an age formula.

    - ``"tanaka"`` (default): ``HRmax = 208 - 0.7 * age`` (Tanaka, Monahan & Seals 2001).
    - ``"fox"``: ``HRmax = 220 - age`` (Fox, Naughton & Haskell 1971).
    - ``"gellish"``: ``HRmax = 207 - 0.7 * age`` (Gellish et al. 2007).

    Parameters
    ----------
    age_years
        Age in years (ignored when `measured_bpm` is given).
    measured_bpm
        HRmax from an exercise test, if any.
    method
        Formula used when no measurement is given.

    Raises
    ------
    UnknownMethodError
        For an unknown `method`.
    ParameterError
        When neither a measurement nor a plausible age (5-110 years) is given.

    References
    ----------
    Tanaka H, Monahan KD, Seals DR. Age-predicted maximal heart rate revisited. J Am Coll
    Cardiol 2001;37(1):153-156. Fox SM, Naughton JP, Haskell WL. Physical activity and
    the prevention of coronary heart disease. Ann Clin Res 1971;3:404-432. Gellish RL et
    al. Longitudinal modeling of the relationship between age and maximal heart rate.
    Med Sci Sports Exerc 2007;39(5):822-829.
    """
    formula = _HR_MAX_FORMULAS.get(method)
    if formula is None:
        raise UnknownMethodError("HRmax method", method, HR_MAX_METHODS)
    if measured_bpm is not None:
        if not 100.0 <= measured_bpm <= 250.0:
            raise ParameterError("measured_bpm", measured_bpm, "must be between 100 and 250")
        return float(measured_bpm)
    if age_years is None or not 5.0 <= age_years <= 110.0:
        raise ParameterError("age_years", age_years, "needed (5-110) when HRmax is not measured")
    return formula(float(age_years))


@dataclass(frozen=True, slots=True)
class RestingHR:
    """Lowest sustained heart rate of a recording and where it was found."""

    bpm: float
    start_us: int
    window_min: int


def resting_hr(
    minutes: Minutes,
    *,
    window_min: int = DEFAULT_RESTING_WINDOW_MIN,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> RestingHR | None:
    """Resting heart rate as the lowest `window_min`-minute rolling mean of minute means.

    ``HRrest = min_t mean(HR_min[t .. t + window_min - 1])`` over windows whose every
    minute had data for at least `min_coverage` of its length. Sustained over ten
    minutes, this is the heart rate at rest or asleep rather than a transient dip; a
    single low minute cannot set it. Returns None when no window qualifies.

    The window length is a Paceline convention, not a published standard: consumer
    wearables estimate resting heart rate from the lowest stable stretches of the day
    and night in the same spirit, and a ten-minute mean is long enough to average out
    respiratory sinus arrhythmia and short sensor dropouts.

    Parameters
    ----------
    minutes
        Per-minute mean heart rate (NaN where no data), e.g. `timebase.per_minute` of
        the worn, cleaned heart rate.
    window_min
        Length of the sustained window, minutes.
    min_coverage
        Minimum fraction of each minute that must hold data.
    """
    if window_min < 1:
        raise ParameterError("window_min", window_min, "must be >= 1")
    if not 0.0 < min_coverage <= 1.0:
        raise ParameterError("min_coverage", min_coverage, "must be in (0, 1]")
    ok = (minutes.coverage >= min_coverage) & ~np.isnan(minutes.mean)
    n = minutes.n_minutes
    if n < window_min:
        return None
    vals = np.where(ok, minutes.mean, 0.0)
    csum = np.concatenate(([0.0], np.cumsum(vals)))
    ccount = np.concatenate(([0], np.cumsum(ok)))
    sums = csum[window_min:] - csum[:-window_min]
    full = (ccount[window_min:] - ccount[:-window_min]) == window_min
    if not full.any():
        return None
    means = np.where(full, sums / window_min, np.inf)
    best = int(np.argmin(means))
    return RestingHR(
        bpm=float(means[best]),
        start_us=minutes.start_us + best * 60_000_000,
        window_min=window_min,
    )


@dataclass(frozen=True, slots=True)
class ZoneModel:
    """Heart-rate zone boundaries in bpm: zone k starts at ``bounds_bpm[k - 1]``."""

    bounds_bpm: tuple[float, ...]
    basis: str = "custom"

    def __post_init__(self) -> None:
        """Check the boundaries are positive and strictly ascending."""
        b = np.asarray(self.bounds_bpm, dtype=np.float64)
        if b.shape[0] < 1 or not np.all(np.isfinite(b)) or np.any(b <= 0):
            raise ParameterError("bounds_bpm", self.bounds_bpm, "need finite positive bpm values")
        if np.any(np.diff(b) <= 0):
            raise ParameterError("bounds_bpm", self.bounds_bpm, "must be strictly ascending")

    @property
    def n_zones(self) -> int:
        """Number of zones including zone 0 below the first boundary."""
        return len(self.bounds_bpm) + 1


def percent_hrmax_zones(
    hr_max_bpm: float, fractions: Sequence[float] = EDWARDS_FRACTIONS
) -> ZoneModel:
    """Zones at fixed fractions of HRmax: ``bound_k = f_k * HRmax`` (Edwards 1993).

    References
    ----------
    Edwards S. The Heart Rate Monitor Book. Sacramento: Fleet Feet Press; 1993.
    """
    _check_fractions(fractions)
    if hr_max_bpm <= 0:
        raise ParameterError("hr_max_bpm", hr_max_bpm, "must be > 0")
    return ZoneModel(tuple(float(f * hr_max_bpm) for f in fractions), basis="hrmax")


def hrr_zones(
    hr_max_bpm: float,
    hr_rest_bpm: float,
    fractions: Sequence[float] = EDWARDS_FRACTIONS,
) -> ZoneModel:
    """Zones on the heart-rate reserve: ``bound_k = HRrest + f_k * (HRmax - HRrest)``.

    The Karvonen method (Karvonen, Kentala & Mustala 1957), which scales intensity to
    the range a person actually has, so a high resting heart rate — common when
    deconditioned or in pain — does not put light effort into a high zone.

    References
    ----------
    Karvonen MJ, Kentala E, Mustala O. The effects of training on heart rate; a
    longitudinal study. Ann Med Exp Biol Fenn 1957;35(3):307-315.
    """
    _check_fractions(fractions)
    _check_anchors(hr_max_bpm, hr_rest_bpm)
    reserve = hr_max_bpm - hr_rest_bpm
    return ZoneModel(tuple(float(hr_rest_bpm + f * reserve) for f in fractions), basis="hrr")


def _check_fractions(fractions: Sequence[float]) -> None:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape[0] < 1 or np.any(f <= 0) or np.any(f > 1.2) or np.any(np.diff(f) <= 0):
        raise ParameterError("fractions", tuple(fractions), "need ascending values in (0, 1.2]")


def _check_anchors(hr_max_bpm: float, hr_rest_bpm: float) -> None:
    if not 0 < hr_rest_bpm < hr_max_bpm:
        raise ParameterError(
            "hr_rest_bpm", hr_rest_bpm, f"must be > 0 and below HRmax ({hr_max_bpm})"
        )


def _schmitt(x: FloatArray, bound: float, half_width: float, seg_start: BoolArray) -> BoolArray:
    """Two-level Schmitt trigger, vectorised by carrying the last forced decision forward.

    Above ``bound + h`` the output is forced True, below ``bound - h`` forced False,
    and at the first sample of each valid segment it is ``x >= bound``; inside the dead
    band it repeats the last forced value. NaN samples count as forced (their output is
    discarded by the caller), so every dead-band sample has a forced one before it in
    its own segment.
    """
    with np.errstate(invalid="ignore"):
        value = x >= bound
        forced = value & (x >= bound + half_width)
        forced |= x < bound - half_width
    forced |= seg_start
    forced |= np.isnan(x)
    undecided = np.flatnonzero(~forced)
    if undecided.shape[0]:
        decided = np.flatnonzero(forced)
        last = decided[np.searchsorted(decided, undecided) - 1]
        value[undecided] = value[last]
    return np.asarray(value, dtype=np.bool_)


def classify(
    bpm: npt.ArrayLike,
    model: ZoneModel,
    *,
    hysteresis_bpm: float = DEFAULT_HYSTERESIS_BPM,
) -> Int8Array:
    """Zone of every sample of a regular series, with hysteresis; ``-1`` where bpm is NaN.

    Each boundary ``b`` acts as a Schmitt trigger: the heart rate must reach
    ``b + h`` to enter the zone above and fall below ``b - h`` to leave it, so a heart
    rate hovering at a boundary does not flip zones every second. The zone is the
    number of boundaries currently "on". This equals the sequential rule
    ``z_t = clip(z_{t-1}, zone(x_t - h), zone(x_t + h))`` as long as boundaries are at
    least ``2h`` apart (enforced). After a gap (NaN) the state restarts without
    hysteresis. ``h = 0`` gives plain thresholding. Each boundary is a Schmitt
    trigger (Schmitt 1938), the standard cure for chatter at a threshold.

    Parameters
    ----------
    bpm
        Heart rate on a regular grid; NaN where there is no data.
    model
        Zone boundaries.
    hysteresis_bpm
        Half-width ``h`` of the dead band around each boundary, bpm.

    Returns
    -------
    numpy.ndarray
        int8 zone index per sample (``0 .. model.n_zones - 1``), ``-1`` for no data.

    References
    ----------
    Schmitt OH. A thermionic trigger. J Sci Instrum 1938;15(1):24-26.
    """
    if hysteresis_bpm < 0:
        raise ParameterError("hysteresis_bpm", hysteresis_bpm, "must be >= 0")
    bounds = np.asarray(model.bounds_bpm, dtype=np.float64)
    if bounds.shape[0] > 1 and float(np.min(np.diff(bounds))) < 2 * hysteresis_bpm:
        raise ParameterError(
            "hysteresis_bpm", hysteresis_bpm, "must be at most half the narrowest zone width"
        )
    x = np.asarray(bpm, dtype=np.float64).reshape(-1)
    valid = ~np.isnan(x)
    seg_start = valid.copy()
    seg_start[1:] &= ~valid[:-1]
    zone = np.zeros(x.shape[0], dtype=np.int8)
    for b in bounds:
        zone += _schmitt(x, float(b), hysteresis_bpm, seg_start)
    zone[~valid] = -1
    return zone


def above(
    bpm: npt.ArrayLike, threshold_bpm: float, *, hysteresis_bpm: float = DEFAULT_HYSTERESIS_BPM
) -> BoolArray:
    """Whether each sample is above a single threshold, with the hysteresis of `classify`."""
    zone = classify(bpm, ZoneModel((threshold_bpm,)), hysteresis_bpm=hysteresis_bpm)
    return np.asarray(zone == 1, dtype=np.bool_)


def time_in_zones(zones: Int8Array, n_zones: int, *, step_s: float) -> FloatArray:
    """Minutes spent in each zone: ``count(zone == k) * step_s / 60``; ``-1`` is ignored."""
    if step_s <= 0:
        raise ParameterError("step_s", step_s, "must be > 0")
    z = zones[zones >= 0].astype(np.int64)
    if z.shape[0] and int(z.max()) >= n_zones:
        raise ParameterError("n_zones", n_zones, f"zone {int(z.max())} occurs in the data")
    return np.bincount(z, minlength=n_zones).astype(np.float64) * (step_s / S_PER_MIN)


def ceiling_from_reserve(hr_max_bpm: float, hr_rest_bpm: float, fraction: float) -> float:
    """Pacing ceiling at a fraction of the heart-rate reserve (Karvonen 1957).

    ``ceiling = HRrest + fraction * (HRmax - HRrest)``.
    """
    _check_anchors(hr_max_bpm, hr_rest_bpm)
    if not 0.0 < fraction <= 1.0:
        raise ParameterError("fraction", fraction, "must be in (0, 1]")
    return hr_rest_bpm + fraction * (hr_max_bpm - hr_rest_bpm)


def calibrate_ceiling(
    minute_bpm: npt.ArrayLike,
    *,
    percentile: float = 90.0,
    min_minutes: int = 600,
) -> float:
    """Pacing ceiling from the patient's own baseline: a high percentile of worn minutes.

    ``ceiling = P_q(HR_min)`` over the per-minute mean heart rates of a baseline
    period (typically the first one or two weeks, activity as usual). With ``q = 90``
    the patient spends about a tenth of their baseline time above it, so the ceiling
    marks what is unusually hard *for them*. Anchoring quotas to the patient's own
    baseline rather than to norms is the principle of graded activity (Lindström et
    al. 1992); the percentile itself is a Paceline convention for the clinician to
    review, not a published cut-off.

    Raises
    ------
    InsufficientDataError
        With fewer than `min_minutes` minutes of heart rate (ten hours by default).

    References
    ----------
    Lindström I et al. The effect of graded activity on patients with subacute low back
    pain: a randomized prospective clinical study with an operant-conditioning
    behavioral approach. Phys Ther 1992;72(4):279-290.
    """
    if not 50.0 <= percentile < 100.0:
        raise ParameterError("percentile", percentile, "must be in [50, 100)")
    x = np.asarray(minute_bpm, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    if x.shape[0] < min_minutes:
        raise InsufficientDataError(
            "ceiling calibration (minutes of heart rate)", min_minutes, int(x.shape[0])
        )
    return float(np.percentile(x, percentile))


def grid_zone_minutes(
    grid: Grid, model: ZoneModel, *, hysteresis_bpm: float = DEFAULT_HYSTERESIS_BPM
) -> FloatArray:
    """Minutes in each zone of a gridded heart rate (`classify` then `time_in_zones`)."""
    zones = classify(grid.values, model, hysteresis_bpm=hysteresis_bpm)
    return time_in_zones(zones, model.n_zones, step_s=grid.step_s)


__all__ = [
    "DEFAULT_HYSTERESIS_BPM",
    "EDWARDS_FRACTIONS",
    "HR_MAX_METHODS",
    "HRMaxMethod",
    "RestingHR",
    "ZoneModel",
    "above",
    "calibrate_ceiling",
    "ceiling_from_reserve",
    "classify",
    "grid_zone_minutes",
    "hr_max",
    "hrr_zones",
    "percent_hrmax_zones",
    "resting_hr",
    "time_in_zones",
]
