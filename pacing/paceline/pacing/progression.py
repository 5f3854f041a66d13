"""Graded activity: baseline tolerance, quotas, quota-contingent progression and flare step-back.

The operant graded-activity model (Fordyce 1976; Lindström et al. 1992): measure
a baseline of tolerated activity, set the first quota below it, and raise the
quota in fixed steps on a schedule whenever the quota was met, whatever the pain
(quota-contingent, never pain-contingent). A flare steps the quota back and the
plan rebuilds from there with the same steps (the setback plan of Nicholas,
Molloy, Tonkin & Beeston, Manage Your Pain, 3rd ed. 2011).

Rest days and lighter weeks: the plan may set a weekly pattern of rest days
(a lower or no quota on given weekdays) and planned lighter weeks (every n-th
week at a set fraction of the quota) to consolidate gains, the periodisation
of training load (deload weeks) applied to graded activity (Gabbett 2016;
Kiely 2012). The day's actual target (`day_target`) is what the flags read,
so a rest day or a lighter week is never avoidance; rest days and lighter
weeks are left out of the progression periods (no rise is decided on their
shortfall, and a shortfall never steps the quota back).

Maintenance: after the structured programme ends (the plan setting
`maintenance_from`, set from a programme length or by a clinician's action)
the quota no longer rises; the daily bust and boom-bust flags give way to the
relapse flags (`paceline.pacing.rules.relapse`), which look at whole weeks. All functions here are pure: they take plan versions
and days and return new frozen values.

References
----------
Fordyce WE. Behavioral methods for chronic pain and illness. St Louis: Mosby; 1976.
Lindström I, Ohlund C, Eek C, et al. The effect of graded activity on patients
with subacute low back pain: a randomized prospective clinical study with an
operant-conditioning behavioral approach. Phys Ther 1992;72:279-290.
Gabbett TJ. The training-injury prevention paradox: should athletes be training
smarter and harder? Br J Sports Med 2016;50:273-280.
Kiely J. Periodization paradigms in the 21st century: evidence-led or
tradition-driven? Int J Sports Physiol Perform 2012;7:242-250.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import Enum, StrEnum
from statistics import fmean
from typing import Any, Final

from paceline.pacing import wording
from paceline.pacing.days import DayLoad, Measure
from paceline.pacing.errors import OutOfRangeError, PlanError
from paceline.pacing.evidence import JSON, Evidence, iso, num
from paceline.pacing.questionnaires import DEFAULT_REASSESS_WEEKS, check_reassess_weeks

DEFAULT_BASELINE_DAYS: Final = 5
DEFAULT_START_FRACTION: Final = 0.8
DEFAULT_STEP_FRACTION: Final = 0.1
STEP_FRACTION_RANGE: Final = (0.05, 0.2)
DEFAULT_PERIOD_DAYS: Final = 7
# "Met on enough days": 5 of 7 valid days, so one or two bad days do not hold
# the plan back while a week mostly below quota does.
DEFAULT_MET_FRACTION: Final = 0.7
# A period with fewer valid (worn) days than this fraction decides nothing: the
# quota is neither raised nor counted as unmet, it simply waits.
DEFAULT_MIN_VALID_FRACTION: Final = 0.5
DEFAULT_FLARE_FRACTION: Final = 0.8
# Repeated flares never take the quota below half the baseline tolerance.
DEFAULT_FLOOR_FRACTION: Final = 0.5
DEFAULT_ENVELOPE_FRACTION: Final = 1.2
DEFAULT_BUST_FRACTION: Final = 0.7
DEFAULT_MAX_ABOVE_CEILING_MIN: Final = 30.0
# The exposure stop threshold (0-100 fear/distress); why 80: paceline.pacing.exposure.
DEFAULT_EXPOSURE_STOP_DISTRESS: Final = 80.0
# A lighter week at 70% of the quota: the middle of the 60-80% deload commonly used in
# periodised training (Kiely 2012); the clinician sets it per patient.
DEFAULT_LIGHTER_FRACTION: Final = 0.7
#: Weekday numbers as Python counts them (0 = Monday … 6 = Sunday).
WEEKDAYS: Final = range(7)


class DayKind(StrEnum):
    """What kind of day the plan makes a day."""

    NORMAL = "normal"
    REST = "rest"
    LIGHTER = "lighter"


class Cause(StrEnum):
    """Why a plan version was made."""

    DEFAULT = "default"
    CLINICIAN = "clinician"
    BASELINE = "baseline"
    PROGRESSION = "progression"
    FLARE = "flare"


def _check(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not low <= value <= high:
        raise OutOfRangeError(name, value, low, high)


@dataclass(frozen=True)
class PlanSettings:
    """The tunable thresholds of a plan (stored in `pacing_plan.params`)."""

    baseline_days: int = DEFAULT_BASELINE_DAYS
    met_fraction: float = DEFAULT_MET_FRACTION
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION
    flare_fraction: float = DEFAULT_FLARE_FRACTION
    floor_fraction: float = DEFAULT_FLOOR_FRACTION
    envelope_fraction: float = DEFAULT_ENVELOPE_FRACTION
    bust_fraction: float = DEFAULT_BUST_FRACTION
    max_above_ceiling_min: float = DEFAULT_MAX_ABOVE_CEILING_MIN
    target: float | None = None
    #: Weeks between questionnaire and fear-ladder reassessments (paceline.pacing.questionnaires).
    reassess_every_weeks: int = DEFAULT_REASSESS_WEEKS
    exposure_stop_distress: float = DEFAULT_EXPOSURE_STOP_DISTRESS
    #: Weekdays that are rest days (0 = Monday), at `rest_fraction` of the quota.
    rest_weekdays: tuple[int, ...] = ()
    rest_fraction: float = 0.0
    #: Every this many weeks one is a lighter week at `lighter_fraction` of the quota,
    #: counted in weeks from `lighter_anchor` (the last week of each cycle is the lighter one).
    lighter_every_weeks: int | None = None
    lighter_fraction: float = DEFAULT_LIGHTER_FRACTION
    lighter_anchor: date | None = None
    #: The first day of the maintenance phase (None: the structured programme goes on).
    maintenance_from: date | None = None

    def __post_init__(self) -> None:
        """Refuse settings outside clinically sensible ranges."""
        _check("baseline_days", self.baseline_days, 3, 28)
        _check("met_fraction", self.met_fraction, 0.1, 1.0)
        _check("min_valid_fraction", self.min_valid_fraction, 0.1, 1.0)
        _check("flare_fraction", self.flare_fraction, 0.3, 1.0)
        _check("floor_fraction", self.floor_fraction, 0.0, 1.0)
        _check("envelope_fraction", self.envelope_fraction, 1.05, 3.0)
        _check("bust_fraction", self.bust_fraction, 0.1, 0.95)
        _check("max_above_ceiling_min", self.max_above_ceiling_min, 0.0, 1440.0)
        if self.target is not None:
            _check("target", self.target, 0.0, 1e7)
        check_reassess_weeks(self.reassess_every_weeks)
        _check("exposure_stop_distress", self.exposure_stop_distress, 10.0, 100.0)
        for w in self.rest_weekdays:
            if isinstance(w, bool) or not isinstance(w, int) or w not in WEEKDAYS:
                raise OutOfRangeError("rest_weekdays", w, 0, 6)
        if len(set(self.rest_weekdays)) > 3:
            raise PlanError("at most three rest days a week: the quota is a daily one")
        _check("rest_fraction", self.rest_fraction, 0.0, 1.0)
        _check("lighter_fraction", self.lighter_fraction, 0.3, 1.0)
        if self.lighter_every_weeks is not None:
            _check("lighter_every_weeks", self.lighter_every_weeks, 2, 12)
            if self.lighter_anchor is None:
                raise PlanError("lighter weeks need the day their cycle starts (lighter_anchor)")

    def as_json(self) -> dict[str, JSON]:
        """The settings as stored in the plan's params."""
        return {
            "baseline_days": self.baseline_days,
            "met_fraction": self.met_fraction,
            "min_valid_fraction": self.min_valid_fraction,
            "flare_fraction": self.flare_fraction,
            "floor_fraction": self.floor_fraction,
            "envelope_fraction": self.envelope_fraction,
            "bust_fraction": self.bust_fraction,
            "max_above_ceiling_min": self.max_above_ceiling_min,
            "target": self.target,
            "reassess_every_weeks": self.reassess_every_weeks,
            "exposure_stop_distress": self.exposure_stop_distress,
            "rest_weekdays": sorted(set(self.rest_weekdays)),
            "rest_fraction": self.rest_fraction,
            "lighter_every_weeks": self.lighter_every_weeks,
            "lighter_fraction": self.lighter_fraction,
            "lighter_anchor": iso(self.lighter_anchor),
            "maintenance_from": iso(self.maintenance_from),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PlanSettings:
        """Settings from stored params; missing keys take their defaults."""
        changes: dict[str, Any] = {}
        for key in cls().as_json():
            value = data.get(key)
            if value is None:
                continue
            if key in _DATE_SETTINGS:
                try:
                    changes[key] = date.fromisoformat(str(value))
                except ValueError:
                    raise PlanError(f"plan setting {key} must be a date; got {value!r}") from None
                continue
            if key == "rest_weekdays":
                if not isinstance(value, list):
                    raise PlanError(f"plan setting {key} must be a list; got {value!r}")
                changes[key] = tuple(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PlanError(f"plan setting {key} must be a number; got {value!r}")
            changes[key] = int(value) if key in _INT_SETTINGS else float(value)
        return replace(cls(), **changes)

    def day_kind(self, day: date) -> DayKind:
        """Whether `day` is a rest day, in a lighter week, or a normal day of the plan."""
        if day.weekday() in self.rest_weekdays:
            return DayKind.REST
        if self.lighter_every_weeks is not None and self.lighter_anchor is not None:
            week = (day - self.lighter_anchor).days // 7
            if week >= 0 and (week + 1) % self.lighter_every_weeks == 0:
                return DayKind.LIGHTER
        return DayKind.NORMAL

    def day_fraction(self, day: date) -> float:
        """The fraction of the quota that is the day's target."""
        kind = self.day_kind(day)
        if kind is DayKind.REST:
            return self.rest_fraction
        return self.lighter_fraction if kind is DayKind.LIGHTER else 1.0

    def in_maintenance(self, day: date) -> bool:
        """Whether `day` falls in the maintenance phase."""
        return self.maintenance_from is not None and day >= self.maintenance_from


_DATE_SETTINGS: Final = frozenset({"lighter_anchor", "maintenance_from"})
_INT_SETTINGS: Final = frozenset({"baseline_days", "lighter_every_weeks", "reassess_every_weeks"})


@dataclass(frozen=True)
class PlanVersion:
    """One version of a patient's pacing plan, in effect from its `valid_from` day."""

    version: int
    measure: Measure
    baseline: float | None
    quota: float | None
    valid_from: date
    cause: Cause
    reason: str
    start_fraction: float = DEFAULT_START_FRACTION
    step_fraction: float = DEFAULT_STEP_FRACTION
    period_days: int = DEFAULT_PERIOD_DAYS
    hr_ceiling_bpm: int | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    created_by: int | None = None
    flare_start: date | None = None
    evidence: Evidence = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a plan the database or the clinical model would not accept."""
        if self.version < 1:
            raise PlanError(f"plan versions start at 1; got {self.version}")
        _check("start_fraction", self.start_fraction, 0.05, 1.5)
        _check("step_fraction", self.step_fraction, *STEP_FRACTION_RANGE)
        _check("period_days", self.period_days, 1, 60)
        if self.hr_ceiling_bpm is not None:
            _check("hr_ceiling_bpm", self.hr_ceiling_bpm, 60, 220)
        for name in ("baseline", "quota"):
            value = getattr(self, name)
            if value is not None and (math.isnan(value) or value < 0):
                raise OutOfRangeError(name, value, 0, math.inf)
        if not 1 <= len(self.reason) <= 2000:
            raise PlanError("a plan change needs a reason of 1 to 2,000 characters")

    @property
    def step(self) -> float | None:
        """How much the quota rises per met period (a fraction of the baseline)."""
        return None if self.baseline is None else self.step_fraction * self.baseline

    def params_json(self) -> dict[str, JSON]:
        """What goes into `pacing_plan.params`: the settings and the why of this version."""
        return {
            **self.settings.as_json(),
            "cause": self.cause.value,
            "flare_start": iso(self.flare_start),
            "evidence": dict(self.evidence),
        }


def round_quota(m: Measure, value: float) -> float:
    """A quota rounded to what a patient can aim for (10 steps, 0.1 minute or load point)."""
    if m is Measure.STEPS:
        return float(round(value / 10.0) * 10)
    return round(value, 1)


@dataclass(frozen=True)
class Baseline:
    """Baseline tolerance from the first valid days, or how many are still missing."""

    value: float | None
    days_used: tuple[date, ...]
    days_needed: int

    @property
    def ready(self) -> bool:
        """Whether enough valid days were seen."""
        return self.value is not None


def baseline_tolerance(days: Sequence[DayLoad], m: Measure, n_days: int) -> Baseline:
    """Mean load of the first `n_days` valid days (non-wear days excluded) (Lindström 1992)."""
    used = [(d.day, v) for d in days if (v := d.value(m)) is not None][:n_days]
    if len(used) < n_days:
        return Baseline(None, tuple(d for d, _ in used), n_days)
    return Baseline(fmean(v for _, v in used), tuple(d for d, _ in used), n_days)


@dataclass(frozen=True)
class PeriodOutcome:
    """Whether the quota was met on enough days of one progression period."""

    start: date
    end: date
    quota: float
    valid_days: int
    met_days: int
    required: int
    decided: bool

    @property
    def met(self) -> bool:
        """Met on enough valid days, with enough valid days to decide."""
        return self.decided and self.met_days >= self.required

    def as_json(self) -> dict[str, JSON]:
        """Evidence for the plan change."""
        return {
            "period": [iso(self.start), iso(self.end)],
            "quota": num(self.quota),
            "valid_days": self.valid_days,
            "met_days": self.met_days,
            "required": self.required,
        }


def period_outcome(
    days: Sequence[DayLoad], plan: PlanVersion, start: date, end: date
) -> PeriodOutcome:
    """Count the valid normal days of [start, end] on which the plan's quota was met.

    Rest days and the days of a lighter week are left out: they are judged
    against a lower target by design, so their load says nothing about
    whether the full quota is tolerated. A period of only such days decides
    nothing.
    """
    if plan.quota is None:
        raise PlanError("a period can only be judged against a quota")
    kind = plan.settings.day_kind
    in_period = [d for d in days if start <= d.day <= end and kind(d.day) is DayKind.NORMAL]
    vals = [v for d in in_period if (v := d.value(plan.measure)) is not None]
    n_days = sum(
        1
        for k in range((end - start).days + 1)
        if kind(start + timedelta(days=k)) is DayKind.NORMAL
    )
    min_valid = math.ceil(plan.settings.min_valid_fraction * n_days)
    required = max(1, math.ceil(plan.settings.met_fraction * len(vals) - 1e-9))
    met = sum(1 for v in vals if v >= plan.quota)
    decided = n_days > 0 and len(vals) >= min_valid
    return PeriodOutcome(start, end, plan.quota, len(vals), met, required, decided)


@dataclass(frozen=True)
class FlareOnset:
    """A flare episode: the day it began and the day it was confirmed."""

    start: date
    confirmed: date


def _with_baseline(cur: PlanVersion, base: Baseline, day: date) -> PlanVersion:
    assert base.value is not None
    quota = round_quota(cur.measure, cur.start_fraction * base.value)
    return replace(
        cur,
        version=cur.version + 1,
        baseline=round(base.value, 2),
        quota=quota,
        valid_from=day + timedelta(days=1),
        cause=Cause.BASELINE,
        reason=wording.baseline_reason(
            cur.measure, base.value, len(base.days_used), cur.start_fraction, quota
        ),
        created_by=None,
        flare_start=None,
        evidence={
            "baseline_days": [iso(d) for d in base.days_used],
            "baseline": num(base.value),
            "start_fraction": cur.start_fraction,
        },
    )


def _stepped_back(cur: PlanVersion, flare: FlareOnset, valid_from: date) -> PlanVersion:
    assert cur.quota is not None and cur.baseline is not None
    floor = cur.settings.floor_fraction * cur.baseline
    stepped = cur.settings.flare_fraction * cur.quota
    quota = round_quota(cur.measure, max(stepped, floor))
    return replace(
        cur,
        version=cur.version + 1,
        quota=quota,
        valid_from=valid_from,
        cause=Cause.FLARE,
        reason=wording.step_back_reason(
            cur.measure,
            flare.start,
            previous=cur.quota,
            flare_fraction=cur.settings.flare_fraction,
            stepped=stepped,
            floor=floor,
            floor_fraction=cur.settings.floor_fraction,
            baseline=cur.baseline,
            quota=quota,
        ),
        created_by=None,
        flare_start=flare.start,
        evidence={
            "flare_start": iso(flare.start),
            "flare_confirmed": iso(flare.confirmed),
            "previous_quota": cur.quota,
            "flare_fraction": cur.settings.flare_fraction,
            "stepped_back_to": num(stepped),
            "floor": num(floor),
            "held_at_floor": stepped < floor,
            "new_quota": quota,
        },
    )


def _progressed(cur: PlanVersion, outcome: PeriodOutcome) -> PlanVersion | None:
    assert cur.quota is not None and cur.step is not None
    target = cur.settings.target
    if target is not None and cur.quota >= target:
        return None
    quota = round_quota(cur.measure, cur.quota + cur.step)
    if target is not None:
        quota = min(quota, target)
    if quota <= cur.quota:
        return None
    return replace(
        cur,
        version=cur.version + 1,
        quota=quota,
        valid_from=outcome.end + timedelta(days=1),
        cause=Cause.PROGRESSION,
        reason=wording.progression_reason(
            cur.measure,
            met_days=outcome.met_days,
            valid_days=outcome.valid_days,
            start=outcome.start,
            end=outcome.end,
            step_fraction=cur.step_fraction,
            quota=quota,
        ),
        created_by=None,
        flare_start=None,
        evidence={**outcome.as_json(), "step": num(cur.step), "new_quota": quota},
    )


#: A flare within this many days of one the plan already stepped back for (a
#: clinician's declaration, say) is the same flare.
SAME_FLARE_DAYS: Final = 3


def _already_stepped(flare: FlareOnset, starts: Sequence[date]) -> bool:
    return any(abs((flare.start - s).days) <= SAME_FLARE_DAYS for s in starts)


def default_plan(valid_from: date, m: Measure = Measure.ACTIVE_MINUTES) -> PlanVersion:
    """Version 1 with every default: the baseline is measured from `valid_from` on."""
    return PlanVersion(
        version=1,
        measure=m,
        baseline=None,
        quota=None,
        valid_from=valid_from,
        cause=Cause.DEFAULT,
        reason=wording.default_reason(
            DEFAULT_BASELINE_DAYS,
            DEFAULT_START_FRACTION,
            DEFAULT_STEP_FRACTION,
            DEFAULT_PERIOD_DAYS,
        ),
    )


def step_back(
    current: PlanVersion, *, flare_day: date, valid_from: date, reason: str, created_by: int | None
) -> PlanVersion:
    """A flare declared by a clinician: the quota steps back and the plan rebuilds from there."""
    if current.quota is None or current.baseline is None:
        raise PlanError("there is no quota to step back yet (the baseline is still being measured)")
    stepped = _stepped_back(current, FlareOnset(flare_day, flare_day), valid_from)
    return replace(
        stepped, reason=wording.declared_flare_reason(stepped.reason, reason), created_by=created_by
    )


def advance(
    versions: Sequence[PlanVersion],
    days: Sequence[DayLoad],
    flares: Sequence[FlareOnset],
    through: date,
    *,
    since: date | None = None,
    paused: Container[date] = frozenset(),
) -> list[PlanVersion]:
    """The plan versions due by the end of `through`, in order, from the latest version on.

    Replays the days since the latest version took effect: the baseline is set
    once enough valid days are in, a confirmed flare steps the quota back, and
    at the end of each period a quota met on enough days rises by one step.
    Pure and idempotent: once the returned versions are stored, calling again
    for the same day returns nothing. With `since`, days before it are taken as
    decided by earlier calls (what they decided is in `versions`), so the replay
    starts there, keeping the periods' alignment; its cost is then bounded.
    A period with a day in `paused` (progression paused after a red flag, until
    a clinician clears it), or ending in the maintenance phase, does not raise
    the quota; a flare still steps it back.
    """
    if not versions:
        raise PlanError("advance needs at least the first plan version")
    cur = versions[-1]
    stepped = [v.flare_start for v in versions if v.flare_start is not None]
    pending = sorted(
        (f for f in flares if not _already_stepped(f, stepped) and f.confirmed <= through),
        key=lambda f: f.confirmed,
    )
    new: list[PlanVersion] = []
    # A flare confirmed the day before the latest version took effect was not yet
    # known when that version was made (a late diary); step back from it now.
    for f in pending:
        if f.confirmed == cur.valid_from - timedelta(days=1) and cur.quota is not None:
            cur = _stepped_back(cur, f, cur.valid_from)
            new.append(cur)
            stepped.append(f.start)
    pending = [
        f for f in pending if not _already_stepped(f, stepped) and f.confirmed >= cur.valid_from
    ]
    one_day = timedelta(days=1)
    d = cur.valid_from if since is None or cur.baseline is None else max(cur.valid_from, since)
    while d <= through:
        if cur.baseline is None:
            # The baseline is ready on the day its last valid day is in; nothing else
            # (no quota, no flare step-back) happens before that.
            window = [x for x in days if cur.valid_from <= x.day <= through]
            base = baseline_tolerance(window, cur.measure, cur.settings.baseline_days)
            if not base.ready:
                break
            cur = _with_baseline(cur, base, base.days_used[-1])
            new.append(cur)
            d = cur.valid_from
            continue
        if cur.quota is None:
            cur = replace(
                cur,
                version=cur.version + 1,
                quota=round_quota(cur.measure, cur.start_fraction * cur.baseline),
                valid_from=d,
                cause=Cause.BASELINE,
                reason=wording.first_quota_reason(cur.start_fraction),
                created_by=None,
                flare_start=None,
                evidence={"baseline": cur.baseline},
            )
            new.append(cur)
        flare = next((f for f in pending if f.confirmed == d), None)
        if flare is not None:
            cur = _stepped_back(cur, flare, d + one_day)
            new.append(cur)
            pending.remove(flare)
        elif ((d - cur.valid_from).days + 1) % cur.period_days == 0:
            first = d - timedelta(days=cur.period_days - 1)
            outcome = period_outcome(days, cur, first, d)
            held = cur.settings.in_maintenance(d) or any(
                first + timedelta(days=k) in paused for k in range(cur.period_days)
            )
            raised = _progressed(cur, outcome) if outcome.met and not held else None
            if raised is not None:
                cur = raised
                new.append(cur)
        d += one_day
    return new


class Unset(Enum):
    """Marks a plan field the clinician did not touch (None means "clear it")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


def revise(
    current: PlanVersion | None,
    *,
    valid_from: date,
    reason: str,
    created_by: int | None,
    measure: Measure | None = None,
    baseline: float | Unset | None = UNSET,
    quota: float | Unset | None = UNSET,
    start_fraction: float | None = None,
    step_fraction: float | None = None,
    period_days: int | None = None,
    hr_ceiling_bpm: int | Unset | None = UNSET,
    settings: PlanSettings | None = None,
) -> PlanVersion:
    """A clinician's change as the next version; untouched fields carry over.

    Changing the measure without giving a baseline measures a new baseline;
    giving a baseline without a quota starts the quota at the start fraction;
    clearing the baseline (None) measures it again.
    """
    base = current or default_plan(valid_from)
    m = measure or base.measure
    new_baseline = base.baseline if m is base.measure else None
    new_quota = base.quota if m is base.measure else None
    start = start_fraction if start_fraction is not None else base.start_fraction
    if not isinstance(baseline, Unset):
        new_baseline = baseline
        new_quota = None if baseline is None else round_quota(m, start * baseline)
    if not isinstance(quota, Unset):
        new_quota = quota
    if new_quota is not None and new_baseline is None:
        raise PlanError(
            "a quota needs a baseline (progression steps are a fraction of it):"
            " give both, or leave both to be measured"
        )
    return PlanVersion(
        version=current.version + 1 if current else 1,
        measure=m,
        baseline=new_baseline,
        quota=new_quota,
        valid_from=valid_from,
        cause=Cause.CLINICIAN,
        reason=reason,
        start_fraction=start,
        step_fraction=step_fraction if step_fraction is not None else base.step_fraction,
        period_days=period_days if period_days is not None else base.period_days,
        hr_ceiling_bpm=(
            base.hr_ceiling_bpm if isinstance(hr_ceiling_bpm, Unset) else hr_ceiling_bpm
        ),
        settings=settings or base.settings,
        created_by=created_by,
    )


def version_on(versions: Sequence[PlanVersion], day: date) -> PlanVersion | None:
    """The version in effect on `day`: the highest version that took effect by then."""
    current = None
    for v in sorted(versions, key=lambda v: v.version):
        if v.valid_from <= day:
            current = v
    return current


class TodayState(StrEnum):
    """Where today stands against the plan."""

    BASELINE = "baseline"
    BELOW = "below"
    MET = "met"
    ABOVE_ENVELOPE = "above_envelope"


@dataclass(frozen=True)
class TodayStatus:
    """Today's quota, what is done so far and what is left, with a sentence for the patient."""

    day: date
    measure: Measure
    quota: float | None
    done: float
    remaining: float | None
    fraction: float | None
    state: TodayState
    message: str


def today(
    plan: PlanVersion,
    so_far: DayLoad | None,
    day: date,
    *,
    baseline_days_seen: int = 0,
    local_today: date | None = None,
) -> TodayStatus:
    """Where `day` stands against the plan, for the patient view.

    `local_today` is the patient's current local day: the message speaks of
    "today" only when `day` is that day (or when it is not given), and names the
    date of a day that is over. The quota shown is the day's target: the plan's
    quota, exactly, or its rest-day or lighter-week fraction.
    """
    m = plan.measure
    done = 0.0
    if so_far is not None:
        raw = {
            Measure.ACTIVE_MINUTES: so_far.active_min,
            Measure.STEPS: float(so_far.steps),
            Measure.TRIMP: so_far.trimp or 0.0,
        }[m]
        done = float(raw)
    if plan.quota is None:
        need = plan.settings.baseline_days
        return TodayStatus(
            day,
            m,
            None,
            done,
            None,
            None,
            TodayState.BASELINE,
            wording.baseline_message(day, local_today, baseline_days_seen, need),
        )
    quota = day_target(plan, day) or 0.0
    kind = plan.settings.day_kind(day)
    if kind is not DayKind.NORMAL and quota <= 0:
        return TodayStatus(
            day, m, 0.0, done, 0.0, None, TodayState.MET, wording.rest_day_message(day, local_today)
        )
    remaining = max(quota - done, 0.0)
    fraction = done / quota if quota > 0 else None
    if fraction is not None and fraction > plan.settings.envelope_fraction:
        state = TodayState.ABOVE_ENVELOPE
        message = wording.above_envelope_message(m, day, local_today, done, quota)
    elif done >= quota:
        state = TodayState.MET
        message = wording.met_message(m, day, local_today, done, quota)
    else:
        state = TodayState.BELOW
        message = wording.below_message(
            m, day=day, local_today=local_today, done=done, quota=quota, remaining=remaining
        )
    if kind is not DayKind.NORMAL:
        message = wording.lighter_day_note(kind.value) + " " + message
    return TodayStatus(day, m, quota, done, remaining, fraction, state, message)


def day_target(plan: PlanVersion, day: date) -> float | None:
    """The day's actual target: the quota, at the rest-day or lighter-week fraction where set."""
    if plan.quota is None:
        return None
    return round_quota(plan.measure, plan.quota * plan.settings.day_fraction(day))


@dataclass(frozen=True)
class PlannedDay:
    """One day of the schedule ahead: its kind and target as the plan stands."""

    day: date
    kind: DayKind
    quota: float | None
    target: float | None
    maintenance: bool


def schedule(versions: Sequence[PlanVersion], start: date, n_days: int) -> list[PlannedDay]:
    """The next `n_days` from `start` as the plan stands: rest days and lighter weeks ahead.

    The quota shown is the one in effect now (or set ahead by a clinician);
    rises that progression may still earn are not foreseen.
    """
    out = []
    for k in range(n_days):
        day = start + timedelta(days=k)
        plan = version_on(versions, day)
        if plan is None:
            continue
        out.append(
            PlannedDay(
                day,
                plan.settings.day_kind(day),
                plan.quota,
                day_target(plan, day),
                plan.settings.in_maintenance(day),
            )
        )
    return out
