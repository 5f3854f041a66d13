"""Pacing's typed reads and writes: SQL only, no clinical rules.

Rows come back as the frozen values the pure modules take (`MetricsRow`,
`DiaryRecord`, `PlanVersion`, `SessionRecord`, …). Days are the patient's local
days: timestamps are converted with the patient's time zone in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from paceline.pacing import localday
from paceline.pacing.days import MetricsRow, measure
from paceline.pacing.diary import DiaryEntry, DiaryRecord
from paceline.pacing.errors import PlanError, UnknownExposureError, UnknownPatientError
from paceline.pacing.exposure import (
    ItemStatus,
    LadderItem,
    SessionLoad,
    SessionRecord,
    SessionStatus,
)
from paceline.pacing.flags import Flag, Severity
from paceline.pacing.progression import Cause, PlanSettings, PlanVersion
from paceline.pacing.questionnaires import QuestionnaireScore
from paceline.signal.trimp import Sex
from paceline.store import copybinary, registry


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


def patient_context(conn: psycopg.Connection[Any], patient_id: int) -> PatientContext:
    """The patient's time zone and enrolment, or `UnknownPatientError`."""
    try:
        p = registry.get_patient(conn, patient_id)
    except registry.NotFoundError:
        raise UnknownPatientError(patient_id) from None
    return PatientContext(p.patient_id, p.timezone, p.enrolled_at)


def lock_patient(conn: psycopg.Connection[Any], patient_id: int) -> None:
    """Serialise pacing writes for one patient until the transaction ends."""
    # Key space: the ASCII of "pcng" in the first argument, the patient in the second.
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x70636E67, patient_id % 2**31))


# Daily metrics and diary -----------------------------------------------------------------

_METRICS_COLS = sql.SQL(
    "day, wear_min, active_min, steps, trimp_banister, trimp_edwards, above_ceiling_min, hr_samples"
)


def metrics_rows(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date
) -> list[MetricsRow]:
    """The daily-metrics rows of days `start` … `end`."""
    with conn.cursor(row_factory=class_row(MetricsRow)) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM daily_metrics"
                " WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day"
            ).format(_METRICS_COLS),
            (patient_id, start, end),
        )
        return cur.fetchall()


def diary_records(
    conn: psycopg.Connection[Any], ctx: PatientContext, start: date, end: date
) -> list[DiaryRecord]:
    """Diary entries of local days `start` … `end`, oldest first."""
    with conn.cursor(row_factory=class_row(DiaryRecord)) as cur:
        cur.execute(
            "SELECT (reported_at AT TIME ZONE %(tz)s)::date AS day, reported_at, pain_now,"
            " pain_average, pain_worst, fatigue, mood, sleep_quality, fear_of_movement"
            " FROM self_report WHERE patient_id = %(p)s"
            " AND reported_at >= %(lo)s AND reported_at < %(hi)s ORDER BY reported_at",
            {
                "tz": ctx.timezone,
                "p": ctx.patient_id,
                "lo": ctx.day_start(start),
                "hi": ctx.day_start(end + timedelta(days=1)),
            },
        )
        return cur.fetchall()


REPORT_COLUMNS = (
    "pain_now",
    "pain_average",
    "pain_worst",
    "fatigue",
    "mood",
    "sleep_quality",
    "fear_of_movement",
    "note",
)
_REPORT_COLS = sql.SQL(", ").join(map(sql.Identifier, REPORT_COLUMNS))


def insert_self_report(
    conn: psycopg.Connection[Any], patient_id: int, entry: DiaryEntry, key: str | None
) -> tuple[int, bool, dict[str, Any]]:
    """Store a diary entry once per idempotency key: (report id, whether new, stored values)."""
    values = [getattr(entry, c) for c in REPORT_COLUMNS]
    row = conn.execute(
        sql.SQL(
            "INSERT INTO self_report (patient_id, reported_at, {}, idempotency_key)"
            " VALUES (%s, %s, {}, %s)"
            " ON CONFLICT (patient_id, idempotency_key) DO NOTHING RETURNING report_id"
        ).format(_REPORT_COLS, sql.SQL(", ").join([sql.Placeholder()] * len(REPORT_COLUMNS))),
        (patient_id, entry.reported_at, *values, key),
    ).fetchone()
    if row is not None:
        return int(row[0]), True, {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT report_id, reported_at, {} FROM self_report"
                " WHERE patient_id = %s AND idempotency_key = %s"
            ).format(_REPORT_COLS),
            (patient_id, key),
        )
        stored = cur.fetchone()
    assert stored is not None
    return int(stored.pop("report_id")), False, stored


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
    if row is not None:
        return int(row[0]), True, {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT response_id, instrument, answered_at, items FROM questionnaire_response"
            " WHERE patient_id = %s AND idempotency_key = %s",
            (patient_id, key),
        )
        stored = cur.fetchone()
    assert stored is not None
    return int(stored.pop("response_id")), False, stored


# Plans -----------------------------------------------------------------------------------


def _plan(row: Mapping[str, Any]) -> PlanVersion:
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


def plan_versions(
    conn: psycopg.Connection[Any], ctx: PatientContext, *, since: date | None = None
) -> list[PlanVersion]:
    """The versions of the patient's plan, oldest first: all, or those in effect from `since` on.

    With `since`, the result is the version in effect on that local day (the
    highest version that took effect by then) and every version after it.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT version, measure, baseline, quota, start_fraction, step_fraction,"
            " period_days, hr_ceiling_bpm, (valid_from AT TIME ZONE %(tz)s)::date AS valid_day,"
            " params, created_by, reason FROM pacing_plan WHERE patient_id = %(p)s"
            " AND version >= coalesce((SELECT max(version) FROM pacing_plan"
            "   WHERE patient_id = %(p)s AND valid_from < %(lo)s), 0)"
            " ORDER BY version",
            {
                "tz": ctx.timezone,
                "p": ctx.patient_id,
                "lo": None if since is None else ctx.day_start(since + timedelta(days=1)),
            },
        )
        return [_plan(r) for r in cur.fetchall()]


def insert_plan_version(
    conn: psycopg.Connection[Any], ctx: PatientContext, plan: PlanVersion, valid_from: datetime
) -> int:
    """Store one plan version; a version number already taken raises `PlanError`."""
    try:
        with conn.transaction():
            row = conn.execute(
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
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise PlanError(
            f"plan version {plan.version} of patient {ctx.patient_id} was written concurrently;"
            " reload the plan and try again"
        ) from None
    assert row is not None
    return int(row[0])


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
    with conn.cursor(row_factory=class_row(StoredFlag)) as cur:
        cur.execute(
            "SELECT flag_id, rule_id, window_start, window_end, severity, status FROM flag"
            " WHERE patient_id = %s AND rule_id = ANY(%s)"
            " AND (status IN ('open', 'acknowledged') OR window_end >= %s) ORDER BY window_start",
            (patient_id, list(rule_ids), since),
        )
        return cur.fetchall()


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
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT flag_id, rule_id, window_start, window_end, severity, status, evidence"
                " FROM flag WHERE patient_id = %s{} ORDER BY window_start DESC, rule_id"
            ).format(where),
            (patient_id,),
        )
        rows = cur.fetchall()
    return [FlagView(**{**r, "severity": Severity(r["severity"])}) for r in rows]


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
    rows = conn.execute(
        "SELECT day, score::float8 FROM flare_risk WHERE patient_id = %s"
        " AND day BETWEEN %s AND %s ORDER BY day",
        (patient_id, start, end),
    ).fetchall()
    return [(r[0], float(r[1])) for r in rows]


# Exposure ------------------------------------------------------------------------------------

_ITEM_COLS = sql.SQL("item_id, activity, fear_rating, position, status")


def _item(row: Mapping[str, Any]) -> LadderItem:
    return LadderItem(
        row["item_id"],
        row["activity"],
        row["fear_rating"],
        row["position"],
        ItemStatus(row["status"]),
    )


def ladder_items(conn: psycopg.Connection[Any], patient_id: int) -> list[LadderItem]:
    """The patient's fear ladder, bottom rung first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM exposure_item WHERE patient_id = %s ORDER BY position, item_id"
            ).format(_ITEM_COLS),
            (patient_id,),
        )
        return [_item(r) for r in cur.fetchall()]


def ladder_item(conn: psycopg.Connection[Any], patient_id: int, item_id: int) -> LadderItem:
    """One ladder item of the patient, or `UnknownExposureError`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM exposure_item WHERE patient_id = %s AND item_id = %s").format(
                _ITEM_COLS
            ),
            (patient_id, item_id),
        )
        row = cur.fetchone()
    if row is None:
        raise UnknownExposureError(f"patient {patient_id} has no ladder item {item_id}")
    return _item(row)


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
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO exposure_item (patient_id, activity, fear_rating, position,"
                " created_by) VALUES (%s, %s, %s, %s, %s) RETURNING {}"
            ).format(_ITEM_COLS),
            (patient_id, activity, fear_rating, position, created_by),
        )
        row = cur.fetchone()
    assert row is not None
    return _item(row)


def update_item(conn: psycopg.Connection[Any], item: LadderItem, patient_id: int) -> LadderItem:
    """Write an edited rung back."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
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
        row = cur.fetchone()
    if row is None:
        raise UnknownExposureError(f"patient {patient_id} has no ladder item {item.item_id}")
    return _item(row)


_SESSION_COLS = sql.SQL(
    "session_id, item_id, planned_at, (planned_at AT TIME ZONE %(tz)s)::date AS planned_day,"
    " status, started_at, ended_at, fear_before, fear_after, expected_harm, actual_harm, note"
)


def _session(row: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord(**{**row, "status": SessionStatus(row["status"])})


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
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM exposure_session WHERE {} ORDER BY planned_at, session_id"
            ).format(_SESSION_COLS, sql.SQL(" AND ").join(where)),
            params,
        )
        return [_session(r) for r in cur.fetchall()]


def session(conn: psycopg.Connection[Any], ctx: PatientContext, session_id: int) -> SessionRecord:
    """One session of the patient, or `UnknownExposureError`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM exposure_session WHERE patient_id = %(p)s AND session_id = %(s)s"
            ).format(_SESSION_COLS),
            {"tz": ctx.timezone, "p": ctx.patient_id, "s": session_id},
        )
        row = cur.fetchone()
    if row is None:
        raise UnknownExposureError(f"patient {ctx.patient_id} has no exposure session {session_id}")
    return _session(row)


def insert_session(
    conn: psycopg.Connection[Any], ctx: PatientContext, item_id: int, planned_at: datetime
) -> SessionRecord:
    """Plan a session against an item."""
    row = conn.execute(
        "INSERT INTO exposure_session (item_id, patient_id, planned_at) VALUES (%s, %s, %s)"
        " RETURNING session_id",
        (item_id, ctx.patient_id, planned_at),
    ).fetchone()
    assert row is not None
    return session(conn, ctx, int(row[0]))


def update_session(conn: psycopg.Connection[Any], ctx: PatientContext, s: SessionRecord) -> None:
    """Write a session's outcome back."""
    conn.execute(
        "UPDATE exposure_session SET status = %s, started_at = %s, ended_at = %s,"
        " fear_before = %s, fear_after = %s, expected_harm = %s, actual_harm = %s, note = %s"
        " WHERE session_id = %s AND patient_id = %s",
        (
            s.status.value,
            s.started_at,
            s.ended_at,
            s.fear_before,
            s.fear_after,
            s.expected_harm,
            s.actual_harm,
            s.note,
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


# Job queue work lists and the clock's slots (paceline.pacing.jobs) -------------------------


@dataclass(frozen=True)
class EnrolledPatient:
    """A patient as the periodic jobs see them: id, time zone name and enrolment instant."""

    patient_id: int
    timezone: str
    enrolled_at: datetime


def enrolled_patients(conn: psycopg.Connection[Any], now: datetime) -> list[EnrolledPatient]:
    """Every patient enrolled by `now`, in id order."""
    with conn.cursor(row_factory=class_row(EnrolledPatient)) as cur:
        return cur.execute(
            "SELECT patient_id, timezone, enrolled_at FROM patient"
            " WHERE enrolled_at <= %s ORDER BY patient_id",
            (now,),
        ).fetchall()


def live_days(conn: psycopg.Connection[Any], *, ref_prefix: str) -> list[tuple[Any, ...]]:
    """Daily metrics of the patients whose reference starts with `ref_prefix`, newest day first.

    Each row: display name, day, wear, steps and active minutes, mean HR, RMSSD, and the
    numbers of HR samples and RR intervals behind them.
    """
    rows = conn.execute(
        "SELECT p.display_name, m.day, m.wear_min, m.steps, m.active_min, m.mean_hr_bpm,"
        " m.rmssd_ms, m.hr_samples, m.rr_intervals FROM daily_metrics m"
        " JOIN patient p USING (patient_id) WHERE starts_with(p.external_ref, %s)"
        " ORDER BY p.patient_id, m.day DESC",
        (ref_prefix,),
    ).fetchall()
    return [tuple(r) for r in rows]


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
    with conn.cursor(row_factory=class_row(PhysiologyRow)) as cur:
        cur.execute(
            "SELECT p.birth_year, p.sex, p.hr_max_bpm, p.hr_rest_bpm,"
            " (SELECT pp.hr_ceiling_bpm FROM pacing_plan pp WHERE pp.patient_id = p.patient_id"
            "   AND pp.valid_from < %s ORDER BY pp.version DESC LIMIT 1) AS hr_ceiling_bpm"
            " FROM patient p WHERE p.patient_id = %s",
            (day_end, patient_id),
        )
        return cur.fetchone()


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
