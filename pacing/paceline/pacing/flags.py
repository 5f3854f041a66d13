"""Flags: per-day rule signals turned into episodes with minimum durations and hysteresis.

A rule looks at each day and says whether its condition holds (`enter`),
whether a looser condition that keeps an open flag open holds (`hold`), or that
it cannot tell (None, e.g. a non-wear day for a load rule). `episodes` runs the
same small state machine for every rule:

- closed → open after `min_on_days` consecutive known days with `enter` (unknown
  days are skipped, they neither count nor break the run); the episode starts on
  the first of those days;
- open → closed after `min_off_days` consecutive known days without `hold`.

Entering on a stricter threshold than the one that keeps a flag open, plus the
two minimum durations, is what keeps flags from flickering day to day.

The machine is `step`, one day at a time, with a bounded `RuleState` (a pending
run, or an open `Episode` holding only what its flag shows), so the engine can
store the state after each day and carry it forward instead of replaying the
history from enrolment; `episodes` folds `step` over a whole series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Final

from paceline.pacing.evidence import JSON, Evidence, iso

#: How many of an episode's days are listed day by day in its evidence.
EVIDENCE_DAYS: Final = 14


class Severity(StrEnum):
    """How urgent a flag is (the values stored in `flag.severity`)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order: info < warning < critical."""
        return ("info", "warning", "critical").index(self.value)

    def raised(self) -> Severity:
        """One level more urgent (critical stays critical)."""
        return (Severity.WARNING, Severity.CRITICAL, Severity.CRITICAL)[self.rank]


@dataclass(frozen=True)
class DaySignal:
    """What one rule saw on one day."""

    day: date
    enter: bool | None
    hold: bool | None = None
    severity: Severity = Severity.WARNING
    evidence: Evidence = field(default_factory=dict)
    #: The thresholds this day's decision was taken with (per-plan settings included):
    #: the only source of the thresholds a flag's evidence shows.
    thresholds: Evidence = field(default_factory=dict)

    @property
    def keeps_open(self) -> bool | None:
        """Whether an open episode continues today (entering always keeps it open)."""
        if self.enter:
            return True
        return self.hold if self.hold is not None else self.enter


@dataclass(frozen=True)
class RuleSpec:
    """A rule's identity, what it means, and its minimum durations."""

    rule_id: str
    title: str
    min_on_days: int = 1
    min_off_days: int = 2
    escalate_after_days: int | None = None


@dataclass(frozen=True)
class Flag:
    """One episode of a rule: its window, whether it is still active, severity and evidence."""

    rule_id: str
    severity: Severity
    start: date
    end: date
    opened: date
    active: bool
    evidence: Evidence


@dataclass(frozen=True)
class Episode:
    """An open episode as the state machine carries it: bounded, whatever its length.

    Only what a `Flag` shows is kept: first day, the day it opened, its length,
    its highest severity and the last `EVIDENCE_DAYS` days that kept it open.
    """

    start: date
    opened: date
    n_days: int
    severity: Severity
    recent: tuple[DaySignal, ...]

    @classmethod
    def begin(cls, run: Sequence[DaySignal], opened: date) -> Episode:
        """The episode a completed run opens."""
        severity = max((s.severity for s in run), key=lambda s: s.rank)
        return cls(run[0].day, opened, len(run), severity, tuple(run[-EVIDENCE_DAYS:]))

    def extended(self, s: DaySignal) -> Episode:
        """The episode with one more day that kept it open."""
        severity = max(self.severity, s.severity, key=lambda v: v.rank)
        return Episode(
            self.start,
            self.opened,
            self.n_days + 1,
            severity,
            (*self.recent, s)[-EVIDENCE_DAYS:],
        )


@dataclass(frozen=True)
class RuleState:
    """Where one rule's state machine stands after a day: a pending run, or an open episode."""

    run: tuple[DaySignal, ...] = ()
    current: Episode | None = None
    off: int = 0


def _flag(spec: RuleSpec, e: Episode, *, active: bool) -> Flag:
    severity = e.severity
    if spec.escalate_after_days is not None and e.n_days >= spec.escalate_after_days:
        severity = severity.raised()
    last = e.recent[-1]
    latest = dict(last.thresholds)
    # A day decided with other thresholds (the plan changed mid-episode) shows its own.
    daily: list[JSON] = [
        {"day": iso(s.day), **s.evidence}
        | ({} if dict(s.thresholds) == latest else {"thresholds": dict(s.thresholds)})
        for s in e.recent
    ]
    evidence: dict[str, JSON] = {
        "rule": spec.title,
        "thresholds": latest,
        "episode_days": e.n_days,
        "first_day": iso(e.start),
        "opened": iso(e.opened),
        "last_day": iso(last.day),
        "daily": daily,
    }
    return Flag(spec.rule_id, severity, e.start, last.day, e.opened, active, evidence)


def step(spec: RuleSpec, state: RuleState, s: DaySignal) -> tuple[RuleState, Flag | None]:
    """One day of the rule's state machine: the new state, and the episode it closed (if any)."""
    if state.current is None:
        if s.enter is None:
            return state, None
        if not s.enter:
            return RuleState(), None
        run = (*state.run, s)
        if len(run) >= spec.min_on_days:
            return RuleState(current=Episode.begin(run, s.day)), None
        return RuleState(run=run), None
    keep = s.keeps_open
    if keep is None:
        return state, None
    if keep:
        return RuleState(current=state.current.extended(s)), None
    off = state.off + 1
    if off >= spec.min_off_days:
        return RuleState(), _flag(spec, state.current, active=False)
    return RuleState(current=state.current, off=off), None


def current_flag(spec: RuleSpec, state: RuleState) -> Flag | None:
    """The open episode of a state as an active flag (None when no episode is open)."""
    return None if state.current is None else _flag(spec, state.current, active=True)


@dataclass(frozen=True)
class RuleRun:
    """A rule's machine stepped over consecutive days."""

    state: RuleState
    closed: list[Flag]
    #: The state after the day asked for (None when that day was not stepped).
    captured: RuleState | None = None


def run_rule(
    spec: RuleSpec,
    signals: Sequence[DaySignal],
    state: RuleState | None = None,
    *,
    capture: date | None = None,
) -> RuleRun:
    """Step the machine over consecutive days from `state`: final state and the episodes closed."""
    closed: list[Flag] = []
    now = state or RuleState()
    captured = None
    for s in signals:
        now, done = step(spec, now, s)
        if done is not None:
            closed.append(done)
        if s.day == capture:
            captured = now
    return RuleRun(now, closed, captured)


def episodes(spec: RuleSpec, signals: Sequence[DaySignal]) -> list[Flag]:
    """The episodes of one rule over consecutive days (the last one may still be active)."""
    ran = run_rule(spec, signals)
    current = current_flag(spec, ran.state)
    return ran.closed if current is None else [*ran.closed, current]


# The state machine's state in JSON (stored between evaluations) -----------------------------


def signal_json(s: DaySignal) -> dict[str, JSON]:
    """A day signal as JSON."""
    return {
        "day": iso(s.day),
        "enter": s.enter,
        "hold": s.hold,
        "severity": s.severity.value,
        "evidence": dict(s.evidence),
        "thresholds": dict(s.thresholds),
    }


def signal_from_json(data: Mapping[str, Any]) -> DaySignal:
    """A day signal from `signal_json`."""
    return DaySignal(
        date.fromisoformat(data["day"]),
        data["enter"],
        data["hold"],
        Severity(data["severity"]),
        data["evidence"],
        data["thresholds"],
    )


def state_json(state: RuleState) -> dict[str, JSON]:
    """A rule state as JSON."""
    e = state.current
    return {
        "run": [signal_json(s) for s in state.run],
        "off": state.off,
        "current": None
        if e is None
        else {
            "start": iso(e.start),
            "opened": iso(e.opened),
            "n_days": e.n_days,
            "severity": e.severity.value,
            "recent": [signal_json(s) for s in e.recent],
        },
    }


def state_from_json(data: Mapping[str, Any]) -> RuleState:
    """A rule state from `state_json`."""
    e = data["current"]
    return RuleState(
        run=tuple(signal_from_json(s) for s in data["run"]),
        off=int(data["off"]),
        current=None
        if e is None
        else Episode(
            date.fromisoformat(e["start"]),
            date.fromisoformat(e["opened"]),
            int(e["n_days"]),
            Severity(e["severity"]),
            tuple(signal_from_json(s) for s in e["recent"]),
        ),
    )
