"""Banister and Edwards TRIMP against hand calculations and physiological properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paceline.signal.errors import ParameterError, UnknownMethodError
from paceline.signal.trimp import banister, banister_weight, edwards


def test_an_hour_at_120_bpm_gives_the_hand_computed_banister_trimp() -> None:
    bpm = np.full(3600, 120.0)  # one hour at 1 Hz; rest 60, max 180 → HRr = 0.5
    male = banister(bpm, hr_rest_bpm=60, hr_max_bpm=180, sex="male", step_s=1)
    female = banister(bpm, hr_rest_bpm=60, hr_max_bpm=180, sex="female", step_s=1)
    assert male == pytest.approx(60 * 0.5 * 0.64 * math.exp(1.92 * 0.5))  # 50.14
    assert female == pytest.approx(60 * 0.5 * 0.86 * math.exp(1.67 * 0.5))  # 59.45
    unspecified = banister(bpm, hr_rest_bpm=60, hr_max_bpm=180, sex="unspecified", step_s=1)
    assert unspecified == pytest.approx((male + female) / 2)


def test_sampling_interval_scales_the_sum() -> None:
    one_hz = banister(np.full(3600, 120.0), hr_rest_bpm=60, hr_max_bpm=180, sex="male", step_s=1)
    five_s = banister(np.full(720, 120.0), hr_rest_bpm=60, hr_max_bpm=180, sex="male", step_s=5)
    assert five_s == pytest.approx(one_hz)


def test_rest_adds_nothing_missing_data_adds_nothing_and_max_is_capped() -> None:
    kw = {"hr_rest_bpm": 60.0, "hr_max_bpm": 180.0, "sex": "male", "step_s": 1.0}
    assert banister(np.full(600, 55.0), **kw) == 0.0  # type: ignore[arg-type]
    assert banister(np.full(600, np.nan), **kw) == 0.0  # type: ignore[arg-type]
    capped = banister(np.full(60, 200.0), **kw)  # type: ignore[arg-type]
    assert capped == pytest.approx(banister(np.full(60, 180.0), **kw))  # type: ignore[arg-type]


def test_weighting_is_convex_and_steeper_for_men() -> None:
    x = np.linspace(0, 1, 11)
    for sex in ("male", "female"):
        w = banister_weight(x, sex)
        assert np.all(np.diff(w) > 0)
        assert np.all(np.diff(w, 2) > 0)
    male = banister_weight(np.array([0.0, 1.0]), "male")
    female = banister_weight(np.array([0.0, 1.0]), "female")
    assert male.tolist() == pytest.approx([0.64, 0.64 * math.exp(1.92)])
    # b = 1.92 vs 1.67: the male weighting grows more from rest to maximum.
    assert male[1] / male[0] > female[1] / female[0]


def test_banister_rejects_bad_anchors_and_sex() -> None:
    with pytest.raises(ParameterError):
        banister(np.array([100.0]), hr_rest_bpm=190, hr_max_bpm=180, sex="male", step_s=1)
    with pytest.raises(UnknownMethodError):
        banister(np.array([100.0]), hr_rest_bpm=60, hr_max_bpm=180, sex="x", step_s=1)  # type: ignore[arg-type]


def test_edwards_trimp_by_hand() -> None:
    # HRmax 200: zones 100/120/140/160/180 bpm. 10 min at 110 (z1), 5 at 150 (z3),
    # 2 at 185 (z5), 20 at 90 (below z1), all at 1 Hz.
    bpm = np.concatenate(
        [
            np.full(600, 110.0),
            np.full(300, 150.0),
            np.full(120, 185.0),
            np.full(1200, 90.0),
            [np.nan] * 60,
        ]
    )
    assert edwards(bpm, hr_max_bpm=200, step_s=1) == pytest.approx(10 * 1 + 5 * 3 + 2 * 5)


def test_edwards_boundaries_belong_to_the_upper_zone() -> None:
    assert edwards(np.full(60, 100.0), hr_max_bpm=200, step_s=1) == pytest.approx(1.0)
    assert edwards(np.full(60, 99.9), hr_max_bpm=200, step_s=1) == 0.0


def test_both_trimps_grow_with_intensity() -> None:
    levels = [80.0, 110.0, 130.0, 150.0, 170.0]
    ban = [
        banister(np.full(600, b), hr_rest_bpm=60, hr_max_bpm=185, sex="female", step_s=1)
        for b in levels
    ]
    edw = [edwards(np.full(600, b), hr_max_bpm=185, step_s=1) for b in levels]
    assert ban == sorted(ban) and len(set(ban)) == len(ban)
    assert edw == sorted(edw)
