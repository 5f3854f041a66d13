"""The dashboard's view models on their own: bands, sections, framing."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from datetime import date, timedelta

from paceline.dashboard import caseload, my_day
from paceline.pacing import intake, ladder
from paceline.pacing.days import Measure
from paceline.pacing.progression import TodayState, TodayStatus


def test_the_colour_band_is_plus_or_minus_twenty_percent_of_quota() -> None:
    assert caseload.band(40, 40) is caseload.Band.WITHIN
    assert caseload.band(48, 40) is caseload.Band.WITHIN
    assert caseload.band(48.1, 40) is caseload.Band.OVER
    assert caseload.band(32, 40) is caseload.Band.WITHIN
    assert caseload.band(31.9, 40) is caseload.Band.UNDER
    assert caseload.band(None, 40) is caseload.Band.UNKNOWN
    assert caseload.band(10, None) is caseload.Band.UNKNOWN


def test_meeting_the_quota_is_framed_as_done_for_the_day() -> None:
    met = TodayStatus(
        date(2026, 11, 20), Measure.ACTIVE_MINUTES, 30.0, 31.0, 0.0, 31 / 30, TodayState.MET, "x"
    )
    card = my_day.today_card(met)
    assert card.progress == 1.0
    assert card.reassurance is not None and my_day.STOP_HERE in card.reassurance
    below = TodayStatus(
        date(2026, 11, 20), Measure.ACTIVE_MINUTES, 30.0, 6.0, 24.0, 0.2, TodayState.BELOW, "y"
    )
    assert my_day.today_card(below).reassurance is None
    assert my_day.today_card(None).progress == 0.0


def test_every_chart_is_a_valid_vega_lite_spec() -> None:
    # The pages skip Altair's validation for speed (charts.spec); it happens here instead.
    import pandas as pd

    from paceline.dashboard import charts

    start, end = date(2026, 9, 1), date(2026, 9, 28)
    day = pd.date_range(start, end)
    load = pd.DataFrame(
        {
            "day": day,
            "load": 30.0,
            "quota": 35.0,
            "band_low": 28.0,
            "band_high": 42.0,
            "baseline": 40.0,
            "measure": "active minutes",
            "valid": True,
        }
    )
    zones = pd.DataFrame({"day": day, "zone": "zone 1", "minutes": 10.0})
    diary = pd.DataFrame({"day": day, "measure": "pain", "rating": 4})
    recovery = pd.DataFrame({"day": day, "rmssd_ms": 40.0, "resting_hr_bpm": 60.0})
    risk = pd.DataFrame({"day": day, "risk": 0.2})
    flags = pd.DataFrame(
        {
            "rule": ["x"],
            "start": [day[0]],
            "end": [day[3]],
            "severity": ["warning"],
            "status": ["open"],
        }
    )
    minutes = pd.DataFrame(
        {
            "minute": pd.date_range(start, periods=60, freq="min"),
            "mean HR": 80.0,
            "max HR": 90,
            "steps": 5,
        }
    )
    every = [
        charts.load_chart(load, start, end),
        charts.zone_chart(zones, start, end),
        charts.diary_chart(diary, start, end),
        charts.recovery_chart(recovery, start, end),
        charts.risk_chart(risk, start, end, 0.35),
        charts.flag_chart(flags, start, end),
    ]
    charts.timeline(every).to_dict(validate=True)
    charts.intraday_chart(minutes).to_dict(validate=True)
    answers = pd.DataFrame({"day": day, "instrument": "PSEQ", "total": 30, "range": "0-60"})
    weeks = pd.DataFrame({"week": day[::7], "active_min": 25.0, "steps": 4000.0, "valid_days": 7})
    charts.questionnaire_chart(answers, weeks, start, end).to_dict(validate=True)


def test_the_cached_chart_skeletons_with_data_are_valid_specs() -> None:
    import altair as alt

    from paceline.dashboard import charts

    start, end = date(2026, 9, 1), date(2026, 9, 7)
    loads = [30.0, math.nan, 20, 25, 30, 35, 40]
    load = charts.chart_table(
        ({"day": start + timedelta(days=i), "load": v, "quota": 35.0} for i, v in enumerate(loads)),
        ("day", "load", "quota"),
    )
    spec = charts.as_json(
        charts.with_data(
            charts.patient_spec(start, end, "active minutes", False, 0.35), {"load": load}
        )
    )
    assert spec["datasets"]["load"][1]["load"] is None  # NaN would not be JSON
    assert spec["datasets"]["load"][0]["day"] == "2026-09-01T00:00:00"
    alt.VConcatChart.from_dict(spec, validate=True)
    assert charts.patient_spec(start, end, "active minutes", False, 0.35) is charts.patient_spec(
        start, end, "active minutes", False, 0.35
    )
    alt.LayerChart.from_dict(charts.intraday_spec(), validate=True)
    assert charts.questionnaire_spec(start, end) is charts.questionnaire_spec(start, end)


def test_the_questionnaire_chart_carries_its_totals_and_weeks_as_named_datasets() -> None:
    import altair as alt

    from paceline.dashboard import charts, record_view
    from paceline.pacing.reassessment import QuestionnairePoint, Trends, WeekActivity

    start, end = date(2026, 9, 1), date(2026, 9, 28)
    trends = Trends(
        patient_id=1,
        start=start,
        end=end,
        questionnaires=(QuestionnairePoint("PSEQ", date(2026, 9, 3), 31, 0, 60),),
        weeks=(WeekActivity(date(2026, 8, 31), 5, 22.5, None, None),),
    )
    spec = charts.as_json(record_view.trend_spec(trends))
    assert spec["datasets"] == {
        "answers": [
            {"day": "2026-09-03T00:00:00", "instrument": "PSEQ", "total": 31, "range": "0-60"}
        ],
        "weeks": [
            {"week": "2026-08-31T00:00:00", "active_min": 22.5, "steps": None, "valid_days": 5}
        ],
    }
    alt.VConcatChart.from_dict(spec, validate=True)
    # No questionnaires yet: the chart still draws (its axes), from empty datasets.
    empty = Trends(1, start, end, (), ())
    alt.VConcatChart.from_dict(charts.as_json(record_view.trend_spec(empty)), validate=True)


def test_each_rating_fills_a_keyword_of_the_call_it_feeds_and_starts_on_its_scale() -> None:
    forms: dict[Callable[..., object], tuple[my_day.Rating, ...]] = {
        intake.submit_diary: my_day.DIARY,
        intake.submit_exercise: my_day.EXERCISE,
        ladder.record_session: my_day.exposure_ratings(35),
    }
    for call, ratings in forms.items():
        keywords = {
            p.name
            for p in inspect.signature(call).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert {r.name for r in ratings} <= keywords, call.__name__
        assert all(r.low <= r.start <= r.high for r in ratings), call.__name__
    keys = [r.key for ratings in forms.values() for r in ratings]
    assert len(keys) == len(set(keys)), "one widget key a rating on the page"
    fear = {r.name: r.start for r in my_day.exposure_ratings(35)}
    assert fear["fear_before"] == fear["peak_distress"] == fear["fear_after"] == 35
