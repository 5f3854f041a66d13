"""Evaluate one patient for one day: plan progression, flags, flare risk, today's status.

`evaluate_patient` is what the scheduler and the demo call, once per patient
per completed local day. It reads the patient's history from enrolment to that
day, lets the pure rules decide, and writes the outcome in one transaction
under a per-patient advisory lock:

- plan versions that fell due (baseline set, quota raised, flare step-back),
  each audited;
- flags upserted unique per (patient, rule, window start): an episode keeps its
  row while it lasts, is resolved once its condition has cleared for the rule's
  minimum off-days, and a re-run for the same day changes nothing;
- the day's flare-risk score with its contributing factors.

Evaluating a day reflects the data known up to that day only; flags whose
window starts after it are left alone. Run it after the day's daily-metrics
rollup: a day without a row is a day the device sent nothing. The writes happen
inside `conn.transaction()`: on an autocommit connection they are committed on
return, otherwise they join the caller's transaction for the caller to commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.days import DayLoad, series
from paceline.pacing.diary import by_day
from paceline.pacing.errors import FutureDayError, PacingError
from paceline.pacing.evidence import JSON
from paceline.pacing.flags import Flag, episodes
from paceline.pacing.flare import (
    FLARE_EPISODE,
    FLARE_RISK,
    MODEL,
    FlareRisk,
    onsets,
    risk_series,
    risk_signals,
)
from paceline.pacing.history import History, build
from paceline.pacing.plan import PlanVersion, TodayStatus, advance, default_plan, today, version_on
from paceline.pacing.records import PatientContext
from paceline.pacing.response import PainResponse
from paceline.pacing.rules import RULE_IDS, RULES
from paceline.store.access import audit

logger = logging.getLogger(__name__)

ENGINE_ACTOR: Final = "pacing-engine"
#: Days of flare-risk history recomputed for the flare-risk flag's hysteresis.
RISK_DAYS: Final = 28
#: Closed episodes that ended longer ago than this are not rewritten on every run.
REWRITE_DAYS: Final = 28


@dataclass(frozen=True)
class FlagOutcome:
    """One flag as the evaluation left it in the database."""

    flag_id: int
    flag: Flag
    status: str
    changed: bool


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one patient-day decided."""

    patient_id: int
    day: date
    plan: PlanVersion | None
    next_plan: PlanVersion | None
    plan_changes: tuple[PlanVersion, ...]
    flags: tuple[FlagOutcome, ...]
    resolved_flag_ids: tuple[int, ...]
    flare_risk: FlareRisk | None
    response: PainResponse | None
    today: TodayStatus | None

    @property
    def active_flags(self) -> tuple[FlagOutcome, ...]:
        """Flags whose condition still holds at the end of the day."""
        return tuple(f for f in self.flags if f.flag.active)

    def active_rules(self) -> set[str]:
        """Rule ids with an active flag."""
        return {f.flag.rule_id for f in self.active_flags}


def store_plan_versions(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    versions: list[PlanVersion],
    *,
    actor: str,
    valid_from_at: datetime | None = None,
) -> None:
    """Write plan versions and audit each (valid from local midnight unless a time is given)."""
    for v in versions:
        start = valid_from_at or ctx.day_start(v.valid_from)
        plan_id = records.insert_plan_version(conn, ctx, v, start)
        detail: dict[str, JSON] = {
            "plan_id": plan_id,
            "version": v.version,
            "cause": v.cause.value,
            "reason": v.reason,
            "measure": v.measure.value,
            "baseline": v.baseline,
            "quota": v.quota,
            "valid_from": v.valid_from.isoformat(),
        }
        audit(
            conn,
            actor=actor,
            action="plan.change",
            obj="pacing_plan",
            patient_id=ctx.patient_id,
            clinician_id=v.created_by,
            detail=dict(detail),
        )
        logger.info(
            "patient %s plan v%s (%s): %s", ctx.patient_id, v.version, v.cause.value, v.reason
        )


def load_history(
    conn: psycopg.Connection[Any], ctx: PatientContext, day: date, plans: list[PlanVersion]
) -> History:
    """Read everything the rules need from enrolment to `day`."""
    start = ctx.enrolled_day
    days = series(records.metrics_rows(conn, ctx.patient_id, start, day), start, day)
    diary = by_day(records.diary_records(conn, ctx, start, day))
    sessions = records.sessions(conn, ctx, start=start, end=day)
    return build(days, diary, plans, sessions, timezone=ctx.timezone)


def _match(
    flag: Flag, stored: list[records.StoredFlag], ctx: PatientContext, used: set[int]
) -> records.StoredFlag | None:
    """The stored row this episode continues: same start, else an overlapping unresolved one."""
    start = ctx.day_start(flag.start)
    candidates = [s for s in stored if s.rule_id == flag.rule_id and s.flag_id not in used]
    for s in candidates:
        if s.window_start == start:
            return s
    lo, hi = ctx.day_start(flag.start - timedelta(days=1)), ctx.day_start(flag.end)
    for s in candidates:
        if s.status != "resolved" and s.window_start <= hi and s.window_end >= lo:
            return s
    return None


def persist_flags(
    conn: psycopg.Connection[Any], ctx: PatientContext, day: date, flags: list[Flag]
) -> tuple[list[FlagOutcome], list[int]]:
    """Upsert recent episodes and resolve stored flags no episode supports any more."""
    horizon = day - timedelta(days=REWRITE_DAYS)
    day_end = ctx.day_start(day + timedelta(days=1))
    stored = [
        s
        for s in records.stored_flags(conn, ctx.patient_id, RULE_IDS, ctx.day_start(horizon))
        if s.window_start < day_end
    ]
    outcomes: list[FlagOutcome] = []
    kept: set[int] = set()
    for f in flags:
        if not f.active and f.end < horizon:
            continue
        match = _match(f, stored, ctx, kept)
        start = match.window_start if match is not None else ctx.day_start(f.start)
        status = "open" if f.active else "resolved"
        flag_id, changed = records.upsert_flag(
            conn,
            ctx.patient_id,
            f,
            window_start=start,
            window_end=ctx.day_start(f.end + timedelta(days=1)),
            status=status,
        )
        kept.add(flag_id)
        outcomes.append(FlagOutcome(flag_id, f, status, changed))
    stale = [s.flag_id for s in stored if s.status != "resolved" and s.flag_id not in kept]
    records.resolve_flags(conn, stale)
    return outcomes, stale


def _baseline_days_seen(plan: PlanVersion, days: tuple[DayLoad, ...]) -> int:
    return sum(1 for d in days if d.day >= plan.valid_from and d.value(plan.measure) is not None)


def evaluate_patient(
    conn: psycopg.Connection[Any], patient_id: int, day: date, *, now: datetime | None = None
) -> Evaluation:
    """Evaluate `patient_id` for local day `day` (completed, or today so far) and store the outcome.

    A day after the patient's local today at `now` (default: the current time)
    raises `FutureDayError` and writes nothing: a week whose last days have not
    happened cannot decide a quota rise or a flag.
    """
    ctx = records.patient_context(conn, patient_id)
    if day < ctx.enrolled_day:
        raise PacingError(
            f"patient {patient_id} was enrolled on {ctx.enrolled_day}; cannot evaluate {day}"
        )
    local_today = ctx.local_day(now or datetime.now(UTC))
    if day > local_today:
        raise FutureDayError(patient_id, day, local_today)
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        plans = records.plan_versions(conn, ctx)
        changes: list[PlanVersion] = []
        if not plans:
            first = default_plan(ctx.enrolled_day)
            store_plan_versions(conn, ctx, [first], actor=ENGINE_ACTOR)
            plans = [first]
            changes.append(first)
        h = load_history(conn, ctx, day, plans)
        if h.days[-1].bad_metrics:
            logger.warning(
                "patient %s %s: daily metrics %s are not numbers; the day is skipped",
                patient_id,
                day,
                ", ".join(h.days[-1].bad_metrics),
            )

        flare_flags = [f for r in RULES if r.spec is FLARE_EPISODE for f in r.flags(h)]
        due = advance(plans, h.days, onsets(flare_flags), day)
        if due:
            store_plan_versions(conn, ctx, due, actor=ENGINE_ACTOR)
            plans = plans + due
            changes.extend(due)
            h = build(
                h.days, h.diary, plans, h.sessions, timezone=ctx.timezone, measure=plans[-1].measure
            )

        flags = [f for rule in RULES for f in rule.flags(h)]
        first_risk = max(0, len(h) - RISK_DAYS)
        risks = risk_series(h.load.loads, h.pain, h.sleep, first_risk)
        flags += episodes(FLARE_RISK, risk_signals(h, risks, first_risk))
        outcomes, resolved = persist_flags(conn, ctx, day, flags)

        risk = risks[-1] if risks else None
        if risk is not None:
            records.upsert_flare_risk(
                conn, patient_id, day, score=risk.score, model=MODEL, factors=risk.as_json()
            )

        plan_today = version_on(plans, day)
        plan_tomorrow = version_on(plans, day + timedelta(days=1))
        status = None
        if plan_today is not None:
            seen = _baseline_days_seen(plan_today, h.days)
            status = today(
                plan_today, h.days[-1], day, baseline_days_seen=seen, local_today=local_today
            )
    return Evaluation(
        patient_id=patient_id,
        day=day,
        plan=plan_today,
        next_plan=plan_tomorrow,
        plan_changes=tuple(changes),
        flags=tuple(outcomes),
        resolved_flag_ids=tuple(resolved),
        flare_risk=risk,
        response=None if risk is None else risk.response,
        today=status,
    )
