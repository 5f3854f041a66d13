"""Backoff: exponential, jittered, and never beyond its cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.devices.backoff import Backoff


def test_delays_double_until_the_cap() -> None:
    policy = Backoff(base_s=0.5, cap_s=4.0, jitter=0.0)
    assert [policy.delay_s(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=0.999))
def test_no_delay_exceeds_the_cap_with_jitter(attempt: int, rand: float) -> None:
    policy = Backoff(base_s=0.5, cap_s=30.0, jitter=0.25)
    assert policy.base_s <= policy.delay_s(attempt, rand) <= policy.max_delay_s


def test_jitter_only_lengthens_a_delay() -> None:
    policy = Backoff(base_s=1.0, cap_s=8.0, jitter=0.5)
    assert policy.delay_s(2, 0.0) == 4.0
    assert policy.delay_s(2, 0.5) == 5.0


@pytest.mark.parametrize(
    "kwargs", [{"base_s": 0}, {"base_s": 2, "cap_s": 1}, {"factor": 0.5}, {"jitter": 1.0}]
)
def test_a_policy_that_makes_no_sense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_device_reconnects_and_database_retries_follow_the_one_policy() -> None:
    """The reconnect delays are the shared Backoff's; only the floors for causes differ."""
    from paceline.devices.transport import RECONNECT_BACKOFF, reconnect_delay_s

    for attempt in range(12):
        for rand in (0.0, 0.5, 0.99):
            assert reconnect_delay_s(RuntimeError("x"), attempt, jitter=rand) == (
                RECONNECT_BACKOFF.delay_s(attempt, rand)
            )
