"""Graded exposure in vivo: the fear ladder, sessions, progress per item, moving up the ladder.

A patient's feared activities are ranked by fear (0-100) into a ladder and
practised from the bottom (Vlaeyen et al. 2001). Each session records fear
before and after and the harm the patient expected against what happened: the
gap between them (expectancy violation) is what inhibitory learning holds
drives lasting change, more than fear dropping within a session (Craske et al.
2014). The move-up rule therefore accepts either a clear fall in fear or
repeated, clear expectancy violations, after a minimum number of sessions.

The stop rule: exposure is meant to be done with fear, not through
overwhelming distress. A session whose fear before, peak distress or fear
after passes the patient's stop threshold (the plan setting
`exposure_stop_distress`, default `DEFAULT_STOP_DISTRESS` = 80 of 100: the
"severe" band of a 0-100 subjective-units-of-distress scale, Wolpe 1969; no
validated cut-off exists, so the clinician sets it per patient), or that the
patient stops, is recorded as stopped with a debrief note. A stopped session
never counts towards moving up, and a recent one holds the rung until the
clinician has gone over it with the patient (Vlaeyen et al. 2012, the
debriefing step of graded exposure in vivo).

References
----------
Vlaeyen JWS, de Jong J, Geilen M, Heuts PHTG, van Breukelen G. Graded exposure in
vivo in the treatment of pain-related fear: a replicated single-case experimental
design in four patients with chronic low back pain. Behav Res Ther 2001;39:151-166.
Craske MG, Treanor M, Conway CC, Zbozinek T, Vervliet B. Maximizing exposure
therapy: an inhibitory learning approach. Behav Res Ther 2014;58:10-23.
Vlaeyen JWS, Morley SJ, Linton SJ, Boersma K, de Jong J. Pain-related fear:
exposure-based treatment of chronic pain. Seattle: IASP Press; 2012.
Wolpe J. The practice of behavior therapy. New York: Pergamon; 1969.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from statistics import fmean
from typing import Final

import numpy as np

from paceline.pacing.errors import NotAnIntegerError, OutOfRangeError

FEAR_MIN: Final = 0
FEAR_MAX: Final = 100
#: Sessions done on an item before moving up is considered.
MIN_SESSIONS: Final = 3
#: How many of the latest sessions the move-up rule looks at.
RECENT_SESSIONS: Final = 2
#: Fear before a session counts as reduced at or below half the initial fear …
FEAR_REDUCTION_FRACTION: Final = 0.5
#: … or at or below this absolute level (mild fear on the 0-100 scale).
LOW_FEAR: Final = 30
#: Mean expected-minus-actual harm (0-100 points) that counts as a clear violation.
CLEAR_VIOLATION: Final = 30
#: A planned session still not done this long after its time counts as missed.
MISSED_AFTER: Final = timedelta(hours=24)
#: The default stop threshold on the 0-100 fear/distress scale (see the module docstring).
DEFAULT_STOP_DISTRESS: Final = 80


class SessionStatus(StrEnum):
    """The state of an exposure session (values stored in `exposure_session.status`)."""

    PLANNED = "planned"
    DONE = "done"
    SKIPPED = "skipped"
    STOPPED = "stopped"


class ItemStatus(StrEnum):
    """The state of a ladder item (values stored in `exposure_item.status`)."""

    ACTIVE = "active"
    MASTERED = "mastered"
    RETIRED = "retired"


def check_scale(name: str, value: object) -> None:
    """Raise unless `value` is a whole number from 0 to 100 (or None)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotAnIntegerError(name, value)
    if not FEAR_MIN <= value <= FEAR_MAX:
        raise OutOfRangeError(name, value, FEAR_MIN, FEAR_MAX)


@dataclass(frozen=True)
class LadderItem:
    """One rung of the fear ladder."""

    item_id: int
    activity: str
    fear_rating: int
    position: int
    status: ItemStatus


@dataclass(frozen=True)
class SessionRecord:
    """One exposure session against a ladder item."""

    session_id: int
    item_id: int
    planned_at: datetime
    planned_day: date
    status: SessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    fear_before: int | None
    fear_after: int | None
    expected_harm: int | None
    actual_harm: int | None
    note: str | None
    #: The highest fear or distress rated during the session (0-100).
    peak_distress: int | None = None
    #: What happened in a stopped session, for the clinician to go over with the patient.
    debrief: str | None = None

    @property
    def expectancy_violation(self) -> int | None:
        """Expected minus actual harm (positive: what was feared did not happen as badly)."""
        if self.expected_harm is None or self.actual_harm is None:
            return None
        return self.expected_harm - self.actual_harm

    @property
    def fear_drop(self) -> int | None:
        """Fear before minus fear after the session (within-session change)."""
        if self.fear_before is None or self.fear_after is None:
            return None
        return self.fear_before - self.fear_after

    def not_done(self, as_of: datetime) -> bool:
        """Skipped, or still only planned a day after its planned time."""
        if self.status is SessionStatus.SKIPPED:
            return True
        return self.status is SessionStatus.PLANNED and self.planned_at + MISSED_AFTER < as_of


@dataclass(frozen=True)
class ItemProgress:
    """Progress on one ladder item across its sessions, and whether to move up."""

    item_id: int
    activity: str
    sessions_done: int
    sessions_skipped: int
    initial_fear: int
    latest_fear: int | None
    fear_reduction: int | None
    fear_reduction_fraction: float | None
    fear_slope_per_session: float | None
    mean_fear_drop_within: float | None
    mean_expectancy_violation: float | None
    ready_to_move_up: bool
    reasons: tuple[str, ...]
    next_item_id: int | None


def item_progress(
    item: LadderItem, sessions: Sequence[SessionRecord], ladder: Sequence[LadderItem]
) -> ItemProgress:
    """Fear reduction across an item's sessions and the move-up decision with its reasons."""
    own = sorted((s for s in sessions if s.item_id == item.item_id), key=lambda s: s.planned_at)
    done = [s for s in own if s.status is SessionStatus.DONE]
    skipped = [s for s in own if s.status is SessionStatus.SKIPPED]
    fears = [s.fear_before for s in done if s.fear_before is not None]
    initial = fears[0] if fears else item.fear_rating
    latest = fears[-1] if fears else None
    reduction = None if latest is None else initial - latest
    fraction = None if reduction is None or initial == 0 else reduction / initial
    slope = None
    if len(fears) >= 2:
        slope = float(np.polyfit(np.arange(len(fears), dtype=float), np.array(fears, float), 1)[0])
    drops = [d for s in done if (d := s.fear_drop) is not None]
    violations = [v for s in done if (v := s.expectancy_violation) is not None]

    recent = done[-RECENT_SESSIONS:]
    low_fear = max(LOW_FEAR, FEAR_REDUCTION_FRACTION * initial)
    recent_fears = [s.fear_before for s in recent if s.fear_before is not None]
    recent_violations = [v for s in recent if (v := s.expectancy_violation) is not None]
    reasons: list[str] = []
    enough = len(done) >= MIN_SESSIONS
    reasons.append(f"{len(done)} of {MIN_SESSIONS} sessions done" + (" ✓" if enough else ""))
    fear_ok = len(recent_fears) == RECENT_SESSIONS and all(f <= low_fear for f in recent_fears)
    violation_ok = (
        len(recent_violations) == RECENT_SESSIONS and fmean(recent_violations) >= CLEAR_VIOLATION
    )
    reasons.append(
        f"fear before the last {RECENT_SESSIONS} sessions {recent_fears} vs ≤ {low_fear:.0f}"
        + (" ✓" if fear_ok else "")
    )
    reasons.append(
        f"expected minus actual harm in the last {RECENT_SESSIONS} sessions {recent_violations}"
        f" vs mean ≥ {CLEAR_VIOLATION}" + (" ✓" if violation_ok else "")
    )
    harm_confirmed = any(v < 0 for v in recent_violations)
    if harm_confirmed:
        reasons.append("a recent session hurt more than expected: review it before moving up")
    last_planned = [s for s in own if s.status is not SessionStatus.PLANNED][-RECENT_SESSIONS:]
    avoiding = any(s.status is SessionStatus.SKIPPED for s in last_planned)
    if avoiding:
        reasons.append("a recent session was skipped: repeat this step first")
    stopped = any(s.status is SessionStatus.STOPPED for s in last_planned)
    if stopped:
        reasons.append(
            "a recent session was stopped at the stop rule: debrief it and repeat this step"
        )
    ready = (
        item.status is ItemStatus.ACTIVE
        and enough
        and (fear_ok or violation_ok)
        and not harm_confirmed
        and not avoiding
        and not stopped
    )
    higher = sorted(
        (i for i in ladder if i.status is ItemStatus.ACTIVE and i.position > item.position),
        key=lambda i: (i.position, i.item_id),
    )
    return ItemProgress(
        item_id=item.item_id,
        activity=item.activity,
        sessions_done=len(done),
        sessions_skipped=len(skipped),
        initial_fear=initial,
        latest_fear=latest,
        fear_reduction=reduction,
        fear_reduction_fraction=fraction,
        fear_slope_per_session=slope,
        mean_fear_drop_within=fmean(drops) if drops else None,
        mean_expectancy_violation=fmean(violations) if violations else None,
        ready_to_move_up=ready,
        reasons=tuple(reasons),
        next_item_id=higher[0].item_id if higher else None,
    )


def current_item(ladder: Sequence[LadderItem]) -> LadderItem | None:
    """The lowest active rung: the one being practised now."""
    active = [i for i in ladder if i.status is ItemStatus.ACTIVE]
    return min(active, key=lambda i: (i.position, i.item_id)) if active else None


@dataclass(frozen=True)
class SessionLoad:
    """Objective heart rate and steps recorded during a session's time window."""

    session_id: int
    start: datetime
    end: datetime
    hr_samples: int
    mean_hr_bpm: float | None
    max_hr_bpm: int | None
    steps: int

    @property
    def duration_min(self) -> float:
        """Length of the window in minutes."""
        return (self.end - self.start).total_seconds() / 60.0


def stop_reason(
    *,
    fear_before: int | None,
    peak_distress: int | None,
    fear_after: int | None,
    threshold: float,
    stopped_by_patient: bool,
) -> str | None:
    """Why a session counts as stopped (None: it does not): the patient stopped, or a rating passed.

    A rating passes the threshold when it is above it (a rating equal to the
    threshold is still within what the patient and clinician agreed to).
    """
    over = [
        f"{name} {value} above the stop threshold {threshold:g}"
        for name, value in (
            ("fear before", fear_before),
            ("peak distress", peak_distress),
            ("fear after", fear_after),
        )
        if value is not None and value > threshold
    ]
    if stopped_by_patient:
        return "; ".join(["the patient stopped the session", *over])
    return "; ".join(over) or None
