"""A diary time that is not a datetime is a typed error, not an AttributeError."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from paceline.pacing import intake
from paceline.pacing.errors import PacingError, ReportTimeError


@pytest.mark.parametrize("reported_at", ["2026-03-02T08:00:00+00:00", 1_772_438_400, None])
def test_submit_diary_refuses_a_reported_at_that_is_not_a_datetime(
    conn: psycopg.Connection[Any], reported_at: Any
) -> None:
    with pytest.raises(ReportTimeError, match="is not a datetime") as caught:
        intake.submit_diary(conn, 1, reported_at=reported_at, pain_now=3)
    assert isinstance(caught.value, PacingError) and caught.value.when == reported_at
