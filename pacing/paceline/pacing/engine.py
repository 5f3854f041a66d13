"""Evaluate one patient for one day: plan progression, flags, flare risk, today's status.

`evaluate_patient` is what the scheduler and the demo call, once per patient
per local day. Its cost does not grow with the patient's history: it reads the
state stored for the day `REDECIDE_DAYS + 1` days back (`paceline.pacing.state`:
each rule's state machine, the chronic load at the start of the window) and a
bounded window of days (`WINDOW_DAYS` of look-back before the state's next day),
lets the rules step the days since, and writes the outcome in one transaction
under a per-patient advisory lock:

- plan versions that fell due (baseline set, quota raised, flare step-back),
  each audited;
- flags upserted unique per (patient, rule, window start): an episode keeps its
  row while it lasts, is resolved once its condition has cleared for the rule's
  minimum off-days, and a re-run for the same day changes nothing;
- the day's flare-risk score with its contributing factors;
- the state at the end of the day `REDECIDE_DAYS` back, for later evaluations;
- the patient's red-flag screens marked as read (the new-data sweep defers an
  evaluation for a positive screen no evaluation has read). Days on which
  progression is paused after a red flag (`paceline.pacing.redflags.Pause`)
  raise no quota.

Without a stored state (the first evaluation, a gap longer than
`KEEP_STATE_DAYS`) or with `recompute=True` the same step functions replay from
enrolment; `tests/pacing/test_bounded.py` replays a cohort both ways and
compares every flag, plan and flare-risk row.

Evaluating a day reflects the data known up to that day only; flags whose
window starts after it are left alone. Run it after the day's daily-metrics
rollup: a day without a row is a day the device sent nothing. The writes happen
inside `conn.transaction()`: on an autocommit connection they are committed on
return, otherwise they join the caller's transaction for the caller to commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg

from paceline.pacing import prescribing, records
from paceline.pacing.days import DayLoad, Measure, series, values
from paceline.pacing.diary import by_day
from paceline.pacing.errors import FutureDayError, PacingError
from paceline.pacing.evidence import JSON, num
from paceline.pacing.exercise import TargetVersion
from paceline.pacing.flags import Flag, RuleState, current_flag, run_rule
from paceline.pacing.flare import MODEL, FlareRisk
from paceline.pacing.history import History, build
from paceline.pacing.load import ChronicBase, LoadState, load_state
from paceline.pacing.progression import (
    PlanVersion,
    TodayStatus,
    advance,
    default_plan,
    today,
    version_on,
)
from paceline.pacing.records import PatientContext
from paceline.pacing.response import PainResponse
from paceline.pacing.rules import RULE_IDS, RULES
from paceline.pacing.rules.flare import (
    FLARE_EPISODE,
    FLARE_RISK,
    day_risks,
    flare_episode,
    onsets,
    risk_signals,
)
from paceline.pacing.state import EngineState
from paceline.store.access import audit

logger = logging.getLogger(__name__)

ENGINE_ACTOR: Final = "pacing-engine"
#: Days of look-back one evaluation reads before the first day it decides: long
#: enough for every rule's look-back (the 28-day ratio two days back, 21-day
#: contingency), the longest progression period (60 days) and the personal
#: response's regression (the last 61 days).
WINDOW_DAYS: Final = 61
#: The shortest window that still covers every look-back and the longest period.
MIN_WINDOW_DAYS: Final = 61
#: Stored states of other models (an older engine) are not continued from.
STATE_MODEL: Final = "pacing-state-v1"
#: Days before the evaluated one that the rules decide again on every evaluation, so
#: that data uploaded late (a gateway that was offline) still changes them.
REDECIDE_DAYS: Final = 7
#: How far back a stored state is looked for (older ones are deleted; a longer gap
#: recomputes from enrolment).
KEEP_STATE_DAYS: Final = 21
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
    #: Exercise target versions this evaluation made (rises and flare step-downs).
    exercise_changes: tuple[TargetVersion, ...] = ()

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


@dataclass(frozen=True)
class _Start:
    """Where an evaluation starts: the first day it reads and the stored state it continues."""

    #: The first day read (enrolment, or the window before the stored state's next day).
    first_day: date
    #: The stored state the rules continue from (None: they replay from enrolment).
    previous: EngineState | None
    #: The chronic-load bases at the day before `first_day` (None: it is enrolment).
    bases: Mapping[Measure, ChronicBase | None] | None

    @property
    def first_stepped(self) -> date:
        """The first day the rules step (the day after the stored state's)."""
        return self.first_day if self.previous is None else self.previous.day + timedelta(days=1)


def _start(
    conn: psycopg.Connection[Any],
    ctx: PatientContext,
    day: date,
    *,
    window_days: int,
    recompute: bool,
) -> _Start:
    """The window to read and the state to continue: the latest stored one old enough."""
    full = _Start(ctx.enrolled_day, None, None)
    if recompute:
        return full
    raw = records.latest_engine_state(
        conn,
        ctx.patient_id,
        through=day - timedelta(days=REDECIDE_DAYS + 1),
        since=day - timedelta(days=KEEP_STATE_DAYS),
        model=STATE_MODEL,
    )
    if raw is None:
        return full
    prev = EngineState.from_json(raw)
    if prev.window_days != window_days:
        return full
    window_start = prev.day + timedelta(days=2 - window_days)
    if window_start <= ctx.enrolled_day:
        return _Start(ctx.enrolled_day, prev, None)
    return _Start(window_start, prev, prev.bases)


def _state_for(
    day: date,
    *,
    window_days: int,
    start: _Start,
    days: list[DayLoad],
    loads: Mapping[Measure, LoadState],
    rules: Mapping[str, RuleState],
) -> EngineState:
    """The state at the end of `day` for the evaluations that continue from it."""
    base_day = day + timedelta(days=1 - window_days)
    i = (base_day - start.first_day).days
    if i < 0:
        return EngineState(day, window_days, rules, dict.fromkeys(Measure), None)
    bases: dict[Measure, ChronicBase | None] = {}
    for m, state in loads.items():
        carried = start.bases is None or start.bases.get(m) is not None
        bases[m] = state.base_at(i) if carried else None
    reported = [d.day for d in days[: i + 1] if d.reported]
    before = start.previous.last_reported if start.bases is not None and start.previous else None
    return EngineState(day, window_days, rules, bases, reported[-1] if reported else before)


def evaluate_patient(
    conn: psycopg.Connection[Any],
    patient_id: int,
    day: date,
    *,
    now: datetime | None = None,
    recompute: bool = False,
    window_days: int = WINDOW_DAYS,
) -> Evaluation:
    """Evaluate `patient_id` for local day `day` (completed, or today so far) and store the outcome.

    A day after the patient's local today at `now` (default: the current time)
    raises `FutureDayError` and writes nothing: a week whose last days have not
    happened cannot decide a quota rise or a flag.

    The cost is bounded: the rules continue from the state stored for the day
    `REDECIDE_DAYS + 1` days back, re-deciding the days since (so a gateway that
    uploads a few days late changes them as it should), and only those days plus
    a `window_days` look-back are read. Without such a state (a first
    evaluation, a gap of more than `KEEP_STATE_DAYS`, a changed window) or with
    `recompute=True`, the same computation replays from enrolment; both give the
    same flags, plans and flare risk. Data arriving more than `REDECIDE_DAYS`
    late reaches past episodes only through a recomputation.
    """
    ctx = records.patient_context(conn, patient_id)
    if day < ctx.enrolled_day:
        raise PacingError(
            f"patient {patient_id} was enrolled on {ctx.enrolled_day}; cannot evaluate {day}"
        )
    if window_days < MIN_WINDOW_DAYS:
        raise PacingError(f"the evaluation window must be at least {MIN_WINDOW_DAYS} days")
    local_today = ctx.local_day(now or datetime.now(UTC))
    if day > local_today:
        raise FutureDayError(patient_id, day, local_today)
    with conn.transaction():
        records.lock_patient(conn, patient_id)
        start = _start(conn, ctx, day, window_days=window_days, recompute=recompute)
        plans = records.plan_versions(conn, ctx, since=start.first_day)
        if start.bases is not None and (
            start.bases.get(plans[-1].measure) is None
            or any(p.baseline is None and p.valid_from < start.first_day for p in plans)
        ):
            # No chronic load to continue in the plan's measure (its first valid week
            # is not complete), or a baseline still being measured counts valid days
            # from the version that asked for it: read from enrolment.
            start = _Start(ctx.enrolled_day, None, None)
            plans = records.plan_versions(conn, ctx)
        changes: list[PlanVersion] = []
        if not plans:
            first = default_plan(ctx.enrolled_day)
            store_plan_versions(conn, ctx, [first], actor=ENGINE_ACTOR)
            plans = [first]
            changes.append(first)
        lo = start.first_day
        days = series(records.metrics_rows(conn, patient_id, lo, day), lo, day)
        diary = by_day(records.diary_records(conn, ctx, lo, day))
        sessions = records.sessions(conn, ctx, start=lo, end=day)
        screens = records.red_flag_screens(conn, ctx, lo, day)
        pauses = records.pauses(conn, ctx, lo, day)
        bases = start.bases
        loads = {
            m: load_state(values(days, m), None if bases is None else bases.get(m)) for m in Measure
        }
        first_index = (start.first_stepped - lo).days
        rule_states: dict[str, RuleState] = (
            dict(start.previous.rules) if start.previous is not None else {}
        )
        before = None if bases is None or start.previous is None else start.previous.last_reported

        def history(versions: list[PlanVersion]) -> History:
            return build(
                days,
                diary,
                versions,
                sessions,
                timezone=ctx.timezone,
                measure=versions[-1].measure,
                loads=loads,
                first=first_index,
                last_reported_before=before,
                red_flags=screens,
                pauses=pauses,
            )

        h = history(plans)
        if h.days[-1].bad_metrics:
            logger.warning(
                "patient %s %s: daily metrics %s are not numbers; the day is skipped",
                patient_id,
                day,
                ", ".join(h.days[-1].bad_metrics),
            )

        capture = day - timedelta(days=REDECIDE_DAYS)
        flare_run = run_rule(
            FLARE_EPISODE,
            flare_episode(h),
            rule_states.get(FLARE_EPISODE.rule_id),
            capture=capture,
        )
        flare_open = current_flag(FLARE_EPISODE, flare_run.state)
        flare_flags = [*flare_run.closed, *([] if flare_open is None else [flare_open])]
        since = None if start.previous is None else start.first_stepped
        paused = {d.day for i, d in enumerate(h.days) if h.paused[i]}
        due = advance(plans, h.days, onsets(flare_flags), day, since=since, paused=paused)
        if due:
            store_plan_versions(conn, ctx, due, actor=ENGINE_ACTOR)
            plans = plans + due
            changes.extend(due)
            h = history(plans)

        # Each decided day's flare risk, scored once: the flare-risk rule decides on them,
        # and the last (the day evaluated: the rules always decide on it) is stored.
        risks = day_risks(h)
        flags: list[Flag] = []
        captured: dict[str, RuleState] = {}
        for rule in RULES:
            if rule.spec is FLARE_EPISODE:
                ran = flare_run
            else:
                signals = risk_signals(h, risks) if rule.spec is FLARE_RISK else rule.detect(h)
                ran = run_rule(
                    rule.spec,
                    signals,
                    rule_states.get(rule.spec.rule_id),
                    capture=capture,
                )
            if ran.captured is not None:
                captured[rule.spec.rule_id] = ran.captured
            current = current_flag(rule.spec, ran.state)
            flags += ran.closed if current is None else [*ran.closed, current]
        outcomes, resolved = persist_flags(conn, ctx, day, flags)
        # Exercise targets follow the same flares as the quota: the engine's episodes
        # in this window and the step-backs (declared ones too) in the plan.
        exercise_changes = prescribing.progress(
            conn, ctx, day, [*onsets(flare_flags), *prescribing.plan_flares(plans)]
        )
        records.mark_screens_evaluated(conn, ctx, day, now or datetime.now(UTC))

        risk = risks[-1]
        records.upsert_flare_risk(
            conn,
            patient_id,
            day,
            score=risk.score,
            model=MODEL,
            factors={
                **risk.as_json(),
                "personal_response": num(risk.shrunk_response),
                "response": risk.response.as_json(),
            },
        )
        if capture >= start.first_stepped and len(captured) == len(RULES):
            state = _state_for(
                capture,
                window_days=window_days,
                start=start,
                days=days,
                loads=loads,
                rules=captured,
            )
            records.store_engine_state(
                conn,
                patient_id,
                capture,
                STATE_MODEL,
                state.as_json(),
                keep_days=KEEP_STATE_DAYS,
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
        response=risk.response,
        today=status,
        exercise_changes=tuple(exercise_changes),
    )
