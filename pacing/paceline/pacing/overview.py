"""What people read: a clinician's whole caseload and one patient's timeline, in few queries.

These are the read models of the dashboard. They run inside a person session
(row-level security decides which patients exist), read `daily_metrics`,
flags, plans and minute buckets of samples, never raw samples, and do every
patient of a caseload in one set-based query per table, so that a caseload of
hundreds costs a handful of queries. Clinical meaning (which day is valid,
which plan applies, what counts as a gap) comes from the pure modules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from paceline.pacing import records
from paceline.pacing.days import DayLoad, Measure, MetricsRow, series
from paceline.pacing.exposure import LadderItem, SessionRecord
from paceline.pacing.flags import Severity
from paceline.pacing.progression import PlanVersion, version_on
from paceline.store import access

#: Days of load shown as a sparkline beside each patient of a caseload.
SPARK_DAYS: Final = 14


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


@dataclass(frozen=True)
class CaseloadEntry:
    """One patient of a caseload: load against plan, recent days, flags, risk and contact."""

    patient_id: int
    external_ref: str
    display_name: str
    yesterday: date
    plan: PlanVersion | None
    days: tuple[DayLoad, ...]
    quotas: tuple[float | None, ...]
    flags: tuple[OpenFlag, ...]
    flare_risk: float | None
    flare_day: date | None
    last_wear_day: date | None
    last_upload: datetime | None
    open_alerts: int
    critical_alerts: int
    reviewed_at: datetime | None

    @property
    def measure(self) -> Measure | None:
        """What the plan counts (None before any plan)."""
        return None if self.plan is None else self.plan.measure

    @property
    def load_yesterday(self) -> float | None:
        """Yesterday's load in the plan's measure (None on a non-valid day or without a plan)."""
        if self.plan is None or not self.days:
            return None
        return self.days[-1].value(self.plan.measure)

    @property
    def quota_yesterday(self) -> float | None:
        """Yesterday's quota."""
        return self.quotas[-1] if self.quotas else None


@dataclass(frozen=True)
class _Patient:
    patient_id: int
    external_ref: str
    display_name: str
    timezone: str
    enrolled_at: datetime
    yesterday: date


@dataclass(frozen=True)
class _MetricsRow:
    patient_id: int
    day: date
    wear_min: float
    active_min: float
    steps: int
    trimp_banister: float | None
    trimp_edwards: float | None
    above_ceiling_min: float
    hr_samples: int


def _plans_by_patient(
    conn: psycopg.Connection[Any], ids: Sequence[int]
) -> dict[int, list[PlanVersion]]:
    """Every plan version of the given patients, each patient's oldest first."""
    if not ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT pl.patient_id, pl.version, pl.measure, pl.baseline::float8 AS baseline,"
            " pl.quota::float8 AS quota, pl.start_fraction::float8 AS start_fraction,"
            " pl.step_fraction::float8 AS step_fraction, pl.period_days, pl.hr_ceiling_bpm,"
            " (pl.valid_from AT TIME ZONE p.timezone)::date AS valid_day, pl.params,"
            " pl.created_by, pl.reason FROM pacing_plan pl JOIN patient p USING (patient_id)"
            " WHERE pl.patient_id = ANY(%s) ORDER BY pl.patient_id, pl.version",
            (list(ids),),
        )
        rows = cur.fetchall()
    out: dict[int, list[PlanVersion]] = defaultdict(list)
    for r in rows:
        patient_id = r.pop("patient_id")
        # real columns hold single precision; round back to what was written (as records does).
        for k in ("baseline", "quota", "start_fraction", "step_fraction"):
            if r[k] is not None:
                r[k] = round(r[k], 4)
        out[patient_id].append(records._plan(r))
    return out


def caseload(conn: psycopg.Connection[Any], *, now: datetime) -> list[CaseloadEntry]:
    """Every patient this session may see, with yesterday (each patient's local day) in front."""
    with conn.cursor(row_factory=class_row(_Patient)) as cur:
        cur.execute(
            "SELECT patient_id, external_ref, display_name, timezone, enrolled_at,"
            " ((%s::timestamptz AT TIME ZONE timezone)::date - 1) AS yesterday"
            " FROM patient ORDER BY display_name, patient_id",
            (now,),
        )
        patients = cur.fetchall()
    if not patients:
        return []
    ids = [p.patient_id for p in patients]
    first = min(p.yesterday for p in patients) - timedelta(days=SPARK_DAYS - 1)
    plans = _plans_by_patient(conn, ids)
    metrics: dict[int, list[MetricsRow]] = defaultdict(list)
    with conn.cursor(row_factory=class_row(_MetricsRow)) as cur:
        cur.execute(
            "SELECT patient_id, day, wear_min, active_min, steps, trimp_banister, trimp_edwards,"
            " above_ceiling_min, hr_samples FROM daily_metrics"
            " WHERE patient_id = ANY(%s) AND day >= %s ORDER BY patient_id, day",
            (ids, first),
        )
        for m in cur.fetchall():
            metrics[m.patient_id].append(
                MetricsRow(
                    m.day,
                    m.wear_min,
                    m.active_min,
                    m.steps,
                    m.trimp_banister,
                    m.trimp_edwards,
                    m.above_ceiling_min,
                    m.hr_samples,
                )
            )
    flags: dict[int, list[OpenFlag]] = defaultdict(list)
    for f in open_flags(conn, ids):
        flags[f.patient_id].append(f)
    side = _side_facts(conn, ids)
    out = []
    for p in patients:
        start = p.yesterday - timedelta(days=SPARK_DAYS - 1)
        days = tuple(series(metrics[p.patient_id], start, p.yesterday))
        versions = plans.get(p.patient_id, [])
        on_day = [version_on(versions, d.day) for d in days]
        facts = side.get(p.patient_id, {})
        out.append(
            CaseloadEntry(
                patient_id=p.patient_id,
                external_ref=p.external_ref,
                display_name=p.display_name,
                yesterday=p.yesterday,
                plan=on_day[-1] if on_day else None,
                days=days,
                quotas=tuple(None if v is None else v.quota for v in on_day),
                flags=tuple(flags[p.patient_id]),
                flare_risk=facts.get("flare_risk"),
                flare_day=facts.get("flare_day"),
                last_wear_day=facts.get("last_wear_day"),
                last_upload=facts.get("last_upload"),
                open_alerts=int(facts.get("open_alerts") or 0),
                critical_alerts=int(facts.get("critical_alerts") or 0),
                reviewed_at=facts.get("reviewed_at"),
            )
        )
    return out


def open_flags(conn: psycopg.Connection[Any], patient_ids: Sequence[int]) -> list[OpenFlag]:
    """The open and acknowledged flags of the given patients, most severe and newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT flag_id, patient_id, rule_id, severity, status, window_start, window_end,"
            " evidence FROM flag WHERE patient_id = ANY(%s) AND status <> 'resolved'"
            " ORDER BY patient_id, CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1"
            " ELSE 2 END, window_start DESC",
            (list(patient_ids),),
        )
        rows = cur.fetchall()
    return [OpenFlag(**{**r, "severity": Severity(r["severity"])}) for r in rows]


def _side_facts(conn: psycopg.Connection[Any], ids: list[int]) -> dict[int, dict[str, Any]]:
    """Latest flare risk, last worn day, last upload, alert counts and last review per patient."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
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
            (ids,),
        )
        return {r.pop("patient_id"): r for r in cur.fetchall()}


# One patient -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
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


@dataclass(frozen=True)
class DiaryDay:
    """A diary entry: the ratings and the patient's own words."""

    reported_at: datetime
    day: date
    pain_now: int
    fatigue: int | None
    fear_of_movement: int | None
    mood: int | None
    sleep_quality: int | None
    note: str | None


@dataclass(frozen=True)
class RiskDay:
    """A day's 48 h flare-risk score with the factors behind it."""

    day: date
    score: float
    factors: dict[str, Any]


@dataclass(frozen=True)
class MinuteBucket:
    """One minute of one day: mean and maximum heart rate and the steps counted."""

    minute: datetime
    mean_hr_bpm: float | None
    max_hr_bpm: int | None
    steps: int


@dataclass(frozen=True)
class PatientTimeline:
    """Everything one patient's page draws for a range of days."""

    patient: records.PatientContext
    display_name: str
    start: date
    end: date
    days: tuple[DayRow, ...]
    loads: tuple[DayLoad, ...]
    plans: tuple[PlanVersion, ...]
    diary: tuple[DiaryDay, ...]
    flags: tuple[records.FlagView, ...]
    risk: tuple[RiskDay, ...]
    alerts: tuple[dict[str, Any], ...] = field(default=())

    def plan_on(self, day: date) -> PlanVersion | None:
        """The plan in effect on `day`."""
        return version_on(self.plans, day)


def timeline(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date, *, flags: bool = True
) -> PatientTimeline:
    """One patient's days `start` … `end`: metrics, plan versions, diary, flags and risk.

    `flags=False` leaves out flags and alerts (a patient's own view: they are for clinicians).
    """
    ctx = records.patient_context(conn, patient_id)
    name = conn.execute(
        "SELECT display_name FROM patient WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    assert name is not None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT day, wear_min, active_min, steps,"
            " coalesce(trimp_banister, trimp_edwards) AS trimp, zone_min, above_ceiling_min,"
            " resting_hr_bpm, rmssd_ms, hr_samples, trimp_banister, trimp_edwards"
            " FROM daily_metrics WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day",
            (patient_id, start, end),
        )
        raw = cur.fetchall()
    days = tuple(
        DayRow(
            day=r["day"],
            wear_min=r["wear_min"],
            active_min=r["active_min"],
            steps=r["steps"],
            trimp=r["trimp"],
            zone_min=tuple(r["zone_min"] or ()),
            above_ceiling_min=r["above_ceiling_min"],
            resting_hr_bpm=r["resting_hr_bpm"],
            rmssd_ms=r["rmssd_ms"],
            hr_samples=r["hr_samples"],
        )
        for r in raw
    )
    loads = series(
        [
            MetricsRow(
                r["day"],
                r["wear_min"],
                r["active_min"],
                r["steps"],
                r["trimp_banister"],
                r["trimp_edwards"],
                r["above_ceiling_min"],
                r["hr_samples"],
            )
            for r in raw
        ],
        start,
        end,
    )
    with conn.cursor(row_factory=class_row(DiaryDay)) as cur:
        cur.execute(
            "SELECT reported_at, (reported_at AT TIME ZONE %(tz)s)::date AS day, pain_now,"
            " fatigue, fear_of_movement, mood, sleep_quality, note FROM self_report"
            " WHERE patient_id = %(p)s AND reported_at >= %(lo)s AND reported_at < %(hi)s"
            " ORDER BY reported_at",
            {
                "tz": ctx.timezone,
                "p": patient_id,
                "lo": ctx.day_start(start),
                "hi": ctx.day_start(end + timedelta(days=1)),
            },
        )
        diary = tuple(cur.fetchall())
    with conn.cursor(row_factory=class_row(RiskDay)) as cur:
        cur.execute(
            "SELECT day, score::float8 AS score, factors FROM flare_risk"
            " WHERE patient_id = %s AND day BETWEEN %s AND %s ORDER BY day",
            (patient_id, start, end),
        )
        risk = tuple(cur.fetchall())
    lo = ctx.day_start(start)
    shown = (
        tuple(
            f
            for f in records.flags_for(conn, patient_id, include_resolved=True)
            if f.window_end >= lo or f.status != "resolved"
        )
        if flags
        else ()
    )
    return PatientTimeline(
        patient=ctx,
        display_name=str(name[0]),
        start=start,
        end=end,
        days=days,
        loads=tuple(loads),
        plans=tuple(records.plan_versions(conn, ctx)),
        diary=diary,
        flags=shown,
        risk=risk,
        alerts=tuple(patient_alerts(conn, patient_id, since=lo)) if flags else (),
    )


def patient_alerts(
    conn: psycopg.Connection[Any], patient_id: int, *, since: datetime
) -> list[dict[str, Any]]:
    """The patient's alerts raised since `since`, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT alert_id, rule_id, severity, status, created_at FROM alert"
            " WHERE patient_id = %s AND audience = 'care_team' AND created_at >= %s"
            " ORDER BY created_at DESC",
            (patient_id, since),
        )
        return cur.fetchall()


@dataclass(frozen=True)
class Exposure:
    """A patient's fear ladder and every session against it."""

    items: tuple[LadderItem, ...]
    sessions: tuple[SessionRecord, ...]


def exposure(conn: psycopg.Connection[Any], patient_id: int) -> Exposure:
    """The ladder, bottom rung first, and its sessions, oldest first."""
    ctx = records.patient_context(conn, patient_id)
    return Exposure(
        tuple(records.ladder_items(conn, patient_id)), tuple(records.sessions(conn, ctx))
    )


def minute_buckets(
    conn: psycopg.Connection[Any], patient_id: int, day: date, *, hr_view: str, steps_view: str
) -> list[MinuteBucket]:
    """One local day in one-minute `date_bin` buckets (never the raw samples themselves).

    `hr_view` and `steps_view` name the relations the session may read samples through
    (the person roles have no privilege on the raw tables).
    """
    ctx = records.patient_context(conn, patient_id)
    lo, hi = ctx.day_start(day), ctx.day_start(day + timedelta(days=1))
    query = sql.SQL(
        "WITH hr AS (SELECT date_bin('1 minute', time, %(lo)s) AS minute, avg(bpm)::float8 AS m,"
        "   max(bpm) AS x FROM {hr} WHERE patient_id = %(p)s AND time >= %(lo)s AND time < %(hi)s"
        "   GROUP BY 1),"
        # Steps: summed per device within the minute, the best-counting device kept (as the
        # rollup does), so that two wearables do not double the count.
        " st AS (SELECT minute, max(n) AS s FROM (SELECT date_bin('1 minute', time, %(lo)s)"
        "   AS minute, device_id, sum(steps) AS n FROM {st} WHERE patient_id = %(p)s"
        "   AND time >= %(lo)s AND time < %(hi)s GROUP BY 1, 2) per_device GROUP BY 1)"
        " SELECT minute, hr.m AS mean_hr_bpm, hr.x AS max_hr_bpm, coalesce(st.s, 0) AS steps"
        " FROM hr FULL JOIN st USING (minute) ORDER BY minute"
    ).format(hr=sql.Identifier(hr_view), st=sql.Identifier(steps_view))
    with conn.cursor(row_factory=class_row(MinuteBucket)) as cur:
        cur.execute(query, {"p": patient_id, "lo": lo, "hi": hi})
        return cur.fetchall()


def mark_reviewed(
    conn: psycopg.Connection[Any], patient_id: int, *, clinician_id: int, note: str | None = None
) -> datetime:
    """A clinician has looked the patient over: recorded for the caseload and audited."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO patient_review (patient_id, clinician_id, note) VALUES (%s, %s, %s)"
            " RETURNING reviewed_at",
            (patient_id, clinician_id, note),
        ).fetchone()
        assert row is not None
        access.audit(
            conn,
            actor=f"clinician:{clinician_id}",
            action="caseload.reviewed",
            obj="patient_review",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={"note": note} if note else {},
        )
    reviewed: datetime = row[0]
    return reviewed


def patient_names(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """The names of every patient this session may see, by id."""
    rows = conn.execute("SELECT patient_id, display_name FROM patient").fetchall()
    return {int(r[0]): str(r[1]) for r in rows}
