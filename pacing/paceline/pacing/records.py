"""Pacing's typed reads and writes: all of pacing's SQL, and no clinical rules.

Every module of `paceline.pacing` that reads or writes the database (the
engine, intake, planning, ladders, the jobs, the alerts, the dashboard's read
models and the exports) does it through the functions here. Rows come back as
the frozen values the pure modules take (`MetricsRow`, `DiaryRecord`,
`PlanVersion`, `SessionRecord`, …), read straight into them by psycopg's row
factories (`class_row`, `kwargs_row`) through `_fetch_all` and `_fetch_one`.
Days are the patient's local days: timestamps are converted with the patient's
time zone in SQL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import (
    BaseRowFactory,
    RowFactory,
    class_row,
    dict_row,
    kwargs_row,
    scalar_row,
)
from psycopg.types.json import Jsonb

from paceline.pacing import localday
from paceline.pacing.days import MetricsRow, measure
from paceline.pacing.diary import RATING_FIELDS, DiaryEntry, DiaryRecord
from paceline.pacing.errors import (
    ExerciseError,
    GoalError,
    PlanError,
    UnknownExposureError,
    UnknownGoalError,
    UnknownPatientError,
    UnknownPrescriptionError,
)
from paceline.pacing.exercise import (
    ExerciseSession,
    Prescription,
    Target,
    TargetCause,
    TargetVersion,
)
from paceline.pacing.exercise import Kind as ExerciseKind
from paceline.pacing.exposure import (
    ItemStatus,
    LadderItem,
    SessionLoad,
    SessionRecord,
    SessionStatus,
)
from paceline.pacing.flags import Flag, Severity
from paceline.pacing.goals import Goal, GoalLink, GoalStatus
from paceline.pacing.progression import Cause, PlanSettings, PlanVersion
from paceline.pacing.questionnaires import QuestionnaireScore
from paceline.pacing.redflags import Pause, Screen, Source, StoredScreen
from paceline.signal.trimp import Sex
from paceline.store import copybinary, registry

if TYPE_CHECKING:
    # Only for annotations: the alerts package imports this module.
    from paceline.pacing.alerts.policy import Audience, Episode, Status, Urgency


_Row = TypeVar("_Row")


def _fetch_all(
    conn: psycopg.Connection[Any],
    rows: RowFactory[_Row],
    query: QueryNoTemplate,
    params: Params | None,
) -> list[_Row]:
    """Every row `query` returns, each made by `rows` (`class_row`, `dict_row`, `_as`)."""
    with conn.cursor(row_factory=rows) as cur:
        return cur.execute(query, params).fetchall()


def _fetch_one(
    conn: psycopg.Connection[Any],
    rows: RowFactory[_Row],
    query: QueryNoTemplate,
    params: Params | None,
) -> _Row | None:
    """The first row `query` returns, made by `rows`; None when it returns none."""
    with conn.cursor(row_factory=rows) as cur:
        return cur.execute(query, params).fetchone()


def _returned_int(conn: psycopg.Connection[Any], query: QueryNoTemplate, params: Params) -> int:
    """The integer (an id, a count) a write's `RETURNING` gives for the one row it wrote."""
    new_id = _fetch_one(conn, scalar_row, query, params)
    assert new_id is not None
    return int(new_id)


def _as(cls: Callable[..., _Row], **convert: Callable[[Any], Any]) -> BaseRowFactory[_Row]:
    """`class_row` for a value whose named columns are converted first (stored text to enums)."""

    def make(**row: Any) -> _Row:
        for name, to_value in convert.items():
            row[name] = to_value(row[name])
        return cls(**row)

    return kwargs_row(make)


def to_json(value: object) -> str:
    """JSON text for a jsonb column (numpy scalars become plain numbers)."""

    def coerce(o: object) -> object:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, date):
            return o.isoformat()
        raise TypeError(f"{type(o).__name__} is not JSON serialisable")

    return json.dumps(value, default=coerce, sort_keys=True)


@dataclass(frozen=True)
class PatientContext:
    """What pacing needs to know about a patient: time zone and enrolment."""

    patient_id: int
    timezone: str
    enrolled_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        """The patient's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def enrolled_day(self) -> date:
        """The local day of enrolment."""
        return localday.local_day(self.enrolled_at, self.zone)

    def local_day(self, when: datetime) -> date:
        """The patient's local day of an instant."""
        return localday.local_day(when, self.zone)

    def day_start(self, day: date) -> datetime:
        """The instant a local day begins."""
        return localday.day_start(day, self.zone)


def patient_record(conn: psycopg.Connection[Any], patient_id: int) -> registry.Patient:
    """The patient as stored, or `UnknownPatientError`."""
    try:
        return registry.get_patient(conn, patient_id)
    except registry.NotFoundError:
        raise UnknownPatientError(patient_id) from None


def patient_context(conn: psycopg.Connection[Any], patient_id: int) -> PatientContext:
    """The patient's time zone and enrolment, or `UnknownPatientError`."""
    p = patient_record(conn, patient_id)
    return PatientContext(p.patient_id, p.timezone, p.enrolled_at)


def lock_patient(conn: psycopg.Connection[Any], patient_id: int) -> None:
    """Serialise pacing writes for one patient until the transaction ends."""
    # Key space: the ASCII of "pcng" in the first argument, the patient in the second.
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x70636E67, patient_id % 2**31))


# Daily metrics and diary -----------------------------------------------------------------

_METRICS_COLS = sql.SQL(
    "day, wear_min, active_min, steps, trimp_banister, trimp_edwards, above_ceiling_min, hr_samples"
)


def _day_rows(
    conn: psycopg.Connection[Any],
    row: type[_Row],
    columns: sql.Composable,
    *,
    patient_id: int,
    start: date,
    end: date,
) -> list[_Row]:
    """`columns` of the patient's `daily_metrics` rows of days `start` … `end`, as `row`s."""
    return _fetch_all(
        conn,
        class_row(row),
        sql.SQL(
            "SELECT {} FROM daily_metrics"
            " WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day"
        ).format(columns),
        (patient_id, start, end),
    )


def metrics_rows(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[MetricsRow]:
    """The daily-metrics rows of days `start` … `end`."""
    return _day_rows(conn, MetricsRow, _METRICS_COLS, patient_id=patient_id, start=start, end=end)


def _local_days(ctx: PatientContext, start: date, end: date) -> dict[str, Any]:
    """Query parameters of local days `start` … `end`: zone, patient and the instants."""
    return {
        "tz": ctx.timezone,
        "p": ctx.patient_id,
        "lo": ctx.day_start(start),
        "hi": ctx.day_start(end + timedelta(days=1)),
    }


def diary_records(
    conn: psycopg.Connection[Any], ctx: PatientContext, start: date, end: date
) -> list[DiaryRecord]:
    """Diary entries of local days `start` … `end`, oldest first."""
    return _fetch_all(
        conn,
        class_row(DiaryRecord),
        "SELECT (reported_at AT TIME ZONE %(tz)s)::date AS day, reported_at, pain_now,"
        " pain_average, pain_worst, fatigue, mood, sleep_quality, fear_of_movement, note"
        " FROM self_report WHERE patient_id = %(p)s"
        " AND reported_at >= %(lo)s AND reported_at < %(hi)s ORDER BY reported_at",
        _local_days(ctx, start, end),
    )


REPORT_COLUMNS = (*RATING_FIELDS, "note")


def _insert_once(
    conn: psycopg.Connection[Any],
    *,
    table: str,
    id_column: str,
    columns: Sequence[str],
    patient_id: int,
    values: Sequence[Any],
    key: str | None,
) -> tuple[int, bool, dict[str, Any]]:
    """Insert a patient's row once per idempotency key: (id, whether new, stored `columns`)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {table} (patient_id, {cols}, idempotency_key) VALUES (%s, {values}, %s)"
            " ON CONFLICT (patient_id, idempotency_key) DO NOTHING RETURNING {id}"
        ).format(
            table=sql.Identifier(table),
            cols=cols,
            values=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
            id=sql.Identifier(id_column),
        ),
        (patient_id, *values, key),
    ).fetchone()
    return _once(
        conn, row, table=table, id_column=id_column, stored=columns, patient_id=patient_id, key=key
    )


def _once(
    conn: psycopg.Connection[Any],
    inserted: tuple[Any, ...] | None,
    *,
    table: str,
    id_column: str,
    stored: Sequence[str],
    patient_id: int,
    key: str | None,
) -> tuple[int, bool, dict[str, Any]]:
    """(id, True, {}) for the row just `inserted`; else the key's stored row, (id, False, `stored`)."""
    if inserted is not None:
        return int(inserted[0]), True, {}
    row = _fetch_one(
        conn,
        dict_row,
        sql.SQL(
            "SELECT {id}, {cols} FROM {table} WHERE patient_id = %s AND idempotency_key = %s"
        ).format(
            id=sql.Identifier(id_column),
            cols=sql.SQL(", ").join(map(sql.Identifier, stored)),
            table=sql.Identifier(table),
        ),
        (patient_id, key),
    )
    assert row is not None
    return int(row.pop(id_column)), False, row


def insert_self_report(
    conn: psycopg.Connection[Any], patient_id: int, entry: DiaryEntry, key: str | None
) -> tuple[int, bool, dict[str, Any]]:
    """Store a diary entry once per idempotency key: (report id, whether new, stored values)."""
    columns = ("reported_at", *REPORT_COLUMNS)
    values = [getattr(entry, c) for c in columns]
    return _insert_once(
        conn,
        table="self_report",
        id_column="report_id",
        columns=columns,
        patient_id=patient_id,
        values=values,
        key=key,
    )


def insert_questionnaire(
    conn: psycopg.Connection[Any],
    patient_id: int,
    score: QuestionnaireScore,
    answered_at: datetime,
    key: str | None,
) -> tuple[int, bool, dict[str, Any]]:
    """Store a scored answer sheet once per idempotency key: (id, whether new, stored values)."""
    row = conn.execute(
        "INSERT INTO questionnaire_response (patient_id, instrument, answered_at, items, total,"
        " scores, idempotency_key) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)"
        " ON CONFLICT (patient_id, idempotency_key) DO NOTHING RETURNING response_id",
        (
            patient_id,
            score.instrument.value,
            answered_at,
            list(score.answers),
            score.total,
            to_json(score.as_json()),
            key,
        ),
    ).fetchone()
    return _once(
        conn,
        row,
        table="questionnaire_response",
        id_column="response_id",
        stored=("instrument", "answered_at", "items"),
        patient_id=patient_id,
        key=key,
    )


@dataclass(frozen=True)
class QuestionnaireRecord:
    """A stored, scored questionnaire: instrument, when (and the patient's local day), totals."""

    response_id: int
    instrument: str
    answered_at: datetime
    day: date
    total: int
    scores: dict[str, Any]


def questionnaire_records(
    conn: psycopg.Connection[Any], ctx: PatientContext, start: date, end: date
) -> list[QuestionnaireRecord]:
    """The patient's questionnaires answered on local days `start` … `end`, oldest first."""
    return _fetch_all(
        conn,
        class_row(QuestionnaireRecord),
        "SELECT response_id, instrument, answered_at,"
        " (answered_at AT TIME ZONE %(tz)s)::date AS day, total, scores"
        " FROM questionnaire_response WHERE patient_id = %(p)s"
        " AND answered_at >= %(lo)s AND answered_at < %(hi)s"
        " ORDER BY answered_at, response_id",
        _local_days(ctx, start, end),
    )


def latest_answer_days(
    conn: psycopg.Connection[Any], patient_ids: Sequence[int]
) -> dict[int, dict[str, date]]:
    """Per patient, the local day of the latest answer sheet of each instrument (one query)."""
    rows = conn.execute(
        "SELECT q.patient_id, q.instrument, (max(q.answered_at) AT TIME ZONE p.timezone)::date"
        " FROM questionnaire_response q JOIN patient p USING (patient_id)"
        " WHERE q.patient_id = ANY(%s) GROUP BY q.patient_id, q.instrument, p.timezone",
        (list(patient_ids),),
    ).fetchall()
    out: dict[int, dict[str, date]] = {}
    for pid, name, day in rows:
        out.setdefault(int(pid), {})[str(name)] = day
    return out


def current_plan_params(
    conn: psycopg.Connection[Any], patient_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The params of each patient's highest plan version (patients without a plan are left out)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (patient_id) patient_id, params FROM pacing_plan"
        " WHERE patient_id = ANY(%s) ORDER BY patient_id, version DESC",
        (list(patient_ids),),
    ).fetchall()
    return {int(pid): dict(params or {}) for pid, params in rows}


# Plans -----------------------------------------------------------------------------------


def _plan(**row: Any) -> PlanVersion:
    """A plan version from its `pacing_plan` columns (the settings are in `params`)."""
    params = row["params"] or {}
    flare_start = params.get("flare_start")
    try:
        cause = Cause(params.get("cause", Cause.CLINICIAN.value))
    except ValueError:
        cause = Cause.CLINICIAN
    return PlanVersion(
        version=row["version"],
        measure=measure(row["measure"]),
        baseline=row["baseline"],
        quota=row["quota"],
        valid_from=row["valid_day"],
        cause=cause,
        reason=row["reason"],
        start_fraction=row["start_fraction"],
        step_fraction=row["step_fraction"],
        period_days=row["period_days"],
        hr_ceiling_bpm=row["hr_ceiling_bpm"],
        settings=PlanSettings.from_json(params),
        created_by=row["created_by"],
        flare_start=None if flare_start is None else date.fromisoformat(flare_start),
        evidence=params.get("evidence") or {},
    )


_PLAN_COLS = sql.SQL(", ").join(
    sql.Identifier("pacing_plan", c)
    for c in (
        "version",
        "measure",
        "baseline",
        "quota",
        "start_fraction",
        "step_fraction",
        "period_days",
        "hr_ceiling_bpm",
        "params",
        "created_by",
        "reason",
    )
)


def plan_versions(
    conn: psycopg.Connection[Any], ctx: PatientContext, *, since: date | None = None
) -> list[PlanVersion]:
    """The versions of the patient's plan, oldest first: all, or those in effect from `since` on.

    With `since`, the result is the version in effect on that local day (the
    highest version that took effect by then) and every version after it.
    """
    return _fetch_all(
        conn,
        kwargs_row(_plan),
        sql.SQL(
            "SELECT {}, (valid_from AT TIME ZONE %(tz)s)::date AS valid_day FROM pacing_plan"
            " WHERE patient_id = %(p)s AND version >= coalesce((SELECT max(version)"
            "   FROM pacing_plan WHERE patient_id = %(p)s AND valid_from < %(lo)s), 0)"
            " ORDER BY version"
        ).format(_PLAN_COLS),
        {
            "tz": ctx.timezone,
            "p": ctx.patient_id,
            "lo": None if since is None else ctx.day_start(since + timedelta(days=1)),
        },
    )


def insert_plan_version(
    conn: psycopg.Connection[Any], ctx: PatientContext, plan: PlanVersion, valid_from: datetime
) -> int:
    """Store one plan version; a version number already taken raises `PlanError`."""
    try:
        with conn.transaction():
            new_id = _returned_int(
                conn,
                "INSERT INTO pacing_plan (patient_id, version, measure, baseline, quota,"
                " start_fraction, step_fraction, period_days, hr_ceiling_bpm, valid_from, params,"
                " created_by, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb,"
                " %s, %s) RETURNING plan_id",
                (
                    ctx.patient_id,
                    plan.version,
                    plan.measure.value,
                    plan.baseline,
                    plan.quota,
                    plan.start_fraction,
                    plan.step_fraction,
                    plan.period_days,
                    plan.hr_ceiling_bpm,
                    valid_from,
                    to_json(plan.params_json()),
                    plan.created_by,
                    plan.reason,
                ),
            )
    except psycopg.errors.UniqueViolation:
        raise PlanError(
            f"plan version {plan.version} of patient {ctx.patient_id} was written concurrently;"
            " reload the plan and try again"
        ) from None
    return new_id


# Flags and flare risk ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFlag:
    """A flag row as stored."""

    flag_id: int
    rule_id: str
    window_start: datetime
    window_end: datetime
    severity: str
    status: str


def stored_flags(
    conn: psycopg.Connection[Any], patient_id: int, rule_ids: Sequence[str], since: datetime
) -> list[StoredFlag]:
    """The patient's flags of `rule_ids` that are unresolved or end after `since`."""
    return _fetch_all(
        conn,
        class_row(StoredFlag),
        "SELECT flag_id, rule_id, window_start, window_end, severity, status FROM flag"
        " WHERE patient_id = %s AND rule_id = ANY(%s)"
        " AND (status IN ('open', 'acknowledged') OR window_end >= %s) ORDER BY window_start",
        (patient_id, list(rule_ids), since),
    )


def upsert_flag(
    conn: psycopg.Connection[Any],
    patient_id: int,
    flag: Flag,
    *,
    window_start: datetime,
    window_end: datetime,
    status: str,
) -> tuple[int, bool]:
    """Insert or update the flag of (patient, rule, window start): (flag id, whether it changed).

    An acknowledged flag that is still active stays acknowledged.
    """
    row = conn.execute(
        "INSERT INTO flag AS f (patient_id, rule_id, window_start, window_end, severity,"
        " evidence, status) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)"
        " ON CONFLICT (patient_id, rule_id, window_start) DO UPDATE SET"
        " window_end = excluded.window_end, severity = excluded.severity,"
        " evidence = excluded.evidence,"
        " status = CASE WHEN f.status = 'acknowledged' AND excluded.status = 'open'"
        "   THEN 'acknowledged' ELSE excluded.status END, updated_at = now()"
        " WHERE (f.window_end, f.severity, f.evidence) IS DISTINCT FROM"
        "   (excluded.window_end, excluded.severity, excluded.evidence)"
        " OR (f.status <> excluded.status"
        "   AND NOT (f.status = 'acknowledged' AND excluded.status = 'open'))"
        " RETURNING flag_id",
        (
            patient_id,
            flag.rule_id,
            window_start,
            window_end,
            flag.severity.value,
            to_json(flag.evidence),
            status,
        ),
    ).fetchone()
    if row is not None:
        return int(row[0]), True
    found = conn.execute(
        "SELECT flag_id FROM flag WHERE patient_id = %s AND rule_id = %s AND window_start = %s",
        (patient_id, flag.rule_id, window_start),
    ).fetchone()
    assert found is not None
    return int(found[0]), False


def resolve_flags(conn: psycopg.Connection[Any], flag_ids: Iterable[int]) -> None:
    """Mark flags resolved (their condition no longer holds)."""
    ids = list(flag_ids)
    if ids:
        conn.execute(
            "UPDATE flag SET status = 'resolved', updated_at = now()"
            " WHERE flag_id = ANY(%s) AND status <> 'resolved'",
            (ids,),
        )


@dataclass(frozen=True)
class FlagView:
    """A stored flag for display: rule, window, severity, status and the evidence behind it."""

    flag_id: int
    rule_id: str
    window_start: datetime
    window_end: datetime
    severity: Severity
    status: str
    evidence: dict[str, Any]


def flags_for(
    conn: psycopg.Connection[Any], patient_id: int, *, include_resolved: bool = False
) -> list[FlagView]:
    """The patient's flags, newest window first (open and acknowledged ones unless told)."""
    where = sql.SQL("" if include_resolved else " AND status <> 'resolved'")
    return _fetch_all(
        conn,
        _as(FlagView, severity=Severity),
        sql.SQL(
            "SELECT flag_id, rule_id, window_start, window_end, severity, status, evidence"
            " FROM flag WHERE patient_id = %s{} ORDER BY window_start DESC, rule_id"
        ).format(where),
        (patient_id,),
    )


def acknowledge_flag(conn: psycopg.Connection[Any], flag_id: int) -> None:
    """A clinician has seen the flag (it stays acknowledged while its condition holds)."""
    conn.execute(
        "UPDATE flag SET status = 'acknowledged', updated_at = now()"
        " WHERE flag_id = %s AND status = 'open'",
        (flag_id,),
    )


def upsert_flare_risk(
    conn: psycopg.Connection[Any],
    patient_id: int,
    day: date,
    *,
    score: float,
    model: str,
    factors: Mapping[str, Any],
) -> None:
    """Store the day's flare-risk score (replacing an earlier computation of the same day)."""
    conn.execute(
        "INSERT INTO flare_risk (patient_id, day, score, model, factors)"
        " VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (patient_id, day) DO UPDATE SET"
        " score = excluded.score, model = excluded.model, factors = excluded.factors,"
        " computed_at = now()",
        (patient_id, day, score, model, to_json(factors)),
    )


def flare_risk_history(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[tuple[date, float]]:
    """Stored daily flare-risk scores of days `start` … `end`."""
    return [(r.day, r.score) for r in flare_risks(conn, patient_id, start, end)]


# Exposure ------------------------------------------------------------------------------------

_ITEM_COLS = sql.SQL("item_id, activity, fear_rating, position, status")


_LADDER_ITEM = _as(LadderItem, status=ItemStatus)


def ladder_items(conn: psycopg.Connection[Any], patient_id: int) -> list[LadderItem]:
    """The patient's fear ladder, bottom rung first."""
    return _fetch_all(
        conn,
        _LADDER_ITEM,
        sql.SQL(
            "SELECT {} FROM exposure_item WHERE patient_id = %s ORDER BY position, item_id"
        ).format(_ITEM_COLS),
        (patient_id,),
    )


def ladder_item(conn: psycopg.Connection[Any], patient_id: int, item_id: int) -> LadderItem:
    """One ladder item of the patient, or `UnknownExposureError`."""
    row = _fetch_one(
        conn,
        _LADDER_ITEM,
        sql.SQL("SELECT {} FROM exposure_item WHERE patient_id = %s AND item_id = %s").format(
            _ITEM_COLS
        ),
        (patient_id, item_id),
    )
    if row is None:
        raise UnknownExposureError(f"patient {patient_id} has no ladder item {item_id}")
    return row


def insert_item(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    activity: str,
    fear_rating: int,
    position: int,
    created_by: int | None,
) -> LadderItem:
    """Add a rung to the ladder."""
    row = _fetch_one(
        conn,
        _LADDER_ITEM,
        sql.SQL(
            "INSERT INTO exposure_item (patient_id, activity, fear_rating, position,"
            " created_by) VALUES (%s, %s, %s, %s, %s) RETURNING {}"
        ).format(_ITEM_COLS),
        (patient_id, activity, fear_rating, position, created_by),
    )
    assert row is not None
    return row


def update_item(conn: psycopg.Connection[Any], item: LadderItem, patient_id: int) -> LadderItem:
    """Write an edited rung back."""
    row = _fetch_one(
        conn,
        _LADDER_ITEM,
        sql.SQL(
            "UPDATE exposure_item SET activity = %s, fear_rating = %s, position = %s,"
            " status = %s, updated_at = now() WHERE item_id = %s AND patient_id = %s"
            " RETURNING {}"
        ).format(_ITEM_COLS),
        (
            item.activity,
            item.fear_rating,
            item.position,
            item.status.value,
            item.item_id,
            patient_id,
        ),
    )
    if row is None:
        raise UnknownExposureError(f"patient {patient_id} has no ladder item {item.item_id}")
    return row


@dataclass(frozen=True)
class FearRating:
    """One fear rating (0-100) a ladder item was given: first, re-rated or edited."""

    rating_id: int
    item_id: int
    fear_rating: int
    rated_at: datetime
    rated_by: int | None
    kind: str


_RATING_COLS = sql.SQL("rating_id, item_id, fear_rating, rated_at, rated_by, kind")


def insert_rating(
    conn: psycopg.Connection[Any],
    patient_id: int,
    item_id: int,
    *,
    fear_rating: int,
    rated_by: int | None,
    kind: str,
    rated_at: datetime | None = None,
) -> FearRating:
    """Append one rating to an item's history (the history is never rewritten)."""
    row = _fetch_one(
        conn,
        class_row(FearRating),
        sql.SQL(
            "INSERT INTO exposure_rating (item_id, patient_id, fear_rating, rated_at,"
            " rated_by, kind) VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s) RETURNING {}"
        ).format(_RATING_COLS),
        (item_id, patient_id, fear_rating, rated_at, rated_by, kind),
    )
    assert row is not None
    return row


def fear_ratings(conn: psycopg.Connection[Any], patient_id: int) -> list[FearRating]:
    """Every rating of every ladder item of the patient, oldest first."""
    return _fetch_all(
        conn,
        class_row(FearRating),
        sql.SQL(
            "SELECT {} FROM exposure_rating WHERE patient_id = %s ORDER BY rated_at, rating_id"
        ).format(_RATING_COLS),
        (patient_id,),
    )


_SESSION_COLS = sql.SQL(
    "session_id, item_id, planned_at, (planned_at AT TIME ZONE %(tz)s)::date AS planned_day,"
    " status, started_at, ended_at, fear_before, fear_after, expected_harm, actual_harm, note,"
    " peak_distress, debrief"
)


_SESSION = _as(SessionRecord, status=SessionStatus)


def sessions(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    *,
    item_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[SessionRecord]:
    """Exposure sessions of the patient (optionally of one item, or planned in a day range)."""
    where: list[sql.Composable] = [sql.SQL("patient_id = %(p)s")]
    params: dict[str, Any] = {"tz": ctx.timezone, "p": ctx.patient_id}
    if item_id is not None:
        where.append(sql.SQL("item_id = %(item)s"))
        params["item"] = item_id
    if start is not None:
        where.append(sql.SQL("planned_at >= %(lo)s"))
        params["lo"] = ctx.day_start(start)
    if end is not None:
        where.append(sql.SQL("planned_at < %(hi)s"))
        params["hi"] = ctx.day_start(end + timedelta(days=1))
    return _fetch_all(
        conn,
        _SESSION,
        sql.SQL("SELECT {} FROM exposure_session WHERE {} ORDER BY planned_at, session_id").format(
            _SESSION_COLS, sql.SQL(" AND ").join(where)
        ),
        params,
    )


def session(conn: psycopg.Connection[Any], ctx: PatientContext, session_id: int) -> SessionRecord:
    """One session of the patient, or `UnknownExposureError`."""
    row = _fetch_one(
        conn,
        _SESSION,
        sql.SQL(
            "SELECT {} FROM exposure_session WHERE patient_id = %(p)s AND session_id = %(s)s"
        ).format(_SESSION_COLS),
        {"tz": ctx.timezone, "p": ctx.patient_id, "s": session_id},
    )
    if row is None:
        raise UnknownExposureError(f"patient {ctx.patient_id} has no exposure session {session_id}")
    return row


def insert_session(
    conn: psycopg.Connection[Any], ctx: PatientContext, item_id: int, planned_at: datetime
) -> SessionRecord:
    """Plan a session against an item."""
    new_id = _returned_int(
        conn,
        "INSERT INTO exposure_session (item_id, patient_id, planned_at) VALUES (%s, %s, %s)"
        " RETURNING session_id",
        (item_id, ctx.patient_id, planned_at),
    )
    return session(conn, ctx, new_id)


def update_session(conn: psycopg.Connection[Any], ctx: PatientContext, s: SessionRecord) -> None:
    """Write a session's outcome back."""
    conn.execute(
        "UPDATE exposure_session SET status = %s, started_at = %s, ended_at = %s,"
        " fear_before = %s, fear_after = %s, expected_harm = %s, actual_harm = %s, note = %s,"
        " peak_distress = %s, debrief = %s WHERE session_id = %s AND patient_id = %s",
        (
            s.status.value,
            s.started_at,
            s.ended_at,
            s.fear_before,
            s.fear_after,
            s.expected_harm,
            s.actual_harm,
            s.note,
            s.peak_distress,
            s.debrief,
            s.session_id,
            ctx.patient_id,
        ),
    )


def session_load(
    conn: psycopg.Connection[Any], patient_id: int, session_id: int, start: datetime, end: datetime
) -> SessionLoad:
    """Heart rate and steps recorded for the patient between `start` and `end`."""
    hr = conn.execute(
        "SELECT count(*), avg(bpm)::float8, max(bpm) FROM hr_sample"
        " WHERE patient_id = %s AND time >= %s AND time < %s",
        (patient_id, start, end),
    ).fetchone()
    steps = conn.execute(
        "SELECT coalesce(sum(steps), 0) FROM step_sample"
        " WHERE patient_id = %s AND time > %s AND time <= %s",
        (patient_id, start, end),
    ).fetchone()
    assert hr is not None and steps is not None
    return SessionLoad(
        session_id=session_id,
        start=start,
        end=end,
        hr_samples=int(hr[0]),
        mean_hr_bpm=None if hr[1] is None else float(hr[1]),
        max_hr_bpm=None if hr[2] is None else int(hr[2]),
        steps=int(steps[0]),
    )


# Clinicians' progress notes (paceline.pacing.notes) --------------------------------------------


@dataclass(frozen=True)
class StoredNote:
    """A progress note as stored: who wrote it when, the text and the structured ratings."""

    note_id: int
    patient_id: int
    clinician_id: int
    clinician_name: str
    written_at: datetime
    body: str
    activity: str | None
    confidence: int | None
    task_independence: int | None
    perceived_capability: int | None
    amends: int | None


_NOTE_FIELDS = (
    "patient_id",
    "clinician_id",
    "written_at",
    "body",
    "activity",
    "confidence",
    "task_independence",
    "perceived_capability",
    "amends",
)


def insert_note(conn: psycopg.Connection[Any], values: Mapping[str, Any]) -> int:
    """Store one progress note (the keys of `values` are `progress_note` columns); its id."""
    unknown = set(values) - set(_NOTE_FIELDS)
    assert not unknown, unknown
    names = [k for k in _NOTE_FIELDS if k in values]
    return _returned_int(
        conn,
        sql.SQL("INSERT INTO progress_note ({}) VALUES ({}) RETURNING note_id").format(
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
        ),
        [values[k] for k in names],
    )


def progress_notes(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    note_id: int | None = None,
) -> list[StoredNote]:
    """The patient's progress notes written in [`since`, `until`), newest first (or one note)."""
    return _fetch_all(
        conn,
        class_row(StoredNote),
        # A clinician's session sees only their own clinician row: colleagues by number.
        "SELECT n.note_id, n.patient_id, n.clinician_id,"
        " coalesce(c.display_name, 'clinician ' || n.clinician_id) AS clinician_name,"
        " n.written_at, n.body, n.activity, n.confidence, n.task_independence,"
        " n.perceived_capability, n.amends FROM progress_note n"
        " LEFT JOIN clinician c USING (clinician_id) WHERE n.patient_id = %(p)s"
        " AND (%(lo)s::timestamptz IS NULL OR n.written_at >= %(lo)s)"
        " AND (%(hi)s::timestamptz IS NULL OR n.written_at < %(hi)s)"
        " AND (%(id)s::bigint IS NULL OR n.note_id = %(id)s)"
        " ORDER BY n.written_at DESC, n.note_id DESC",
        {"p": patient_id, "lo": since, "hi": until, "id": note_id},
    )


# Job queue work lists and the clock's slots (paceline.pacing.jobs) -------------------------


@dataclass(frozen=True)
class EnrolledPatient:
    """A patient as the periodic jobs see them: id, time zone name and enrolment instant."""

    patient_id: int
    timezone: str
    enrolled_at: datetime


def enrolled_patients(conn: psycopg.Connection[Any], now: datetime) -> list[EnrolledPatient]:
    """Every patient enrolled by `now`, in id order."""
    return _fetch_all(
        conn,
        class_row(EnrolledPatient),
        "SELECT patient_id, timezone, enrolled_at FROM patient"
        " WHERE enrolled_at <= %s ORDER BY patient_id",
        (now,),
    )


# "roll" in ASCII: the rollup's advisory locks (whole pass; one patient in the second key).
ROLLUP_LOCK_KEY = 0x726F6C6C


def lock_rollup(conn: psycopg.Connection[Any]) -> None:
    """Serialise whole rollup passes until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK_KEY,))


def lock_rollup_of(conn: psycopg.Connection[Any], patient_id: int) -> None:
    """Serialise rollups of one patient until the (sub)transaction's top transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ROLLUP_LOCK_KEY, patient_id % 2**31))


def patients_with_spans(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    """Every patient with queued sample spans, with their time zone, in patient order."""
    rows = conn.execute(
        "SELECT DISTINCT s.patient_id, p.timezone FROM sample_span s"
        " JOIN patient p USING (patient_id) ORDER BY s.patient_id"
    ).fetchall()
    return [(int(pid), str(tz)) for pid, tz in rows]


def patient_zone(conn: psycopg.Connection[Any], patient_id: int) -> list[tuple[int, str]]:
    """The patient with their time zone (an empty list for an unknown patient)."""
    rows = conn.execute(
        "SELECT patient_id, timezone FROM patient WHERE patient_id = %s", (patient_id,)
    ).fetchall()
    return [(int(pid), str(tz)) for pid, tz in rows]


def take_spans(
    conn: psycopg.Connection[Any], patient_id: int
) -> list[tuple[int, datetime, datetime]]:
    """The patient's queued spans, locked so that the rollup tick skips them while this runs."""
    rows = conn.execute(
        "SELECT span_id, first_time, last_time FROM sample_span WHERE patient_id = %s FOR UPDATE",
        (patient_id,),
    ).fetchall()
    return [(int(span_id), first, last) for span_id, first, last in rows]


def drop_spans(conn: psycopg.Connection[Any], span_ids: Sequence[int]) -> None:
    """Remove spans whose days have been recomputed."""
    conn.execute("DELETE FROM sample_span WHERE span_id = ANY(%s)", (list(span_ids),))


def patients_with_new_samples(conn: psycopg.Connection[Any]) -> list[int]:
    """The patients with sample spans no rollup has processed or is processing now."""
    # A running rollup holds its spans FOR UPDATE; skipping them keeps the tick from
    # deferring a second rollup that would find nothing left to do.
    rows = conn.execute(
        "SELECT DISTINCT patient_id FROM"
        " (SELECT patient_id FROM sample_span FOR KEY SHARE SKIP LOCKED) AS s"
        " ORDER BY patient_id"
    )
    return [int(pid) for (pid,) in rows.fetchall()]


def queue_evaluations(conn: psycopg.Connection[Any], due: Iterable[tuple[int, date]]) -> int:
    """Add (patient, day) pairs to the evaluation work list; how many were added."""
    pairs = list(due)
    if not pairs:
        return 0
    conn.execute(
        "INSERT INTO evaluation_due (patient_id, day)"
        " SELECT * FROM unnest(%s::bigint[], %s::date[])",
        ([p for p, _ in pairs], [d for _, d in pairs]),
    )
    return len(pairs)


def pending_queueing_locks(conn: psycopg.Connection[Any], locks: Sequence[str]) -> set[str]:
    """Which of `locks` a job waiting in the queue holds (procrastinate's partial unique index)."""
    if not locks:
        return set()
    rows = conn.execute(
        "SELECT queueing_lock FROM procrastinate_jobs"
        " WHERE status = 'todo' AND queueing_lock = ANY(%s)",
        (list(locks),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def due_evaluations(conn: psycopg.Connection[Any], patient_id: int) -> list[tuple[int, date]]:
    """The patient's queued (due id, day) pairs, locked until the transaction ends."""
    rows = conn.execute(
        "SELECT due_id, day FROM evaluation_due WHERE patient_id = %s ORDER BY day, due_id"
        " FOR UPDATE",
        (patient_id,),
    ).fetchall()
    return [(int(due_id), day) for due_id, day in rows]


def clear_evaluations(conn: psycopg.Connection[Any], due_ids: Iterable[int]) -> None:
    """Remove work-list rows that an evaluation has handled."""
    conn.execute("DELETE FROM evaluation_due WHERE due_id = ANY(%s)", (list(due_ids),))


def claim_slot(
    conn: psycopg.Connection[Any], job: str, slot: datetime, *, first_since: datetime
) -> datetime | None:
    """Advance periodic `job` to `slot`; the previous slot (or `first_since`), None if claimed already.

    The row is locked until the caller's transaction ends, so of two clocks
    claiming the same slot at once exactly one gets it.
    """
    inserted = conn.execute(
        "INSERT INTO clock_slot (job, last_slot) VALUES (%s, %s)"
        " ON CONFLICT (job) DO NOTHING RETURNING job",
        (job, slot),
    ).fetchone()
    if inserted is not None:
        return first_since
    row = conn.execute(
        "SELECT last_slot FROM clock_slot WHERE job = %s FOR UPDATE", (job,)
    ).fetchone()
    if row is None or row[0] >= slot:
        return None
    conn.execute(
        "UPDATE clock_slot SET last_slot = %s, deferred_at = now() WHERE job = %s", (slot, job)
    )
    return row[0]  # type: ignore[no-any-return]


# The engine's carried state --------------------------------------------------------------------


def latest_engine_state(
    conn: psycopg.Connection[Any], patient_id: int, *, through: date, since: date, model: str
) -> dict[str, Any] | None:
    """The latest engine state stored by `model` for a day from `since` to `through`."""
    row = conn.execute(
        "SELECT state FROM pacing_state WHERE patient_id = %s AND day BETWEEN %s AND %s"
        " AND model = %s ORDER BY day DESC LIMIT 1",
        (patient_id, since, through, model),
    ).fetchone()
    return None if row is None else dict(row[0])


def store_engine_state(
    conn: psycopg.Connection[Any],
    patient_id: int,
    day: date,
    model: str,
    state: Mapping[str, Any],
    *,
    keep_days: int,
) -> None:
    """Store the state at the end of `day` and drop states more than `keep_days` older."""
    conn.execute(
        "INSERT INTO pacing_state (patient_id, day, model, state) VALUES (%s, %s, %s, %s::jsonb)"
        " ON CONFLICT (patient_id, day) DO UPDATE SET model = excluded.model,"
        " state = excluded.state, computed_at = now()",
        (patient_id, day, model, to_json(state)),
    )
    conn.execute(
        "DELETE FROM pacing_state WHERE patient_id = %s AND day < %s",
        (patient_id, day - timedelta(days=keep_days)),
    )


# Alerts, their deliveries (the outbox) and the people they go to (paceline.pacing.alerts) --


@dataclass(frozen=True)
class Person:
    """Someone an alert can reach: `recipient` is 'clinician:ID' or 'patient:ID'."""

    recipient: str
    email: str | None
    timezone: str


def care_team(conn: psycopg.Connection[Any], patient_id: int) -> list[Person]:
    """The clinicians on the patient's care team."""
    rows = conn.execute(
        "SELECT c.clinician_id, c.email, c.timezone FROM care_team ct"
        " JOIN clinician c USING (clinician_id) WHERE ct.patient_id = %s ORDER BY c.clinician_id",
        (patient_id,),
    ).fetchall()
    return [Person(f"clinician:{r[0]}", r[1], r[2]) for r in rows]


def patient_person(conn: psycopg.Connection[Any], patient_id: int) -> Person:
    """The patient as a recipient."""
    row = conn.execute(
        "SELECT email, timezone FROM patient WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return Person(f"patient:{patient_id}", row[0], row[1])


def set_patient_contact(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    email: str | None,
    diary_reminder_at: Any,
) -> None:
    """Store the patient's e-mail address and chosen local diary-reminder time."""
    conn.execute(
        "UPDATE patient SET email = %s, diary_reminder_at = %s WHERE patient_id = %s",
        (email, diary_reminder_at, patient_id),
    )


def set_clinician_contact(
    conn: psycopg.Connection[Any], clinician_id: int, *, email: str | None, timezone: str
) -> None:
    """Store a clinician's e-mail address and time zone (for quiet hours and the digest)."""
    conn.execute(
        "UPDATE clinician SET email = %s, timezone = %s WHERE clinician_id = %s",
        (email, timezone, clinician_id),
    )


def on_care_team(conn: psycopg.Connection[Any], clinician_id: int, patient_id: int) -> bool:
    """Whether the clinician may act on the patient's alerts."""
    row = conn.execute(
        "SELECT 1 FROM care_team WHERE clinician_id = %s AND patient_id = %s",
        (clinician_id, patient_id),
    ).fetchone()
    return row is not None


def flag_windows(
    conn: psycopg.Connection[Any], flag_ids: Sequence[int]
) -> dict[int, tuple[datetime, datetime]]:
    """The stored window of each flag."""
    rows = conn.execute(
        "SELECT flag_id, window_start, window_end FROM flag WHERE flag_id = ANY(%s)",
        (list(flag_ids),),
    ).fetchall()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def latest_alerts(
    conn: psycopg.Connection[Any], patient_id: int, audience: Audience
) -> dict[str, dict[str, Any]]:
    """Each rule's most recent alert for the patient, as the policy's state needs it.

    The rows stay mappings: the policy's `AlertState` lives in
    `paceline.pacing.alerts`, which imports this module (not the other way round).
    """
    rows = _fetch_all(
        conn,
        dict_row,
        "SELECT DISTINCT ON (rule_id) alert_id, rule_id, flag_id, window_start, severity,"
        " status, urgency, notified_severity, last_notified_at, repeats, resolved_at,"
        " acknowledged_at, notified_findings FROM alert WHERE patient_id = %s AND audience = %s"
        " ORDER BY rule_id, window_start DESC",
        (patient_id, audience.value),
    )
    return {r["rule_id"]: r for r in rows}


def insert_alert(
    conn: psycopg.Connection[Any],
    patient_id: int,
    episode: Episode,
    *,
    audience: Audience,
    urgency: Urgency,
    now: datetime,
) -> int | None:
    """Open an alert for an episode; None if one for (patient, rule, episode) exists."""
    row = conn.execute(
        "INSERT INTO alert (flag_id, patient_id, rule_id, window_start, window_end, severity,"
        " audience, urgency, summary, detail, opened_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
        " ON CONFLICT (patient_id, rule_id, window_start) DO NOTHING RETURNING alert_id",
        (
            episode.flag_id if episode.flag_id > 0 else None,
            patient_id,
            episode.rule_id,
            episode.window_start,
            episode.window_end,
            episode.severity.value,
            audience.value,
            urgency.value,
            episode.summary,
            json.dumps(episode.detail, default=str, sort_keys=True),
            now,
            now,
            now,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


def continue_alert(
    conn: psycopg.Connection[Any],
    alert_id: int,
    episode: Episode,
    *,
    urgency: Urgency,
    status: Status,
    new_episode: bool,
    now: datetime,
) -> None:
    """Let an alert follow its episode (or the next episode under hysteresis)."""
    conn.execute(
        "UPDATE alert SET flag_id = %s, window_end = %s, severity = %s, urgency = %s,"
        " summary = %s, detail = %s::jsonb, status = %s,"
        " resolved_at = CASE WHEN %s = 'resolved' THEN resolved_at END,"
        " resolution = CASE WHEN %s = 'resolved' THEN resolution END,"
        " episodes = episodes + %s, updated_at = %s WHERE alert_id = %s",
        (
            episode.flag_id,
            episode.window_end,
            episode.severity.value,
            urgency.value,
            episode.summary,
            json.dumps(episode.detail, default=str, sort_keys=True),
            status.value,
            status.value,
            status.value,
            int(new_episode),
            now,
            alert_id,
        ),
    )


def mark_notified(
    conn: psycopg.Connection[Any],
    alert_id: int,
    severity: Severity,
    *,
    repeat: bool,
    findings: Sequence[int] = (),
    now: datetime,
) -> int:
    """Record a push of the alert (and the findings it told about); its notice number (0 first)."""
    return _returned_int(
        conn,
        "UPDATE alert SET notified_severity = %s, last_notified_at = %s,"
        " repeats = repeats + %s, notices = notices + 1, updated_at = %s,"
        " notified_findings = ARRAY(SELECT DISTINCT f FROM"
        "   unnest(notified_findings || %s::bigint[]) AS f ORDER BY f)"
        " WHERE alert_id = %s RETURNING notices - 1",
        (severity.value, now, int(repeat), now, list(findings), alert_id),
    )


@dataclass(frozen=True)
class AlertRow:
    """An alert as listed for the dashboard and the CLI."""

    alert_id: int
    patient_id: int
    rule_id: str
    flag_id: int | None
    window_start: datetime
    window_end: datetime | None
    severity: str
    audience: str
    urgency: str
    status: str
    summary: str
    opened_at: datetime
    last_notified_at: datetime | None
    repeats: int
    episodes: int
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: int | None
    resolution: str | None


_ALERT_COLS = sql.SQL(
    "alert_id, patient_id, rule_id, flag_id, window_start, window_end, severity, audience,"
    " urgency, status, summary, opened_at, last_notified_at, repeats, episodes,"
    " acknowledged_at, acknowledged_by, ack_note, resolved_at, resolved_by, resolution"
)


def get_alert(
    conn: psycopg.Connection[Any], alert_id: int, *, for_update: bool = False
) -> AlertRow | None:
    """One alert, optionally locked for a life-cycle change."""
    lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
    return _fetch_one(
        conn,
        class_row(AlertRow),
        sql.SQL("SELECT {} FROM alert WHERE alert_id = %s{}").format(_ALERT_COLS, lock),
        (alert_id,),
    )


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int | None = None,
    clinician_id: int | None = None,
    statuses: Sequence[str] = ("open", "acknowledged"),
    audience: str | None = None,
    limit: int = 500,
) -> list[AlertRow]:
    """Alerts newest first, filtered by patient, care team, status and audience."""
    where = [sql.SQL("status = ANY(%(statuses)s)")]
    params: dict[str, Any] = {"statuses": list(statuses), "limit": limit}
    if patient_id is not None:
        where.append(sql.SQL("patient_id = %(patient)s"))
        params["patient"] = patient_id
    if clinician_id is not None:
        where.append(
            sql.SQL(
                "patient_id IN (SELECT patient_id FROM care_team WHERE clinician_id = %(clin)s)"
            )
        )
        params["clin"] = clinician_id
    if audience is not None:
        where.append(sql.SQL("audience = %(audience)s"))
        params["audience"] = audience
    query = sql.SQL(
        "SELECT {} FROM alert WHERE {} ORDER BY opened_at DESC, alert_id DESC LIMIT %(limit)s"
    ).format(_ALERT_COLS, sql.SQL(" AND ").join(where))
    return _fetch_all(conn, class_row(AlertRow), query, params)


def acknowledge_alert(
    conn: psycopg.Connection[Any], alert_id: int, *, clinician_id: int, note: str, now: datetime
) -> None:
    """Mark the alert acknowledged by the clinician, with the note."""
    conn.execute(
        "UPDATE alert SET status = 'acknowledged', acknowledged_at = %s, acknowledged_by = %s,"
        " ack_note = %s, updated_at = %s WHERE alert_id = %s",
        (now, clinician_id, note, now, alert_id),
    )


def resolve_alerts(
    conn: psycopg.Connection[Any],
    alert_ids: Iterable[int],
    *,
    resolution: str,
    clinician_id: int | None,
    now: datetime,
) -> list[int]:
    """Resolve unresolved alerts; returns the ids that changed."""
    rows = conn.execute(
        "UPDATE alert SET status = 'resolved', resolved_at = %s, resolved_by = %s,"
        " resolution = %s, updated_at = %s WHERE alert_id = ANY(%s) AND status <> 'resolved'"
        " RETURNING alert_id",
        (now, clinician_id, resolution, now, list(alert_ids)),
    ).fetchall()
    return [int(r[0]) for r in rows]


def alerts_of(conn: psycopg.Connection[Any], alert_ids: Sequence[int]) -> list[AlertRow]:
    """The alerts a message carries, most severe first."""
    return _fetch_all(
        conn,
        class_row(AlertRow),
        sql.SQL(
            "SELECT {} FROM alert WHERE alert_id = ANY(%s) ORDER BY"
            " array_position(ARRAY['critical', 'warning', 'info'], severity), alert_id"
        ).format(_ALERT_COLS),
        (list(alert_ids),),
    )


def insert_delivery(
    conn: psycopg.Connection[Any],
    *,
    alert_id: int,
    patient_id: int,
    alert_ids: Sequence[int],
    notice: int,
    channel: str,
    recipient: str,
    address: str | None,
    kind: str,
    next_attempt_at: datetime | None,
    delivered_at: datetime | None = None,
    news: str | None = None,
    now: datetime,
) -> int | None:
    """Write one delivery (None if the (alert, channel, recipient, notice) row exists)."""
    status = "delivered" if delivered_at is not None else "pending"
    row = conn.execute(
        "INSERT INTO alert_delivery (alert_id, patient_id, alert_ids, notice, channel, recipient,"
        " address, kind, status, message_key, next_attempt_at, delivered_at, created_at, news)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (alert_id, channel, recipient, notice) DO NOTHING RETURNING delivery_id",
        (
            alert_id,
            patient_id,
            list(alert_ids),
            notice,
            channel,
            recipient,
            address,
            kind,
            status,
            uuid.uuid4(),
            next_attempt_at,
            delivered_at,
            now,
            news,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as stored."""

    delivery_id: int
    alert_id: int
    patient_id: int
    alert_ids: list[int]
    notice: int
    channel: str
    recipient: str
    address: str | None
    kind: str
    status: str
    message_key: uuid.UUID
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    digest_of: int | None
    created_at: datetime
    #: What the notice is the first to tell about (a new red-flag answer), if anything.
    news: str | None = None


_DELIVERY_COLS = sql.SQL(
    "delivery_id, alert_id, patient_id, alert_ids, notice, channel, recipient, address, kind,"
    " status, message_key, attempts, next_attempt_at, last_attempt_at, last_error,"
    " delivered_at, digest_of, created_at, news"
)


def _deliveries(
    conn: psycopg.Connection[Any], rest: sql.Composable, params: Any
) -> list[DeliveryRow]:
    """Deliveries selected by `rest` (the condition and any order, limit or lock)."""
    return _fetch_all(
        conn,
        class_row(DeliveryRow),
        sql.SQL("SELECT {} FROM alert_delivery WHERE {}").format(_DELIVERY_COLS, rest),
        params,
    )


def delivery(conn: psycopg.Connection[Any], delivery_id: int) -> DeliveryRow | None:
    """One delivery, unlocked."""
    rows = _deliveries(conn, sql.SQL("delivery_id = %s"), (delivery_id,))
    return rows[0] if rows else None


def claim_delivery(conn: psycopg.Connection[Any], delivery_id: int) -> DeliveryRow | None:
    """Lock one delivery for an attempt; None if another worker holds it (or it does not exist)."""
    rows = _deliveries(conn, sql.SQL("delivery_id = %s FOR UPDATE SKIP LOCKED"), (delivery_id,))
    return rows[0] if rows else None


def claim_digest_members(
    conn: psycopg.Connection[Any], lead: DeliveryRow, now: datetime
) -> list[DeliveryRow]:
    """Lock and pin the digest rows that travel with `lead` (the same ones on every retry)."""
    rows = _deliveries(
        conn,
        sql.SQL(
            "status = 'pending' AND kind = 'digest'"
            " AND channel = %(c)s AND recipient = %(r)s AND (digest_of = %(lead)s"
            " OR (digest_of IS NULL AND next_attempt_at <= %(now)s))"
            " ORDER BY delivery_id FOR UPDATE SKIP LOCKED"
        ),
        {"c": lead.channel, "r": lead.recipient, "lead": lead.delivery_id, "now": now},
    )
    conn.execute(
        "UPDATE alert_delivery SET digest_of = %s WHERE delivery_id = ANY(%s)",
        (lead.delivery_id, [r.delivery_id for r in rows]),
    )
    return rows


def dead_letters(conn: psycopg.Connection[Any], *, limit: int = 500) -> list[DeliveryRow]:
    """Deliveries that gave up (dead-lettered, refused or to a disabled endpoint), newest first."""
    return _deliveries(
        conn,
        sql.SQL(
            "status IN ('dead', 'failed', 'disabled')"
            " ORDER BY last_attempt_at DESC NULLS LAST, delivery_id DESC LIMIT %s"
        ),
        (limit,),
    )


def deliveries_of(conn: psycopg.Connection[Any], alert_id: int) -> list[DeliveryRow]:
    """Every delivery that carries the alert."""
    return _deliveries(conn, sql.SQL("%s = ANY(alert_ids) ORDER BY delivery_id"), (alert_id,))


def record_attempt(
    conn: psycopg.Connection[Any],
    delivery_ids: Sequence[int],
    *,
    status: str,
    now: datetime,
    next_attempt_at: datetime | None,
    error: str | None,
) -> None:
    """Store the outcome of one attempt on every row the message carried."""
    conn.execute(
        "UPDATE alert_delivery SET status = %s, attempts = attempts + 1, last_attempt_at = %s,"
        " next_attempt_at = %s, last_error = %s,"
        " delivered_at = CASE WHEN %s = 'delivered' THEN %s END WHERE delivery_id = ANY(%s)",
        (status, now, next_attempt_at, error, status, now, list(delivery_ids)),
    )


def set_delivery_status(
    conn: psycopg.Connection[Any], delivery_ids: Sequence[int], status: str, error: str
) -> None:
    """Change deliveries' status without an attempt (a disabled endpoint)."""
    conn.execute(
        "UPDATE alert_delivery SET status = %s, last_error = %s, next_attempt_at = NULL"
        " WHERE delivery_id = ANY(%s)",
        (status, error, list(delivery_ids)),
    )


def due_deliveries(
    conn: psycopg.Connection[Any], now: datetime, *, kind: str, limit: int
) -> list[int]:
    """Pending deliveries of `kind` due by `now` (for digests: one lead per recipient and channel)."""
    if kind == "digest":
        rows = conn.execute(
            "SELECT min(delivery_id) FROM alert_delivery WHERE status = 'pending'"
            " AND kind = 'digest' AND next_attempt_at <= %s"
            " AND (digest_of IS NULL OR digest_of = delivery_id)"
            " GROUP BY channel, recipient ORDER BY 1 LIMIT %s",
            (now, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT delivery_id FROM alert_delivery WHERE status = 'pending'"
            " AND kind = 'immediate' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, delivery_id LIMIT %s",
            (now, limit),
        ).fetchall()
    return [int(r[0]) for r in rows]


def endpoint_disabled(conn: psycopg.Connection[Any], endpoint: str) -> bool:
    """Whether the push endpoint answered 410 Gone and has not been enabled since."""
    row = conn.execute(
        "SELECT disabled_at IS NOT NULL FROM alert_endpoint WHERE endpoint = %s", (endpoint,)
    ).fetchone()
    return bool(row and row[0])


def disable_endpoint(
    conn: psycopg.Connection[Any], endpoint: str, *, reason: str, now: datetime
) -> None:
    """Stop pushing to an endpoint."""
    conn.execute(
        "INSERT INTO alert_endpoint (endpoint, disabled_at, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (endpoint) DO UPDATE SET disabled_at = excluded.disabled_at,"
        " reason = excluded.reason",
        (endpoint, now, reason),
    )


def enable_endpoint(conn: psycopg.Connection[Any], endpoint: str) -> None:
    """Push to an endpoint again (an operator fixed it)."""
    conn.execute(
        "UPDATE alert_endpoint SET disabled_at = NULL, reason = NULL WHERE endpoint = %s",
        (endpoint,),
    )


@dataclass(frozen=True)
class ReminderCandidate:
    """A patient with a chosen reminder time and whether they logged today."""

    patient_id: int
    timezone: str
    diary_reminder_at: Any
    logged_today: bool
    reminded_today: bool


def reminder_candidates(conn: psycopg.Connection[Any], now: datetime) -> list[ReminderCandidate]:
    """Patients who chose a reminder time, with today's (their local today's) diary state."""
    return _fetch_all(
        conn,
        class_row(ReminderCandidate),
        "SELECT p.patient_id, p.timezone, p.diary_reminder_at,"
        " EXISTS (SELECT 1 FROM self_report s WHERE s.patient_id = p.patient_id"
        "   AND s.reported_at >= d.start AND s.reported_at < d.stop) AS logged_today,"
        " EXISTS (SELECT 1 FROM alert a WHERE a.patient_id = p.patient_id"
        "   AND a.rule_id = 'diary.reminder' AND a.window_start = d.start) AS reminded_today"
        " FROM patient p, LATERAL (SELECT date_trunc('day', %(now)s AT TIME ZONE p.timezone)"
        "   AS local_day) l, LATERAL (SELECT l.local_day AT TIME ZONE p.timezone AS start,"
        "   (l.local_day + interval '1 day') AT TIME ZONE p.timezone AS stop) d"
        " WHERE p.diary_reminder_at IS NOT NULL ORDER BY p.patient_id",
        {"now": now},
    )


def inbox_alert_ids(conn: psycopg.Connection[Any], recipient: str, *, limit: int) -> list[int]:
    """The alerts in `recipient`'s dashboard inbox, newest delivery first."""
    rows = conn.execute(
        "SELECT alert_id FROM alert_delivery WHERE channel = 'inbox' AND recipient = %s"
        " ORDER BY delivery_id DESC LIMIT %s",
        (recipient, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def open_patient_messages(
    conn: psycopg.Connection[Any], rule_id: str, now: datetime
) -> list[tuple[int, int, datetime]]:
    """(alert, patient, window start) of unresolved patient messages of `rule_id` still current, locked."""
    rows = conn.execute(
        "SELECT alert_id, patient_id, window_start FROM alert WHERE audience = 'patient'"
        " AND rule_id = %s AND status <> 'resolved' AND window_end > %s FOR UPDATE",
        (rule_id, now),
    ).fetchall()
    return [(int(a), int(p), w) for a, p, w in rows]


def stale_patient_messages(conn: psycopg.Connection[Any], now: datetime) -> list[tuple[int, int]]:
    """(alert, patient) of unresolved patient messages whose window ended by `now`, locked."""
    rows = conn.execute(
        "SELECT alert_id, patient_id FROM alert WHERE audience = 'patient'"
        " AND status <> 'resolved' AND window_end <= %s FOR UPDATE",
        (now,),
    ).fetchall()
    return [(int(a), int(p)) for a, p in rows]


# What people read: caseloads and one patient's timeline (paceline.pacing.overview) -----------
#
# These run inside person sessions (row-level security decides which patients exist) and
# read every patient of a caseload in one set-based query per table.


@dataclass(frozen=True)
class CaseloadPatient:
    """A patient of a caseload, with yesterday in their own time zone."""

    patient_id: int
    external_ref: str
    display_name: str
    timezone: str
    enrolled_at: datetime
    yesterday: date


def caseload_patients(conn: psycopg.Connection[Any], now: datetime) -> list[CaseloadPatient]:
    """Every patient this session may see, by name, with their local yesterday of `now`."""
    return _fetch_all(
        conn,
        class_row(CaseloadPatient),
        "SELECT patient_id, external_ref, display_name, timezone, enrolled_at,"
        " ((%s::timestamptz AT TIME ZONE timezone)::date - 1) AS yesterday"
        " FROM patient ORDER BY display_name, patient_id",
        (now,),
    )


def plans_of(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, list[PlanVersion]]:
    """Every plan version of the given patients, each patient's oldest first."""
    rows = _fetch_all(
        conn,
        dict_row,
        sql.SQL(
            "SELECT patient_id, {}, (pacing_plan.valid_from AT TIME ZONE p.timezone)::date"
            " AS valid_day FROM pacing_plan JOIN patient p USING (patient_id)"
            " WHERE patient_id = ANY(%s) ORDER BY patient_id, pacing_plan.version"
        ).format(_PLAN_COLS),
        (list(ids),),
    )
    out: dict[int, list[PlanVersion]] = defaultdict(list)
    for r in rows:
        out[r.pop("patient_id")].append(_plan(**r))
    return out


def metrics_of(
    conn: psycopg.Connection[Any], ids: Sequence[int], since: date
) -> dict[int, list[MetricsRow]]:
    """The daily-metrics rows of the given patients from `since` on, each patient's oldest first."""
    rows = _fetch_all(
        conn,
        dict_row,
        sql.SQL(
            "SELECT patient_id, {} FROM daily_metrics"
            " WHERE patient_id = ANY(%s) AND day >= %s ORDER BY patient_id, day"
        ).format(_METRICS_COLS),
        (list(ids), since),
    )
    out: dict[int, list[MetricsRow]] = defaultdict(list)
    for r in rows:
        out[r.pop("patient_id")].append(MetricsRow(**r))
    return out


@dataclass(frozen=True)
class OpenFlag:
    """An open or acknowledged flag as a caseload row shows it."""

    flag_id: int
    patient_id: int
    rule_id: str
    severity: Severity
    status: str
    window_start: datetime
    window_end: datetime
    evidence: dict[str, Any]


def open_flags(conn: psycopg.Connection[Any], patient_ids: Sequence[int]) -> list[OpenFlag]:
    """The open and acknowledged flags of the given patients, most severe and newest first."""
    return _fetch_all(
        conn,
        _as(OpenFlag, severity=Severity),
        "SELECT flag_id, patient_id, rule_id, severity, status, window_start, window_end,"
        " evidence FROM flag WHERE patient_id = ANY(%s) AND status <> 'resolved'"
        " ORDER BY patient_id, CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1"
        " ELSE 2 END, window_start DESC",
        (list(patient_ids),),
    )


@dataclass(frozen=True)
class CaseloadFacts:
    """Per patient: latest flare risk, last worn day, last upload, alert counts, last review."""

    flare_risk: float | None = None
    flare_day: date | None = None
    last_wear_day: date | None = None
    last_upload: datetime | None = None
    open_alerts: int = 0
    critical_alerts: int = 0
    reviewed_at: datetime | None = None


def caseload_facts(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, CaseloadFacts]:
    """The side facts a caseload row shows, for each of the given patients."""
    rows = _fetch_all(
        conn,
        dict_row,
        "SELECT p.patient_id, fr.score::float8 AS flare_risk, fr.day AS flare_day,"
        " (SELECT max(d.day) FROM daily_metrics d WHERE d.patient_id = p.patient_id"
        "   AND d.wear_min > 0) AS last_wear_day,"
        " (SELECT max(dv.last_seen) FROM device dv WHERE dv.patient_id = p.patient_id)"
        "   AS last_upload,"
        " (SELECT count(*) FROM alert a WHERE a.patient_id = p.patient_id"
        "   AND a.audience = 'care_team' AND a.status <> 'resolved') AS open_alerts,"
        " (SELECT count(*) FROM alert a WHERE a.patient_id = p.patient_id"
        "   AND a.audience = 'care_team' AND a.status <> 'resolved'"
        "   AND a.severity = 'critical') AS critical_alerts,"
        " (SELECT max(r.reviewed_at) FROM patient_review r WHERE r.patient_id = p.patient_id)"
        "   AS reviewed_at"
        " FROM patient p LEFT JOIN LATERAL (SELECT score, day FROM flare_risk f"
        "   WHERE f.patient_id = p.patient_id ORDER BY day DESC LIMIT 1) fr ON true"
        " WHERE p.patient_id = ANY(%s)",
        (list(ids),),
    )
    return {r.pop("patient_id"): CaseloadFacts(**r) for r in rows}


@dataclass(frozen=True)
class PatientLabel:
    """How a page names a patient and shows their instants: display name and time zone."""

    name: str
    zone: ZoneInfo


def patient_labels(conn: psycopg.Connection[Any]) -> dict[int, PatientLabel]:
    """The name and time zone of every patient this session may see, by id, in one read."""
    rows = conn.execute("SELECT patient_id, display_name, timezone FROM patient").fetchall()
    return {int(r[0]): PatientLabel(name=str(r[1]), zone=ZoneInfo(str(r[2]))) for r in rows}


@dataclass(frozen=True)
class TimelineDay:
    """One day of a patient's timeline: load, zones, HRV and resting heart rate."""

    day: date
    wear_min: float
    active_min: float
    steps: int
    trimp: float | None
    zone_min: tuple[float, ...]
    above_ceiling_min: float
    resting_hr_bpm: float | None
    rmssd_ms: float | None
    hr_samples: int
    trimp_banister: float | None
    trimp_edwards: float | None

    @property
    def metrics(self) -> MetricsRow:
        """The day as the pure pacing modules read it."""
        return MetricsRow(
            self.day,
            self.wear_min,
            self.active_min,
            self.steps,
            self.trimp_banister,
            self.trimp_edwards,
            self.above_ceiling_min,
            self.hr_samples,
        )


def timeline_days(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[TimelineDay]:
    """The daily-metrics rows of days `start` … `end` with zones and recovery."""
    return _fetch_all(
        conn,
        _as(TimelineDay, zone_min=lambda zones: tuple(zones or ())),
        "SELECT day, wear_min, active_min, steps,"
        " coalesce(trimp_banister, trimp_edwards) AS trimp, zone_min, above_ceiling_min,"
        " resting_hr_bpm, rmssd_ms, hr_samples, trimp_banister, trimp_edwards"
        " FROM daily_metrics WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day",
        (patient_id, start, end),
    )


@dataclass(frozen=True)
class RiskDay:
    """A day's 48 h flare-risk score with the factors behind it."""

    day: date
    score: float
    factors: dict[str, Any]


def flare_risks(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[RiskDay]:
    """Stored daily flare-risk scores of days `start` … `end`, with their factors."""
    return _fetch_all(
        conn,
        class_row(RiskDay),
        "SELECT day, score::float8 AS score, factors FROM flare_risk"
        " WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day",
        (patient_id, start, end),
    )


def patient_alerts(
    conn: psycopg.Connection[Any], patient_id: int, *, since: datetime
) -> list[dict[str, Any]]:
    """The patient's care-team alerts raised since `since`, newest first."""
    return _fetch_all(
        conn,
        dict_row,
        "SELECT alert_id, rule_id, severity, status, created_at FROM alert"
        " WHERE patient_id = %s AND audience = 'care_team' AND created_at >= %s"
        " ORDER BY created_at DESC",
        (patient_id, since),
    )


@dataclass(frozen=True)
class MinuteBucket:
    """One minute of one day: mean and maximum heart rate and the steps counted.

    `minute` is the patient's wall-clock time (naive, in their zone) at which the
    minute begins; on the night clocks go back two minutes share a wall time.
    """

    minute: datetime
    mean_hr_bpm: float | None
    max_hr_bpm: int | None
    steps: int


def minute_buckets(
    conn: psycopg.Connection[Any],
    patient_id: int,
    lo: datetime,
    hi: datetime,
    *,
    tz: str,
    hr_view: str,
    steps_view: str,
) -> list[MinuteBucket]:
    """`[lo, hi)` in one-minute `date_bin` buckets from `lo` (never the raw samples themselves).

    Each bucket is labelled with its start in `tz` (the patient's zone), converted in SQL:
    a timestamptz would reach Python in the session's time zone, whatever the patient's.
    `hr_view` and `steps_view` name the relations the session may read samples through
    (the person roles have no privilege on the raw tables).
    """
    query = sql.SQL(
        "WITH hr AS (SELECT date_bin('1 minute', time, %(lo)s) AS at, avg(bpm)::float8 AS m,"
        "   max(bpm) AS x FROM {hr} WHERE patient_id = %(p)s AND time >= %(lo)s AND time < %(hi)s"
        "   GROUP BY 1),"
        # Steps: summed per device within the minute, the best-counting device kept (as the
        # rollup does), so that two wearables do not double the count.
        " st AS (SELECT at, max(n) AS s FROM (SELECT date_bin('1 minute', time, %(lo)s)"
        "   AS at, device_id, sum(steps) AS n FROM {st} WHERE patient_id = %(p)s"
        "   AND time >= %(lo)s AND time < %(hi)s GROUP BY 1, 2) per_device GROUP BY 1)"
        # Joined and ordered by the instant: the wall times of the hour clocks go back repeat.
        " SELECT at AT TIME ZONE %(tz)s AS minute, hr.m AS mean_hr_bpm, hr.x AS max_hr_bpm,"
        " coalesce(st.s, 0) AS steps FROM hr FULL JOIN st USING (at) ORDER BY at"
    ).format(hr=sql.Identifier(hr_view), st=sql.Identifier(steps_view))
    return _fetch_all(
        conn, class_row(MinuteBucket), query, {"p": patient_id, "lo": lo, "hi": hi, "tz": tz}
    )


def insert_review(
    conn: psycopg.Connection[Any], patient_id: int, *, clinician_id: int, note: str | None
) -> datetime:
    """Record that a clinician looked the patient over; when."""
    row = conn.execute(
        "INSERT INTO patient_review (patient_id, clinician_id, note) VALUES (%s, %s, %s)"
        " RETURNING reviewed_at",
        (patient_id, clinician_id, note),
    ).fetchone()
    assert row is not None
    reviewed: datetime = row[0]
    return reviewed


# What an export reads (paceline.pacing.export) ------------------------------------------------


@dataclass(frozen=True)
class ExportPatient(PatientContext):
    """The patient an export is about: their local days and external reference."""

    external_ref: str


def export_patient(conn: psycopg.Connection[Any], patient_id: int) -> ExportPatient | None:
    """The patient, if this connection may see them."""
    return _fetch_one(
        conn,
        class_row(ExportPatient),
        "SELECT patient_id, timezone, enrolled_at, external_ref FROM patient WHERE patient_id = %s",
        (patient_id,),
    )


@dataclass(frozen=True)
class ExportDay:
    """One patient-day of `daily_metrics`, as exported."""

    day: date
    wear_min: float
    active_min: float
    steps: int
    mean_hr_bpm: float | None
    resting_hr_bpm: float | None
    rmssd_ms: float | None
    trimp_banister: float | None
    trimp_edwards: float | None
    hr_samples: int
    rr_intervals: int


_EXPORT_DAY_COLS = sql.SQL(", ").join(sql.Identifier(f.name) for f in dataclasses.fields(ExportDay))


def export_days(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[ExportDay]:
    """The daily-metrics rows of days `start` … `end` with the exported columns."""
    return _day_rows(conn, ExportDay, _EXPORT_DAY_COLS, patient_id=patient_id, start=start, end=end)


@dataclass(frozen=True)
class QuestionnaireRow:
    """One scored questionnaire (`questionnaire_response`)."""

    response_id: int
    instrument: str
    answered_at: datetime
    items: list[int]
    total: int
    scores: dict[str, Any]


def questionnaire_rows(
    conn: psycopg.Connection[Any], ctx: PatientContext, start: date, end: date
) -> list[QuestionnaireRow]:
    """Questionnaires answered on local days `start` … `end`, oldest first."""
    return _fetch_all(
        conn,
        class_row(QuestionnaireRow),
        "SELECT response_id, instrument, answered_at, items, total, scores"
        " FROM questionnaire_response WHERE patient_id = %s"
        " AND answered_at >= %s AND answered_at < %s ORDER BY answered_at, response_id",
        (ctx.patient_id, ctx.day_start(start), ctx.day_start(end + timedelta(days=1))),
    )


# The daily-metrics rollup's reads and writes (paceline.pacing.rollup) -----------------------

_EPOCH_US = sql.SQL("(extract(epoch FROM time) * 1000000)::int8")
_SAMPLE_WINDOW = sql.SQL("patient_id = %s AND time >= %s AND time < %s")
#: One tuple of each COPY below as `copybinary.decode` reads it.
HR_COPY = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"),
        ("t", ">i8"),
        ("l1", ">i4"),
        ("bpm", ">i2"),
        ("l2", ">i4"),
        ("contact", ">i2"),
    ]
)
RR_COPY = np.dtype([("n", ">i2"), ("l0", ">i4"), ("t", ">i8"), ("l1", ">i4"), ("rr", ">f8")])
STEPS_COPY = np.dtype([("n", ">i2"), ("l0", ">i4"), ("t", ">i8"), ("l1", ">i4"), ("steps", ">i4")])


def _copy_out(
    conn: psycopg.Connection[Any],
    query: sql.Composable,
    params: tuple[Any, ...],
    dtype: np.dtype[Any],
) -> NDArray[Any]:
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query), params) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    return copybinary.decode(data, dtype)


def hr_samples(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime
) -> NDArray[Any]:
    """Heart-rate samples of `[start, end)` from every device: epoch µs, bpm, contact (-1 unknown)."""
    query = sql.SQL(
        "SELECT {}, bpm, coalesce(sensor_contact::int, -1)::int2 FROM hr_sample WHERE {}"
    ).format(_EPOCH_US, _SAMPLE_WINDOW)
    return _copy_out(conn, query, (patient_id, start, end), HR_COPY)


def rr_intervals(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime
) -> NDArray[Any]:
    """RR intervals of `[start, end)` from the one device with the most beats (epoch µs, ms)."""
    query = sql.SQL(
        "SELECT {}, rr_ms FROM rr_interval WHERE {} AND device_id = ("
        " SELECT device_id FROM rr_interval WHERE {}"
        " GROUP BY device_id ORDER BY count(*) DESC, device_id LIMIT 1)"
    ).format(_EPOCH_US, _SAMPLE_WINDOW, _SAMPLE_WINDOW)
    params = (patient_id, start, end)
    return _copy_out(conn, query, params + params, RR_COPY)


def steps_per_minute(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime
) -> NDArray[Any]:
    """Steps per minute of `(start, end]`: each minute's largest count over the devices."""
    # A step row counts the interval that ends at its time, so the row stamped at
    # midnight belongs to the day that midnight ends; each row is placed in the
    # minute that ends at or after its time.
    query = sql.SQL(
        "SELECT (extract(epoch FROM minute_end) * 1000000)::int8, max(steps)::int4 FROM ("
        " SELECT device_id, date_bin('1 minute', time - interval '1 microsecond', %s)"
        "   + interval '1 minute' AS minute_end, sum(steps) AS steps"
        " FROM step_sample WHERE patient_id = %s AND time > %s AND time <= %s"
        " GROUP BY device_id, minute_end) per_device GROUP BY minute_end"
    )
    return _copy_out(conn, query, (start, patient_id, start, end), STEPS_COPY)


@dataclass(frozen=True)
class PhysiologyRow:
    """What the rollup needs to know about a patient on one day."""

    birth_year: int | None
    sex: Sex
    hr_max_bpm: int | None
    hr_rest_bpm: int | None
    hr_ceiling_bpm: int | None


def physiology_row(
    conn: psycopg.Connection[Any], patient_id: int, day_end: datetime
) -> PhysiologyRow | None:
    """The patient's anchors and the HR ceiling of the plan in effect before `day_end`."""
    return _fetch_one(
        conn,
        class_row(PhysiologyRow),
        "SELECT p.birth_year, p.sex, p.hr_max_bpm, p.hr_rest_bpm,"
        " (SELECT pp.hr_ceiling_bpm FROM pacing_plan pp WHERE pp.patient_id = p.patient_id"
        "   AND pp.valid_from < %s ORDER BY pp.version DESC LIMIT 1) AS hr_ceiling_bpm"
        " FROM patient p WHERE p.patient_id = %s",
        (day_end, patient_id),
    )


def upsert_daily_metrics(
    conn: psycopg.Connection[Any], patient_id: int, day: date, row: Mapping[str, Any]
) -> None:
    """Insert or replace the `daily_metrics` row of one patient-day (`row`: column → value)."""
    columns = list(row)
    values = [Jsonb(row[c]) if c == "extra" else row[c] for c in columns]
    query = sql.SQL(
        "INSERT INTO daily_metrics (patient_id, day, {columns}) VALUES ({values})"
        " ON CONFLICT (patient_id, day) DO UPDATE SET {updates}, computed_at = now()"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join([sql.Placeholder()] * (len(columns) + 2)),
        updates=sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in columns
        ),
    )
    conn.execute(query, (patient_id, day, *values))


# Prescribed exercise -----------------------------------------------------------------------

_PRESCRIPTION_COLS = sql.SQL(
    "prescription_id, kind, name, sessions_per_week, consistent_sessions, step_fraction,"
    " status = 'active' AS active, created_by"
)


_PRESCRIPTION = _as(Prescription, kind=ExerciseKind)


def prescriptions(
    conn: psycopg.Connection[Any], patient_id: int, *, active_only: bool = False
) -> list[Prescription]:
    """The patient's exercise prescriptions, oldest first."""
    where = sql.SQL(" AND status = 'active'") if active_only else sql.SQL("")
    return _fetch_all(
        conn,
        _PRESCRIPTION,
        sql.SQL(
            "SELECT {} FROM exercise_prescription WHERE patient_id = %s{} ORDER BY prescription_id"
        ).format(_PRESCRIPTION_COLS, where),
        (patient_id,),
    )


def prescription(
    conn: psycopg.Connection[Any], patient_id: int, prescription_id: int
) -> Prescription:
    """One prescription of the patient, or `UnknownPrescriptionError`."""
    row = _fetch_one(
        conn,
        _PRESCRIPTION,
        sql.SQL(
            "SELECT {} FROM exercise_prescription WHERE patient_id = %s AND prescription_id = %s"
        ).format(_PRESCRIPTION_COLS),
        (patient_id, prescription_id),
    )
    if row is None:
        raise UnknownPrescriptionError(patient_id, prescription_id)
    return row


def insert_prescription(
    conn: psycopg.Connection[Any], patient_id: int, p: Prescription
) -> Prescription:
    """Store a new prescription (its id comes from the database)."""
    new_id = _returned_int(
        conn,
        "INSERT INTO exercise_prescription (patient_id, kind, name, sessions_per_week,"
        " consistent_sessions, step_fraction, status, created_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING prescription_id",
        (
            patient_id,
            p.kind.value,
            p.name,
            p.sessions_per_week,
            p.consistent_sessions,
            p.step_fraction,
            "active" if p.active else "ended",
            p.created_by,
        ),
    )
    return prescription(conn, patient_id, new_id)


def update_prescription(conn: psycopg.Connection[Any], patient_id: int, p: Prescription) -> None:
    """Write a prescription's sessions per week, progression settings and status back."""
    conn.execute(
        "UPDATE exercise_prescription SET name = %s, sessions_per_week = %s,"
        " consistent_sessions = %s, step_fraction = %s, status = %s"
        " WHERE patient_id = %s AND prescription_id = %s",
        (
            p.name,
            p.sessions_per_week,
            p.consistent_sessions,
            p.step_fraction,
            "active" if p.active else "ended",
            patient_id,
            p.prescription_id,
        ),
    )


def _target_version(**row: Any) -> TargetVersion:
    """A target version from its `exercise_target` columns (the zone in two columns)."""
    low, high = row["hr_zone_low"], row["hr_zone_high"]
    return TargetVersion(
        prescription_id=row["prescription_id"],
        version=row["version"],
        target=Target(
            duration_min=row["duration_min"],
            repetitions=row["repetitions"],
            sets=row["sets"],
            hr_zone=None if low is None else (low, high),
        ),
        valid_from=row["valid_from"],
        cause=TargetCause(row["cause"]),
        reason=row["reason"],
        created_by=row["created_by"],
        flare_start=row["flare_start"],
        evidence=row["evidence"] or {},
    )


def target_versions(
    conn: psycopg.Connection[Any], patient_id: int, *, ends_only: bool = False
) -> dict[int, list[TargetVersion]]:
    """Each prescription's target versions, oldest first: all, or only the first and latest.

    `ends_only` is what the engine reads (the first target is the step-down floor's
    reference, the latest the one progressing), so its cost does not grow with the
    number of versions.
    """
    ends = (
        sql.SQL(
            " AND (t.version = 1 OR t.version = (SELECT max(version) FROM exercise_target m"
            " WHERE m.prescription_id = t.prescription_id))"
        )
        if ends_only
        else sql.SQL("")
    )
    versions = _fetch_all(
        conn,
        kwargs_row(_target_version),
        sql.SQL(
            "SELECT t.prescription_id, t.version, t.duration_min, t.repetitions, t.sets,"
            " t.hr_zone_low, t.hr_zone_high, t.valid_from, t.cause, t.reason, t.created_by,"
            " t.flare_start, t.evidence FROM exercise_target t WHERE t.patient_id = %s{}"
            " ORDER BY t.prescription_id, t.version"
        ).format(ends),
        (patient_id,),
    )
    out: dict[int, list[TargetVersion]] = {}
    for v in versions:
        out.setdefault(v.prescription_id, []).append(v)
    return out


def insert_target_version(conn: psycopg.Connection[Any], patient_id: int, v: TargetVersion) -> int:
    """Store one target version; a version number already taken raises `ExerciseError`."""
    t = v.target
    low, high = (None, None) if t.hr_zone is None else t.hr_zone
    try:
        with conn.transaction():
            new_id = _returned_int(
                conn,
                "INSERT INTO exercise_target (prescription_id, patient_id, version, duration_min,"
                " repetitions, sets, hr_zone_low, hr_zone_high, valid_from, cause, reason,"
                " flare_start, evidence, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s::jsonb, %s) RETURNING target_id",
                (
                    v.prescription_id,
                    patient_id,
                    v.version,
                    t.duration_min,
                    t.repetitions,
                    t.sets,
                    low,
                    high,
                    v.valid_from,
                    v.cause.value,
                    v.reason,
                    v.flare_start,
                    to_json(v.evidence),
                    v.created_by,
                ),
            )
    except psycopg.errors.UniqueViolation:
        raise ExerciseError(
            f"target version {v.version} of prescription {v.prescription_id} was written"
            " concurrently; reload and try again"
        ) from None
    return new_id


EXERCISE_SESSION_COLUMNS = (
    "prescription_id",
    "performed_at",
    "target_version",
    "duration_min",
    "repetitions",
    "sets",
    "rpe",
    "pain_before",
    "pain_after",
    "note",
)
_EXERCISE_COLS = sql.SQL(", ").join(map(sql.Identifier, EXERCISE_SESSION_COLUMNS))


def exercise_sessions(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    start: date,
    end: date,
    *,
    prescription_id: int | None = None,
) -> list[ExerciseSession]:
    """Exercise sessions performed on local days `start` … `end`, oldest first."""
    where: list[sql.Composable] = [
        sql.SQL("patient_id = %(p)s AND performed_at >= %(lo)s AND performed_at < %(hi)s")
    ]
    params = _local_days(ctx, start, end)
    if prescription_id is not None:
        where.append(sql.SQL("prescription_id = %(rx)s"))
        params["rx"] = prescription_id
    return _fetch_all(
        conn,
        class_row(ExerciseSession),
        sql.SQL(
            "SELECT session_id, {}, (performed_at AT TIME ZONE %(tz)s)::date AS day"
            " FROM exercise_session WHERE {} ORDER BY performed_at, session_id"
        ).format(_EXERCISE_COLS, sql.SQL(" AND ").join(where)),
        params,
    )


def insert_exercise_session(
    conn: psycopg.Connection[Any], patient_id: int, s: ExerciseSession, key: str | None
) -> tuple[int, bool, dict[str, Any]]:
    """Store a logged session once per idempotency key: (session id, whether new, stored values)."""
    values = [getattr(s, c) for c in EXERCISE_SESSION_COLUMNS]
    return _insert_once(
        conn,
        table="exercise_session",
        id_column="session_id",
        columns=EXERCISE_SESSION_COLUMNS,
        patient_id=patient_id,
        values=values,
        key=key,
    )


# Red-flag screens and progression pauses ---------------------------------------------------


def insert_red_flag_screen(
    conn: psycopg.Connection[Any], patient_id: int, s: Screen, key: str | None
) -> tuple[int, bool, dict[str, Any]]:
    """Store a screen once per idempotency key: (screen id, whether new, stored values)."""
    row = conn.execute(
        "INSERT INTO red_flag_screen (patient_id, answered_at, source, answers, positive,"
        " idempotency_key) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (patient_id, idempotency_key) DO NOTHING RETURNING screen_id",
        (patient_id, s.answered_at, s.source.value, Jsonb(dict(s.answers)), list(s.positive), key),
    ).fetchone()
    return _once(
        conn,
        row,
        table="red_flag_screen",
        id_column="screen_id",
        stored=("answered_at", "source", "answers"),
        patient_id=patient_id,
        key=key,
    )


def red_flag_screens(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    start: date,
    end: date,
    *,
    positive_only: bool = True,
) -> list[StoredScreen]:
    """Screens answered on local days `start` … `end` (by default the positive ones), oldest first."""
    return _fetch_all(
        conn,
        _as(StoredScreen, source=Source, positive=tuple),
        sql.SQL(
            "SELECT screen_id, (answered_at AT TIME ZONE %(tz)s)::date AS day, answered_at,"
            " source, positive FROM red_flag_screen WHERE patient_id = %(p)s"
            " AND answered_at >= %(lo)s AND answered_at < %(hi)s {}"
            " ORDER BY answered_at, screen_id"
        ).format(sql.SQL("AND cardinality(positive) > 0" if positive_only else "")),
        _local_days(ctx, start, end),
    )


def latest_screen_at(conn: psycopg.Connection[Any], patient_id: int) -> datetime | None:
    """When the patient last answered a red-flag screen (None: never)."""
    row = conn.execute(
        "SELECT max(answered_at) FROM red_flag_screen WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return None if row is None else row[0]


def mark_screens_evaluated(
    conn: psycopg.Connection[Any], ctx: PatientContext, through: date, at: datetime
) -> None:
    """Note that an evaluation has read the patient's screens of local days up to `through`."""
    conn.execute(
        "UPDATE red_flag_screen SET evaluated_at = %s WHERE patient_id = %s"
        " AND evaluated_at IS NULL AND answered_at < %s",
        (at, ctx.patient_id, ctx.day_start(through + timedelta(days=1))),
    )


def queue_red_flag_evaluation(conn: psycopg.Connection[Any], screen_id: int) -> bool:
    """In a patient session: queue the evaluation of their own unread positive screen.

    `paceline_queue_red_flag_evaluation` (migration 0031) lists the screen's
    day as due and defers the patient's `evaluate` job in the caller's
    transaction; False if the screen is not such a screen of theirs.
    """
    row = conn.execute("SELECT paceline_queue_red_flag_evaluation(%s)", (screen_id,)).fetchone()
    return bool(row and row[0])


def unevaluated_red_flags(conn: psycopg.Connection[Any]) -> list[tuple[int, date]]:
    """(patient, local day) of every positive screen no evaluation has read yet."""
    rows = conn.execute(
        "SELECT DISTINCT s.patient_id, (s.answered_at AT TIME ZONE p.timezone)::date"
        " FROM red_flag_screen s JOIN patient p USING (patient_id)"
        " WHERE s.evaluated_at IS NULL AND cardinality(s.positive) > 0 ORDER BY 1, 2"
    ).fetchall()
    return [(int(p), d) for p, d in rows]


_PAUSE_COLS = sql.SQL(
    "pause_id, started_at, (started_at AT TIME ZONE %(tz)s)::date AS start_day, reason,"
    " screen_id, cleared_at, (cleared_at AT TIME ZONE %(tz)s)::date AS cleared_day,"
    " cleared_by, clear_note"
)


def pauses(
    conn: psycopg.Connection[Any], ctx: PatientContext, start: date, end: date
) -> list[Pause]:
    """The patient's progression pauses that cover any local day of `start` … `end`."""
    return _fetch_all(
        conn,
        class_row(Pause),
        sql.SQL(
            "SELECT {} FROM progression_pause WHERE patient_id = %(p)s"
            " AND started_at < %(hi)s AND (cleared_at IS NULL OR cleared_at >= %(lo)s)"
            " ORDER BY started_at, pause_id"
        ).format(_PAUSE_COLS),
        _local_days(ctx, start, end),
    )


def open_pause(conn: psycopg.Connection[Any], ctx: PatientContext) -> Pause | None:
    """The patient's uncleared progression pause, if any."""
    return _fetch_one(
        conn,
        class_row(Pause),
        sql.SQL(
            "SELECT {} FROM progression_pause WHERE patient_id = %(p)s AND cleared_at IS NULL"
        ).format(_PAUSE_COLS),
        {"tz": ctx.timezone, "p": ctx.patient_id},
    )


def insert_pause(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    *,
    started_at: datetime,
    reason: str,
    screen_id: int | None,
) -> int:
    """Open a progression pause; its id."""
    return _returned_int(
        conn,
        "INSERT INTO progression_pause (patient_id, started_at, reason, screen_id)"
        " VALUES (%s, %s, %s, %s) RETURNING pause_id",
        (ctx.patient_id, started_at, reason, screen_id),
    )


def clear_pause(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    pause_id: int,
    *,
    cleared_at: datetime,
    cleared_by: int | None,
    note: str,
) -> None:
    """Write a pause's clearing (who, when, why)."""
    conn.execute(
        "UPDATE progression_pause SET cleared_at = %s, cleared_by = %s, clear_note = %s"
        " WHERE pause_id = %s AND patient_id = %s AND cleared_at IS NULL",
        (cleared_at, cleared_by, note, pause_id, ctx.patient_id),
    )


# Valued goals ------------------------------------------------------------------------------

_GOAL_COLS = sql.SQL(
    "goal_id, title, why, status, created_by,"
    " (created_at AT TIME ZONE %(tz)s)::date AS created_day,"
    " (reached_at AT TIME ZONE %(tz)s)::date AS reached_day"
)


_GOAL = _as(Goal, status=GoalStatus)


def goals(conn: psycopg.Connection[Any], ctx: PatientContext) -> list[Goal]:
    """The patient's goals, oldest first."""
    return _fetch_all(
        conn,
        _GOAL,
        sql.SQL("SELECT {} FROM valued_goal WHERE patient_id = %(p)s ORDER BY goal_id").format(
            _GOAL_COLS
        ),
        {"tz": ctx.timezone, "p": ctx.patient_id},
    )


def goal(conn: psycopg.Connection[Any], ctx: PatientContext, goal_id: int) -> Goal:
    """One goal of the patient, or `UnknownGoalError`."""
    row = _fetch_one(
        conn,
        _GOAL,
        sql.SQL("SELECT {} FROM valued_goal WHERE patient_id = %(p)s AND goal_id = %(g)s").format(
            _GOAL_COLS
        ),
        {"tz": ctx.timezone, "p": ctx.patient_id, "g": goal_id},
    )
    if row is None:
        raise UnknownGoalError(ctx.patient_id, goal_id)
    return row


def insert_goal(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    *,
    title: str,
    why: str | None,
    created_by: int | None,
) -> Goal:
    """Store a new goal."""
    new_id = _returned_int(
        conn,
        "INSERT INTO valued_goal (patient_id, title, why, created_by) VALUES (%s, %s, %s, %s)"
        " RETURNING goal_id",
        (ctx.patient_id, title, why, created_by),
    )
    return goal(conn, ctx, new_id)


def update_goal(
    conn: psycopg.Connection[Any], ctx: PatientContext, g: Goal, *, reached_at: datetime | None
) -> Goal:
    """Write a goal's title, why and status back (`reached_at` when it is marked reached)."""
    conn.execute(
        "UPDATE valued_goal SET title = %s, why = %s, status = %s,"
        " reached_at = coalesce(%s, CASE WHEN %s = 'reached' THEN reached_at END)"
        " WHERE patient_id = %s AND goal_id = %s",
        (g.title, g.why, g.status.value, reached_at, g.status.value, ctx.patient_id, g.goal_id),
    )
    return goal(conn, ctx, g.goal_id)


_LINK_COLS = sql.SQL(
    "link_id, goal_id, item_id, prescription_id, needed_duration_min, needed_repetitions"
)


def goal_links(conn: psycopg.Connection[Any], patient_id: int) -> list[GoalLink]:
    """Every link of the patient's goals."""
    return _fetch_all(
        conn,
        class_row(GoalLink),
        sql.SQL("SELECT {} FROM goal_link WHERE patient_id = %s ORDER BY link_id").format(
            _LINK_COLS
        ),
        (patient_id,),
    )


def insert_goal_link(conn: psycopg.Connection[Any], patient_id: int, link: GoalLink) -> GoalLink:
    """Store a link; linking the same rung or prescription twice raises `GoalError`."""
    try:
        with conn.transaction():
            new_id = _returned_int(
                conn,
                "INSERT INTO goal_link (goal_id, patient_id, item_id, prescription_id,"
                " needed_duration_min, needed_repetitions) VALUES (%s, %s, %s, %s, %s, %s)"
                " RETURNING link_id",
                (
                    link.goal_id,
                    patient_id,
                    link.item_id,
                    link.prescription_id,
                    link.needed_duration_min,
                    link.needed_repetitions,
                ),
            )
    except psycopg.errors.UniqueViolation:
        raise GoalError(f"goal {link.goal_id} is already linked to that") from None
    except psycopg.errors.ForeignKeyViolation:
        raise GoalError(f"patient {patient_id} has no such rung or prescription") from None
    return replace(link, link_id=new_id)


def delete_goal_link(conn: psycopg.Connection[Any], patient_id: int, link_id: int) -> bool:
    """Remove a link; whether it existed."""
    cur = conn.execute(
        "DELETE FROM goal_link WHERE patient_id = %s AND link_id = %s", (patient_id, link_id)
    )
    return cur.rowcount > 0
