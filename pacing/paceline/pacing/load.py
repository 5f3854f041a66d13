"""Chronic load by an exponentially weighted moving average, the acute:chronic ratio, load excess.

The chronic load is the 28-day EWMA of Williams et al. (2017), decay ``lambda =
2 / (N + 1)``: ``EWMA_t = lambda * load_t + (1 - lambda) * EWMA_{t-1}``.
Non-wear days carry the previous value forward (no load is known, which is not
the same as zero load). It is the patient's own reference for the load excess
(flare risk, pain response) and the chronic decline (avoidance).

The acute:chronic workload ratio is the rolling-average ratio of
`paceline.signal.ewma.acute_chronic`, the form its thresholds (1.5 danger, 1.3
upper end of the "sweet spot") were defined for (Gabbett 2016). The ratio comes
from team sport and its injury thresholds are disputed (Impellizzeri et al.
2020); Paceline uses it only as one signal of a sudden rise against the
patient's own history.

Prescribed exercise sessions add Foster's session-RPE load (CR-10 rating times
minutes, Foster et al. 2001) beside the HR (TRIMP) and step load: `SessionLoad`
runs the same rolling acute:chronic ratio over it, with Foster's (1998) weekly
load, monotony and strain.

The EWMA recursion is `paceline.signal.ewma.ewma`; this module adds what pacing
needs around it: the seed, the count of valid days behind each value, and the
excess of a day's load over the chronic load.

References
----------
Williams S, West S, Cross MJ, Stokes KA. Better way to determine the acute:chronic
workload ratio? Br J Sports Med 2017;51:209-210.
Gabbett TJ. The training-injury prevention paradox: should athletes be training
smarter and harder? Br J Sports Med 2016;50:273-280.
Impellizzeri FM et al. Acute:chronic workload ratio: conceptual issues and
fundamental pitfalls. Int J Sports Physiol Perform 2020;15:907-913.
Foster C, Florhaug JA, Franklin J, et al. A new approach to monitoring exercise
training. J Strength Cond Res 2001;15:109-115.
Foster C. Monitoring training in athletes with reference to overtraining syndrome.
Med Sci Sports Exerc 1998;30:1164-1168.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.ewma import AcuteChronic, Foster, acute_chronic, monotony_strain
from paceline.signal.ewma import ewma as signal_ewma

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHRONIC_SPAN_DAYS: Final = 28
# A week of valid days before a day's load is compared with the chronic load.
MIN_REFERENCE_DAYS: Final = 7


def as_array(values: Sequence[float | None]) -> FloatArray:
    """Loads as a float array with NaN for unknown days."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


@dataclass(frozen=True)
class ChronicBase:
    """The chronic-load EWMA as it stood at the end of one day: enough to continue it exactly.

    `seed` holds the first `MIN_REFERENCE_DAYS` valid loads (the EWMA's seed is
    their mean); a base is only made once the seed is complete, since before that
    the values depend on days still to come.
    """

    n_valid: int
    seed: tuple[float, ...]
    chronic: float


def ewma(
    values: Sequence[float | None] | FloatArray, span_days: int, base: ChronicBase | None = None
) -> FloatArray:
    """EWMA of daily load (Williams et al. 2017) seeded with the mean of the first valid week.

    The recursion is `paceline.signal.ewma.ewma` (NaN days carried forward). Its
    seed is the mean of the first `MIN_REFERENCE_DAYS` valid days rather than the
    first day alone, so that a patient whose first recorded day was unusual does
    not carry that day in the chronic load for weeks. Nothing reads the average
    before that many valid days, so the seed never looks ahead of a day in use.

    With a `base` (the EWMA at the end of the day before `values` begin), the
    recursion continues from it: the same values, to the last bit, as computing
    it over the whole history (the filter's state is exactly ``(1 - lambda) *
    EWMA``), so an evaluation need not read the history from enrolment.
    """
    x = values if isinstance(values, np.ndarray) else as_array(values)
    if base is not None:
        out = signal_ewma(x, span_days=span_days, initial=base.chronic)
        # Days before the window's first valid day carry the base forward.
        out[np.isnan(out)] = base.chronic
        return out
    known = x[~np.isnan(x)]
    if known.size == 0:
        return np.full(x.shape[0], np.nan)
    seed = float(known[:MIN_REFERENCE_DAYS].mean())
    return signal_ewma(x, span_days=span_days, initial=seed)


@dataclass(frozen=True)
class LoadState:
    """Daily load with its chronic EWMA, the count of valid days so far, and the ACWR."""

    loads: FloatArray
    chronic: FloatArray
    n_valid: IntArray
    acwr: AcuteChronic
    #: The chronic load the series continues from (None: it starts at enrolment).
    base: ChronicBase | None = None

    @property
    def ratio(self) -> FloatArray:
        """Rolling acute:chronic ratio (Gabbett 2016); NaN with too few known days."""
        return self.acwr.ratio

    @property
    def excess(self) -> FloatArray:
        """How far each day's load rose above the chronic load up to the day before (``>= 0``)."""
        return load_excess(self.loads, self.chronic, self.n_valid, self.base)

    def base_at(self, i: int) -> ChronicBase | None:
        """The base to continue from after day `i` (None while the seed is incomplete)."""
        if self.base is not None:
            seed = self.base.seed
        else:
            known = self.loads[: i + 1]
            seed = tuple(float(v) for v in known[~np.isnan(known)][:MIN_REFERENCE_DAYS])
        if len(seed) < MIN_REFERENCE_DAYS or np.isnan(self.chronic[i]):
            return None
        return ChronicBase(int(self.n_valid[i]), seed, float(self.chronic[i]))


def load_state(
    values: Sequence[float | None] | FloatArray, base: ChronicBase | None = None
) -> LoadState:
    """Chronic load and acute:chronic ratio of a daily series (NaN or None for unknown days)."""
    x = (values if isinstance(values, np.ndarray) else as_array(values)).astype(np.float64)
    before = 0 if base is None else base.n_valid
    return LoadState(
        loads=x,
        chronic=ewma(x, CHRONIC_SPAN_DAYS, base),
        n_valid=before + np.cumsum(~np.isnan(x)).astype(np.int64),
        acwr=acute_chronic(x),
        base=base,
    )


def load_excess(
    loads: FloatArray, chronic: FloatArray, n_valid: IntArray, base: ChronicBase | None = None
) -> FloatArray:
    """``max(load_t / chronic_{t-1} - 1, 0)``: the day's load above the patient's own chronic load.

    The first day compares with `base` (the chronic load of the day before the
    series) when there is one.
    """
    out = np.full(loads.shape[0], np.nan)
    for t in range(loads.shape[0]):
        if t == 0:
            if base is None:
                continue
            ref, seen = base.chronic, base.n_valid
        else:
            ref, seen = chronic[t - 1], int(n_valid[t - 1])
        if np.isnan(loads[t]) or seen < MIN_REFERENCE_DAYS or not ref > 0:
            continue
        out[t] = max(loads[t] / ref - 1.0, 0.0)
    return out


def session_rpe_load(rpe: float, duration_min: float) -> float:
    """Foster's session-RPE load: the session's CR-10 rating times its minutes (arbitrary units).

    The patient rates the whole session on Borg's CR-10 scale about 30 minutes
    after it; ``load = RPE * duration_min`` (Foster et al. 2001). It measures
    internal load where heart rate does not (strength and balance work barely
    move it) and sits beside TRIMP (HR load) and steps.

    References
    ----------
    Foster C, Florhaug JA, Franklin J, et al. A new approach to monitoring exercise
    training. J Strength Cond Res 2001;15:109-115.
    """
    return float(rpe) * float(duration_min)


@dataclass(frozen=True)
class SessionLoad:
    """Daily session-RPE load with its acute:chronic ratio and Foster's weekly figures.

    Days are 0 when no session was logged (Foster counts a day without training
    as zero load, unlike an unworn band) and NaN before the first prescription.
    Every figure comes from rolling windows (7 and 28 days), so a bounded window
    of days gives the same values as the whole history.
    """

    loads: FloatArray
    acwr: AcuteChronic
    foster: Foster

    @property
    def weekly(self) -> float | None:
        """The last 7 days' session-RPE load (None with too few days)."""
        v = self.foster.weekly_load[-1] if self.loads.size else np.nan
        return None if np.isnan(v) else float(v)

    @property
    def ratio(self) -> float | None:
        """The last day's rolling acute:chronic ratio (None with too few days)."""
        v = self.acwr.ratio[-1] if self.loads.size else np.nan
        return None if np.isnan(v) else float(v)


def session_load_state(daily: Sequence[float | None] | FloatArray) -> SessionLoad:
    """The session-RPE load model of a daily series (Foster 1998, 2001; Gabbett 2016)."""
    x = (daily if isinstance(daily, np.ndarray) else as_array(daily)).astype(np.float64)
    return SessionLoad(x, acute_chronic(x), monotony_strain(x))
