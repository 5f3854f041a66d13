"""The daily diary: validated entries and the per-day summary the pacing rules read.

Ratings are 0-10 numeric rating scales (pain now, average and worst; fatigue;
mood; sleep quality; fear of movement), the format recommended for chronic-pain
trials by IMMPACT (Dworkin et al. 2005, Pain 113:9-19).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import fmean
from typing import Final

from paceline.pacing.errors import (
    InconsistentReportError,
    NotAnIntegerError,
    NoteError,
    OutOfRangeError,
    PacingError,
    ReportTimeError,
)

RATING_MIN: Final = 0
RATING_MAX: Final = 10
NOTE_MAX_CHARS: Final = 2000
# Phones and gateways drift; a diary stamped a few minutes ahead of the server is
# a clock difference, not a report from the future.
CLOCK_SKEW: Final = timedelta(minutes=5)

RATING_FIELDS: Final = (
    "pain_now",
    "pain_average",
    "pain_worst",
    "fatigue",
    "mood",
    "sleep_quality",
    "fear_of_movement",
)


@dataclass(frozen=True)
class DiaryEntry:
    """One validated diary submission."""

    reported_at: datetime
    pain_now: int
    pain_average: int | None = None
    pain_worst: int | None = None
    fatigue: int | None = None
    mood: int | None = None
    sleep_quality: int | None = None
    fear_of_movement: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        """Check every rating, the note and the internal consistency of the pain ratings."""
        for name in RATING_FIELDS:
            check_rating(name, getattr(self, name), required=name == "pain_now")
        if self.note is not None:
            check_note("note", self.note)
        if not isinstance(self.reported_at, datetime):
            raise ReportTimeError(self.reported_at, "is not a datetime; send an aware timestamp")
        if self.reported_at.tzinfo is None:
            raise ReportTimeError(self.reported_at, "has no time zone; send an aware timestamp")
        if self.pain_worst is not None:
            for name in ("pain_now", "pain_average"):
                other = getattr(self, name)
                if other is not None and other > self.pain_worst:
                    raise InconsistentReportError(
                        f"worst pain ({self.pain_worst}) is below {name.replace('_', ' ')}"
                        f" ({other}); worst pain includes the pain felt now and on average"
                    )


def check_rating(name: str, value: object, *, required: bool = False) -> None:
    """Raise unless `value` is a whole number from 0 to 10 (or None when optional)."""
    if value is None:
        if required:
            raise NotAnIntegerError(name, value)
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotAnIntegerError(name, value)
    if not RATING_MIN <= value <= RATING_MAX:
        raise OutOfRangeError(name, value, RATING_MIN, RATING_MAX)


def check_note(name: str, note: str) -> None:
    """Raise unless `note` has at most 2,000 characters and no NUL."""
    if len(note) > NOTE_MAX_CHARS:
        raise NoteError(name, f"at most {NOTE_MAX_CHARS} characters; got {len(note)}")
    if "\x00" in note:
        raise NoteError(name, "must not contain a NUL character")


def check_report_time(when: datetime, *, enrolled_at: datetime, now: datetime) -> None:
    """Raise unless `when` lies between enrolment and now (allowing small clock skew)."""
    if when.tzinfo is None:
        raise ReportTimeError(when, "has no time zone; send an aware timestamp")
    if when > now + CLOCK_SKEW:
        raise ReportTimeError(when, f"is in the future (server time {now.isoformat()})")
    if when < enrolled_at:
        raise ReportTimeError(when, f"is before enrolment ({enrolled_at.isoformat()})")


@dataclass(frozen=True)
class DiaryRecord:
    """A stored diary entry: the patient's local day, the ratings and their own note."""

    day: date
    reported_at: datetime
    pain_now: int
    pain_average: int | None
    pain_worst: int | None
    fatigue: int | None
    mood: int | None
    sleep_quality: int | None
    fear_of_movement: int | None
    note: str | None = None


@dataclass(frozen=True)
class DiaryDay:
    """What the patient reported on one local day (several entries summarised)."""

    day: date
    pain: float
    pain_worst: int
    fatigue: float | None
    mood: float | None
    sleep_quality: float | None
    fear_of_movement: float | None
    entries: int


def _mean(values: Sequence[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def summarise_day(records: Sequence[DiaryRecord]) -> DiaryDay:
    """One day's diary: pain is the mean of each entry's average pain (else its pain now)."""
    if not records:
        raise PacingError("summarise_day needs at least one diary entry")
    ordered = sorted(records, key=lambda r: r.reported_at)
    pains = [r.pain_average if r.pain_average is not None else r.pain_now for r in ordered]
    worst = max(
        max(r.pain_worst if r.pain_worst is not None else r.pain_now, r.pain_now) for r in ordered
    )
    # Sleep is rated once, about the night before; the first rating of the day is the one.
    sleep = next((r.sleep_quality for r in ordered if r.sleep_quality is not None), None)
    return DiaryDay(
        day=ordered[0].day,
        pain=fmean(pains),
        pain_worst=worst,
        fatigue=_mean([r.fatigue for r in ordered]),
        mood=_mean([r.mood for r in ordered]),
        sleep_quality=None if sleep is None else float(sleep),
        fear_of_movement=_mean([r.fear_of_movement for r in ordered]),
        entries=len(ordered),
    )


def by_day(records: Sequence[DiaryRecord]) -> dict[date, DiaryDay]:
    """Group stored entries by local day and summarise each day."""
    groups: dict[date, list[DiaryRecord]] = {}
    for r in records:
        groups.setdefault(r.day, []).append(r)
    return {d: summarise_day(rs) for d, rs in sorted(groups.items())}
