"""A simulated run continues after the samples its wearables already stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paceline.ingest.simulation import RESUME_GAP, continue_after, simulated_start

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def test_a_first_run_starts_fresh() -> None:
    span = continue_after(None, speed=60.0, covers_s=20.0, now=NOW, daytime=True)
    assert span.start == simulated_start(60.0, 20.0, now=NOW, daytime=True)
    assert (span.speed, span.resumed_after) == (60.0, None)


def test_samples_older_than_a_fresh_start_do_not_hold_it_back() -> None:
    yesterday = NOW - timedelta(days=1)
    span = continue_after(yesterday, speed=60.0, covers_s=20.0, now=NOW, daytime=True)
    assert span.start == simulated_start(60.0, 20.0, now=NOW, daytime=True)
    assert span.resumed_after is None


def test_a_second_run_starts_after_the_first_one_ended() -> None:
    first = continue_after(None, speed=60.0, covers_s=20.0, now=NOW, daytime=True)
    first_end = first.start + timedelta(seconds=20 * 60)
    second = continue_after(first_end, speed=60.0, covers_s=20.0, now=NOW, daytime=True)
    assert second.start == first_end + RESUME_GAP
    assert second.speed == 60.0
    assert second.resumed_after == first_end


@pytest.mark.parametrize("behind_s", [3600.0, 600.0, 61.0, 0.0, -30.0])
def test_a_continued_run_never_runs_ahead_of_the_clock(behind_s: float) -> None:
    newest = NOW - timedelta(seconds=behind_s)
    span = continue_after(newest, speed=60.0, covers_s=20.0, now=NOW)
    assert span.start > newest
    assert 1.0 <= span.speed <= 60.0
    # Simulated time at the run's real end (NOW + 20 s) is behind the real clock then,
    # unless the stored samples themselves were ahead of it (real time cannot catch up).
    sim_end = span.start + timedelta(seconds=20.0 * span.speed)
    assert sim_end <= max(NOW + timedelta(seconds=20.0), span.start + timedelta(seconds=20.0))
    if behind_s <= 600.0:
        assert span.speed < 60.0
