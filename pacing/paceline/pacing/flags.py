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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

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


def _flag(spec: RuleSpec, days: Sequence[DaySignal], opened: date, *, active: bool) -> Flag:
    severity = max((s.severity for s in days), key=lambda s: s.rank)
    if spec.escalate_after_days is not None and len(days) >= spec.escalate_after_days:
        severity = severity.raised()
    latest = dict(days[-1].thresholds)
    # A day decided with other thresholds (the plan changed mid-episode) shows its own.
    daily: list[JSON] = [
        {"day": iso(s.day), **s.evidence}
        | ({} if dict(s.thresholds) == latest else {"thresholds": dict(s.thresholds)})
        for s in days[-EVIDENCE_DAYS:]
    ]
    evidence: dict[str, JSON] = {
        "rule": spec.title,
        "thresholds": latest,
        "episode_days": len(days),
        "first_day": iso(days[0].day),
        "opened": iso(opened),
        "last_day": iso(days[-1].day),
        "daily": daily,
    }
    return Flag(spec.rule_id, severity, days[0].day, days[-1].day, opened, active, evidence)


def episodes(spec: RuleSpec, signals: Sequence[DaySignal]) -> list[Flag]:
    """The episodes of one rule over consecutive days (the last one may still be active)."""
    found: list[Flag] = []
    run: list[DaySignal] = []
    current: list[DaySignal] | None = None
    opened = date.min
    off = 0
    for s in signals:
        if current is None:
            if s.enter is None:
                continue
            if not s.enter:
                run = []
                continue
            run.append(s)
            if len(run) >= spec.min_on_days:
                current, run, off, opened = run, [], 0, s.day
            continue
        keep = s.keeps_open
        if keep is None:
            continue
        if keep:
            current.append(s)
            off = 0
            continue
        off += 1
        if off >= spec.min_off_days:
            found.append(_flag(spec, current, opened, active=False))
            current = None
    if current is not None:
        found.append(_flag(spec, current, opened, active=True))
    return found
