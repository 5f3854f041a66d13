"""Wear: not worn is never read as resting."""

from __future__ import annotations

import numpy as np

from paceline.signal.clean import clean_hr
from paceline.signal.timebase import Minutes, per_minute, resample
from paceline.signal.wear import WearReason, flat_mask, step_nonwear, wear_minutes
from tests.signal.conftest import FitbitHR

S = 1_000_000
MIN = 60 * S
T0 = 1_700_006_400 * S  # a whole minute


def test_ten_identical_minutes_are_flat_but_a_sleeping_heart_is_not() -> None:
    t = T0 + np.arange(1800, dtype=np.int64) * S
    rng = np.random.default_rng(0)
    asleep = np.round(52 + 2 * np.sin(np.arange(1800) / 4) + rng.normal(0, 0.7, 1800))
    stuck = asleep.copy()
    stuck[600:1300] = 71.0
    assert not flat_mask(t, asleep).any()
    flat = flat_mask(t, stuck)
    assert flat[600:1300].all()
    assert flat.sum() <= 702  # at most the neighbours that happen to read 71 too


def test_a_gap_splits_a_flat_run() -> None:
    t = T0 + np.concatenate((np.arange(400), np.arange(1000, 1400))).astype(np.int64) * S
    assert not flat_mask(t, np.full(800, 64.0)).any()


def _minutes(coverage: list[float]) -> Minutes:
    cov = np.asarray(coverage)
    return Minutes(T0, np.where(cov > 0, 70.0, np.nan), cov)


def test_each_minute_gets_a_reason() -> None:
    hr = _minutes([1.0, 0.2, 0.0, 0.0, 0.0, 0.0, 1.0])
    spm = np.array([0, 0, 0, 12, 0, 0, 0], dtype=np.float64)
    w = wear_minutes(
        start_us=T0,
        n_minutes=7,
        hr=hr,
        no_contact_time_us=np.array([T0 + 2 * MIN + 5 * S]),
        flat_time_us=np.array([T0 + 4 * MIN]),
        steps_per_minute=spm,
    )
    assert w.reason.tolist() == [
        WearReason.WORN,
        WearReason.NO_DATA,  # 20 % coverage is not enough
        WearReason.NO_CONTACT,
        WearReason.WORN,  # no heart rate, but steps prove the band is on
        WearReason.FLAT_SIGNAL,
        WearReason.NO_DATA,
        WearReason.WORN,
    ]
    assert w.worn_min == 3.0
    assert w.minutes(WearReason.NO_DATA) == 2


def test_step_only_band_uses_choi_nonwear() -> None:
    spm = np.zeros(300)
    spm[:10] = 80  # a walk
    spm[150] = 5  # a short interruption inside 90+ zero minutes, 30 zero minutes each side
    spm[260:] = 40
    nonwear = step_nonwear(spm)
    assert not nonwear[:10].any()
    assert nonwear[10:260].all()
    w = wear_minutes(start_us=T0, n_minutes=300, hr=None, steps_per_minute=spm)
    # Choi counts the interruption as part of the non-wear stretch.
    assert w.minutes(WearReason.NO_MOVEMENT) == 250
    assert w.worn_min == 50.0


def test_short_stillness_of_a_step_band_is_worn() -> None:
    spm = np.zeros(120)
    spm[:5] = 90
    spm[60:65] = 90  # two walks 55 minutes apart: sitting, not off
    assert not step_nonwear(spm).any()


def test_no_data_at_all_is_no_data_not_rest() -> None:
    w = wear_minutes(start_us=T0, n_minutes=1440, hr=None, steps_per_minute=None)
    assert w.worn_min == 0.0
    assert w.minutes(WearReason.NO_DATA) == 1440


def test_fitbit_overnight_gap_is_not_worn_and_daytime_is(fitbit: FitbitHR) -> None:
    start = fitbit.day_start_us("2016-05-11")
    end = start + 86_400 * S
    hr = clean_hr(fitbit.time_us, fitbit.bpm)
    grid = resample(hr.time_us, hr.bpm, start_us=start, end_us=end, max_gap_s=15)
    w = wear_minutes(start_us=start, n_minutes=1440, hr=per_minute(grid))
    worn = w.worn
    # The export has no readings from 22:31 on 2016-05-11 to 06:46 on 2016-05-12 and none
    # before 06:56 on 2016-05-11 (the previous night): those minutes are not worn.
    assert not worn[: 6 * 60 + 50].any()
    assert not worn[22 * 60 + 35 :].any()
    # Between, the band was on for most of the day.
    assert worn[7 * 60 : 22 * 60].mean() > 0.9
    assert 850 < w.worn_min < 940
