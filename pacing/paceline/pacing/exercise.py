"""Prescribed exercise sessions: targets, the response to a session, and target progression.

Beside the daily activity quota, a clinician prescribes sessions of four kinds
(strength, mobility, endurance, balance; the components of exercise prescription
in Garber et al. 2011), so many per week, each with a target: a duration, a
number of repetitions (and sets), and for cardio a heart-rate zone. The patient
logs each session with what was done, the session RPE on Borg's CR-10 scale and
pain before and after on 0-10.

A target rises only when the patient completed it consistently without a
worsening response, and steps down after a flare, in the spirit of the
activity quota (`paceline.pacing.progression`):

- **Completed**: the session reached the target in effect (duration and
  repetitions, and sets when set).
- **Worsening response**: pain after the session at least
  `WORSENING_PAIN_POINTS` (2) points above pain before. Two points on a 0-10
  numerical rating scale is the smallest change patients with chronic pain
  rate as clinically important (Farrar et al. 2001; Salaffi et al. 2004).
  This is the "pain-monitoring" idea of Thomeé (1997): exercise may hurt, but
  the response decides whether the load is tolerated.
- **Good session** = completed and not worsening. The target rises by the
  prescription's step (default 10 %, the top of the 2-10 % load increment of
  the ACSM progression models, whose "2-for-2 rule" asks for the target
  exceeded on two consecutive sessions) after `consistent_sessions` good
  sessions in a row (default `DEFAULT_CONSISTENT_SESSIONS` = 3, one more than
  ACSM's two because these are people with chronic pain, not trained
  athletes) against the current target. A session that was not good resets
  the count: a target never rises after a session that worsened pain.
- **Flare**: a flare episode confirmed by the engine (or declared by the
  clinician) steps every target down to `FLARE_FRACTION` (80 %, the quota's
  flare fraction) of its values, never below `FLOOR_FRACTION` (50 %) of the
  clinician's first target; the count starts again from the new version.
- **Pause**: while progression is paused (a red flag not yet cleared), no
  target rises; step-downs still happen.

A session's load is Foster's session-RPE load (`paceline.pacing.load`).

All functions here are pure: they take target versions and sessions and return
new frozen values.

References
----------
Garber CE, Blissmer B, Deschenes MR, et al. American College of Sports Medicine
position stand: quantity and quality of exercise for developing and maintaining
cardiorespiratory, musculoskeletal, and neuromotor fitness in apparently healthy
adults. Med Sci Sports Exerc 2011;43:1334-1359.
American College of Sports Medicine. Position stand: progression models in
resistance training for healthy adults. Med Sci Sports Exerc 2009;41:687-708.
Farrar JT, Young JP, LaMoreaux L, Werth JL, Poole RM. Clinical importance of
changes in chronic pain intensity measured on an 11-point numerical pain rating
scale. Pain 2001;94:149-158.
Salaffi F, Stancati A, Silvestri CA, Ciapetti A, Grassi W. Minimal clinically
important changes in chronic musculoskeletal pain intensity measured on a
numerical rating scale. Eur J Pain 2004;8:283-291.
Thomeé R. A comprehensive treatment approach for patellofemoral pain syndrome in
young women. Phys Ther 1997;77:1690-1703.
Borg GA. Psychophysical bases of perceived exertion. Med Sci Sports Exerc
1982;14:377-381.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from paceline.pacing import wording
from paceline.pacing.errors import ExerciseError, NotAnIntegerError, OutOfRangeError
from paceline.pacing.evidence import JSON, Evidence, iso
from paceline.pacing.load import session_rpe_load
from paceline.pacing.progression import FlareOnset

#: Pain after a session this many points (0-10) above pain before is a worsening
#: response: the minimal clinically important change (Farrar 2001; Salaffi 2004).
WORSENING_PAIN_POINTS: Final = 2
#: Good sessions in a row against one target before it rises (ACSM 2009's two, plus one).
DEFAULT_CONSISTENT_SESSIONS: Final = 3
CONSISTENT_SESSIONS_RANGE: Final = (2, 10)
#: The rise per step: the top of ACSM 2009's 2-10 % increment, the quota's default step.
DEFAULT_STEP_FRACTION: Final = 0.1
STEP_FRACTION_RANGE: Final = (0.02, 0.5)
#: A flare steps a target to this fraction of its values (the quota's flare fraction).
FLARE_FRACTION: Final = 0.8
#: ...and never below this fraction of the clinician's first target.
FLOOR_FRACTION: Final = 0.5
#: A flare within this many days of one a target already stepped down for is the same flare.
SAME_FLARE_DAYS: Final = 3
SESSIONS_PER_WEEK_RANGE: Final = (1, 14)
MAX_DURATION_MIN: Final = 600.0
MAX_REPETITIONS: Final = 1000
MAX_SETS: Final = 50
#: Heart-rate zones 1-5 as `paceline.signal.zones` numbers them (Edwards 1993).
HR_ZONES: Final = (1, 5)
NAME_MAX_CHARS: Final = 200


class Kind(StrEnum):
    """The kind of a prescribed session (Garber et al. 2011)."""

    STRENGTH = "strength"
    MOBILITY = "mobility"
    ENDURANCE = "endurance"
    BALANCE = "balance"


def kind(name: str) -> Kind:
    """The kind called `name`, or `ExerciseError` listing the valid kinds."""
    try:
        return Kind(name)
    except ValueError:
        valid = ", ".join(k.value for k in Kind)
        raise ExerciseError(f"unknown exercise kind {name!r}; valid kinds are {valid}") from None


class TargetCause(StrEnum):
    """Why a target version was made."""

    CLINICIAN = "clinician"
    PROGRESSION = "progression"
    FLARE = "flare"


def _whole(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotAnIntegerError(name, value)
    if not low <= value <= high:
        raise OutOfRangeError(name, value, low, high)


def _minutes(name: str, value: float, low: float) -> None:
    if not (math.isfinite(value) and low <= value <= MAX_DURATION_MIN):
        raise OutOfRangeError(name, value, low, MAX_DURATION_MIN)


@dataclass(frozen=True)
class Target:
    """What one session should reach: duration, repetitions (and sets), HR zone for cardio."""

    duration_min: float | None = None
    repetitions: int | None = None
    sets: int | None = None
    hr_zone: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.duration_min is None and self.repetitions is None:
            raise ExerciseError("a target needs a duration or a number of repetitions")
        if self.duration_min is not None:
            _minutes("duration_min", self.duration_min, 0.5)
        if self.repetitions is not None:
            _whole("repetitions", self.repetitions, 1, MAX_REPETITIONS)
        if self.sets is not None:
            _whole("sets", self.sets, 1, MAX_SETS)
        if self.hr_zone is not None:
            low, high = self.hr_zone
            _whole("hr_zone low", low, *HR_ZONES)
            _whole("hr_zone high", high, *HR_ZONES)
            if low > high:
                raise ExerciseError(f"HR zone {low}-{high}: the low zone is above the high one")

    def scaled(self, fraction: float, floor: Target | None = None) -> Target:
        """The target with duration and repetitions times `fraction` (sets and zone kept).

        Minutes round to the half minute and repetitions to whole ones, each at
        least one unit away from the old value in the direction of `fraction`
        (a 10 % rise of 5 repetitions is 6, not 5), and no lower than `floor`.
        """
        up = fraction > 1.0

        def minutes(v: float | None, low: float | None) -> float | None:
            if v is None:
                return None
            new = round(v * fraction * 2) / 2
            new = max(new, v + 0.5) if up else min(new, v - 0.5)
            return max(new, low if low is not None else 0.5, 0.5)

        def reps(v: int | None, low: int | None) -> int | None:
            if v is None:
                return None
            new = round(v * fraction)
            new = max(new, v + 1) if up else min(new, v - 1)
            return max(new, low if low is not None else 1, 1)

        return replace(
            self,
            duration_min=minutes(self.duration_min, None if floor is None else floor.duration_min),
            repetitions=reps(self.repetitions, None if floor is None else floor.repetitions),
        )

    def reached_by(self, duration_min: float, repetitions: int | None, sets: int | None) -> bool:
        """Whether a session with these values reached the target."""
        if self.duration_min is not None and duration_min < self.duration_min:
            return False
        if self.repetitions is not None and (repetitions or 0) < self.repetitions:
            return False
        return not (self.sets is not None and (sets or 0) < self.sets)

    @property
    def text(self) -> str:
        """The target as people read it."""
        return wording.target_text(self.duration_min, self.repetitions, self.sets, self.hr_zone)

    def as_json(self) -> dict[str, JSON]:
        """The target as evidence."""
        return {
            "duration_min": self.duration_min,
            "repetitions": self.repetitions,
            "sets": self.sets,
            "hr_zone": None if self.hr_zone is None else list(self.hr_zone),
        }


@dataclass(frozen=True)
class Prescription:
    """One prescribed kind of session for a patient."""

    prescription_id: int
    kind: Kind
    name: str
    sessions_per_week: int
    consistent_sessions: int = DEFAULT_CONSISTENT_SESSIONS
    step_fraction: float = DEFAULT_STEP_FRACTION
    active: bool = True
    created_by: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.name.strip()) <= NAME_MAX_CHARS:
            raise ExerciseError(f"a session is named in 1 to {NAME_MAX_CHARS} characters")
        _whole("sessions_per_week", self.sessions_per_week, *SESSIONS_PER_WEEK_RANGE)
        _whole("consistent_sessions", self.consistent_sessions, *CONSISTENT_SESSIONS_RANGE)
        low, high = STEP_FRACTION_RANGE
        if not (math.isfinite(self.step_fraction) and low <= self.step_fraction <= high):
            raise OutOfRangeError("step_fraction", self.step_fraction, low, high)


@dataclass(frozen=True)
class TargetVersion:
    """One version of a prescription's target, with who or what made it and why."""

    prescription_id: int
    version: int
    target: Target
    valid_from: date
    cause: TargetCause
    reason: str
    created_by: int | None = None
    flare_start: date | None = None
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True)
class ExerciseSession:
    """One logged session: what was done, session RPE (CR-10) and pain before and after."""

    prescription_id: int
    day: date
    performed_at: datetime
    target_version: int
    duration_min: float
    rpe: int
    pain_before: int
    pain_after: int
    repetitions: int | None = None
    sets: int | None = None
    session_id: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.performed_at.tzinfo is None:
            raise ExerciseError("performed_at needs a time zone")
        _minutes("duration_min", self.duration_min, 0.0)
        _whole("rpe", self.rpe, 0, 10)
        _whole("pain_before", self.pain_before, 0, 10)
        _whole("pain_after", self.pain_after, 0, 10)
        if self.repetitions is not None:
            _whole("repetitions", self.repetitions, 0, MAX_REPETITIONS)
        if self.sets is not None:
            _whole("sets", self.sets, 0, MAX_SETS)

    @property
    def worsened(self) -> bool:
        """Pain after at least `WORSENING_PAIN_POINTS` above pain before (Farrar 2001)."""
        return self.pain_after - self.pain_before >= WORSENING_PAIN_POINTS

    @property
    def load(self) -> float:
        """Foster's session-RPE load: CR-10 rating times minutes (arbitrary units)."""
        return session_rpe_load(self.rpe, self.duration_min)


@dataclass(frozen=True)
class SessionResponse:
    """How one session went against its target."""

    session: ExerciseSession
    completed: bool
    worsened: bool

    @property
    def good(self) -> bool:
        """Completed without a worsening response: it counts toward a rise."""
        return self.completed and not self.worsened


def respond(session: ExerciseSession, target: Target) -> SessionResponse:
    """Whether `session` reached `target` and whether pain worsened."""
    done = target.reached_by(session.duration_min, session.repetitions, session.sets)
    return SessionResponse(session, done, session.worsened)


def version_on(versions: Sequence[TargetVersion], day: date) -> TargetVersion | None:
    """The target version in effect on `day` (the highest version valid by then)."""
    due = [v for v in versions if v.valid_from <= day]
    return max(due, key=lambda v: v.version) if due else None


def good_run(responses: Sequence[SessionResponse]) -> int:
    """How many good sessions end the sequence (0 when the last one was not good)."""
    n = 0
    for r in reversed(responses):
        if not r.good:
            break
        n += 1
    return n


def _same_flare(start: date, seen: Sequence[date]) -> bool:
    return any(abs((start - s).days) <= SAME_FLARE_DAYS for s in seen)


def _stepped_down(
    p: Prescription, first: TargetVersion, cur: TargetVersion, flare: FlareOnset, day: date
) -> TargetVersion:
    floor = first.target.scaled(FLOOR_FRACTION)
    new = cur.target.scaled(FLARE_FRACTION, floor)
    return TargetVersion(
        prescription_id=p.prescription_id,
        version=cur.version + 1,
        target=new,
        valid_from=day + timedelta(days=1),
        cause=TargetCause.FLARE,
        reason=wording.exercise_step_down_reason(p.name, flare.start, cur.target.text, new.text),
        flare_start=flare.start,
        evidence={
            "flare_start": iso(flare.start),
            "flare_confirmed": iso(flare.confirmed),
            "previous": cur.target.as_json(),
            "flare_fraction": FLARE_FRACTION,
            "floor": floor.as_json(),
            "new": new.as_json(),
        },
    )


def _raised(
    p: Prescription, cur: TargetVersion, run: Sequence[SessionResponse], day: date
) -> TargetVersion:
    new = cur.target.scaled(1.0 + p.step_fraction)
    return TargetVersion(
        prescription_id=p.prescription_id,
        version=cur.version + 1,
        target=new,
        valid_from=day + timedelta(days=1),
        cause=TargetCause.PROGRESSION,
        reason=wording.exercise_rise_reason(p.name, len(run), cur.target.text, new.text),
        evidence={
            "sessions": [r.session.session_id for r in run],
            "days": [iso(r.session.day) for r in run],
            "pain_before": [r.session.pain_before for r in run],
            "pain_after": [r.session.pain_after for r in run],
            "rpe": [r.session.rpe for r in run],
            "worsening_pain_points": WORSENING_PAIN_POINTS,
            "consistent_sessions": p.consistent_sessions,
            "step_fraction": p.step_fraction,
            "previous": cur.target.as_json(),
            "new": new.as_json(),
        },
    )


def advance(
    p: Prescription,
    versions: Sequence[TargetVersion],
    sessions: Sequence[ExerciseSession],
    flares: Sequence[FlareOnset],
    through: date,
    *,
    paused_through: date | None = None,
    since: date | None = None,
) -> list[TargetVersion]:
    """The target versions due by the end of `through`, in order, from the latest version on.

    `versions` are the prescription's stored versions (at least the first and the
    latest), `sessions` its sessions from the latest version's first day on.
    Replays the days since the latest version took effect: a flare confirmed on a
    day steps the target down from the next day (once per flare); otherwise, on a
    day whose last session completes `consistent_sessions` good sessions in a row
    against the current target, the target rises from the next day, unless
    progression was paused that day (up to `paused_through`). Pure and idempotent: once the returned versions are stored, calling
    again for the same day returns nothing. With `since`, days before it are taken
    as decided by earlier calls, so the replay (and the sessions it needs) starts
    there: a run of good sessions that ended before it would already have raised
    the target.
    """
    if not versions:
        raise ExerciseError(f"prescription {p.prescription_id} has no target yet")
    ordered = sorted(versions, key=lambda v: v.version)
    first, cur = ordered[0], ordered[-1]
    if not p.active:
        return []
    stepped = [v.flare_start for v in ordered if v.flare_start is not None]
    pending = sorted(
        (
            f
            for f in flares
            if not _same_flare(f.start, stepped) and cur.valid_from <= f.confirmed <= through
        ),
        key=lambda f: f.confirmed,
    )
    own = sorted(
        (s for s in sessions if s.prescription_id == p.prescription_id),
        key=lambda s: s.performed_at,
    )
    new: list[TargetVersion] = []
    d = cur.valid_from if since is None else max(cur.valid_from, since)
    while d <= through:
        flare = next((f for f in pending if f.confirmed == d), None)
        if flare is not None:
            cur = _stepped_down(p, first, cur, flare, d)
            new.append(cur)
            stepped.append(flare.start)
            pending = [f for f in pending if not _same_flare(f.start, stepped)]
        else:
            done = [respond(s, cur.target) for s in own if cur.valid_from <= s.day <= d]
            n = good_run(done)
            paused = paused_through is not None and d <= paused_through
            if not paused and done and n >= p.consistent_sessions and done[-1].session.day == d:
                cur = _raised(p, cur, done[-n:], d)
                new.append(cur)
        d += timedelta(days=1)
    return new


@dataclass(frozen=True)
class Adherence:
    """Sessions done against sessions prescribed over a span of days."""

    prescription_id: int
    start: date
    end: date
    prescribed: float
    logged: int
    completed: int
    worsened: int

    @property
    def fraction(self) -> float:
        """Completed sessions over prescribed ones (may exceed 1)."""
        return self.completed / self.prescribed if self.prescribed > 0 else 0.0


def adherence(
    p: Prescription,
    versions: Sequence[TargetVersion],
    sessions: Sequence[ExerciseSession],
    start: date,
    end: date,
) -> Adherence:
    """How many of the sessions prescribed from `start` to `end` were done and completed.

    The prescribed count is `sessions_per_week` per 7 days of the span (from the
    first target's first day, when later than `start`).
    """
    ordered = sorted(versions, key=lambda v: v.version)
    lo = max(start, ordered[0].valid_from) if ordered else start
    days = max((end - lo).days + 1, 0)
    own = [s for s in sessions if s.prescription_id == p.prescription_id and lo <= s.day <= end]
    responses = []
    for s in own:
        v = version_on(ordered, s.day)
        if v is not None:
            responses.append(respond(s, v.target))
    return Adherence(
        p.prescription_id,
        lo,
        end,
        prescribed=p.sessions_per_week * days / 7.0,
        logged=len(own),
        completed=sum(1 for r in responses if r.completed),
        worsened=sum(1 for r in responses if r.worsened),
    )
