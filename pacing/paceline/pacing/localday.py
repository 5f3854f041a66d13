"""A patient's local calendar days: where one begins and ends, which day an instant falls on.

Every pacing rule counts in the patient's own days (midnight to midnight in
their time zone, so 23 or 25 hours across a DST change); these are the only
conversions between those days and instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant local `day` begins (an aware datetime in `zone`)."""
    return datetime.combine(day, time(), zone)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of local `day` (23 or 25 hours long across DST changes)."""
    return (
        day_start(day, zone).astimezone(UTC),
        day_start(day + timedelta(days=1), zone).astimezone(UTC),
    )


def local_day(when: datetime, zone: ZoneInfo) -> date:
    """The local day an instant falls on."""
    return when.astimezone(zone).date()


def days_touched(first: datetime, last: datetime, zone: ZoneInfo) -> list[date]:
    """The local days that the instants `first` … `last` fall on."""
    d, end = local_day(first, zone), local_day(last, zone)
    days = []
    while d <= end:
        days.append(d)
        d += timedelta(days=1)
    return days
