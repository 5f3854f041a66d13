"""One patient-day of raw samples → `DailyMetrics`, the row of the ``daily_metrics`` table.

The store job in `paceline.pacing` reads the day's samples, calls `daily_metrics` with
plain arrays and upserts `DailyMetrics.to_row()`. Nothing here does I/O.

A day without wear is never a day without activity: `wear_min` is 0, every metric that
needs data (TRIMP, step load, resting and mean HR, RMSSD, SDNN) is None and
``extra["valid_day"]`` is False. The columns that the table declares NOT NULL (zone
minutes, steps, active minutes, bouts) are 0 on such a day and must be read together
with `wear_min`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from paceline.signal import activity, hrv, steps, trimp, wear, zones
from paceline.signal.clean import (
    DEFAULT_JUMP_BPM,
    DEFAULT_JUMP_WINDOW,
    DEFAULT_MAX_BPM,
    DEFAULT_MAX_RR_MS,
    DEFAULT_MIN_BPM,
    DEFAULT_MIN_RR_MS,
    DEFAULT_RR_MAX_GAP_S,
    DEFAULT_RR_THRESHOLD,
    DEFAULT_RR_WINDOW,
    HRFlag,
    RRAction,
    RRMethod,
    clean_hr,
    clean_rr,
)
from paceline.signal.errors import InsufficientDataError, ParameterError, UnknownMethodError
from paceline.signal.runs import true_runs
from paceline.signal.timebase import (
    US_PER_MIN,
    FloatArray,
    TimeLike,
    as_epoch_us,
    per_minute,
    resample,
    scalar_us,
    time_order,
    window_slice,
)
from paceline.signal.trimp import SEXES, Sex
from paceline.signal.wear import WearReason
from paceline.signal.zones import HR_MAX_METHODS, HRMaxMethod

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
ZoneBasis = Literal["hrmax", "hrr"]
ZONE_BASES: Final[tuple[str, ...]] = ("hrmax", "hrr")

#: Columns of ``daily_metrics`` that `DailyMetrics.to_row` fills, in table order.
COLUMNS: Final[tuple[str, ...]] = (
    "wear_min",
    "zone_min",
    "above_ceiling_min",
    "trimp_banister",
    "trimp_edwards",
    "step_load",
    "steps",
    "active_min",
    "activity_bouts",
    "longest_sedentary_min",
    "resting_hr_bpm",
    "mean_hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "hr_samples",
    "rr_intervals",
    "extra",
)

# When the resting heart rate is unknown, fall back to fractions of HRmax for the
# activity classes: 64 % HRmax opens "moderate", below 57 % is "very light"
# (Garber et al. 2011, table 2).
ACTIVE_HRMAX_FRACTION: Final = 0.64
SEDENTARY_HRMAX_FRACTION: Final = 0.57


@dataclass(frozen=True, slots=True)
class PatientPhysiology:
    """What the computation needs to know about the patient.

    ``hr_max_bpm`` is a measured maximum (exercise test) or None to use the
    ``hr_max_method`` age formula; ``hr_rest_bpm`` a given resting heart rate or None
    to estimate it from each day's data; ``hr_ceiling_bpm`` the pacing ceiling set by
    the clinician or calibrated (`zones.calibrate_ceiling`), or None.
    """

    age_years: float | None = None
    sex: Sex = "unspecified"
    hr_max_bpm: float | None = None
    hr_rest_bpm: float | None = None
    hr_ceiling_bpm: float | None = None
    hr_max_method: HRMaxMethod = "tanaka"

    def __post_init__(self) -> None:
        """Validate the profile once, so that every day computes with sane anchors."""
        if self.sex not in SEXES:
            raise UnknownMethodError("sex", self.sex, SEXES)
        if self.hr_max_method not in HR_MAX_METHODS:
            raise UnknownMethodError("HRmax method", self.hr_max_method, HR_MAX_METHODS)
        hr_max = self.resolved_hr_max()
        if self.hr_rest_bpm is not None and not 25.0 <= self.hr_rest_bpm < hr_max:
            raise ParameterError("hr_rest_bpm", self.hr_rest_bpm, f"must be 25 to {hr_max:.0f}")
        if self.hr_ceiling_bpm is not None and not 40.0 <= self.hr_ceiling_bpm <= 250.0:
            raise ParameterError("hr_ceiling_bpm", self.hr_ceiling_bpm, "must be 40 to 250")

    def resolved_hr_max(self) -> float:
        """HRmax: the measured value, else the age formula (`zones.hr_max`)."""
        return zones.hr_max(self.age_years, measured_bpm=self.hr_max_bpm, method=self.hr_max_method)


@dataclass(frozen=True, slots=True)
class DailyConfig:
    """Tunable thresholds of the daily computation; the defaults are documented choices."""

    grid_step_s: float = 1.0
    max_gap_s: float = 15.0
    min_bpm: float = DEFAULT_MIN_BPM
    max_bpm: float = DEFAULT_MAX_BPM
    jump_bpm: float = DEFAULT_JUMP_BPM
    jump_window: int = DEFAULT_JUMP_WINDOW
    flat_min_s: float = wear.DEFAULT_FLAT_MIN_S
    min_minute_coverage: float = wear.DEFAULT_MIN_COVERAGE
    zone_basis: ZoneBasis = "hrmax"
    zone_fractions: tuple[float, ...] = zones.EDWARDS_FRACTIONS
    hysteresis_bpm: float = zones.DEFAULT_HYSTERESIS_BPM
    resting_window_min: int = zones.DEFAULT_RESTING_WINDOW_MIN
    active_hrr_fraction: float = activity.ACTIVE_HRR_FRACTION
    sedentary_hrr_fraction: float = activity.SEDENTARY_HRR_FRACTION
    active_cadence: float = activity.ACTIVE_CADENCE
    sedentary_cadence: float = activity.SEDENTARY_CADENCE
    bout_min: int = activity.BOUT_MIN
    bout_interruption_min: int = activity.BOUT_INTERRUPTION_MIN
    sedentary_bout_min: int = activity.SEDENTARY_BOUT_MIN
    cadence_bands: tuple[float, ...] = steps.CADENCE_BANDS
    cadence_weights: tuple[float, ...] = steps.CADENCE_WEIGHTS
    rr_method: RRMethod = "malik"
    rr_action: RRAction = "remove"
    rr_threshold: float = DEFAULT_RR_THRESHOLD
    rr_window: int = DEFAULT_RR_WINDOW
    rr_min_ms: float = DEFAULT_MIN_RR_MS
    rr_max_ms: float = DEFAULT_MAX_RR_MS
    rr_max_gap_s: float = DEFAULT_RR_MAX_GAP_S
    # About two minutes of beats, the shortest recording the Task Force (1996)
    # considers for short-term analysis; with fewer the daily HRV values are None.
    min_rr_intervals: int = 120
    # Must divide one hour, so that it tiles 23-, 24- and 25-hour days alike.
    hrv_window_s: float = hrv.SHORT_TERM_S
    # Ten hours of wear makes a valid day (Troiano et al. 2008).
    valid_day_wear_min: float = 600.0

    def __post_init__(self) -> None:
        """Reject settings the computation cannot honour."""
        if self.zone_basis not in ZONE_BASES:
            raise UnknownMethodError("zone_basis", self.zone_basis, ZONE_BASES)
        if self.grid_step_s <= 0 or (60.0 / self.grid_step_s) % 1:
            raise ParameterError("grid_step_s", self.grid_step_s, "must divide 60 s evenly")
        if self.hrv_window_s <= 0 or (3600.0 / self.hrv_window_s) % 1:
            raise ParameterError("hrv_window_s", self.hrv_window_s, "must divide one hour evenly")
        if self.min_rr_intervals < 2:
            raise ParameterError("min_rr_intervals", self.min_rr_intervals, "must be >= 2")


@dataclass(frozen=True, slots=True)
class DailyMetrics:
    """Metrics of one patient-day; the first fields are the ``daily_metrics`` columns.

    Every field after ``rr_intervals`` goes into the ``extra`` jsonb column.
    ``zone_min[k]`` is minutes in zone ``k`` of ``zone_bounds_bpm`` (zone 0 below the
    first bound).
    """

    wear_min: float
    zone_min: tuple[float, ...]
    above_ceiling_min: float
    trimp_banister: float | None
    trimp_edwards: float | None
    step_load: float | None
    steps: int
    active_min: float
    activity_bouts: int
    longest_sedentary_min: float
    resting_hr_bpm: float | None
    mean_hr_bpm: float | None
    rmssd_ms: float | None
    sdnn_ms: float | None
    hr_samples: int
    rr_intervals: int
    # ---- extra ----
    valid_day: bool
    nonwear_min: Mapping[str, int] = field(default_factory=dict)
    zone_basis: str = "hrmax"
    zone_bounds_bpm: tuple[float, ...] = ()
    hr_max_bpm: float | None = None
    hr_max_source: str | None = None
    hr_rest_used_bpm: float | None = None
    hr_rest_source: str | None = None
    resting_hr_start_us: int | None = None
    hr_ceiling_bpm: float | None = None
    above_ceiling_episodes: int = 0
    hr_kept: int = 0
    hr_no_contact: int = 0
    hr_out_of_range: int = 0
    hr_jumps: int = 0
    hr_flat: int = 0
    rr_kept: int = 0
    rr_out_of_range: int = 0
    rr_ectopic: int = 0
    rr_corrected: int = 0
    mean_nn_ms: float | None = None
    pnn50_pct: float | None = None
    rmssd_5min_median_ms: float | None = None
    night_rr_intervals: int = 0
    night_mean_nn_ms: float | None = None
    night_sdnn_ms: float | None = None
    night_rmssd_ms: float | None = None
    night_pnn50_pct: float | None = None
    steps_available: bool = False
    activity_bout_min: float = 0.0
    sedentary_min: float = 0.0
    sedentary_bouts: int = 0
    sedentary_bout_min: float = 0.0

    @property
    def worn(self) -> bool:
        """Whether the device was worn at all that day."""
        return self.wear_min > 0

    def extra(self) -> dict[str, JSONValue]:
        """The fields that have no column of their own, as JSON-able values."""
        out: dict[str, JSONValue] = {}
        for f in fields(self):
            if f.name in COLUMNS:
                continue
            out[f.name] = _json(getattr(self, f.name))
        return out

    def to_row(self) -> dict[str, JSONValue]:
        """A dict keyed by exactly the ``daily_metrics`` columns in `COLUMNS`, for upsert.

        ``zone_min`` is a list of floats, ``extra`` a plain dict; no NaN or infinity
        anywhere (None instead), so the row is valid for ``real``/``jsonb`` columns.
        """
        row: dict[str, JSONValue] = {
            name: _json(getattr(self, name)) for name in COLUMNS if name != "extra"
        }
        row["extra"] = self.extra()
        return row


def _json(value: object) -> JSONValue:
    """Convert a metric value to plain JSON-able Python (finite floats, lists, dicts)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    raise TypeError(f"cannot store {type(value).__name__} in daily_metrics")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def daily_metrics(
    *,
    start: TimeLike,
    end: TimeLike,
    profile: PatientPhysiology,
    hr_time: npt.ArrayLike = (),
    hr_bpm: npt.ArrayLike = (),
    hr_contact: npt.ArrayLike | None = None,
    rr_time: npt.ArrayLike = (),
    rr_ms: npt.ArrayLike = (),
    step_time: npt.ArrayLike = (),
    step_count: npt.ArrayLike = (),
    step_start: npt.ArrayLike | None = None,
    night: tuple[TimeLike, TimeLike] | None = None,
    config: DailyConfig | None = None,
) -> DailyMetrics:
    """Turn one patient-day of raw samples into `DailyMetrics`.

    Pipeline (each step documented where it lives):

    1. heart rate: `clean.clean_hr` (contact, range, jumps), `wear.flat_mask`,
       `timebase.resample` onto a ``grid_step_s`` grid without bridging gaps longer
       than ``max_gap_s``, `timebase.per_minute`;
    2. steps: `steps.per_minute` (row = steps of the interval ending at its time;
       overlapping intervals of one device count their steps once);
    3. wear: `wear.wear_minutes`; heart rate outside worn minutes is discarded;
    4. anchors: HRmax from the profile (`zones.hr_max`), resting HR estimated by
       `zones.resting_hr` (reported as ``resting_hr_bpm``) and used unless the profile
       gives one;
    5. zones: `zones.classify` with hysteresis on %HRmax or heart-rate-reserve zones,
       `zones.time_in_zones`; minutes above the pacing ceiling with the same hysteresis;
    6. load: `trimp.banister`, `trimp.edwards`, `steps.step_load`;
    7. activity: `activity.classify_minutes` and `activity.summarize` (the `night`
       window counts as asleep for sedentary bouts);
    8. HRV: `clean.clean_rr` then `hrv.time_domain` over the day (24-h SDNN and RMSSD,
       Task Force 1996), `hrv.windows` (median 5-min RMSSD) and `hrv.between` for `night`.

    Parameters
    ----------
    start, end
        The day ``[start, end)`` as epoch µs or ``datetime64`` — a local calendar day
        may be 23 or 25 hours long; whole minutes are required.
    profile
        The patient's anchors.
    hr_time, hr_bpm, hr_contact
        Heart-rate samples: time (int64 epoch µs or ``datetime64[us]``), bpm, contact
        as int8 (``-1`` unknown, ``0`` no contact, ``1`` contact; None = unknown).
    rr_time, rr_ms
        RR intervals: time stamp and length in ms, one row per beat.
    step_time, step_count
        Step rows: time (end of the counted interval) and steps.
    step_start
        Optional start of each step row's interval, for rows of one device that may
        overlap (`steps.overlap_density` counts each step once); None when the
        intervals are not known, and then the rows must not overlap.
    night
        Optional ``(start, end)`` of the night (or morning) window for nocturnal HRV
        and to exclude sleep from sedentary bouts. Only the part inside ``[start, end)``
        is seen; for a night that spans midnight, call `hrv.between` on that night's
        cleaned RR intervals directly.
    config
        Thresholds; None for the defaults of `DailyConfig`.

    Returns
    -------
    DailyMetrics
        The day's metrics; see the module docstring for a day without wear.
    """
    config = config or DailyConfig()
    start_us = scalar_us(start, "start")
    end_us = scalar_us(end, "end")
    if end_us <= start_us or (end_us - start_us) % US_PER_MIN or start_us % US_PER_MIN:
        raise ParameterError("start/end", (start_us, end_us), "need whole minutes, end after start")
    n_min = (end_us - start_us) // US_PER_MIN
    cells_per_min = round(60.0 / config.grid_step_s)

    # 1. heart rate
    t_hr = as_epoch_us(hr_time, "hr_time")
    bpm_raw = np.asarray(hr_bpm, dtype=np.float64).reshape(-1)
    contact = (
        np.full(t_hr.shape[0], -1, dtype=np.int8)
        if hr_contact is None
        else np.asarray(hr_contact, dtype=np.int8).reshape(-1)
    )
    order = time_order(t_hr)
    if order is not None:
        t_hr, bpm_raw, contact = t_hr[order], bpm_raw[order], contact[order]
    day = window_slice(t_hr, start_us, end_us)
    t_hr, bpm_raw, contact = t_hr[day], bpm_raw[day], contact[day]
    hr = clean_hr(
        t_hr,
        bpm_raw,
        contact,
        min_bpm=config.min_bpm,
        max_bpm=config.max_bpm,
        jump_bpm=config.jump_bpm,
        jump_window=config.jump_window,
    )
    flat = wear.flat_mask(hr.time_us, hr.bpm, min_duration_s=config.flat_min_s)
    grid = resample(
        hr.time_us[~flat],
        hr.bpm[~flat],
        start_us=start_us,
        end_us=end_us,
        step_s=config.grid_step_s,
        max_gap_s=config.max_gap_s,
    )
    hr_minutes = per_minute(grid)

    # 2. steps
    t_steps = as_epoch_us(step_time, "step_time")
    n_steps_raw = np.asarray(step_count, dtype=np.float64).reshape(-1)
    t_begin = None if step_start is None else as_epoch_us(step_start, "step_start")
    order = time_order(t_steps)
    if order is not None:
        t_steps, n_steps_raw = t_steps[order], n_steps_raw[order]
        t_begin = None if t_begin is None else t_begin[order]
    spm: FloatArray | None = steps.per_minute(
        t_steps, n_steps_raw, start_us=start_us, n_minutes=n_min, interval_start=t_begin
    )
    if spm is not None and bool(np.all(np.isnan(spm))):
        spm = None

    # 3. wear
    worn_state = wear.wear_minutes(
        start_us=start_us,
        n_minutes=n_min,
        hr=hr_minutes,
        no_contact_time_us=t_hr[hr.flag == HRFlag.NO_CONTACT],
        flat_time_us=hr.time_us[flat],
        steps_per_minute=spm,
        min_coverage=config.min_minute_coverage,
    )
    worn = worn_state.worn
    worn_grid = grid.masked(np.repeat(worn, cells_per_min))
    worn_minutes = per_minute(worn_grid)
    has_hr = bool(worn_grid.valid.any())

    # 4. anchors
    hr_max = profile.resolved_hr_max()
    rest = zones.resting_hr(
        worn_minutes,
        window_min=config.resting_window_min,
        min_coverage=config.min_minute_coverage,
    )
    hr_rest: float | None
    rest_source: str | None
    if profile.hr_rest_bpm is not None:
        hr_rest, rest_source = profile.hr_rest_bpm, "given"
    elif rest is not None and rest.bpm < hr_max:
        hr_rest, rest_source = rest.bpm, "estimated"
    else:
        hr_rest, rest_source = None, None

    # 5. zones and ceiling
    basis: str = config.zone_basis
    if basis == "hrr" and hr_rest is not None:
        model = zones.hrr_zones(hr_max, hr_rest, config.zone_fractions)
    else:
        basis = "hrmax"
        model = zones.percent_hrmax_zones(hr_max, config.zone_fractions)
    zone_idx = zones.classify(worn_grid.values, model, hysteresis_bpm=config.hysteresis_bpm)
    zone_min = zones.time_in_zones(zone_idx, model.n_zones, step_s=grid.step_s)
    above_min = 0.0
    episodes = 0
    if profile.hr_ceiling_bpm is not None and has_hr:
        over = zones.above(
            worn_grid.values, profile.hr_ceiling_bpm, hysteresis_bpm=config.hysteresis_bpm
        )
        above_min = float(np.count_nonzero(over)) * grid.step_s / 60.0
        episodes = len(true_runs(over))

    # 6. load
    trimp_b = (
        trimp.banister(
            worn_grid.values,
            hr_rest_bpm=hr_rest,
            hr_max_bpm=hr_max,
            sex=profile.sex,
            step_s=grid.step_s,
        )
        if has_hr and hr_rest is not None
        else None
    )
    trimp_e = (
        trimp.edwards(worn_grid.values, hr_max_bpm=hr_max, step_s=grid.step_s) if has_hr else None
    )
    spm_worn = None if spm is None else np.where(worn, spm, np.nan)
    load_steps = (
        steps.step_load(spm_worn, bands=config.cadence_bands, weights=config.cadence_weights)
        if spm_worn is not None
        else None
    )

    # 7. activity
    if hr_rest is not None:
        reserve = hr_max - hr_rest
        active_hr = hr_rest + config.active_hrr_fraction * reserve
        sedentary_hr = hr_rest + config.sedentary_hrr_fraction * reserve
    else:
        active_hr = ACTIVE_HRMAX_FRACTION * hr_max
        sedentary_hr = SEDENTARY_HRMAX_FRACTION * hr_max
    per_min = activity.classify_minutes(
        worn=worn,
        hr_bpm=worn_minutes.mean if has_hr else None,
        steps_per_minute=spm_worn,
        active_hr_bpm=active_hr,
        sedentary_hr_bpm=sedentary_hr,
        active_cadence=config.active_cadence,
        sedentary_cadence=config.sedentary_cadence,
    )
    asleep = None
    night_us: tuple[int, int] | None = None
    if night is not None:
        night_us = (scalar_us(night[0], "night start"), scalar_us(night[1], "night end"))
        minute_starts = start_us + np.arange(n_min, dtype=np.int64) * US_PER_MIN
        asleep = (minute_starts >= night_us[0]) & (minute_starts < night_us[1])
    summary = activity.summarize(
        per_min,
        bout_min=config.bout_min,
        interruption_min=config.bout_interruption_min,
        sedentary_bout_min=config.sedentary_bout_min,
        asleep=asleep,
    )

    # 8. HRV
    t_rr = as_epoch_us(rr_time, "rr_time")
    rr = np.asarray(rr_ms, dtype=np.float64).reshape(-1)
    order = time_order(t_rr)
    if order is not None:
        t_rr, rr = t_rr[order], rr[order]
    rr_day = window_slice(t_rr, start_us, end_us)
    t_rr, rr = t_rr[rr_day], rr[rr_day]
    nn = clean_rr(
        rr,
        time=t_rr,
        method=config.rr_method,
        threshold=config.rr_threshold,
        window=config.rr_window,
        min_rr_ms=config.rr_min_ms,
        max_rr_ms=config.rr_max_ms,
        action=config.rr_action,
        max_gap_s=config.rr_max_gap_s,
    )
    nn_time = nn.time_us if nn.time_us is not None else t_rr[:0]
    day_hrv = None
    if nn.n_kept >= config.min_rr_intervals:
        try:
            day_hrv = hrv.time_domain(nn.rr_ms, adjacent=nn.adjacent)
        except InsufficientDataError:
            day_hrv = None
    rmssd_5min: float | None = None
    if nn.n_kept >= config.min_rr_intervals:
        win = hrv.windows(
            nn_time,
            nn.rr_ms,
            start=start_us,
            end=end_us,
            window_s=config.hrv_window_s,
            adjacent=nn.adjacent,
            min_intervals=config.min_rr_intervals,
        )
        good = win.rmssd_ms[~np.isnan(win.rmssd_ms)]
        rmssd_5min = float(np.median(good)) if good.shape[0] else None
    night_hrv = None
    night_n = 0
    if night_us is not None and nn.n_kept >= 2:
        sl = window_slice(nn_time, *night_us)
        night_n = sl.stop - sl.start
        if night_n >= config.min_rr_intervals:
            try:
                night_hrv = hrv.between(
                    nn_time, nn.rr_ms, night_us[0], night_us[1], adjacent=nn.adjacent
                )
            except InsufficientDataError:
                night_hrv = None

    wear_min = worn_state.worn_min
    mean_hr = float(np.nanmean(worn_grid.values)) if has_hr else None
    return DailyMetrics(
        wear_min=wear_min,
        zone_min=tuple(float(z) for z in zone_min),
        above_ceiling_min=above_min,
        trimp_banister=trimp_b,
        trimp_edwards=trimp_e,
        step_load=load_steps,
        steps=0 if spm is None else steps.total(spm),
        active_min=summary.active_min,
        activity_bouts=len(summary.activity_bouts),
        longest_sedentary_min=summary.longest_sedentary_min,
        resting_hr_bpm=None if rest is None else rest.bpm,
        mean_hr_bpm=mean_hr,
        rmssd_ms=None if day_hrv is None else _finite(day_hrv.rmssd_ms),
        sdnn_ms=None if day_hrv is None else _finite(day_hrv.sdnn_ms),
        hr_samples=int(t_hr.shape[0]),
        rr_intervals=int(t_rr.shape[0]),
        valid_day=wear_min >= config.valid_day_wear_min,
        nonwear_min={
            r.name.lower(): worn_state.minutes(r) for r in WearReason if r != WearReason.WORN
        },
        zone_basis=basis,
        zone_bounds_bpm=model.bounds_bpm,
        hr_max_bpm=hr_max,
        hr_max_source="measured" if profile.hr_max_bpm is not None else profile.hr_max_method,
        hr_rest_used_bpm=hr_rest,
        hr_rest_source=rest_source,
        resting_hr_start_us=None if rest is None else rest.start_us,
        hr_ceiling_bpm=profile.hr_ceiling_bpm,
        above_ceiling_episodes=episodes,
        hr_kept=hr.n_kept - int(np.count_nonzero(flat)),
        hr_no_contact=hr.n_no_contact,
        hr_out_of_range=hr.n_out_of_range,
        hr_jumps=hr.n_jumps,
        hr_flat=int(np.count_nonzero(flat)),
        rr_kept=nn.n_kept,
        rr_out_of_range=nn.n_out_of_range,
        rr_ectopic=nn.n_ectopic,
        rr_corrected=nn.n_corrected,
        mean_nn_ms=None if day_hrv is None else day_hrv.mean_nn_ms,
        pnn50_pct=None if day_hrv is None else day_hrv.pnn50_pct,
        rmssd_5min_median_ms=rmssd_5min,
        night_rr_intervals=night_n,
        night_mean_nn_ms=None if night_hrv is None else night_hrv.mean_nn_ms,
        night_sdnn_ms=None if night_hrv is None else night_hrv.sdnn_ms,
        night_rmssd_ms=None if night_hrv is None else night_hrv.rmssd_ms,
        night_pnn50_pct=None if night_hrv is None else night_hrv.pnn50_pct,
        steps_available=spm is not None,
        activity_bout_min=summary.activity_bout_min,
        sedentary_min=summary.sedentary_min,
        sedentary_bouts=len(summary.sedentary_bouts),
        sedentary_bout_min=summary.sedentary_bout_min,
    )


__all__ = [
    "COLUMNS",
    "DailyConfig",
    "DailyMetrics",
    "JSONValue",
    "PatientPhysiology",
    "ZoneBasis",
    "daily_metrics",
]
