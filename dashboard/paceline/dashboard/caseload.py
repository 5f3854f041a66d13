"""The caseload view model: patients in triage sections, worst first, each row in plain words.

Sections follow the remote-monitoring triage pattern (Tidepool's population
view: the patients who need attention first, then each kind of problem, then
those on plan). A patient appears once, in the first section that applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Final

import pyarrow as pa

from paceline.pacing.flag_wording import rule_title
from paceline.pacing.flags import Severity
from paceline.pacing.overview import CaseloadEntry
from paceline.pacing.rules.flare import RISK_ENTER

#: Yesterday's load within this fraction of quota reads as on plan (green).
BAND: Final = 0.20
#: Days without wear after which a patient is listed under data gaps.
GAP_DAYS: Final = 3


class Section(Enum):
    """The triage sections, in the order the page shows them."""

    ATTENTION = ("attention", "Needs attention now", "Open critical alerts or high flare risk")
    OVEREXERTION = ("overexertion", "Overexertion", "Doing more than the plan allows")
    AVOIDANCE = ("avoidance", "Avoidance", "Doing less than the plan, or avoiding exposure")
    BOOM_BUST = ("boom_bust", "Boom-bust", "Alternating over- and under-doing")
    DATA_GAPS = ("data_gaps", "Data gaps", f"No wear for {GAP_DAYS}+ days, or silent devices")
    ON_PLAN = ("on_plan", "On plan", "Nothing flagged")

    def __init__(self, key: str, title: str, blurb: str) -> None:
        self.key = key
        self.title = title
        self.blurb = blurb


class Band(Enum):
    """Yesterday's load against quota, as a colour and a word."""

    WITHIN = ("within", "#c8e6c9", "within plan")
    OVER = ("over", "#ffcdd2", "over plan")
    UNDER = ("under", "#ffe0b2", "under plan")
    UNKNOWN = ("unknown", "#eeeeee", "no valid day")

    def __init__(self, key: str, colour: str, words: str) -> None:
        self.key = key
        self.colour = colour
        self.words = words


def band(load: float | None, quota: float | None) -> Band:
    """Within ±`BAND` of quota, over it, under it, or unknown (no valid day or no quota)."""
    if load is None or quota is None or quota <= 0:
        return Band.UNKNOWN
    ratio = load / quota
    if ratio > 1 + BAND:
        return Band.OVER
    if ratio < 1 - BAND:
        return Band.UNDER
    return Band.WITHIN


def _days_without_wear(e: CaseloadEntry) -> int | None:
    if e.last_wear_day is None:
        return None
    return (e.yesterday - e.last_wear_day).days


def section_of(e: CaseloadEntry) -> Section:
    """The first section that applies to a patient."""
    rules = {f.rule_id for f in e.flags if f.status == "open"}
    critical = any(f.severity is Severity.CRITICAL and f.status == "open" for f in e.flags)
    if (
        e.critical_alerts > 0
        or critical
        or (e.flare_risk is not None and e.flare_risk >= RISK_ENTER)
    ):
        return Section.ATTENTION
    if any(r.startswith("boom.") for r in rules):
        return Section.OVEREXERTION
    if any(r.startswith(("bust.", "pacing.")) for r in rules):
        return Section.AVOIDANCE
    if any(r.startswith("cycling.") for r in rules):
        return Section.BOOM_BUST
    gap = _days_without_wear(e)
    if any(r.startswith("data.") for r in rules) or gap is None or gap >= GAP_DAYS:
        return Section.DATA_GAPS
    return Section.ON_PLAN


def _severity_score(e: CaseloadEntry) -> tuple[int, float, int]:
    # Worst first inside a section: critical flags, then risk, then how many flags.
    worst = max((f.severity.rank for f in e.flags if f.status == "open"), default=-1)
    return (-worst, -(e.flare_risk or 0.0), -len(e.flags))


@dataclass(frozen=True)
class Row:
    """One caseload row as the page shows it."""

    patient_id: int
    name: str
    reference: str
    section: Section
    load: float | None
    quota: float | None
    unit: str
    band: Band
    load_text: str
    sparkline: tuple[float | None, ...]
    flags: tuple[str, ...]
    flare_risk: float | None
    last_wear: str
    last_upload: str
    reviewed: str

    @property
    def flags_text(self) -> str:
        """The flags in plain words, one line."""
        return "; ".join(self.flags) if self.flags else "nothing flagged"


def _ago(day: date | None, today: date) -> str:
    if day is None:
        return "never"
    n = (today - day).days
    return "today" if n <= 0 else "yesterday" if n == 1 else f"{n} days ago"


def _when(at: datetime | None, now: datetime) -> str:
    # The day in `now`'s zone, not in the session's TimeZone the value came in.
    return "never" if at is None else _ago(at.astimezone(now.tzinfo).date(), now.date())


def row(e: CaseloadEntry, *, now: datetime) -> Row:
    """The row of one patient."""
    load, quota = e.load_yesterday, e.quota_yesterday
    unit = e.measure.unit if e.measure is not None else ""
    b = band(load, quota)
    if e.plan is None:
        text = "no plan yet"
    elif quota is None:
        text = "measuring baseline"
    elif load is None:
        text = f"no valid day (quota {quota:.0f} {unit})"
    else:
        text = f"{load:.0f} of {quota:.0f} {unit} ({load / quota:.0%}) — {b.words}"
    measure = e.measure
    spark = tuple(d.value(measure) if measure is not None else None for d in e.days)
    flags = tuple(
        f"{rule_title(f.rule_id)}{' (critical)' if f.severity is Severity.CRITICAL else ''}"
        f"{' — acknowledged' if f.status == 'acknowledged' else ''}"
        for f in e.flags
    )
    if e.flare_risk is not None and e.flare_risk >= RISK_ENTER:
        flags = (f"Flare risk {e.flare_risk:.0%} over the next 48 h", *flags)
    return Row(
        patient_id=e.patient_id,
        name=e.display_name,
        reference=e.external_ref,
        section=section_of(e),
        load=load,
        quota=quota,
        unit=unit,
        band=b,
        load_text=text,
        sparkline=spark,
        flags=flags,
        flare_risk=e.flare_risk,
        last_wear=_ago(e.last_wear_day, now.date()),
        last_upload=_when(e.last_upload, now),
        reviewed=_when(e.reviewed_at, now),
    )


@dataclass(frozen=True)
class SectionView:
    """One section with its rows, worst first."""

    section: Section
    rows: tuple[Row, ...]


def sections(
    entries: Sequence[CaseloadEntry],
    *,
    now: datetime,
    search: str = "",
    only: Sequence[Section] = (),
) -> list[SectionView]:
    """The caseload in sections (empty ones dropped), filtered by a name/reference search."""
    needle = search.strip().lower()
    chosen = [
        e
        for e in entries
        if not needle or needle in e.display_name.lower() or needle in e.external_ref.lower()
    ]
    out = []
    for s in Section:
        if only and s not in only:
            continue
        members = sorted((e for e in chosen if section_of(e) is s), key=_severity_score)
        if members:
            out.append(SectionView(s, tuple(row(e, now=now) for e in members)))
    return out


#: The caseload table's columns, in order.
COLUMNS: Final = (
    "name",
    "reference",
    "plan",
    "yesterday",
    "last 14 days",
    "flags",
    "flare risk",
    "last wear",
    "last upload",
    "reviewed",
)


def table(rows: Sequence[Row]) -> pa.Table:
    """The rows of one section as the caseload table (plain text, never markup).

    An Arrow table, which Streamlit sends as it is: a pandas frame costs more to
    build and to convert than the whole section's SQL. Yesterday's band is the
    `plan` column, one coloured label per row (`column_config`), instead of a
    styled cell: pandas' Styler renders every cell of the frame in Python.
    """
    values: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for r in rows:
        for column, value in (
            ("name", r.name),
            ("reference", r.reference),
            ("plan", [r.band.words]),
            ("yesterday", r.load_text),
            ("last 14 days", [None if v is None else round(v, 1) for v in r.sparkline]),
            ("flags", r.flags_text),
            ("flare risk", None if r.flare_risk is None else round(100 * r.flare_risk)),
            ("last wear", r.last_wear),
            ("last upload", r.last_upload),
            ("reviewed", r.reviewed),
        ):
            values[column].append(value)
    return pa.table({c: pa.array(v, type=_TYPES.get(c)) for c, v in values.items()})


_TYPES: Final = {
    "plan": pa.list_(pa.string()),
    "last 14 days": pa.list_(pa.float64()),
    "flare risk": pa.int64(),
}
