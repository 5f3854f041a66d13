"""One patient's results as CSV files, one per table, for a spreadsheet.

Files and columns (times are ISO 8601 with the UTC offset; empty means not recorded):

``daily_metrics.csv`` — one row per local day that has metrics:
    ``day`` (YYYY-MM-DD, the patient's local day), ``wear_min`` (minutes the band
    was worn), ``active_min`` (active minutes), ``steps`` (steps of the day),
    ``mean_hr_bpm``, ``resting_hr_bpm`` (beats/min), ``rmssd_ms`` (HRV RMSSD, ms),
    ``trimp_banister``, ``trimp_edwards`` (training load, arbitrary units),
    ``hr_samples``, ``rr_intervals`` (how many samples the day's figures rest on).
``diary.csv`` — one row per diary entry:
    ``reported_at``, ``pain_now``, ``pain_average``, ``pain_worst``, ``fatigue``,
    ``mood``, ``sleep_quality``, ``fear_of_movement`` (each 0-10), ``note``.
``questionnaires.csv`` — one row per completed questionnaire:
    ``answered_at``, ``instrument`` (TSK-11, PCS or PSEQ), ``total`` (total score),
    ``subscales`` (name=score pairs separated by ``;``), ``items`` (the answers in
    item order, separated by spaces).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, Final

from paceline.pacing.diary import RATING_FIELDS
from paceline.pacing.export.reads import ExportData, ExportDay

FILES: Final = ("daily_metrics.csv", "diary.csv", "questionnaires.csv")
DIARY_COLUMNS: Final = ("reported_at", *RATING_FIELDS, "note")
QUESTIONNAIRE_COLUMNS: Final = ("answered_at", "instrument", "total", "subscales", "items")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 2)
    return value


def _write(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])
    return path


def write(data: ExportData, directory: Path) -> list[Path]:
    """Write the three files into `directory` (created if missing); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    questionnaires = []
    for q in data.questionnaires:
        subscales = q.scores.get("subscales", {})
        pairs = ";".join(f"{k}={v}" for k, v in sorted(subscales.items())) if subscales else ""
        questionnaires.append(
            (q.answered_at, q.instrument, q.total, pairs, " ".join(str(i) for i in q.items))
        )
    return [
        _write(
            directory / FILES[0],
            [f.name for f in fields(ExportDay)],
            [astuple(d) for d in data.days],
        ),
        _write(
            directory / FILES[1],
            DIARY_COLUMNS,
            [[getattr(d, c) for c in DIARY_COLUMNS] for d in data.diary],
        ),
        _write(directory / FILES[2], QUESTIONNAIRE_COLUMNS, questionnaires),
    ]
