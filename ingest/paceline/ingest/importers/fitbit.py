"""Fitbit and Google Takeout heart rate and steps, as CSV or JSON (single files or a zip of them).

Shapes read (the column or key names decide, never the file name):

- Fitbit account export JSON (``heart_rate-YYYY-MM-DD.json``): a list of
  ``{"dateTime": "MM/DD/YY HH:MM:SS", "value": {"bpm": n, "confidence": c}}``;
  ``steps-YYYY-MM-DD.json``: ``{"dateTime": …, "value": "n"}``, one per minute.
  Fitbit writes these times in UTC.
- Google Takeout "Fitbit" time series CSV (``heart_rate_YYYY-MM-DD.csv``):
  ``timestamp,beats per minute``; steps: ``timestamp,steps``; ISO 8601 times.
- Fitabase / Fitbit research CSV (``heartrate_seconds_merged.csv``:
  ``Id,Time,Value``; ``minuteStepsNarrow_merged.csv``: ``Id,ActivityMinute,Steps``)
  in local wall-clock time ``M/D/YYYY h:mm:ss AM/PM``, read in the patient's time zone.

Step rows count the minute that *starts* at their time (Fitbit's convention),
so each becomes an interval of one minute. Times without a zone are the
patient's local time.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo

import numpy as np

from paceline.ingest.importers.collect import Collected
from paceline.ingest.importers.errors import MalformedFileError

_CHUNK: Final = 65_536
_MINUTE_US: Final = 60_000_000
_TIME_COLUMNS: Final = ("time", "timestamp", "datetime", "activityminute", "date time")
_HR_COLUMNS: Final = ("beats per minute", "bpm", "heart_rate", "heart rate", "value")
_STEP_COLUMNS: Final = ("steps", "step_count", "steps count")
_FORMATS: Final = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


def _time_us(text: str, tz: ZoneInfo, *, naive_is_utc: bool = False) -> int:
    text = text.strip()
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _FORMATS:
            try:
                value = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone added below
                break
            except ValueError:
                continue
    if value is None:
        raise ValueError(f"time {text!r} is not in a Fitbit format")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC if naive_is_utc else tz)
    return round(value.timestamp() * 1_000_000)


class _Rows:
    """Buffers of one file, handed to `Collected` in chunks."""

    def __init__(self, out: Collected, source: str) -> None:
        self.out = out
        self.source = source
        self.hr: tuple[list[int], list[float]] = ([], [])
        self.steps: tuple[list[int], list[float]] = ([], [])

    def add(self, kind: str, time_us: int, value: float) -> None:
        target = self.hr if kind == "hr" else self.steps
        target[0].append(time_us)
        target[1].append(value)
        if len(target[0]) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.hr[0]:
            t = np.array(self.hr[0], np.int64)
            self.out.add(self.source, "hr", time_us=t, bpm=np.array(self.hr[1]))
        if self.steps[0]:
            begin = np.array(self.steps[0], np.int64)
            self.out.add(
                self.source,
                "steps",
                time_us=begin + _MINUTE_US,
                begin_us=begin,
                steps=np.array(self.steps[1]),
            )
        self.hr = ([], [])
        self.steps = ([], [])


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _json(fh: IO[bytes], name: str, out: Collected, tz: ZoneInfo) -> None:
    try:
        data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedFileError(name, f"not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise MalformedFileError(name, "Fitbit JSON is a list of {dateTime, value} entries")
    rows = _Rows(out, "Fitbit")
    for entry in data:
        if not isinstance(entry, dict) or "dateTime" not in entry or "value" not in entry:
            out.reject("fitbit: entry without dateTime and value")
            continue
        value = entry["value"]
        kind, number = (
            ("hr", _number(value.get("bpm")))
            if isinstance(value, dict)
            else (
                "steps",
                _number(value),
            )
        )
        try:
            t = _time_us(str(entry["dateTime"]), tz, naive_is_utc=True)
        except ValueError:
            out.reject(f"{kind}: time not in a Fitbit format")
            continue
        rows.add(kind, t, number)
    rows.flush()


def _csv(fh: IO[bytes], name: str, out: Collected, tz: ZoneInfo) -> None:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration as exc:
        raise MalformedFileError(name, "an empty CSV file") from exc
    time_col = next((header.index(c) for c in _TIME_COLUMNS if c in header), None)
    step_col = next((header.index(c) for c in _STEP_COLUMNS if c in header), None)
    hr_col = next((header.index(c) for c in _HR_COLUMNS if c in header), None)
    if time_col is None or (step_col is None and hr_col is None):
        raise MalformedFileError(
            name, f"CSV columns {header} hold neither Fitbit heart rate nor steps"
        )
    kind, col = ("steps", step_col) if step_col is not None else ("hr", hr_col)
    assert col is not None
    id_col = header.index("id") if "id" in header else None
    per_source: dict[str, _Rows] = {}
    for line in reader:
        if not line:
            continue
        if len(line) <= max(time_col, col):
            out.reject(f"{kind}: CSV row with too few columns")
            continue
        source = f"Fitbit {line[id_col]}" if id_col is not None and id_col < len(line) else "Fitbit"
        rows = per_source.get(source)
        if rows is None:
            rows = per_source[source] = _Rows(out, source)
        try:
            t = _time_us(line[time_col], tz)
        except ValueError:
            out.reject(f"{kind}: time not in a Fitbit format")
            continue
        rows.add(kind, t, _number(line[col]))
    for rows in per_source.values():
        rows.flush()


def _files(path: Path, members: tuple[str, ...]) -> Iterator[tuple[str, IO[bytes]]]:
    if not members:
        with path.open("rb") as fh:
            yield path.name, fh
        return
    with zipfile.ZipFile(path) as archive:
        for member in members:
            with archive.open(member) as fh:
                yield member, fh


def _is_json(fh: IO[bytes]) -> bool:
    head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    fh.seek(0)  # files and zip members (of a seekable archive) both seek
    return head.startswith((b"[", b"{"))


def parse(path: Path, members: Iterable[str], out: Collected) -> None:
    """Read the Fitbit file (or each Fitbit member of the zip at `path`) into `out`."""
    tz = ZoneInfo(out.timezone)
    for name, fh in _files(path, tuple(members)):
        (_json if _is_json(fh) else _csv)(fh, name, out, tz)
