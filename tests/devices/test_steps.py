"""Steps per interval from cadence (RSC) and from a cumulative counter (InfiniTime)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.devices.steps import MAX_CADENCE_GAP_S, CadenceIntegrator, StepCounter


def integrate(samples: list[tuple[float, float]]) -> list[int]:
    """Feed (time, cadence) samples through a fresh integrator and collect the steps."""
    state = CadenceIntegrator()
    steps: list[int] = []
    for time_s, cadence in samples:
        state, whole = state.advance(time_s, cadence)
        steps.append(whole)
    return steps


def test_first_cadence_sample_only_starts_the_integration() -> None:
    """With no previous sample there is no interval yet."""
    assert integrate([(0.0, 120.0)]) == [0]


def test_constant_cadence_integrates_to_cadence_times_minutes() -> None:
    """120 steps/min for 60 one-second intervals is 120 steps, fractions carried."""
    steps = integrate([(float(t), 120.0) for t in range(61)])
    assert sum(steps) == 120
    assert set(steps[1:]) == {2}


def test_fractional_steps_are_carried_not_rounded_away() -> None:
    """105 steps/min at 1 Hz is 1.75 steps per interval: the sum stays exact."""
    steps = integrate([(float(t), 105.0) for t in range(121)])
    assert sum(steps) == 210
    assert set(steps[1:]) == {1, 2}


def test_trapezoid_between_two_cadences() -> None:
    """From 0 to 120 steps/min over 10 s, the mean cadence 60 gives 10 steps."""
    assert integrate([(0.0, 0.0), (10.0, 120.0)]) == [0, 10]


def test_long_gap_is_not_filled_with_guessed_steps() -> None:
    """After a silence longer than the gap limit, integration restarts from the new sample."""
    steps = integrate(
        [(0.0, 120.0), (1.0, 120.0), (1.0 + MAX_CADENCE_GAP_S + 1, 120.0), (12.5, 120.0)]
    )
    assert steps == [0, 2, 0, 1]


def test_time_going_backwards_restarts_integration() -> None:
    """A decreasing time restarts instead of producing negative steps."""
    assert integrate([(5.0, 100.0), (4.0, 100.0), (5.0, 100.0)]) == [0, 0, 1]


def test_notifications_in_one_burst_lose_no_steps() -> None:
    """Several notifications stamped at the same instant: the first carries the interval."""
    assert integrate([(0.0, 120.0), (3.0, 120.0), (3.0, 120.0), (3.0, 120.0), (4.0, 120.0)]) == [
        0,
        6,
        0,
        0,
        2,
    ]


def test_negative_cadence_is_refused() -> None:
    """Cadence is a rate of steps; a negative one is a bug upstream."""
    with pytest.raises(ValueError, match="negative"):
        CadenceIntegrator().advance(0.0, -1.0)


@given(st.lists(st.tuples(st.floats(0.1, 5.0), st.floats(0.0, 255.0)), max_size=60))
def test_integrated_steps_are_never_negative_and_track_the_integral(
    samples: list[tuple[float, float]],
) -> None:
    """Whole steps never go negative and their sum is the trapezoid integral, less under one step."""
    state = CadenceIntegrator()
    time_s = 0.0
    total = 0
    exact = 0.0
    previous: float | None = None
    for dt, cadence in samples:
        time_s += dt
        state, steps = state.advance(time_s, cadence)
        assert steps >= 0
        total += steps
        if previous is not None:
            exact += (previous + cadence) / 2 * dt / 60
        previous = cadence
    assert -1e-6 <= exact - total < 1 + 1e-6


def test_counter_first_value_sets_the_baseline() -> None:
    """What the counter held before we connected says nothing about this interval."""
    counter, steps = StepCounter().advance(4_200)
    assert steps == 0
    assert counter == StepCounter(4_200)


def test_counter_increments_become_interval_steps() -> None:
    """Successive values yield their differences."""
    counter = StepCounter()
    deltas = []
    for value in (100, 130, 130, 171):
        counter, steps = counter.advance(value)
        deltas.append(steps)
    assert deltas == [0, 30, 0, 41]


def test_counter_reset_is_never_negative_steps() -> None:
    """A counter that goes down (midnight, reboot) was reset: the new value is the steps since."""
    counter = StepCounter(9_000)
    counter, steps = counter.advance(12)
    assert steps == 12
    counter, steps = counter.advance(40)
    assert steps == 28


def test_counter_state_survives_a_reconnect_by_value() -> None:
    """The daemon keeps the state across a reconnect; steps taken meanwhile are counted once."""
    state, _ = StepCounter().advance(1_000)
    saved = StepCounter(state.last_count)
    _, steps = saved.advance(1_250)
    assert steps == 250


@given(st.lists(st.integers(0, 0xFFFF_FFFF), min_size=1, max_size=50))
def test_counter_steps_are_never_negative(values: list[int]) -> None:
    """Whatever the counter does, no interval has negative steps."""
    counter = StepCounter()
    for value in values:
        counter, steps = counter.advance(value)
        assert steps >= 0
