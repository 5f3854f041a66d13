"""One patient-day → DailyMetrics: ground truth, empty days, the table mapping, real data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from paceline.signal.daily import (
    COLUMNS,
    DailyConfig,
    DailyMetrics,
    PatientPhysiology,
    daily_metrics,
)
from paceline.signal.errors import ParameterError, UnknownMethodError
from paceline.signal.simulate import SimulatedDay
from tests.signal.conftest import US_PER_DAY, FitbitHR

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "store"
    / "paceline"
    / "store"
    / "migrations"
    / "0002_clinical.sql"
)
PROFILE = PatientPhysiology(age_years=45, sex="female", hr_ceiling_bpm=115.0)
H = 3_600_000_000


def _run(day: SimulatedDay, profile: PatientPhysiology = PROFILE, **kw: Any) -> DailyMetrics:
    return daily_metrics(
        start=day.start_us,
        end=day.start_us + US_PER_DAY,
        profile=profile,
        hr_time=day.hr_time_us,
        hr_bpm=day.hr_bpm,
        hr_contact=day.hr_contact,
        rr_time=day.rr_time_us,
        rr_ms=day.rr_ms,
        step_time=day.step_time_us,
        step_count=day.steps,
        night=(day.start_us, day.start_us + 6 * H),
        **kw,
    )


@pytest.fixture(scope="module")
def metrics(sim_day: SimulatedDay) -> DailyMetrics:
    return _run(sim_day)


def test_counts_and_wear_match_the_simulated_truth(
    sim_day: SimulatedDay, metrics: DailyMetrics
) -> None:
    assert metrics.hr_samples == 86_400
    assert metrics.rr_intervals == sim_day.rr_ms.shape[0]
    assert metrics.wear_min == float(sim_day.true_worn.sum()) == 1390.0
    assert metrics.nonwear_min == {
        "no_data": 0,
        "no_contact": 20,
        "flat_signal": 30,
        "no_movement": 0,
    }
    assert metrics.hr_no_contact == 20 * 60
    assert metrics.hr_jumps == sim_day.n_spikes
    assert metrics.valid_day


def test_activity_matches_the_planned_walks_and_jog(
    sim_day: SimulatedDay, metrics: DailyMetrics
) -> None:
    assert metrics.steps == int(sim_day.steps.sum())
    assert metrics.activity_bouts == 3
    assert abs(metrics.active_min - sim_day.true_active.sum()) <= 5
    # 25 min jog at ~140 bpm above a 115 bpm ceiling, walks (105-110 bpm) below it.
    assert 22 <= metrics.above_ceiling_min <= 30
    assert metrics.above_ceiling_episodes >= 1
    assert metrics.step_load is not None and metrics.step_load > 75 * 2


def test_zone_minutes_fit_inside_wear_time(metrics: DailyMetrics) -> None:
    assert len(metrics.zone_min) == 6
    assert len(metrics.zone_bounds_bpm) == 5
    assert sum(metrics.zone_min) <= metrics.wear_min
    assert sum(metrics.zone_min) > 0.95 * metrics.wear_min
    # Most of a day is spent below 50 % HRmax; the jog reaches 70-80 % (zone 3).
    assert metrics.zone_min[0] > 1200
    assert metrics.zone_min[3] > 10


def test_anchors_load_and_hrv_are_physiological(metrics: DailyMetrics) -> None:
    assert metrics.hr_max_bpm == pytest.approx(208 - 0.7 * 45)
    assert metrics.hr_rest_source == "estimated"
    assert metrics.resting_hr_bpm is not None and metrics.mean_hr_bpm is not None
    assert 40 < metrics.resting_hr_bpm < 60 < metrics.mean_hr_bpm < 80
    assert metrics.trimp_banister is not None and metrics.trimp_banister > 0
    assert metrics.trimp_edwards is not None and metrics.trimp_edwards > 0
    assert metrics.rmssd_ms is not None and metrics.sdnn_ms is not None
    assert metrics.night_rmssd_ms is not None and metrics.rmssd_5min_median_ms is not None
    assert metrics.night_rmssd_ms > metrics.rmssd_5min_median_ms  # vagal tone at night
    assert 2 < metrics.pnn50_pct <= 100  # type: ignore[operator]


def test_ectopic_beats_are_found(sim_day: SimulatedDay, metrics: DailyMetrics) -> None:
    # Each premature beat disturbs two intervals (short + compensatory pause).
    touched = metrics.rr_ectopic + metrics.rr_out_of_range
    assert 1.6 * sim_day.n_ectopic <= touched <= 2.2 * sim_day.n_ectopic


def test_to_row_has_exactly_the_daily_metrics_columns(metrics: DailyMetrics) -> None:
    sql = MIGRATION.read_text()
    table = sql[sql.index("CREATE TABLE daily_metrics") :]
    table = table[: table.index(");")]
    declared = re.findall(r"^\s{4}([a-z_]+)\s", table, flags=re.MULTILINE)
    expected = [c for c in declared if c not in {"patient_id", "day", "computed_at"}]
    assert list(COLUMNS) == expected
    row = metrics.to_row()
    assert list(row) == expected
    json.dumps(row, allow_nan=False)  # valid for real[] and jsonb
    assert isinstance(row["extra"], dict)
    assert row["extra"]["valid_day"] is True


def test_a_day_without_any_data_is_not_a_day_without_activity() -> None:
    m = daily_metrics(start=0, end=US_PER_DAY, profile=PROFILE)
    assert m.wear_min == 0.0 and not m.worn and not m.valid_day
    for name in (
        "trimp_banister",
        "trimp_edwards",
        "step_load",
        "resting_hr_bpm",
        "mean_hr_bpm",
        "rmssd_ms",
        "sdnn_ms",
    ):
        assert getattr(m, name) is None, name
    assert m.zone_min == (0.0,) * 6
    assert (m.steps, m.active_min, m.activity_bouts, m.hr_samples) == (0, 0.0, 0, 0)
    assert not m.steps_available
    assert m.nonwear_min["no_data"] == 1440
    json.dumps(m.to_row(), allow_nan=False)


def test_a_band_off_the_skin_all_day_is_not_worn() -> None:
    t = np.arange(0, US_PER_DAY, 1_000_000, dtype=np.int64)
    m = daily_metrics(
        start=0,
        end=US_PER_DAY,
        profile=PROFILE,
        hr_time=t,
        hr_bpm=np.zeros(t.shape[0]),
        hr_contact=np.zeros(t.shape[0], np.int8),
    )
    assert m.wear_min == 0.0
    assert m.nonwear_min["no_contact"] == 1440
    assert m.trimp_edwards is None and m.mean_hr_bpm is None


def test_a_step_only_band_still_gives_wear_activity_and_step_load(sim_day: SimulatedDay) -> None:
    m = daily_metrics(
        start=sim_day.start_us,
        end=sim_day.start_us + US_PER_DAY,
        profile=PROFILE,
        step_time=sim_day.step_time_us,
        step_count=sim_day.steps,
    )
    assert m.trimp_banister is None and m.trimp_edwards is None and m.rmssd_ms is None
    assert m.steps == int(sim_day.steps.sum())
    assert m.step_load is not None and m.step_load > 0
    assert m.activity_bouts == 3
    # The night without steps is indistinguishable from a band on the bedside table.
    assert m.nonwear_min["no_movement"] >= 6 * 60
    assert 0 < m.wear_min < 1440


def test_a_day_reported_twice_by_one_band_counts_its_steps_once(sim_day: SimulatedDay) -> None:
    # One-minute step rows, then the same minutes again 20 s later (a second gateway in
    # reach of the band, or the demo run twice): each stretch of time is counted once.
    minute = 60_000_000

    def steps_only(end: np.ndarray, counts: np.ndarray) -> DailyMetrics:
        return daily_metrics(
            start=sim_day.start_us,
            end=sim_day.start_us + US_PER_DAY,
            profile=PROFILE,
            step_time=end,
            step_count=counts,
            step_start=end - minute,
        )

    once = steps_only(sim_day.step_time_us, sim_day.steps)
    assert once.steps == int(sim_day.steps.sum())
    shifted = np.concatenate((sim_day.step_time_us, sim_day.step_time_us + 20_000_000))
    twice = steps_only(shifted, np.tile(sim_day.steps, 2))
    # Only the last 20 s, which the second report alone covers, add anything.
    assert abs(twice.steps - once.steps) <= sim_day.steps[-1]
    assert steps_only(np.tile(sim_day.step_time_us, 2), np.tile(sim_day.steps, 2)) == once


def test_order_of_rows_and_type_of_time_do_not_matter(
    sim_day: SimulatedDay, metrics: DailyMetrics
) -> None:
    order = np.random.default_rng(0).permutation(sim_day.hr_time_us.shape[0])
    shuffled = daily_metrics(
        start=np.datetime64(sim_day.start_us, "us"),
        end=np.datetime64(sim_day.start_us + US_PER_DAY, "us"),
        profile=PROFILE,
        hr_time=sim_day.hr_time_us[order].astype("datetime64[us]"),
        hr_bpm=sim_day.hr_bpm[order],
        hr_contact=sim_day.hr_contact[order],
        rr_time=sim_day.rr_time_us[::-1],
        rr_ms=sim_day.rr_ms[::-1],
        step_time=sim_day.step_time_us,
        step_count=sim_day.steps,
        night=(sim_day.start_us, sim_day.start_us + 6 * H),
    )
    assert shuffled.to_row() == metrics.to_row()


def test_given_resting_hr_and_reserve_zones(sim_day: SimulatedDay) -> None:
    profile = PatientPhysiology(age_years=45, sex="male", hr_rest_bpm=60, hr_max_bpm=180)
    m = _run(sim_day, profile, config=DailyConfig(zone_basis="hrr"))
    assert m.hr_rest_source == "given" and m.hr_rest_used_bpm == 60
    assert m.hr_max_source == "measured"
    assert m.zone_basis == "hrr"
    assert m.zone_bounds_bpm == pytest.approx((120, 132, 144, 156, 168))
    assert m.above_ceiling_min == 0.0 and m.hr_ceiling_bpm is None


def test_a_25_hour_day_is_accepted(sim_day: SimulatedDay) -> None:
    m = daily_metrics(
        start=sim_day.start_us,
        end=sim_day.start_us + US_PER_DAY + H,
        profile=PROFILE,
        hr_time=sim_day.hr_time_us,
        hr_bpm=sim_day.hr_bpm,
        hr_contact=sim_day.hr_contact,
    )
    assert m.wear_min == 1390.0


def test_bad_day_bounds_and_profiles_raise_typed_errors() -> None:
    with pytest.raises(ParameterError):
        daily_metrics(start=1, end=US_PER_DAY, profile=PROFILE)
    with pytest.raises(ParameterError):
        daily_metrics(start=US_PER_DAY, end=0, profile=PROFILE)
    with pytest.raises(ParameterError, match="age_years"):
        PatientPhysiology()
    with pytest.raises(UnknownMethodError):
        PatientPhysiology(age_years=40, sex="other")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        PatientPhysiology(age_years=40, hr_rest_bpm=200)


def test_real_fitbit_day(fitbit: FitbitHR) -> None:
    start = fitbit.day_start_us("2016-05-11")
    m = daily_metrics(
        start=start,
        end=start + US_PER_DAY,
        profile=PatientPhysiology(age_years=40),
        hr_time=fitbit.time_us,
        hr_bpm=fitbit.bpm,
    )
    in_day = int(
        np.count_nonzero((fitbit.time_us >= start) & (fitbit.time_us < start + US_PER_DAY))
    )
    assert m.hr_samples == in_day == 7913
    assert 850 < m.wear_min < 940 and m.valid_day
    assert m.nonwear_min["no_data"] == 1440 - m.wear_min
    assert m.resting_hr_bpm is not None and 45 < m.resting_hr_bpm < 75
    assert m.rmssd_ms is None and m.rr_intervals == 0  # no RR in a Fitbit export
    assert m.trimp_edwards is not None and m.trimp_edwards > 0
    assert sum(m.zone_min) <= m.wear_min
    assert not m.steps_available and m.step_load is None


def test_row_upserts_into_the_real_daily_metrics_table(conn: Any, metrics: DailyMetrics) -> None:
    from psycopg import sql
    from psycopg.types.json import Jsonb

    patient = conn.execute(
        "INSERT INTO patient (external_ref, display_name) VALUES ('signal-test', 'Signal Test')"
        " RETURNING patient_id"
    ).fetchone()[0]
    row = metrics.to_row()
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    marks = sql.SQL(", ").join(map(sql.Placeholder, COLUMNS))
    conn.execute(
        sql.SQL(
            "INSERT INTO daily_metrics (patient_id, day, {}) VALUES (%(patient_id)s, '2023-11-15', {})"
        ).format(cols, marks),
        {**row, "extra": Jsonb(row["extra"]), "patient_id": patient},
    )
    back = conn.execute(
        sql.SQL("SELECT {} FROM daily_metrics WHERE patient_id = %s").format(cols), (patient,)
    ).fetchone()
    stored = dict(zip(COLUMNS, back, strict=True))
    assert stored["extra"] == json.loads(json.dumps(row["extra"]))
    assert stored["steps"] == row["steps"]
    assert stored["zone_min"] == pytest.approx(row["zone_min"], rel=1e-6)  # real = float4
    assert stored["rmssd_ms"] == pytest.approx(row["rmssd_ms"], rel=1e-6)
    conn.rollback()
