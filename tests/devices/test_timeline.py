"""Sample times of one device never collide, and RR beats keep their spacing when notifications bunch."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from paceline.devices.timeline import MAX_RR_LEAD_US, place, place_beats

RR = st.integers(min_value=300_000, max_value=2_000_000)


def test_beats_of_one_notification_are_dated_back_from_its_receipt() -> None:
    assert place_beats(None, 10_000_000, [800_000, 900_000]) == [9_100_000, 10_000_000]


def test_bunched_notifications_chain_their_beats_instead_of_overlapping() -> None:
    first = place_beats(None, 10_000_000, [1_000_000])
    # Delivered in the same instant: back-dating alone would give 9.0 s and 10.0 s again.
    second = place_beats(first[-1], 10_000_000, [1_000_000, 1_000_000])
    assert first == [10_000_000]
    assert second == [11_000_000, 12_000_000]


def test_a_gap_after_lost_beats_follows_the_receipt_again() -> None:
    (last,) = place_beats(None, 10_000_000, [1_000_000])
    assert place_beats(last, 60_000_000, [1_000_000]) == [60_000_000]


def test_a_chain_running_far_ahead_of_the_receipt_is_reanchored() -> None:
    (last,) = place_beats(None, 10_000_000, [1_000_000])
    ahead = place_beats(last, 10_000_000, [MAX_RR_LEAD_US + 1])
    assert ahead == [10_000_001]


@given(
    st.lists(
        st.tuples(st.integers(min_value=-3_000_000, max_value=3_000_000), st.lists(RR, max_size=5)),
        max_size=40,
    )
)
def test_beat_times_strictly_increase_whatever_the_receipts(
    notes: list[tuple[int, list[int]]],
) -> None:
    received = 100_000_000
    times: list[int] = []
    for jitter, rr in notes:
        received += 1_000_000 + jitter
        times.extend(place_beats(times[-1] if times else None, received, rr))
    assert all(a < b for a, b in itertools.pairwise(times))


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=50))
def test_sample_times_strictly_increase_even_when_stamps_repeat(steps: list[int]) -> None:
    stamps = [1_000 + sum(steps[:i]) for i in range(len(steps))]
    placed: list[int] = []
    for t in stamps:
        placed.append(place(placed[-1] if placed else None, t))
    assert all(a < b for a, b in itertools.pairwise(placed))
    assert all(p >= s for p, s in zip(placed, stamps, strict=True))
