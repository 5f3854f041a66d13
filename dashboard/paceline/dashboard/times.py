"""Instants as the dashboard shows them: wall time in a named zone, with the zone's label."""

from __future__ import annotations

from datetime import datetime, tzinfo


def shown_at(at: datetime, zone: tzinfo) -> str:
    """`at` as wall time in `zone` with the zone's label (`2026-11-29 19:10 PST`).

    psycopg hands a timestamptz over in the session's TimeZone, which is the
    server's default and says nothing about the patient; converting here makes
    the text the same whatever that default is. Where the zone database has
    only a numeric abbreviation (`-03`) the zone is named as well, so that the
    label always says which zone the time is in.

    Raises
    ------
    ValueError
        If `at` is naive: a wall time without a zone cannot be placed in another.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; an instant needs one to be shown")
    local = at.astimezone(zone)
    label = local.tzname() or str(zone)
    if not label[0].isalpha():
        label = f"{zone} ({label})"
    return f"{local:%Y-%m-%d %H:%M} {label}"
