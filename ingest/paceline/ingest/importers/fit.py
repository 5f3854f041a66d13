"""Garmin FIT activity and monitoring files: heart rate, beat-to-beat RR, steps.

Decoded by `fitdecode` with the CRC checked: a file whose CRC does not match is
refused whole (there is no telling which of its bytes are wrong). A file that
ends early (a watch that lost power while writing, a download cut short) has
no CRC to check; what decoded before the end is imported and the summary says
how much of the file was not.

What is read (FIT SDK profile, Garmin):

- ``record.heart_rate`` (bpm) at ``record.timestamp``.
- ``monitoring.heart_rate`` at ``timestamp`` or ``timestamp_16`` (the low 16
  bits of the time, which the decoder does not expand: it is expanded here
  against the last full timestamp, as the SDK describes).
- steps from ``monitoring.cycles`` of walking and running (the ``steps``
  sub-field: the raw value, i.e. twice the decoded cycles, which carry scale 2):
  a running total per activity type since the device's daily reset
  (``monitoring_info.timestamp``), so each message adds its increase over the
  previous one of the same type, over the interval since that message; a total
  that drops started a new day and counts from zero. The daily summaries
  (messages with ``duration_min``) repeat those totals and are not counted again.
- ``hrv.time``: up to five beat-to-beat intervals (s) per message. The messages
  carry no time stamp; beats are timed cumulatively from the first timer start
  (or the first record), as Garmin's own tools do.

The source is the recording device (``file_id`` manufacturer, product, serial).
"""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any, Final

import fitdecode
import numpy as np

from paceline.ingest.importers.collect import Collected
from paceline.ingest.importers.errors import MalformedFileError

_US_PER_S: Final = 1_000_000
_CHUNK: Final = 65_536
# FIT's epoch, 1989-12-31T00:00:00Z, in Unix seconds (FIT SDK, "date_time").
_FIT_EPOCH_S: Final = 631_065_600
#: Activity types whose monitoring cycles are steps (FIT profile, monitoring.cycles).
_STEP_ACTIVITIES: Final = ("walking", "running")


def _us(value: datetime) -> int:
    return round(value.timestamp() * _US_PER_S)


def _field(frame: fitdecode.FitDataMessage, name: str) -> Any:
    """The value of the first field named `name` (or None), as ``get_value`` would find it."""
    for data in frame.fields:
        if data.field is not None and data.field.name == name:
            return data.value
    return None


def _record(frame: fitdecode.FitDataMessage) -> tuple[Any, Any]:
    """A ``record`` message's timestamp and heart rate (None where absent), in one pass."""
    stamp = bpm = None
    for data in frame.fields:
        field = data.field
        if field is None:
            continue
        if field.name == "timestamp":
            stamp = data.value if stamp is None else stamp
        elif field.name == "heart_rate":
            bpm = data.value if bpm is None else bpm
    return stamp, bpm


def _seconds(values: Any) -> list[float]:
    """An ``hrv.time`` value (one number, or up to five) as beat intervals in seconds."""
    if not isinstance(values, tuple | list):
        values = (values,)
    return [float(v) for v in values if isinstance(v, int | float)]


def _source(frame: fitdecode.FitDataMessage) -> str:
    parts = []
    for name in ("manufacturer", "garmin_product", "product", "serial_number"):
        if frame.has_field(name):
            value = frame.get_value(name, fallback=None)
            if value is not None and str(value) not in parts:
                parts.append(str(value))
    return "FIT " + " ".join(parts) if parts else "FIT device"


class _Monitoring:
    """Running step totals per activity type, turned into contiguous step intervals.

    Walking and running keep separate running totals, but both count steps of
    the one device: the intervals are therefore taken between consecutive
    messages of any type, with the increase of the sum of all totals, so they
    never overlap (overlapping rows of one device would be averaged, not added).
    """

    def __init__(self) -> None:
        self.totals: dict[Any, float] = {}
        self.last_us: int | None = None

    def reset(self, time_us: int) -> None:
        """The device's daily totals start again at `time_us`."""
        self.totals.clear()
        self.last_us = time_us

    def step(self, activity: Any, time_us: int, total: float) -> tuple[int, float] | None:
        before = self.totals.get(activity, 0.0)
        if total < before:
            # A total that drops: the device reset its day in between.
            self.totals.clear()
            before = 0.0
        self.totals[activity] = total
        begin_us, self.last_us = self.last_us, time_us
        if begin_us is None or begin_us >= time_us:
            return None
        return (begin_us, total - before)


class _Beats:
    """Beat-to-beat intervals read so far, timed cumulatively from the recording's anchor.

    Handed to `Collected` in chunks as they come (so the writer can store them
    while the file is still being read), in integer microseconds, so that where
    the chunks fall changes no beat's time.
    """

    def __init__(self) -> None:
        self.pending: list[float] = []
        self.elapsed_us = 0

    def flush(self, out: Collected, source: str, anchor_us: int) -> None:
        """Time the pending beats after the ones already handed on, and hand them on."""
        rr_s = np.array(self.pending)
        ends_us = self.elapsed_us + np.cumsum(np.round(rr_s * _US_PER_S).astype(np.int64))
        self.elapsed_us = int(ends_us[-1])
        out.add(source, "rr", time_us=anchor_us + ends_us, rr_ms=rr_s * 1000.0)
        self.pending.clear()


def parse(raw: IO[bytes], name: str, out: Collected) -> None:
    """Read a FIT file into `out`; `MalformedFileError` if it is not one or fails its CRC."""
    hr_t: list[int] = []
    hr_v: list[float] = []
    beats = _Beats()
    steps_b: list[int] = []
    steps_e: list[int] = []
    steps_v: list[float] = []
    source = "FIT device"
    anchor_us: int | None = None
    last_full_s: int | None = None
    monitoring = _Monitoring()
    time_us: int | None

    def flush_hr() -> None:
        out.add(source, "hr", time_us=np.array(hr_t, np.int64), bpm=np.array(hr_v))
        hr_t.clear()
        hr_v.clear()

    try:
        with fitdecode.FitReader(
            raw,
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as reader:
            for frame in reader:
                if frame.frame_type != fitdecode.FIT_FRAME_DATA:
                    continue
                message = frame.name
                # The two messages a recording is made of, one per second or per beat
                # group: read in one pass over their fields, not by name lookups.
                if message == "hrv":
                    beats.pending.extend(_seconds(_field(frame, "time")))
                    if anchor_us is not None and len(beats.pending) >= _CHUNK:
                        beats.flush(out, source, anchor_us)
                    continue
                if message == "record":
                    stamp, bpm = _record(frame)
                    if isinstance(stamp, datetime):
                        time_us = _us(stamp)
                        last_full_s = time_us // _US_PER_S
                        if anchor_us is None:
                            anchor_us = time_us
                        if isinstance(bpm, int | float):
                            hr_t.append(time_us)
                            hr_v.append(float(bpm))
                            if len(hr_t) >= _CHUNK:
                                flush_hr()
                        continue
                stamp = frame.get_value("timestamp", fallback=None)
                time_us = None
                if isinstance(stamp, datetime):
                    time_us = _us(stamp)
                    last_full_s = time_us // _US_PER_S
                elif frame.has_field("timestamp_16") and last_full_s is not None:
                    low = frame.get_value("timestamp_16", fallback=None)
                    if isinstance(low, int):
                        fit_s = last_full_s - _FIT_EPOCH_S
                        fit_s += (low - fit_s) & 0xFFFF
                        last_full_s = fit_s + _FIT_EPOCH_S
                        time_us = last_full_s * _US_PER_S
                if message == "file_id":
                    source = _source(frame)
                elif message == "monitoring_info" and time_us is not None:
                    monitoring.reset(time_us)
                elif (
                    message == "event"
                    and anchor_us is None
                    and time_us is not None
                    and frame.get_value("event", fallback=None) == "timer"
                    and frame.get_value("event_type", fallback=None) == "start"
                ):
                    anchor_us = time_us
                if message in ("record", "monitoring") and time_us is not None:
                    if anchor_us is None and message == "record":
                        anchor_us = time_us
                    bpm = frame.get_value("heart_rate", fallback=None)
                    if isinstance(bpm, int | float):
                        hr_t.append(time_us)
                        hr_v.append(float(bpm))
                        if len(hr_t) >= _CHUNK:
                            flush_hr()
                if (
                    message == "monitoring"
                    and time_us is not None
                    and not frame.has_field("duration_min")
                    and frame.get_value("activity_type", fallback=None) in _STEP_ACTIVITIES
                ):
                    cycles = frame.get_value("cycles", fallback=None)
                    if isinstance(cycles, int | float):
                        activity = frame.get_value("activity_type", fallback=None)
                        interval = monitoring.step(activity, time_us, float(cycles) * 2)
                        if interval is not None:
                            steps_b.append(interval[0])
                            steps_e.append(time_us)
                            steps_v.append(interval[1])
    except fitdecode.FitCRCError as exc:
        raise MalformedFileError(name, f"FIT CRC does not match, file refused: {exc}") from exc
    except fitdecode.FitEOFError as exc:
        out.notes.append(
            f"{name}: the FIT file ends early ({exc}); the messages before byte {exc.offset:,}"
            " were imported, the rest of the recording is missing from the file"
        )
    except fitdecode.FitHeaderError as exc:
        raise MalformedFileError(name, f"not a readable FIT file: {exc}") from exc
    except fitdecode.FitError as exc:
        raise MalformedFileError(name, f"FIT data cannot be decoded: {exc}") from exc
    flush_hr()
    if beats.pending:
        if anchor_us is None:
            out.reject("rr: no time to anchor the beats to", len(beats.pending))
        else:
            beats.flush(out, source, anchor_us)
    if steps_v:
        out.add(
            source,
            "steps",
            time_us=np.array(steps_e, np.int64),
            begin_us=np.array(steps_b, np.int64),
            steps=np.array(steps_v),
        )
