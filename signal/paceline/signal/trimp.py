"""Heart-rate training load: Banister TRIMP and Edwards zone TRIMP."""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from paceline.signal.errors import ParameterError, UnknownMethodError
from paceline.signal.timebase import S_PER_MIN, FloatArray
from paceline.signal.zones import EDWARDS_FRACTIONS

Sex = Literal["female", "male", "unspecified"]
SEXES: Final[tuple[str, ...]] = ("female", "male", "unspecified")

#: Banister's weighting ``y = a * exp(b * HRr)``: (a, b) per sex (Banister 1991).
BANISTER_COEFFICIENTS: Final[dict[str, tuple[float, float]]] = {
    "male": (0.64, 1.92),
    "female": (0.86, 1.67),
}
#: Edwards (1993) zone weights for 50-60, 60-70, 70-80, 80-90 and >= 90 % HRmax.
EDWARDS_WEIGHTS: Final = (1.0, 2.0, 3.0, 4.0, 5.0)


def banister_weight(hrr_fraction: npt.ArrayLike, sex: Sex) -> FloatArray:
    """Banister's intensity weighting ``y = a * exp(b * HRr)``.

    ``(a, b) = (0.64, 1.92)`` for men and ``(0.86, 1.67)`` for women (Banister 1991).
    For ``"unspecified"`` sex Paceline uses the mean of the two weightings — a
    convention, not part of the model, that keeps the load between the two.
    """
    x = np.asarray(hrr_fraction, dtype=np.float64)
    if sex == "unspecified":
        return 0.5 * (banister_weight(x, "male") + banister_weight(x, "female"))
    coef = BANISTER_COEFFICIENTS.get(sex)
    if coef is None:
        raise UnknownMethodError("sex", sex, SEXES)
    a, b = coef
    return np.asarray(a * np.exp(b * x), dtype=np.float64)


def banister(
    bpm: npt.ArrayLike,
    *,
    hr_rest_bpm: float,
    hr_max_bpm: float,
    sex: Sex,
    step_s: float,
) -> float:
    """Banister's training impulse (TRIMP) of a regularly sampled heart rate.

    ``TRIMP = sum_t (dt_t / 60) * HRr_t * a * exp(b * HRr_t)`` with
    ``HRr = (HR - HRrest) / (HRmax - HRrest)`` clipped to ``[0, 1]`` (a heart rate below
    rest adds nothing, above HRmax counts as HRmax) and ``(a, b)`` from
    `banister_weight`. NaN samples (no data) add nothing; they are not zero effort.

    Parameters
    ----------
    bpm
        Heart rate sampled every `step_s` seconds; NaN where there is no data.
    hr_rest_bpm, hr_max_bpm
        Resting and maximal heart rate.
    sex
        ``"female"``, ``"male"`` or ``"unspecified"``.
    step_s
        Sampling interval, s.

    Returns
    -------
    float
        TRIMP in arbitrary units (minutes weighted by intensity).

    References
    ----------
    Banister EW. Modeling elite athletic performance. In: MacDougall JD, Wenger HA,
    Green HJ, eds. Physiological Testing of the High-Performance Athlete. 2nd ed.
    Champaign, IL: Human Kinetics; 1991:403-424. Morton RH, Fitz-Clarke JR, Banister EW.
    Modeling human performance in running. J Appl Physiol 1990;69(3):1171-1177.
    """
    if not 0 < hr_rest_bpm < hr_max_bpm:
        raise ParameterError("hr_rest_bpm", hr_rest_bpm, f"must be > 0 and below {hr_max_bpm}")
    if step_s <= 0:
        raise ParameterError("step_s", step_s, "must be > 0")
    x = np.asarray(bpm, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    hrr = np.clip((x - hr_rest_bpm) / (hr_max_bpm - hr_rest_bpm), 0.0, 1.0)
    weight = banister_weight(hrr, sex)
    return float(np.sum(hrr * weight)) * (step_s / S_PER_MIN)


def edwards(bpm: npt.ArrayLike, *, hr_max_bpm: float, step_s: float) -> float:
    """Edwards' summated heart-rate-zone TRIMP.

    ``TRIMP = sum_k w_k * minutes in zone k`` with zones 50-60, 60-70, 70-80, 80-90 and
    >= 90 % of HRmax weighted 1, 2, 3, 4, 5 and time below 50 % weighted 0. Plain
    thresholds, as Edwards defined them (no hysteresis). NaN samples add nothing.

    References
    ----------
    Edwards S. The Heart Rate Monitor Book. Sacramento: Fleet Feet Press; 1993.
    """
    if hr_max_bpm <= 0:
        raise ParameterError("hr_max_bpm", hr_max_bpm, "must be > 0")
    if step_s <= 0:
        raise ParameterError("step_s", step_s, "must be > 0")
    x = np.asarray(bpm, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    bounds = np.asarray(EDWARDS_FRACTIONS) * hr_max_bpm
    zone = np.searchsorted(bounds, x, side="right")
    weights = np.concatenate(([0.0], EDWARDS_WEIGHTS))
    return float(weights[zone].sum()) * (step_s / S_PER_MIN)


__all__ = [
    "BANISTER_COEFFICIENTS",
    "EDWARDS_WEIGHTS",
    "SEXES",
    "Sex",
    "banister",
    "banister_weight",
    "edwards",
]
