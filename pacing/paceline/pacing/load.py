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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from paceline.signal.ewma import AcuteChronic, acute_chronic
from paceline.signal.ewma import ewma as signal_ewma

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHRONIC_SPAN_DAYS: Final = 28
# A week of valid days before a day's load is compared with the chronic load.
MIN_REFERENCE_DAYS: Final = 7


def as_array(values: Sequence[float | None]) -> FloatArray:
    """Loads as a float array with NaN for unknown days."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def ewma(values: Sequence[float | None] | FloatArray, span_days: int) -> FloatArray:
    """EWMA of daily load (Williams et al. 2017) seeded with the mean of the first valid week.

    The recursion is `paceline.signal.ewma.ewma` (NaN days carried forward). Its
    seed is the mean of the first `MIN_REFERENCE_DAYS` valid days rather than the
    first day alone, so that a patient whose first recorded day was unusual does
    not carry that day in the chronic load for weeks. Nothing reads the average
    before that many valid days, so the seed never looks ahead of a day in use.
    """
    x = values if isinstance(values, np.ndarray) else as_array(values)
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

    @property
    def ratio(self) -> FloatArray:
        """Rolling acute:chronic ratio (Gabbett 2016); NaN with too few known days."""
        return self.acwr.ratio

    @property
    def excess(self) -> FloatArray:
        """How far each day's load rose above the chronic load up to the day before (``>= 0``)."""
        return load_excess(self.loads, self.chronic, self.n_valid)


def load_state(values: Sequence[float | None] | FloatArray) -> LoadState:
    """Chronic load and acute:chronic ratio of a daily series (NaN or None for unknown days)."""
    x = (values if isinstance(values, np.ndarray) else as_array(values)).astype(np.float64)
    return LoadState(
        loads=x,
        chronic=ewma(x, CHRONIC_SPAN_DAYS),
        n_valid=np.cumsum(~np.isnan(x)).astype(np.int64),
        acwr=acute_chronic(x),
    )


def load_excess(loads: FloatArray, chronic: FloatArray, n_valid: IntArray) -> FloatArray:
    """``max(load_t / chronic_{t-1} - 1, 0)``: the day's load above the patient's own chronic load."""
    out = np.full(loads.shape[0], np.nan)
    for t in range(1, loads.shape[0]):
        ref = chronic[t - 1]
        if np.isnan(loads[t]) or n_valid[t - 1] < MIN_REFERENCE_DAYS or not ref > 0:
            continue
        out[t] = max(loads[t] / ref - 1.0, 0.0)
    return out
