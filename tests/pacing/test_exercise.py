"""Prescribed exercise: targets, the response to a session, progression and flare step-down (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest

from paceline.pacing import exercise
from paceline.pacing.errors import ExerciseError, NotAnIntegerError, OutOfRangeError
from paceline.pacing.exercise import (
    ExerciseSession,
    Kind,
    Prescription,
    Target,
    TargetCause,
    TargetVersion,
    advance,
    respond,
)
from paceline.pacing.load import session_load_state, session_rpe_load
from paceline.pacing.progression import FlareOnset

START = date(2026, 3, 2)
RX = Prescription(1, Kind.STRENGTH, "sit to stand", sessions_per_week=3)


def first(target: Target) -> TargetVersion:
    return TargetVersion(1, 1, target, START, TargetCause.CLINICIAN, "set by the clinician")


def session(
    i: int,
    *,
    minutes: float = 20.0,
    reps: int | None = 10,
    sets: int | None = 2,
    before: int = 3,
    after: int = 3,
) -> ExerciseSession:
    at = datetime.combine(START + timedelta(days=i), time(10), UTC)
    return ExerciseSession(1, at.date(), at, 1, minutes, 4, before, after, reps, sets, i + 100)


def test_two_points_more_pain_after_a_session_is_a_worsening_response() -> None:
    target = Target(repetitions=10)
    assert respond(session(0, before=3, after=4), target).good
    worse = respond(session(0, before=3, after=5), target)
    assert worse.completed and worse.worsened and not worse.good
    assert not respond(session(0, reps=9), target).completed


def test_the_target_rises_after_the_documented_number_of_good_sessions_in_a_row() -> None:
    v1 = first(Target(repetitions=10, sets=2))
    s = [session(0), session(2), session(4)]
    assert advance(RX, [v1], s[:2], [], START + timedelta(days=4)) == []
    (raised,) = advance(RX, [v1], s, [], START + timedelta(days=4))
    assert raised.cause is TargetCause.PROGRESSION
    assert raised.target == Target(repetitions=11, sets=2)
    assert raised.valid_from == START + timedelta(days=5)
    assert raised.evidence["sessions"] == [100, 102, 104]
    assert "3 sessions in a row" in raised.reason
    # Idempotent once stored.
    assert advance(RX, [v1, raised], s, [], START + timedelta(days=4)) == []


def test_a_session_that_worsened_pain_restarts_the_count() -> None:
    v1 = first(Target(duration_min=20.0))
    s = [session(0), session(1), session(2, before=2, after=4), session(3), session(4)]
    assert advance(RX, [v1], s, [], START + timedelta(days=4)) == []
    (raised,) = advance(RX, [v1], [*s, session(5)], [], START + timedelta(days=5))
    assert raised.target.duration_min == 22.0
    assert raised.evidence["sessions"] == [103, 104, 105]


def test_an_incomplete_session_does_not_count_and_a_paused_plan_never_rises() -> None:
    v1 = first(Target(duration_min=20.0))
    s = [session(0), session(1, minutes=15.0), session(2), session(3)]
    assert advance(RX, [v1], s, [], START + timedelta(days=3)) == []
    good = [session(0), session(1), session(2)]
    day2 = START + timedelta(days=2)
    assert advance(RX, [v1], good, [], day2, paused_through=day2) == []
    (raised,) = advance(
        RX, [v1], [*good, session(3)], [], day2 + timedelta(days=1), paused_through=day2
    )
    assert raised.valid_from == START + timedelta(days=4)


def test_a_flare_steps_the_target_down_once_and_not_below_half_the_first() -> None:
    v1 = first(Target(duration_min=10.0, repetitions=4))
    flare = FlareOnset(START + timedelta(days=1), START + timedelta(days=3))
    (down,) = advance(RX, [v1], [], [flare], START + timedelta(days=6))
    assert down.cause is TargetCause.FLARE
    assert down.target == Target(duration_min=8.0, repetitions=3)
    assert down.valid_from == START + timedelta(days=4)
    assert down.flare_start == flare.start
    # The same flare (seen again a day later) does not step down twice.
    again = FlareOnset(START + timedelta(days=2), START + timedelta(days=4))
    assert advance(RX, [v1, down], [], [flare, again], START + timedelta(days=6)) == []
    # Repeated flares stop at the floor: half the first target.
    cur = [v1]
    for k in range(6):
        f = FlareOnset(START + timedelta(days=10 * k), START + timedelta(days=10 * k))
        cur += advance(RX, cur, [], [f], START + timedelta(days=10 * k))
    assert cur[-1].target == Target(duration_min=5.0, repetitions=2)


def test_targets_and_sessions_reject_bad_values() -> None:
    with pytest.raises(ExerciseError):
        Target()
    with pytest.raises(OutOfRangeError):
        Target(duration_min=0.0)
    with pytest.raises(ExerciseError):
        Target(duration_min=20.0, hr_zone=(4, 2))
    with pytest.raises(NotAnIntegerError):
        Target(repetitions=2.5)  # type: ignore[arg-type]
    with pytest.raises(OutOfRangeError):
        session(0, after=11)
    with pytest.raises(ExerciseError):
        exercise.kind("yoga")
    with pytest.raises(OutOfRangeError):
        Prescription(1, Kind.BALANCE, "one leg", sessions_per_week=0)


def test_session_rpe_load_is_rating_times_minutes_and_feeds_the_rolling_ratio() -> None:
    assert session_rpe_load(5, 30.0) == 150.0
    assert session(0, minutes=20.0).load == 80.0
    daily = [100.0] * 28 + [200.0] * 7
    state = session_load_state(daily)
    assert state.weekly == pytest.approx(1400.0)
    assert state.ratio == pytest.approx(200.0 / np.mean(daily[-28:]))


def test_adherence_counts_completed_sessions_against_the_prescribed_number() -> None:
    v1 = first(Target(repetitions=10))
    s = [session(0), session(2, reps=5), session(4)]
    a = exercise.adherence(RX, [v1], s, START, START + timedelta(days=6))
    assert (a.prescribed, a.logged, a.completed, a.worsened) == (3.0, 3, 2, 0)
    assert a.fraction == pytest.approx(2 / 3)
