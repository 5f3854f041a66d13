"""Altair charts of the patient page, all on one time axis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, TypeAlias, cast

import altair as alt
import pandas as pd
import pyarrow as pa

WIDTH = "container"
AnyChart = alt.Chart | alt.LayerChart | alt.VConcatChart | alt.FacetChart
SEVERITY_COLOURS = {"info": "#607d8b", "warning": "#ef6c00", "critical": "#c62828"}


def _x(start: date, end: date, *, field: str = "day", title: str | None = None) -> alt.X:
    domain = [
        datetime.combine(start, time()).isoformat(),
        datetime.combine(end + timedelta(days=1), time()).isoformat(),
    ]
    axis = alt.Axis(format="%d %b")
    if field != "day":
        return alt.X(f"{field}:T", scale=alt.Scale(domain=domain), title=title, axis=axis)
    # A day unit makes each bar as wide as its day on any range.
    return alt.X(
        f"{field}:T",
        timeUnit="yearmonthdate",
        scale=alt.Scale(domain=domain),
        title=title,
        axis=axis,
    )


Source: TypeAlias = pd.DataFrame | alt.Data
"""A chart's rows: a table, or the name of a dataset attached to the spec (`with_data`)."""


def _named(name: str) -> alt.Data:
    data: alt.Data = alt.Data(name=name)  # type: ignore[no-untyped-call]
    return data


def load_chart(df: Source, start: date, end: date, unit: str | None = None) -> AnyChart:
    """Daily load as bars against the quota (line), its ±20 % band and the baseline."""
    if unit is None:
        unit = str(df["measure"].iloc[0]) if isinstance(df, pd.DataFrame) and len(df) else ""
    base = alt.Chart(df).encode(x=_x(start, end))
    band = base.mark_area(opacity=0.18, color="#2e7d32").encode(
        y=alt.Y("band_low:Q", title=unit), y2="band_high:Q"
    )
    bars = base.mark_bar(opacity=0.85).encode(
        y=alt.Y("load:Q", title=unit),
        color=alt.condition("datum.valid", alt.value("#1565c0"), alt.value("#b0bec5")),
        tooltip=[
            alt.Tooltip("day:T"),
            alt.Tooltip("load:Q", format=".0f"),
            alt.Tooltip("quota:Q", format=".0f"),
        ],
    )
    quota = base.mark_line(color="#2e7d32", strokeWidth=2).encode(y="quota:Q")
    baseline = base.mark_line(color="#424242", strokeDash=[4, 3]).encode(y="baseline:Q")
    return cast(
        AnyChart,
        alt.layer(band, bars, quota, baseline).properties(
            title="Daily load against quota (green band ±20 %) and baseline (dashed)",
            height=180,
            width=WIDTH,
        ),
    )


def zone_chart(df: Source, start: date, end: date) -> AnyChart:
    """Minutes in each heart-rate zone per day (stacked)."""
    return cast(
        AnyChart,
        (
            alt.Chart(df)
            .mark_bar()
            .encode(
                x=_x(start, end),
                y=alt.Y("sum(minutes):Q", title="minutes"),
                color=alt.Color(
                    "zone:N",
                    scale=alt.Scale(scheme="oranges"),
                    legend=alt.Legend(orient="top", title=None),
                ),
                tooltip=["day:T", "zone:N", alt.Tooltip("minutes:Q", format=".0f")],
            )
            .properties(title="Time in heart-rate zones", height=140, width=WIDTH)
        ),
    )


def diary_chart(df: Source, start: date, end: date) -> AnyChart:
    """Pain, fatigue and fear of movement (0-10) from the diary."""
    return cast(
        AnyChart,
        (
            alt.Chart(df)
            .mark_line(point=True)
            .encode(
                x=_x(start, end),
                y=alt.Y("rating:Q", scale=alt.Scale(domain=[0, 10]), title="0-10"),
                color=alt.Color("measure:N", legend=alt.Legend(orient="top", title=None)),
                tooltip=["day:T", "measure:N", "rating:Q"],
            )
            .properties(title="Pain, fatigue and fear of movement", height=140, width=WIDTH)
        ),
    )


def recovery_chart(df: Source, start: date, end: date) -> AnyChart:
    """RMSSD and resting heart rate, each on its own axis."""
    base = alt.Chart(df).encode(x=_x(start, end))
    rmssd = base.mark_line(color="#6a1b9a", point=True).encode(
        y=alt.Y("rmssd_ms:Q", title="RMSSD (ms)"),
        tooltip=["day:T", alt.Tooltip("rmssd_ms:Q", format=".0f")],
    )
    rest = base.mark_line(color="#00838f", point=True, strokeDash=[3, 2]).encode(
        y=alt.Y("resting_hr_bpm:Q", title="resting HR (bpm)"),
        tooltip=["day:T", alt.Tooltip("resting_hr_bpm:Q", format=".0f")],
    )
    return cast(
        AnyChart,
        (
            alt.layer(rmssd, rest)
            .resolve_scale(y="independent")
            .properties(
                title="HRV (RMSSD, solid) and resting heart rate (dashed)", height=140, width=WIDTH
            )
        ),
    )


def risk_chart(df: Source, start: date, end: date, threshold: float) -> AnyChart:
    """The 48 h flare-risk score with the alert threshold."""
    line = (
        alt.Chart(df)
        .mark_area(line=True, opacity=0.25, color="#c62828")
        .encode(
            x=_x(start, end),
            y=alt.Y(
                "risk:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="risk"
            ),
        )
    )
    rule = alt.Chart(pd.DataFrame({"y": [threshold]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    return cast(
        AnyChart,
        alt.layer(line, rule).properties(
            title="Flare risk over the next 48 h", height=110, width=WIDTH
        ),
    )


def flag_chart(df: Source, start: date, end: date) -> AnyChart:
    """Flags as bars from the first to the last day of each episode."""
    return cast(
        AnyChart,
        (
            alt.Chart(df)
            .mark_bar(height=12, cornerRadius=3)
            .encode(
                x=_x(start, end, field="start"),
                x2="end:T",
                y=alt.Y("rule:N", title=None),
                color=alt.Color(
                    "severity:N",
                    scale=alt.Scale(
                        domain=list(SEVERITY_COLOURS), range=list(SEVERITY_COLOURS.values())
                    ),
                ),
                opacity=alt.condition("datum.status == 'resolved'", alt.value(0.4), alt.value(1.0)),
                tooltip=["rule:N", "severity:N", "status:N", "start:T", "end:T"],
            )
            .properties(title="Flags", height=alt.Step(18), width=WIDTH)
        ),
    )


def timeline(charts: Sequence[Any]) -> AnyChart:
    """Stack charts so that they share one time axis."""
    return cast(AnyChart, alt.vconcat(*charts).resolve_scale(x="shared", color="independent"))


def intraday_chart(df: Source) -> AnyChart:
    """One day in minute buckets: mean heart rate (line) over steps per minute (bars)."""
    base = alt.Chart(df).encode(x=alt.X("minute:T", title=None, axis=alt.Axis(format="%H:%M")))
    steps = base.mark_bar(color="#90caf9", opacity=0.7).encode(
        y=alt.Y("steps:Q", title="steps/min")
    )
    hr = base.mark_line(color="#c62828").encode(y=alt.Y("mean HR:Q", title="heart rate (bpm)"))
    return cast(
        AnyChart,
        alt.layer(steps, hr).resolve_scale(y="independent").properties(height=220, width=WIDTH),
    )


def questionnaire_chart(answers: Source, weeks: Source, start: date, end: date) -> AnyChart:
    """Questionnaire totals over time above the weekly mean active minutes, on one time axis."""
    domain = alt.Scale(domain=[str(start), str(end)])
    top = (
        alt.Chart(answers, height=160, title="Questionnaire totals")
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title=None, scale=domain),
            y=alt.Y("total:Q", title="total"),
            color=alt.Color("instrument:N", title=None),
            tooltip=["day:T", "instrument:N", "total:Q", "range:N"],
        )
    )
    bottom = (
        alt.Chart(weeks, height=90, title="Active minutes a day (weekly mean of valid days)")
        .mark_bar()
        .encode(
            x=alt.X("week:T", title=None, scale=domain),
            y=alt.Y("active_min:Q", title="min"),
            tooltip=["week:T", "active_min:Q", "steps:Q", "valid_days:Q"],
        )
    )
    return cast(AnyChart, alt.vconcat(top, bottom).resolve_scale(x="shared"))


def spec(chart: AnyChart) -> dict[str, Any]:
    """The Vega-Lite spec of a chart, unvalidated.

    Altair's JSON-schema validation costs about twice the rest of the conversion on
    every render; the charts are fixed code, validated once by the tests
    (`validate=True` there), so the page skips it.
    """
    out: dict[str, Any] = chart.to_dict(validate=False)
    return out


@lru_cache(maxsize=128)
def patient_spec(
    start: date, end: date, unit: str, flags: bool, risk_threshold: float
) -> dict[str, Any]:
    """The patient page's charts on one time axis, without data (see `with_data`).

    The structure depends only on the range, the unit and whether there are flags,
    never on anyone's data, so it is built once per shape and shared.
    """
    charts: list[AnyChart] = [
        load_chart(_named("load"), start, end, unit),
        zone_chart(_named("zones"), start, end),
        diary_chart(_named("diary"), start, end),
        recovery_chart(_named("recovery"), start, end),
        risk_chart(_named("risk"), start, end, risk_threshold),
    ]
    if flags:
        charts.append(flag_chart(_named("flags"), start, end))
    return spec(timeline(charts))


@lru_cache(maxsize=128)
def trends_spec(start: date, end: date, unit: str) -> dict[str, Any]:
    """The patient's own load and diary charts, without data."""
    return spec(
        timeline(
            [
                load_chart(_named("load"), start, end, unit),
                diary_chart(_named("diary"), start, end),
            ]
        )
    )


@lru_cache(maxsize=128)
def questionnaire_spec(start: date, end: date) -> dict[str, Any]:
    """The questionnaires against weekly activity, without data (datasets `answers`, `weeks`).

    Building, validating and converting the Altair chart on every render was the
    largest item of the patient page's profile; the structure depends only on the
    range, never on anyone's data, so it is built once per range and shared.
    """
    return spec(questionnaire_chart(_named("answers"), _named("weeks"), start, end))


@lru_cache(maxsize=8)
def intraday_spec() -> dict[str, Any]:
    """One day in minute buckets, without data."""
    return spec(intraday_chart(_named("minutes")))


def chart_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Rows as a chart dataset: days and times as ISO text (local, as Vega-Lite reads it), NaN as null.

    An Arrow table goes to the browser as it is; building it straight from the view
    model's rows skips pandas, which cost more than the page's SQL on every render.
    """
    return pa.table({c: _chart_column(v) for c, v in _columns(rows, columns).items()})


def display_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Rows as an Arrow table for `st.dataframe`, columns in order, values as they are.

    Streamlit sends an Arrow table as it is and converts a pandas frame to Arrow
    first, so the tables skip pandas as the chart datasets do.
    """
    return pa.table({c: pa.array(v) for c, v in _columns(rows, columns).items()})


def _columns(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {c: [] for c in columns}
    appends = [(c, values[c].append) for c in columns]
    for row in rows:
        for c, append in appends:
            append(row.get(c))
    return values


def _chart_column(values: list[Any]) -> pa.Array:
    """One dataset column, converted as a whole where it can be (a render has thousands of cells).

    A column holds one kind of value: days or times become ISO text one by one;
    anything else goes to Arrow as it is, NaN as null (`from_pandas`).
    """
    first = next((v for v in values if v is not None), None)
    if isinstance(first, date):
        return pa.array([_json_value(v) for v in values])
    return pa.array(values, from_pandas=True)


def iso_local(at: datetime) -> str:
    """`at` as ISO 8601 wall time without offset (`2026-09-01T14:05:00`), as Vega-Lite reads it."""
    # isoformat is several times faster than strftime; the offset, if any, is cut off.
    return at.isoformat(timespec="seconds")[:19]


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_local(v)
    if isinstance(v, date):
        return f"{v.isoformat()}T00:00:00"
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def records(table: pa.Table) -> list[dict[str, Any]]:
    """A dataset as JSON rows (what Vega-Lite receives; the tests validate specs with it)."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def with_data(skeleton: dict[str, Any], datasets: Mapping[str, pa.Table]) -> dict[str, Any]:
    """A spec from `patient_spec`/`intraday_spec` with its named datasets attached.

    Streamlit sends an Arrow dataset without converting it; `as_json` gives the same
    spec with the rows inlined.
    """
    return {**skeleton, "datasets": dict(datasets)}


def as_json(spec: dict[str, Any]) -> dict[str, Any]:
    """A `with_data` spec with its datasets as JSON rows (a plain Vega-Lite spec)."""
    return {**spec, "datasets": {k: records(v) for k, v in spec.get("datasets", {}).items()}}
