"""Cleaning: heart-rate samples (range, contact, implausible jumps) and RR intervals (ectopy).

Both cleaners say what they did to every input element (`flag`) and count it, so a
caller can report how much of a recording was discarded or corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from paceline.signal.errors import InputShapeError, ParameterError, UnknownMethodError
from paceline.signal.timebase import (
    US_PER_S,
    BoolArray,
    FloatArray,
    Int8Array,
    IntArray,
    as_epoch_us,
    as_float,
    check_sorted,
)

#: Contact values as the BLE Heart Rate Measurement reports them, widened to int8.
CONTACT_UNKNOWN: Final = -1
CONTACT_NONE: Final = 0
CONTACT_OK: Final = 1

# Adult heart rate outside 30-220 bpm is not a heart rate a wrist or chest sensor
# measures correctly; below 30 it is nearly always a lost pulse, above 220 a harmonic.
DEFAULT_MIN_BPM: Final = 30.0
DEFAULT_MAX_BPM: Final = 220.0
# A 25 bpm excursion away from the local median for less than half the window is a
# motion artefact or a beat-detection glitch, not a heart rate change: real changes of
# that size build up over tens of seconds and so move the median with them.
DEFAULT_JUMP_BPM: Final = 25.0
DEFAULT_JUMP_WINDOW: Final = 15

# RR intervals outside 300-2000 ms (200-30 bpm) are missed or doubled detections.
DEFAULT_MIN_RR_MS: Final = 300.0
DEFAULT_MAX_RR_MS: Final = 2000.0
DEFAULT_RR_THRESHOLD: Final = 0.2
DEFAULT_RR_WINDOW: Final = 11
# BLE notifications batch up to a few RR values and are stamped on receipt, so beat
# times jitter by up to about a second; a longer hole means beats were lost.
DEFAULT_RR_MAX_GAP_S: Final = 2.0


class HRFlag(IntEnum):
    """What `clean_hr` did with one heart-rate sample."""

    KEPT = 0
    NO_CONTACT = 1
    OUT_OF_RANGE = 2
    JUMP = 3


class RRFlag(IntEnum):
    """What `clean_rr` did with one RR interval."""

    KEPT = 0
    OUT_OF_RANGE = 1
    REMOVED_ECTOPIC = 2
    CORRECTED_ECTOPIC = 3


RRMethod = Literal["malik", "karlsson"]
RRAction = Literal["remove", "interpolate"]
RR_METHODS: Final[tuple[str, ...]] = ("malik", "karlsson")
RR_ACTIONS: Final[tuple[str, ...]] = ("remove", "interpolate")


@dataclass(frozen=True, slots=True)
class CleanHR:
    """Heart-rate samples that survived cleaning, and what happened to each input sample."""

    time_us: IntArray
    bpm: FloatArray
    flag: Int8Array

    @property
    def n_input(self) -> int:
        """Number of samples given."""
        return int(self.flag.shape[0])

    @property
    def n_kept(self) -> int:
        """Number of samples kept."""
        return int(self.time_us.shape[0])

    @property
    def n_no_contact(self) -> int:
        """Samples dropped because the sensor reported no skin contact."""
        return int(np.count_nonzero(self.flag == HRFlag.NO_CONTACT))

    @property
    def n_out_of_range(self) -> int:
        """Samples dropped for lying outside the physiological range."""
        return int(np.count_nonzero(self.flag == HRFlag.OUT_OF_RANGE))

    @property
    def n_jumps(self) -> int:
        """Samples dropped as implausible jumps."""
        return int(np.count_nonzero(self.flag == HRFlag.JUMP))


def clean_hr(
    time: npt.ArrayLike,
    bpm: npt.ArrayLike,
    sensor_contact: npt.ArrayLike | None = None,
    *,
    min_bpm: float = DEFAULT_MIN_BPM,
    max_bpm: float = DEFAULT_MAX_BPM,
    jump_bpm: float = DEFAULT_JUMP_BPM,
    jump_window: int = DEFAULT_JUMP_WINDOW,
) -> CleanHR:
    """Drop no-contact, out-of-range and implausibly jumping heart-rate samples.

    Applied in this order, each step only to what the previous one kept:

    1. ``sensor_contact == 0`` (the sensor says it is not touching skin) → ``NO_CONTACT``.
       ``-1`` (the sensor does not report contact) and ``1`` pass.
    2. ``bpm`` NaN or outside ``[min_bpm, max_bpm]`` → ``OUT_OF_RANGE``.
    3. ``|bpm_i - median(bpm_{i-k..i+k})| > jump_bpm`` with ``2k + 1 = jump_window``
       samples → ``JUMP``. This is a Hampel identifier (Hampel 1974; Pearson 2002) with a
       fixed threshold instead of a multiple of the MAD: resting heart rate has so little
       spread that a MAD-scaled limit would reject normal variability. A running median
       follows monotone rises and falls exactly, so only short excursions are removed.

    Parameters
    ----------
    time
        Sorted sample times (int64 epoch µs or ``datetime64``).
    bpm
        Heart rate, beats per minute.
    sensor_contact
        Per-sample contact, int8: ``-1`` unknown, ``0`` no contact, ``1`` contact.
        ``None`` means unknown for every sample.
    min_bpm, max_bpm
        Physiological range kept.
    jump_bpm
        Largest deviation from the local median that is still a heart rate.
    jump_window
        Odd number of samples in the running median (15 is 15 s at 1 Hz, ~75 s at 5 s).

    Returns
    -------
    CleanHR
        The kept samples and one `HRFlag` per input sample.

    References
    ----------
    Hampel FR. The influence curve and its role in robust estimation. J Am Stat Assoc
    1974;69(346):383-393. Pearson RK. Outliers in process modeling and identification.
    IEEE Trans Control Syst Technol 2002;10(1):55-63.
    """
    if not 0 < min_bpm < max_bpm:
        raise ParameterError("min_bpm", min_bpm, f"must be > 0 and below max_bpm={max_bpm}")
    if jump_bpm <= 0:
        raise ParameterError("jump_bpm", jump_bpm, "must be > 0")
    if jump_window < 3 or jump_window % 2 == 0:
        raise ParameterError("jump_window", jump_window, "must be an odd number >= 3")
    time_us = as_epoch_us(time)
    check_sorted(time_us)
    n = time_us.shape[0]
    hr = as_float(bpm, n, "bpm")
    flag = np.zeros(n, dtype=np.int8)
    if sensor_contact is not None:
        contact = np.asarray(sensor_contact).reshape(-1)
        if contact.shape[0] != n:
            raise InputShapeError("sensor_contact", n, contact.shape[0])
        flag[contact == CONTACT_NONE] = HRFlag.NO_CONTACT
    with np.errstate(invalid="ignore"):
        bad_range = ~((hr >= min_bpm) & (hr <= max_bpm))
    flag[(flag == HRFlag.KEPT) & bad_range] = HRFlag.OUT_OF_RANGE
    candidates = np.flatnonzero(flag == HRFlag.KEPT)
    if candidates.shape[0] >= 3:
        values = hr[candidates]
        # The median is a member of the window, so a sample can only lie more than
        # jump_bpm from it if some window member does: screen with O(n) max/min filters
        # and take medians only where that holds.
        hi, lo = window_extrema(values, jump_window)
        maybe = np.flatnonzero((hi - values > jump_bpm) | (values - lo > jump_bpm))
        median = local_median(values, jump_window, maybe)
        flag[candidates[maybe[np.abs(values[maybe] - median) > jump_bpm]]] = HRFlag.JUMP
    kept = flag == HRFlag.KEPT
    return CleanHR(time_us[kept], hr[kept], flag)


@dataclass(frozen=True, slots=True)
class CleanRR:
    """Normal-to-normal (NN) intervals after cleaning, and what happened to each input.

    ``adjacent[i]`` is True when output interval ``i + 1`` directly follows output
    interval ``i`` in the recording (no beat removed between them, no time gap), i.e.
    when their difference is a true successive difference for RMSSD and pNN50.
    """

    rr_ms: FloatArray
    time_us: IntArray | None
    adjacent: BoolArray
    flag: Int8Array

    @property
    def n_input(self) -> int:
        """Number of intervals given."""
        return int(self.flag.shape[0])

    @property
    def n_kept(self) -> int:
        """Number of intervals returned (kept or corrected)."""
        return int(self.rr_ms.shape[0])

    @property
    def n_out_of_range(self) -> int:
        """Intervals removed for lying outside the physiological range."""
        return int(np.count_nonzero(self.flag == RRFlag.OUT_OF_RANGE))

    @property
    def n_ectopic(self) -> int:
        """Intervals the ectopy rule fired on (removed or corrected)."""
        return int(
            np.count_nonzero(
                (self.flag == RRFlag.REMOVED_ECTOPIC) | (self.flag == RRFlag.CORRECTED_ECTOPIC)
            )
        )

    @property
    def n_removed(self) -> int:
        """Intervals removed (out of range or ectopic)."""
        return int(
            np.count_nonzero(
                (self.flag == RRFlag.OUT_OF_RANGE) | (self.flag == RRFlag.REMOVED_ECTOPIC)
            )
        )

    @property
    def n_corrected(self) -> int:
        """Intervals replaced by an interpolated value."""
        return int(np.count_nonzero(self.flag == RRFlag.CORRECTED_ECTOPIC))

    @property
    def n_touched(self) -> int:
        """Intervals removed or corrected."""
        return self.n_removed + self.n_corrected


def window_extrema(values: FloatArray, size: int) -> tuple[FloatArray, FloatArray]:
    """Running maximum and minimum over `size` values centred on each one, edges repeated.

    Equal to ``scipy.ndimage.maximum_filter1d(values, size, mode="nearest")`` (and the
    minimum), computed by doubling spans: ``log2(size)`` elementwise passes.
    """
    half = size // 2
    hi = np.pad(values, (half, size - 1 - half), mode="edge")
    lo = hi
    span = 1
    while span * 2 <= size:
        hi = np.maximum(hi[:-span], hi[span:])
        lo = np.minimum(lo[:-span], lo[span:])
        span *= 2
    n = values.shape[0]
    rest = size - span
    return (
        np.maximum(hi[:n], hi[rest : rest + n]),
        np.minimum(lo[:n], lo[rest : rest + n]),
    )


def local_median(values: FloatArray, size: int, at: IntArray) -> FloatArray:
    """Median of the `size` values centred on each index in `at`, edges repeated.

    Equal to ``scipy.ndimage.median_filter(values, size, mode="nearest")[at]`` but costs
    only ``len(at) * size`` work, which matters when `at` is a small screened subset.
    """
    half = size // 2
    padded = np.pad(values, half, mode="edge")
    return np.asarray(np.median(sliding_window_view(padded, size)[at], axis=1), dtype=np.float64)


def _ectopic(rr: FloatArray, method: str, threshold: float, window: int) -> BoolArray:
    """``|RR_i - ref_i| > threshold * ref_i`` for every interval (see `clean_rr`)."""
    if method == "karlsson":
        ref = np.empty_like(rr)
        ref[1:-1] = 0.5 * (rr[:-2] + rr[2:])
        ref[0] = rr[1]
        ref[-1] = rr[-2]
        return np.asarray(np.abs(rr - ref) > threshold * ref, dtype=np.bool_)
    # The local median m is one of the window's intervals, and |RR - m| > t * m needs
    # m > RR / (1 - t) or m < RR / (1 + t); screen with O(n) max/min filters first.
    hi, lo = window_extrema(rr, window)
    maybe = np.flatnonzero((hi > rr / (1.0 - threshold)) | (lo < rr / (1.0 + threshold)))
    ref = local_median(rr, window, maybe)
    out = np.zeros(rr.shape[0], dtype=np.bool_)
    out[maybe[np.abs(rr[maybe] - ref) > threshold * ref]] = True
    return out


def clean_rr(
    rr_ms: npt.ArrayLike,
    *,
    time: npt.ArrayLike | None = None,
    method: RRMethod = "malik",
    threshold: float = DEFAULT_RR_THRESHOLD,
    window: int = DEFAULT_RR_WINDOW,
    min_rr_ms: float = DEFAULT_MIN_RR_MS,
    max_rr_ms: float = DEFAULT_MAX_RR_MS,
    action: RRAction = "remove",
    max_gap_s: float = DEFAULT_RR_MAX_GAP_S,
) -> CleanRR:
    """Remove or correct ectopic beats and artefacts in an RR series; count what was touched.

    1. Intervals that are NaN or outside ``[min_rr_ms, max_rr_ms]`` are removed.
    2. Among the rest, interval ``RR_i`` is ectopic when
       ``|RR_i - ref_i| > threshold * ref_i`` (the 20 % criterion of Malik et al. 1989,
       recommended by the Task Force 1996), with the reference ``ref_i``:

       - ``"malik"``: the median of the `window` intervals centred on ``RR_i``. The
         original rule compares with the previous interval; a local median makes the
         rule immune to the compensatory pause after a premature beat, which otherwise
         condemns the normal beat that follows it too.
       - ``"karlsson"``: the mean of the two neighbours, ``(RR_{i-1} + RR_{i+1}) / 2``
         (Karlsson et al. 2012).
    3. ``action="remove"`` drops ectopic intervals; ``action="interpolate"`` replaces
       each by linear interpolation between the nearest accepted intervals on either
       side, keeping the beat sequence (and so the successive differences) intact.

    Parameters
    ----------
    rr_ms
        RR intervals in milliseconds, in recording order.
    time
        Optional sorted time stamp of each interval (int64 epoch µs or ``datetime64``).
        When given, ``adjacent`` is also broken where the time between two intervals
        exceeds the later interval by more than `max_gap_s` (lost beats).
    method
        ``"malik"`` or ``"karlsson"``.
    threshold
        Relative deviation from the reference that marks an interval ectopic (0.2 = 20 %).
    window
        Odd number of intervals in the running median (``"malik"`` only).
    min_rr_ms, max_rr_ms
        Physiological range kept.
    action
        ``"remove"`` or ``"interpolate"``.
    max_gap_s
        Tolerance for time gaps between intervals before adjacency is broken.

    Returns
    -------
    CleanRR
        NN intervals, their adjacency, and one `RRFlag` per input interval.

    References
    ----------
    Malik M, Farrell T, Cripps T, Camm AJ. Heart rate variability in relation to prognosis
    after myocardial infarction: selection of optimal processing techniques. Eur Heart J
    1989;10(12):1060-1074. Task Force of the ESC and NASPE. Heart rate variability:
    standards of measurement, physiological interpretation and clinical use. Circulation
    1996;93(5):1043-1065. Karlsson M et al. Automatic filtering of outliers in RR intervals
    before analysis of heart rate variability in Holter recordings. Biomed Eng Online
    2012;11:2.
    """
    if method not in RR_METHODS:
        raise UnknownMethodError("method", method, RR_METHODS)
    if action not in RR_ACTIONS:
        raise UnknownMethodError("action", action, RR_ACTIONS)
    if not 0 < threshold < 1:
        raise ParameterError("threshold", threshold, "must be between 0 and 1 (0.2 = 20 %)")
    if window < 3 or window % 2 == 0:
        raise ParameterError("window", window, "must be an odd number >= 3")
    if not 0 < min_rr_ms < max_rr_ms:
        raise ParameterError("min_rr_ms", min_rr_ms, f"must be > 0 and below {max_rr_ms}")
    if max_gap_s < 0:
        raise ParameterError("max_gap_s", max_gap_s, "must be >= 0")
    rr = np.asarray(rr_ms, dtype=np.float64).reshape(-1)
    n = rr.shape[0]
    time_us: IntArray | None = None
    if time is not None:
        time_us = as_epoch_us(time)
        if time_us.shape[0] != n:
            raise InputShapeError("time", n, time_us.shape[0])
        check_sorted(time_us)
    flag = np.zeros(n, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        in_range = (rr >= min_rr_ms) & (rr <= max_rr_ms)
    flag[~in_range] = RRFlag.OUT_OF_RANGE
    idx = np.flatnonzero(in_range)
    values = rr[idx].copy()
    if idx.shape[0] >= 3:
        ectopic = _ectopic(values, method, threshold, window)
        if action == "remove":
            flag[idx[ectopic]] = RRFlag.REMOVED_ECTOPIC
            keep = ~ectopic
            idx = idx[keep]
            values = values[keep]
        elif ectopic.any():
            flag[idx[ectopic]] = RRFlag.CORRECTED_ECTOPIC
            good = np.flatnonzero(~ectopic)
            if good.shape[0] == 0:
                flag[idx] = RRFlag.REMOVED_ECTOPIC
                idx = idx[:0]
                values = values[:0]
            else:
                bad = np.flatnonzero(ectopic)
                values[bad] = np.interp(bad, good, values[good])
    adjacent = np.diff(idx) == 1
    out_time = None if time_us is None else time_us[idx]
    if out_time is not None and values.shape[0] > 1:
        slack_us = (values[1:] + max_gap_s * 1000.0) * (US_PER_S / 1000.0)
        adjacent &= np.diff(out_time) <= slack_us
    return CleanRR(values, out_time, adjacent, flag)


__all__ = [
    "CONTACT_NONE",
    "CONTACT_OK",
    "CONTACT_UNKNOWN",
    "RR_ACTIONS",
    "RR_METHODS",
    "CleanHR",
    "CleanRR",
    "HRFlag",
    "RRAction",
    "RRFlag",
    "RRMethod",
    "clean_hr",
    "clean_rr",
    "local_median",
    "window_extrema",
]
