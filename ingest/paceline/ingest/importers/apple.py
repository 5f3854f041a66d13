"""Apple Health ``export.xml`` (or the ``export.zip`` around it): heart rate, SDNN, beats, steps.

Streamed with `lxml.etree.iterparse` and cleared as it goes, so memory stays flat
however large the export (a decade of Apple Watch use is several GB of XML). The
parser is hardened: no entity expansion, no network, no DTD loading, lxml's
default limits on tree depth and text size (``huge_tree`` off). Two defects of
real exports are repaired on the way in rather than refused:

- iOS 16 wrote an internal DTD subset that does not parse (duplicate and
  malformed ``ATTLIST`` declarations). The subset is dropped before parsing:
  nothing in it is needed, and a subset that declares entities (the vehicle of
  XML bombs) is refused instead.
- Some exports carry stray control characters (XML 1.0 forbids all C0
  controls but tab, line feed and carriage return) in device and source names.
  They are removed; in UTF-8 these bytes never occur inside a multi-byte
  character, so nothing else can change.

What is read (HealthKit type identifiers, Apple Developer documentation):

- ``HKQuantityTypeIdentifierHeartRate`` (count/min) → heart rate at ``startDate``.
- ``HKQuantityTypeIdentifierHeartRateVariabilitySDNN`` (ms) → SDNN, timed at the
  end of its window (``endDate``), stored as SDNN (never as RMSSD); its
  ``HeartRateVariabilityMetadataList`` of ``InstantaneousBeatsPerMinute`` (the
  beat-to-beat series the Watch recorded for it) → RR intervals, one per beat,
  ``60000 / bpm`` ms at the beat's time.
- ``HKQuantityTypeIdentifierStepCount`` (count) → steps over ``(startDate, endDate]``.

Each record's ``sourceName`` (the app or device that recorded it) becomes its
own source, so an iPhone and a Watch counting the same walk stay apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO, Any, Final

import numpy as np
from lxml import etree

from paceline.ingest.importers.collect import Collected, Stream
from paceline.ingest.importers.errors import MalformedFileError, UnsafeXmlError

_HR: Final = "HKQuantityTypeIdentifierHeartRate"
_SDNN: Final = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
_STEPS: Final = "HKQuantityTypeIdentifierStepCount"
_UNITS: Final = {_HR: "count/min", _SDNN: "ms", _STEPS: "count"}
#: Elements that can sit directly under ``HealthData``; each is cleared once read.
_TOP_LEVEL: Final = (
    "Record",
    "Correlation",
    "Workout",
    "ActivitySummary",
    "ClinicalRecord",
    "Audiogram",
    "VisionPrescription",
    "ExportDate",
    "Me",
)
#: C0 control characters XML 1.0 does not allow (all but tab, LF, CR).
_CONTROL: Final = bytes(c for c in range(32) if c not in (9, 10, 13))
_READ_BYTES: Final = 1024 * 1024
_FLUSH_ROWS: Final = 65_536
_PRUNE_EVERY: Final = 1024
_MAX_DTD_BYTES: Final = 4 * 1024 * 1024
_US_PER_S: Final = 1_000_000
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2}(?:[.,]\d+)?)\s*([AaPp][Mm])?")


class CleanReader:
    """A binary stream with the internal DTD subset dropped and stray control characters removed."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self._name = name
        self._pending = self._head()

    def _head(self) -> bytes:
        head = self._raw.read(_READ_BYTES)
        start = head.find(b"<!DOCTYPE")
        if start < 0:
            return head
        root = head.find(b"<HealthData")
        if 0 <= root < start:
            return head
        while b"]>" not in head[start:] and b">" not in head[start:].split(b"[", 1)[0]:
            more = self._raw.read(_READ_BYTES)
            if not more or len(head) > _MAX_DTD_BYTES:
                raise MalformedFileError(self._name, "the DOCTYPE declaration never ends")
            head += more
        bracket = head.find(b"[", start)
        close = head.find(b">", start)
        if bracket < 0 or close < bracket:
            return head[:start] + head[close + 1 :]  # DOCTYPE without an internal subset
        while b"]>" not in head[bracket:]:
            more = self._raw.read(_READ_BYTES)
            if not more or len(head) > _MAX_DTD_BYTES:
                raise MalformedFileError(self._name, "the internal DTD subset never ends")
            head += more
        end = head.find(b"]>", bracket) + 2
        subset = head[bracket:end]
        if b"<!ENTITY" in subset:
            raise UnsafeXmlError(
                self._name,
                "the DTD declares entities (a health export has none; entity expansion is"
                " how XML bombs work): refused",
            )
        return head[:start] + head[end:]

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the cleaned document."""
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._raw.read(_READ_BYTES if size is None or size < 0 else size)
        return data.translate(None, _CONTROL)


def _epoch_us(stamps: list[str]) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS ±HHMM`` strings to epoch µs (vectorised: one numpy parse per chunk)."""
    local = np.array([s[:10] + "T" + s[11:19] for s in stamps], dtype="datetime64[s]")
    offsets = np.array([s[20:25] for s in stamps])
    codes, inverse = np.unique(offsets, return_inverse=True)
    minutes = np.array([_offset_minutes(c) for c in codes], dtype=np.int64)
    return (local.astype(np.int64) - minutes[inverse.reshape(-1)] * 60) * _US_PER_S


def _offset_minutes(code: str) -> int:
    if len(code) != 5 or code[0] not in "+-" or not code[1:].isdigit():
        raise ValueError(f"time zone offset {code!r} is not ±HHMM")
    sign = -1 if code[0] == "-" else 1
    return sign * (int(code[1:3]) * 60 + int(code[3:5]))


def clock_seconds(text: str) -> float:
    """Seconds since local midnight of an ``InstantaneousBeatsPerMinute`` time.

    Exports write it in the phone's locale: ``20:14:07.68``, ``6:14:48.94 PM``,
    ``3:10:02,11 AM`` (decimal comma), with a space, a no-break or a narrow
    no-break space (U+202F, iOS 17) before AM/PM.
    """
    match = _CLOCK.fullmatch(text.replace("\u202f", " ").replace("\xa0", " ").strip())
    if match is None:
        raise ValueError(f"beat time {text!r} is not a clock time")
    hours, minutes = int(match[1]), int(match[2])
    seconds = float(match[3].replace(",", "."))
    if match[4]:
        if not 1 <= hours <= 12:
            raise ValueError(f"beat time {text!r} has hour {hours} with AM/PM")
        hours = hours % 12 + (12 if match[4].lower() == "pm" else 0)
    if hours > 23 or minutes > 59 or seconds >= 61:
        raise ValueError(f"beat time {text!r} is not a clock time")
    return hours * 3600 + minutes * 60 + seconds


class _Buffers:
    """Per (source, stream) lists of raw strings, converted and handed on in chunks."""

    def __init__(self, out: Collected) -> None:
        self.out = out
        self.lists: dict[tuple[str, Stream], tuple[list[str], list[str], list[str]]] = {}

    def append(self, source: str, stream: Stream, start: str, end: str, value: str) -> None:
        key = (source, stream)
        lists = self.lists.get(key)
        if lists is None:
            lists = self.lists[key] = ([], [], [])
        lists[0].append(start)
        lists[1].append(end)
        lists[2].append(value)
        if len(lists[0]) >= _FLUSH_ROWS:
            self.flush(key)

    def flush(self, key: tuple[str, Stream]) -> None:
        starts, ends, values = self.lists.pop(key)
        source, stream = key
        try:
            begin_us = _epoch_us(starts)
            end_us = begin_us if stream == "hr" else _epoch_us(ends)
        except ValueError:
            self._flush_slowly(key, starts, ends, values)
            return
        number = np.array([_number(v) for v in values], dtype=np.float64)
        if stream == "hr":
            self.out.add(source, "hr", time_us=begin_us, bpm=np.round(number))
        elif stream == "sdnn":
            self.out.add(source, "sdnn", time_us=end_us, sdnn_ms=number)
        else:
            self.out.add(source, "steps", time_us=end_us, begin_us=begin_us, steps=number)

    def _flush_slowly(
        self, key: tuple[str, Stream], starts: list[str], ends: list[str], values: list[str]
    ) -> None:
        """A chunk with a bad time stamp: keep the good rows, count the bad ones."""
        good_s: list[str] = []
        good_e: list[str] = []
        good_v: list[str] = []
        for s, e, v in zip(starts, ends, values, strict=True):
            try:
                _epoch_us([s, e])
            except ValueError:
                self.out.reject(f"{key[1]}: time stamp not as Apple writes it")
                continue
            good_s.append(s)
            good_e.append(e)
            good_v.append(v)
        if good_s:
            self.lists[key] = (good_s, good_e, good_v)
            self.flush(key)

    def flush_all(self) -> None:
        for key in list(self.lists):
            self.flush(key)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # counted as rejected by Collected


def _beats(el: etree._Element, start: str, source: str, out: Collected) -> None:
    """The record's InstantaneousBeatsPerMinute series as RR intervals."""
    times: list[float] = []
    bpm: list[float] = []
    for beat in el.iter("InstantaneousBeatsPerMinute"):
        try:
            times.append(clock_seconds(beat.get("time", "")))
            bpm.append(float(beat.get("bpm", "nan")))
        except ValueError:
            out.reject("rr: beat time or bpm unreadable")
    if not times:
        return
    try:
        day_start_us = int(_epoch_us([start[:10] + " 00:00:00 " + start[20:25]])[0])
        start_sod = int(start[11:13]) * 3600 + int(start[14:16]) * 60 + int(start[17:19])
    except ValueError:
        out.reject("rr: record time stamp unreadable", len(times))
        return
    sod = np.array(times)
    # A series that starts before midnight and runs past it wraps its clock times.
    sod = np.where(sod < start_sod - 12 * 3600, sod + 86_400, sod)
    rate = np.array(bpm)
    with np.errstate(divide="ignore", invalid="ignore"):
        rr_ms = np.where(rate > 0, 60_000.0 / rate, np.nan)
    out.add(
        source,
        "rr",
        time_us=day_start_us + np.round(sod * _US_PER_S).astype(np.int64),
        rr_ms=rr_ms,
    )


def hardened_iterparse(source: Any) -> etree.iterparse:
    """`lxml.etree.iterparse` over the elements under ``HealthData``, with nothing expanded.

    No entity resolution, no network, no DTD loading, lxml's limits on depth and
    text size (``huge_tree`` off); end events of the top-level elements only.
    """
    return etree.iterparse(
        source,
        events=("end",),
        tag=_TOP_LEVEL,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )


def parse(raw: IO[bytes], name: str, out: Collected) -> None:
    """Read an ``export.xml`` stream into `out`; `MalformedFileError` if it does not parse."""
    buffers = _Buffers(out)
    stream_of: dict[str, Stream] = {_HR: "hr", _SDNN: "sdnn", _STEPS: "steps"}
    try:
        events = hardened_iterparse(CleanReader(raw, name))
        append: Callable[[str, Stream, str, str, str], None] = buffers.append
        for count, (_, el) in enumerate(events, start=1):
            attrib = el.attrib
            kind = attrib.get("type")
            stream = stream_of.get(kind) if kind is not None else None
            if stream is not None:
                unit = attrib.get("unit")
                source = attrib.get("sourceName") or "Apple Health"
                start = attrib.get("startDate", "")
                if unit != _UNITS[kind]:
                    out.reject(f"{stream}: unit {unit!r} instead of {_UNITS[kind]!r}")
                elif stream == "hr":
                    append(source, stream, start, start, attrib.get("value", ""))
                else:
                    append(
                        source, stream, start, attrib.get("endDate", ""), attrib.get("value", "")
                    )
                    if stream == "sdnn" and len(el):
                        _beats(el, start, source, out)
            el.clear(keep_tail=False)
            if count % _PRUNE_EVERY == 0:
                parent = el.getparent()
                if parent is not None:
                    del parent[:-1]
        root = events.root
    except etree.XMLSyntaxError as exc:
        raise MalformedFileError(name, f"not well-formed XML: {exc}") from exc
    if root is None or root.tag != "HealthData":
        tag = "nothing" if root is None else f"<{root.tag}>"
        raise MalformedFileError(name, f"the root element is {tag}, not <HealthData>")
    buffers.flush_all()
