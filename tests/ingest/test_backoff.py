"""Backoff: exponential, jittered, and never beyond its cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.ingest.backoff import Backoff


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
