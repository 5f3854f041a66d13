"""What people read: a clinician's whole caseload and one patient's timeline, in few queries.

These are the read models of the dashboard, composed from `records` (which
holds their SQL). They run inside a person session (row-level security decides
which patients exist), read `daily_metrics`, flags, plans and minute buckets of
samples, never raw samples, and do every patient of a caseload in one
set-based query per table, so that a caseload of hundreds costs a handful of
queries. Clinical meaning (which day is valid, which plan applies, what counts
as a gap) comes from the pure modules.

Like `paceline.store.reads`, each read model audits itself: in a person session
it writes one `read` row per patient it returned (a caseload: every patient on
it), in the read's transaction, so that no view of a patient's data goes
unrecorded whichever page shows it. A service's reads are not audited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.days import DayLoad, Measure, series
from paceline.pacing.diary import DiaryRecord
from paceline.pacing.exposure import LadderItem, SessionRecord
from paceline.pacing.progression import PlanVersion, version_on
from paceline.pacing.records import (
    MinuteBucket,
    OpenFlag,
    PatientLabel,
    RiskDay,
    TimelineDay,
    patient_alerts,
    patient_labels,
)
from paceline.store import access

__all__ = [
    "SPARK_DAYS",
    "CaseloadEntry",
    "Exposure",
    "MinuteBucket",
    "OpenFlag",
    "PatientLabel",
    "PatientTimeline",
    "RiskDay",
    "TimelineDay",
    "caseload",
    "exposure",
    "mark_reviewed",
    "minute_buckets",
    "patient_alerts",
    "patient_labels",
    "timeline",
]

#: Days of load shown as a sparkline beside each patient of a caseload.
SPARK_DAYS: Final = 14


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


def caseload(conn: psycopg.Connection[Any], *, now: datetime) -> list[CaseloadEntry]:
    """Every patient this session may see, with yesterday (each patient's local day) in front."""
    patients = records.caseload_patients(conn, now)
    if not patients:
        return []
    ids = [p.patient_id for p in patients]
    first = min(p.yesterday for p in patients) - timedelta(days=SPARK_DAYS - 1)
    plans = records.plans_of(conn, ids)
    metrics = records.metrics_of(conn, ids, first)
    flags: dict[int, list[OpenFlag]] = defaultdict(list)
    for f in records.open_flags(conn, ids):
        flags[f.patient_id].append(f)
    side = records.caseload_facts(conn, ids)
    access.record_reads(conn, obj="caseload", patient_ids=ids)
    out = []
    for p in patients:
        start = p.yesterday - timedelta(days=SPARK_DAYS - 1)
        days = tuple(series(metrics.get(p.patient_id, []), start, p.yesterday))
        versions = plans.get(p.patient_id, [])
        on_day = [version_on(versions, d.day) for d in days]
        facts = side.get(p.patient_id, records.CaseloadFacts())
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
                flare_risk=facts.flare_risk,
                flare_day=facts.flare_day,
                last_wear_day=facts.last_wear_day,
                last_upload=facts.last_upload,
                open_alerts=facts.open_alerts,
                critical_alerts=facts.critical_alerts,
                reviewed_at=facts.reviewed_at,
            )
        )
    return out


# One patient -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientTimeline:
    """Everything one patient's page draws for a range of days."""

    patient: records.PatientContext
    display_name: str
    start: date
    end: date
    days: tuple[TimelineDay, ...]
    loads: tuple[DayLoad, ...]
    plans: tuple[PlanVersion, ...]
    diary: tuple[DiaryRecord, ...]
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
    # One read of the patient row gives both the context and the name shown.
    p = records.patient_record(conn, patient_id)
    ctx = records.PatientContext(p.patient_id, p.timezone, p.enrolled_at)
    days = tuple(records.timeline_days(conn, patient_id, start, end))
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
    access.record_reads(
        conn,
        obj="timeline",
        patient_ids=[patient_id],
        detail={"start": start.isoformat(), "end": end.isoformat(), "flags": flags},
    )
    return PatientTimeline(
        patient=ctx,
        display_name=p.display_name,
        start=start,
        end=end,
        days=days,
        loads=tuple(series([d.metrics for d in days], start, end)),
        plans=tuple(records.plan_versions(conn, ctx)),
        diary=tuple(records.diary_records(conn, ctx, start, end)),
        flags=shown,
        risk=tuple(records.flare_risks(conn, patient_id, start, end)),
        alerts=tuple(patient_alerts(conn, patient_id, since=lo)) if flags else (),
    )


@dataclass(frozen=True)
class Exposure:
    """A patient's fear ladder and every session against it."""

    items: tuple[LadderItem, ...]
    sessions: tuple[SessionRecord, ...]


def exposure(
    conn: psycopg.Connection[Any], patient_id: int, *, ctx: records.PatientContext | None = None
) -> Exposure:
    """The ladder, bottom rung first, and its sessions, oldest first.

    `ctx`, when the caller has read it already (a timeline's `patient`), saves reading it again.
    """
    ctx = ctx or records.patient_context(conn, patient_id)
    access.record_reads(conn, obj="exposure", patient_ids=[patient_id])
    return Exposure(
        tuple(records.ladder_items(conn, patient_id)), tuple(records.sessions(conn, ctx))
    )


def minute_buckets(
    conn: psycopg.Connection[Any],
    patient_id: int,
    day: date,
    *,
    hr_view: str,
    steps_view: str,
    ctx: records.PatientContext | None = None,
) -> list[MinuteBucket]:
    """One local day in one-minute buckets, read through the session's sample views (`ctx` as for `exposure`)."""
    ctx = ctx or records.patient_context(conn, patient_id)
    access.record_reads(
        conn, obj="minute_buckets", patient_ids=[patient_id], detail={"day": day.isoformat()}
    )
    return records.minute_buckets(
        conn,
        patient_id,
        ctx.day_start(day),
        ctx.day_start(day + timedelta(days=1)),
        tz=ctx.timezone,
        hr_view=hr_view,
        steps_view=steps_view,
    )


def mark_reviewed(
    conn: psycopg.Connection[Any], patient_id: int, *, clinician_id: int, note: str | None = None
) -> datetime:
    """A clinician has looked the patient over: recorded for the caseload and audited."""
    with conn.transaction():
        reviewed = records.insert_review(conn, patient_id, clinician_id=clinician_id, note=note)
        access.audit(
            conn,
            actor=f"clinician:{clinician_id}",
            action="caseload.reviewed",
            obj="patient_review",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={"note": note} if note else {},
        )
    return reviewed
