"""A patient's history as plain arrays, one element per local day: what every rule reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from paceline.pacing.days import DayLoad, Measure
from paceline.pacing.diary import DiaryDay
from paceline.pacing.errors import PacingError
from paceline.pacing.exposure import SessionRecord
from paceline.pacing.load import FloatArray, LoadState, load_state
from paceline.pacing.localday import day_start
from paceline.pacing.progression import PlanSettings, PlanVersion, day_target, version_on
from paceline.pacing.redflags import Pause, StoredScreen

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class History:
    """Days from `start` to `end` with load, plan, diary and exposure sessions lined up by day."""

    days: tuple[DayLoad, ...]
    diary: Mapping[date, DiaryDay]
    plans: tuple[PlanVersion, ...]
    sessions: tuple[SessionRecord, ...]
    timezone: str
    measure: Measure
    #: Each day's load in the measure of the plan in effect that day (NaN: not valid).
    values: FloatArray
    #: The day's actual target (the quota at its rest-day or lighter-week fraction; NaN
    #: before a baseline exists): what the avoidance rules compare load with.
    quotas: FloatArray
    #: Acute and chronic load in `measure` (the current plan's measure) for all days.
    load: LoadState
    pain: FloatArray
    sleep: FloatArray
    fear: FloatArray
    settings: tuple[PlanSettings, ...]
    #: The first day the rules are asked about (earlier days are look-back only).
    first: int = 0
    #: The last day with data before `start` (None: none, or the history starts at enrolment).
    last_reported_before: date | None = None
    #: Positive red-flag screens by local day.
    red_flags: Mapping[date, tuple[StoredScreen, ...]] = field(default_factory=dict)
    #: Whether progression is paused on each day (a red flag not yet cleared by a clinician).
    paused: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: The plan's full quota each day, whatever the day's kind (NaN before a baseline): the
    #: envelope above which a day is a boom does not shrink on a rest day or lighter week.
    plan_quotas: FloatArray = field(default_factory=lambda: np.zeros(0))

    def maintenance(self, i: int) -> bool:
        """Whether day `i` falls in the maintenance phase of the plan in effect."""
        return self.settings[i].in_maintenance(self.days[i].day)

    @property
    def start(self) -> date:
        """First day."""
        return self.days[0].day

    @property
    def end(self) -> date:
        """Last day (the day evaluated)."""
        return self.days[-1].day

    def __len__(self) -> int:
        return len(self.days)

    def evaluated(self) -> Iterator[tuple[int, DayLoad]]:
        """The days the rules decide on, with their positions (from `first` to the end)."""
        for i in range(self.first, len(self.days)):
            yield i, self.days[i]

    def index(self, day: date) -> int:
        """Position of `day` in the arrays."""
        i = (day - self.start).days
        if not 0 <= i < len(self.days):
            raise PacingError(f"{day} is outside the history {self.start} to {self.end}")
        return i

    def day_end(self, i: int) -> datetime:
        """The instant day `i` ends in the patient's time zone."""
        return day_start(self.days[i].day + timedelta(days=1), ZoneInfo(self.timezone))

    def plan_on(self, i: int) -> PlanVersion | None:
        """The plan version in effect on day `i`."""
        return version_on(self.plans, self.days[i].day)


def _diary_array(diary: Mapping[date, DiaryDay], days: Sequence[DayLoad], attr: str) -> FloatArray:
    out = np.full(len(days), np.nan)
    for i, d in enumerate(days):
        entry = diary.get(d.day)
        value = None if entry is None else getattr(entry, attr)
        if value is not None:
            out[i] = float(value)
    return out


def build(
    days: Sequence[DayLoad],
    diary: Mapping[date, DiaryDay],
    plans: Sequence[PlanVersion],
    sessions: Sequence[SessionRecord] = (),
    *,
    timezone: str = "UTC",
    measure: Measure | None = None,
    loads: Mapping[Measure, LoadState] | None = None,
    first: int = 0,
    last_reported_before: date | None = None,
    red_flags: Sequence[StoredScreen] = (),
    pauses: Sequence[Pause] = (),
) -> History:
    """Line up days, diary, plans and sessions; `measure` defaults to the latest plan's.

    `loads` are the days' load states by measure when the caller has them (an
    evaluation that continues the chronic load from a stored base); otherwise
    the load is computed from the days alone. `red_flags` are the positive
    screens and `pauses` the progression pauses that touch the days.
    """
    if not days:
        raise PacingError("a history needs at least one day")
    ordered = sorted(plans, key=lambda p: p.version)
    m = measure or (ordered[-1].measure if ordered else Measure.ACTIVE_MINUTES)
    values = np.full(len(days), np.nan)
    quotas = np.full(len(days), np.nan)
    plan_quotas = np.full(len(days), np.nan)
    settings: list[PlanSettings] = []
    for i, d in enumerate(days):
        plan = version_on(ordered, d.day)
        settings.append(plan.settings if plan is not None else PlanSettings())
        v = d.value(plan.measure if plan is not None else m)
        if v is not None:
            values[i] = v
        if plan is not None and plan.quota is not None:
            quotas[i] = day_target(plan, d.day)
            plan_quotas[i] = plan.quota
    return History(
        days=tuple(days),
        diary=dict(diary),
        plans=tuple(ordered),
        sessions=tuple(sessions),
        timezone=timezone,
        measure=m,
        values=values,
        quotas=quotas,
        load=loads[m] if loads is not None else load_state([d.value(m) for d in days]),
        pain=_diary_array(diary, days, "pain"),
        sleep=_diary_array(diary, days, "sleep_quality"),
        fear=_diary_array(diary, days, "fear_of_movement"),
        settings=tuple(settings),
        first=first,
        last_reported_before=last_reported_before,
        red_flags=_screens_by_day(red_flags),
        paused=np.array([any(p.covers(d.day) for p in pauses) for d in days], dtype=bool),
        plan_quotas=plan_quotas,
    )


def _screens_by_day(screens: Sequence[StoredScreen]) -> dict[date, tuple[StoredScreen, ...]]:
    out: dict[date, list[StoredScreen]] = {}
    for s in screens:
        if s.positive:
            out.setdefault(s.day, []).append(s)
    return {d: tuple(v) for d, v in out.items()}
