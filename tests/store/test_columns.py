"""Every stream's `of` is its `checked` raising for the first bad row, with the same reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paceline.store.columns import (
    MAX_BPM,
    MAX_RR_MS,
    MAX_STEPS_PER_ROW,
    ColumnError,
    HrRows,
    RrRows,
    SdnnRows,
    StepRows,
    problems,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
KEYS: dict[str, Any] = {
    "patient_id": [1, 1, 1, 1],
    "device_id": [2, 2, 2, 2],
    "time": [T0 + timedelta(seconds=i) for i in range(4)],
}
CASES = [
    (
        HrRows,
        {"bpm": [60, 61, MAX_BPM + 1, 0]},
        {2: "bpm 301 is outside 1..300", 3: "bpm 0 is outside 1..300"},
    ),
    (
        RrRows,
        {"rr_ms": [800.0, 0.0, 790.0, MAX_RR_MS + 1]},
        {1: "rr_ms 0 is outside (0, 64000]", 3: "rr_ms 64001 is outside (0, 64000]"},
    ),
    (
        StepRows,
        {"steps": [3, MAX_STEPS_PER_ROW + 1, 2.5, 0]},
        {1: "steps 1000001 is outside 0..1000000", 2: "steps 2.5 is not a whole number"},
    ),
    (
        SdnnRows,
        {"sdnn_ms": [40.0, 41.0, -1.0, float("nan")]},
        {2: "sdnn_ms -1 is outside (0, 64000]", 3: "sdnn_ms is NaN"},
    ),
]


@pytest.mark.parametrize(("rows", "column", "reasons"), CASES)
def test_of_raises_the_first_problem_that_checked_lists(
    rows: Any, column: dict[str, Any], reasons: dict[int, str]
) -> None:
    _batch, checks = rows.checked(**KEYS, **column)
    assert problems(checks, 4) == reasons
    first = min(reasons)
    with pytest.raises(ColumnError) as caught:
        rows.of(**KEYS, **column)
    assert (caught.value.stream, caught.value.row, caught.value.reason) == (
        rows.STREAM,
        first,
        reasons[first],
    )
