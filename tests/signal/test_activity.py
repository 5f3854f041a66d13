"""Active and sedentary minutes, activity bouts and sedentary bouts."""

from __future__ import annotations

import numpy as np

from paceline.signal.activity import MinuteActivity, classify_minutes, summarize


def test_heart_rate_or_cadence_makes_a_minute_active() -> None:
    worn = np.ones(5, dtype=np.bool_)
    hr = np.array([70.0, 125.0, 80.0, np.nan, 125.0])
    spm = np.array([0.0, 0.0, 110.0, 105.0, 0.0])
    worn[4] = False
    out = classify_minutes(
        worn=worn, hr_bpm=hr, steps_per_minute=spm, active_hr_bpm=120, sedentary_hr_bpm=100
    )
    assert out.active.tolist() == [False, True, True, True, False]
    assert out.sedentary.tolist() == [True, False, False, False, False]


def test_sedentary_needs_every_available_signal_to_be_low() -> None:
    worn = np.ones(4, dtype=np.bool_)
    hr = np.array([70.0, 110.0, np.nan, np.nan])
    spm = np.array([30.0, 0.0, 5.0, np.nan])
    out = classify_minutes(
        worn=worn, hr_bpm=hr, steps_per_minute=spm, active_hr_bpm=120, sedentary_hr_bpm=100
    )
    # walking slowly; light heart rate; low cadence alone; nothing known.
    assert out.sedentary.tolist() == [False, False, True, False]


def test_not_worn_is_neither_active_nor_sedentary() -> None:
    worn = np.zeros(3, dtype=np.bool_)
    out = classify_minutes(
        worn=worn,
        hr_bpm=np.full(3, 60.0),
        steps_per_minute=np.zeros(3),
        active_hr_bpm=120,
        sedentary_hr_bpm=100,
    )
    assert not out.active.any() and not out.sedentary.any()


def test_summary_counts_bouts_and_excludes_sleep_from_sedentary_bouts() -> None:
    n = 24 * 60
    active = np.zeros(n, dtype=np.bool_)
    active[600:612] = True  # 12 min walk
    active[700:705] = True  # 5 min: too short for a bout
    sedentary = np.zeros(n, dtype=np.bool_)
    sedentary[:400] = True  # asleep
    sedentary[800:845] = True  # 45 min on the sofa
    sedentary[900:920] = True  # 20 min: not a prolonged bout
    asleep = np.zeros(n, dtype=np.bool_)
    asleep[:420] = True
    s = summarize(MinuteActivity(active, sedentary), asleep=asleep)
    assert s.active_min == 17.0
    assert len(s.activity_bouts) == 1
    assert s.activity_bout_min == 12.0
    assert len(s.sedentary_bouts) == 1
    assert s.longest_sedentary_min == 45.0
    assert s.sedentary_min == 65.0
    awake_too = summarize(MinuteActivity(active, sedentary))
    assert awake_too.longest_sedentary_min == 400.0
