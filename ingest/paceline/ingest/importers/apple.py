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

import math
import re
from collections.abc import Iterator
from typing import IO, Any, Final

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from paceline.ingest.importers.collect import Collected, Stream
from paceline.ingest.importers.errors import MalformedFileError, UnsafeXmlError

_HR: Final = "HKQuantityTypeIdentifierHeartRate"
_SDNN: Final = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
_STEPS: Final = "HKQuantityTypeIdentifierStepCount"
#: The record types read, in the order of their codes, with their stream and unit.
_KINDS: Final = (_HR, _SDNN, _STEPS)
_STREAMS: Final[tuple[tuple[Stream, str], ...]] = (
    ("hr", "count/min"),
    ("sdnn", "ms"),
    ("steps", "count"),
)
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
        """Up to `size` bytes of the cleaned document.

        `size` is honoured: lxml keeps what it is given beyond its request and
        copies that remainder again on every later read, so larger pieces cost more.
        """
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._raw.read(_READ_BYTES if size is None or size < 0 else size)
        return data.translate(None, _CONTROL)


#: Where the digits and separators of ``YYYY-MM-DD HH:MM:SS ±HHMM`` sit.
_STAMP_LEN: Final = 25
_DIGITS: Final = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 21, 22, 23, 24)
_SEPARATORS: Final = ((4, "-"), (7, "-"), (10, " "), (13, ":"), (16, ":"), (19, " "))
_EPOCH_MONTH: Final = np.datetime64("1970-01", "M")


def epoch_us(stamps: list[str]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """``YYYY-MM-DD HH:MM:SS ±HHMM`` strings to epoch µs, and which of them were well formed.

    Vectorised over the characters of the strings (one numpy array per chunk, no
    Python work per stamp): an export holds one or two stamps per record and
    millions of records. A stamp that is not exactly in this form, or names a
    day or time that does not exist, is marked False (its time is 0).
    """
    n = len(stamps)
    joined = "".join(stamps)
    if len(joined) == n * _STAMP_LEN and joined.isascii():
        # The usual case: every stamp is 25 ASCII characters, one byte each.
        chars: NDArray[np.integer] = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(
            n, _STAMP_LEN
        )
        ok = np.ones(n, np.bool_)
    else:
        text = np.array(stamps, dtype=np.str_) if n else np.empty(0, dtype="<U25")
        width = text.dtype.itemsize // 4
        if width < _STAMP_LEN:
            return np.zeros(n, np.int64), np.zeros(n, np.bool_)
        wide = text.view(np.uint32).reshape(n, width)
        ok = (wide[:, _STAMP_LEN:] == 0).all(axis=1)
        chars = wide[:, :_STAMP_LEN]
    digit = chars[:, list(_DIGITS)].astype(np.int64) - ord("0")
    ok &= ((digit >= 0) & (digit <= 9)).all(axis=1)
    for column, sep in _SEPARATORS:
        ok &= chars[:, column] == ord(sep)
    sign = chars[:, 20]
    ok &= (sign == ord("+")) | (sign == ord("-"))
    d = np.where(ok[:, None], digit, 0)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    hour, minute, second = (
        d[:, 8] * 10 + d[:, 9],
        d[:, 10] * 10 + d[:, 11],
        d[:, 12] * 10 + d[:, 13],
    )
    offset_min = (d[:, 14] * 10 + d[:, 15]) * 60 + d[:, 16] * 10 + d[:, 17]
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59)
    ok &= (second <= 59) & (offset_min <= 18 * 60)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0)
    first = (_EPOCH_MONTH + months).astype("datetime64[D]").astype(np.int64)
    following = (_EPOCH_MONTH + months + 1).astype("datetime64[D]").astype(np.int64)
    ok &= day <= following - first
    offset_min = np.where(sign == ord("-"), -offset_min, offset_min)
    seconds = (first + day - 1) * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60
    return np.where(ok, seconds * _US_PER_S, 0), ok


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


def _numbers(values: list[str]) -> NDArray[np.float64]:
    """Attribute values as floats; a value that is no number becomes NaN (and is rejected)."""
    try:
        return np.fromiter(map(float, values), np.float64, count=len(values))
    except ValueError:
        return np.array([_number(v) for v in values], dtype=np.float64)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # counted as rejected by Collected


class _Records:
    """The attributes of the records read since the last flush, one list per attribute.

    The parse loop only appends the strings lxml hands it; turning them into
    numbers and grouping by source happen here, vectorised, once per
    `_FLUSH_ROWS` records. Heart rate, most of an export, is kept apart from the
    interval records (SDNN, steps) because it needs no end time. Beat-to-beat
    series are converted as their record is read (they are rare: one per SDNN
    record) and kept until the same flush.
    """

    def __init__(self, out: Collected) -> None:
        self.out = out
        self.hr_sources: list[str] = []
        self.hr_starts: list[str] = []
        self.hr_values: list[str] = []
        self.kinds: list[int] = []
        self.sources: list[str] = []
        self.starts: list[str] = []
        self.ends: list[str] = []
        self.values: list[str] = []
        #: Per source: beat times (epoch µs) and RR intervals (ms).
        self.beats: dict[str, tuple[list[int], list[float]]] = {}
        self._midnights: dict[str, int | None] = {}

    def midnight_us(self, start: str) -> int | None:
        """Epoch µs of the local midnight starting the day of time stamp `start` (None: unreadable)."""
        key = start[:10] + " 00:00:00 " + start[20:25]
        if key not in self._midnights:
            time_us, ok = epoch_us([key])
            well_formed = (
                ok[0] and len(start) == _STAMP_LEN and start[11:19].replace(":", "").isdigit()
            )
            self._midnights[key] = int(time_us[0]) if well_formed else None
        return self._midnights[key]

    def wrong_unit(self, code: int, unit: str | None) -> None:
        """Set aside a record whose unit is not the one its type is read in."""
        stream, expected = _STREAMS[code]
        self.out.reject(f"{stream}: unit {unit!r} instead of {expected!r}")

    def flush(self) -> None:
        """Hand everything read so far to `out`, by source and stream."""
        out = self.out
        if self.hr_starts:
            time_us, ok = epoch_us(self.hr_starts)
            bpm = np.round(_numbers(self.hr_values))
            out.reject("hr: time stamp not as Apple writes it", int((~ok).sum()))
            for source, mine in _by_source(self.hr_sources, ok):
                out.add(source, "hr", time_us=time_us[mine], bpm=bpm[mine])
        if self.kinds:
            kinds = np.fromiter(self.kinds, np.int8, count=len(self.kinds))
            begin_us, begin_ok = epoch_us(self.starts)
            end_us, end_ok = epoch_us(self.ends)
            value = _numbers(self.values)
            ok = begin_ok & end_ok
            for code, (stream, _) in enumerate(_STREAMS):
                out.reject(
                    f"{stream}: time stamp not as Apple writes it",
                    int((~ok & (kinds == code)).sum()),
                )
            sdnn, steps = kinds == _KINDS.index(_SDNN), kinds == _KINDS.index(_STEPS)
            for source, mine in _by_source(self.sources, ok):
                rows = mine & sdnn
                if rows.any():
                    out.add(source, "sdnn", time_us=end_us[rows], sdnn_ms=value[rows])
                rows = mine & steps
                if rows.any():
                    out.add(
                        source,
                        "steps",
                        time_us=end_us[rows],
                        begin_us=begin_us[rows],
                        steps=value[rows],
                    )
        for source, (times, rr_ms) in self.beats.items():
            out.add(source, "rr", time_us=np.array(times, np.int64), rr_ms=np.array(rr_ms))
        self.beats.clear()
        for column in (
            self.hr_sources,
            self.hr_starts,
            self.hr_values,
            self.kinds,
            self.sources,
            self.starts,
            self.ends,
            self.values,
        ):
            column.clear()


def _by_source(
    sources: list[str], keep: NDArray[np.bool_]
) -> Iterator[tuple[str, NDArray[np.bool_]]]:
    """Each source (in the order the file first names it) with the mask of its rows to keep."""
    names = list(dict.fromkeys(sources))  # a dict keeps insertion order
    if len(names) == 1:
        yield names[0] or "Apple Health", keep
        return
    index = {name: i for i, name in enumerate(names)}
    source_of = np.fromiter(map(index.__getitem__, sources), np.int32, count=len(sources))
    for i, name in enumerate(names):
        yield name or "Apple Health", keep & (source_of == i)


def _beats(el: etree._Element, start: str, source: str, records: _Records) -> None:
    """The record's InstantaneousBeatsPerMinute series as RR intervals.

    Plain Python per beat (a series is about 60 beats, a few per hour of an
    export), kept in lists until the flush: numpy per record would cost more.
    """
    out = records.out
    midnight = records.midnight_us(start)
    if midnight is None:
        out.reject(
            "rr: record time stamp unreadable",
            sum(1 for _ in el.iter("InstantaneousBeatsPerMinute")),
        )
        return
    # A series that starts before midnight and runs past it wraps its clock times.
    wrap_below = int(start[11:13]) * 3600 + int(start[14:16]) * 60 + int(start[17:19]) - 12 * 3600
    times, rr_ms = records.beats.setdefault(source or "Apple Health", ([], []))
    for beat in el.iter("InstantaneousBeatsPerMinute"):
        try:
            sod = clock_seconds(beat.get("time", ""))
            bpm = float(beat.get("bpm", "nan"))
        except ValueError:
            out.reject("rr: beat time or bpm unreadable")
            continue
        if sod < wrap_below:
            sod += 86_400
        times.append(midnight + round(sod * _US_PER_S))
        rr_ms.append(60_000.0 / bpm if bpm > 0 else math.nan)


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
    records = _Records(out)
    code_of = {kind: code for code, kind in enumerate(_KINDS)}
    unit_of = tuple(unit for _, unit in _STREAMS)
    hr, sdnn = code_of[_HR], code_of[_SDNN]
    # The loop runs once per element of a multi-GB file: it looks up the record's
    # type, compares its unit and appends the attribute strings as lxml returns
    # them, nothing more.
    hr_sources, hr_starts = records.hr_sources.append, records.hr_starts.append
    hr_values, hr_rows = records.hr_values.append, records.hr_starts
    kinds, sources = records.kinds.append, records.sources.append
    starts, ends, values = records.starts.append, records.ends.append, records.values.append
    try:
        events = hardened_iterparse(CleanReader(raw, name))
        for count, (_, el) in enumerate(events, start=1):
            get = el.get
            code = code_of.get(get("type", ""))
            if code is not None:
                unit = get("unit")
                if unit != unit_of[code]:
                    records.wrong_unit(code, unit)
                elif code == hr:
                    hr_sources(get("sourceName", ""))
                    hr_starts(get("startDate", ""))
                    hr_values(get("value", ""))
                    if len(hr_rows) >= _FLUSH_ROWS:
                        records.flush()
                else:
                    kinds(code)
                    source = get("sourceName", "")
                    sources(source)
                    start = get("startDate", "")
                    starts(start)
                    ends(get("endDate", ""))
                    values(get("value", ""))
                    if code == sdnn and len(el):
                        _beats(el, start, source, records)
                    if len(records.kinds) >= _FLUSH_ROWS:
                        records.flush()
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
    records.flush()
