"""Where parsers put what they read: per source and stream, in temporary files, checked.

A parser of a multi-gigabyte export must not hold what it has read in memory,
and must not write any of it to the database before the whole file has parsed
(a file that turns out broken halfway would leave half an import). So values
are range-checked here and appended, as raw numpy columns, to files in a
private temporary directory; the loader reads them back by memory map once the
parser has finished. Rows no device could have produced are counted as
rejected with their reason, never stored.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from paceline.store.columns import MAX_BPM, MAX_RR_MS, MAX_STEPS_PER_ROW
from paceline.store.writer import MAX_FUTURE_S

Stream = Literal["hr", "rr", "steps", "sdnn"]
STREAMS: Final[tuple[Stream, ...]] = ("hr", "rr", "steps", "sdnn")
# Columns of each stream as stored in the temporary files: times in epoch µs,
# then the value (steps carry the start of their interval as well).
_LAYOUT: Final[dict[Stream, tuple[tuple[str, type[np.generic]], ...]]] = {
    "hr": (("time_us", np.int64), ("bpm", np.float64)),
    "rr": (("time_us", np.int64), ("rr_ms", np.float64)),
    "sdnn": (("time_us", np.int64), ("sdnn_ms", np.float64)),
    "steps": (("time_us", np.int64), ("begin_us", np.int64), ("steps", np.float64)),
}
_US_PER_S: Final = 1_000_000


@dataclass
class _Spill:
    files: dict[str, Path]
    index: int
    rows: int = 0


@dataclass
class Collected:
    """Everything one file held, by source (the app or device that recorded it) and stream."""

    workdir: Path
    timezone: str = "UTC"
    #: Rows before 1 January of this year are refused (the writer refuses them too).
    birth_year: int | None = None
    now_us: int = field(default_factory=lambda: int(time.time() * _US_PER_S))
    rejected: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    #: Told (source, its index, stream, rows kept so far) after every `add`, so that a
    #: writer can store full batches while the parser is still reading the file.
    on_rows: Callable[[str, int, Stream, int], None] | None = None
    _spills: dict[tuple[str, Stream], _Spill] = field(default_factory=dict)
    _sources: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """Sources in the order the file first mentioned them."""
        return list(self._sources)

    def rows(self, source: str, stream: Stream) -> int:
        """How many accepted rows `source` has in `stream`."""
        spill = self._spills.get((source, stream))
        return spill.rows if spill else 0

    def reject(self, reason: str, n: int = 1) -> None:
        """Count `n` rows set aside for `reason`."""
        if n:
            self.rejected[reason] += n

    def add(self, source: str, stream: Stream, **columns: NDArray[np.generic]) -> None:
        """Check and keep rows of `stream` from `source`; the columns are named as in the layout."""
        layout = _LAYOUT[stream]
        arrays = [np.asarray(columns[name], dtype=dtype) for name, dtype in layout]
        n = arrays[0].shape[0]
        if n == 0:
            return
        keep = self._valid(stream, arrays)
        if not keep.all():
            arrays = [a[keep] for a in arrays]
        if arrays[0].shape[0] == 0:
            return
        spill = self._spills.get((source, stream))
        if spill is None:
            if source not in self._sources:
                self._sources.append(source)
            index = self._sources.index(source)
            spill = _Spill(
                {name: self.workdir / f"{index}.{stream}.{name}" for name, _ in layout}, index=index
            )
            self._spills[(source, stream)] = spill
        for (name, _), array in zip(layout, arrays, strict=True):
            with spill.files[name].open("ab") as fh:
                array.tofile(fh)
        spill.rows += int(arrays[0].shape[0])
        if self.on_rows is not None:
            self.on_rows(source, spill.index, stream, spill.rows)

    def _valid(self, stream: Stream, arrays: list[NDArray[np.generic]]) -> NDArray[np.bool_]:
        t = arrays[0].astype(np.int64)
        value = arrays[-1].astype(np.float64)
        keep = np.ones(t.shape[0], dtype=np.bool_)

        def drop(mask: NDArray[np.bool_], reason: str) -> None:
            hit = mask & keep
            self.reject(reason, int(hit.sum()))
            keep[hit] = False

        drop(~np.isfinite(value), f"{stream}: value missing or not a number")
        drop(t > self.now_us + MAX_FUTURE_S * _US_PER_S, f"{stream}: time in the future")
        drop(t <= 0, f"{stream}: time before 1970")
        if self.birth_year is not None:
            born_us = int(
                (np.datetime64(f"{self.birth_year:04d}-01-01", "us") - np.datetime64(0, "us"))
                / np.timedelta64(1, "us")
            )
            drop(t < born_us, f"{stream}: time before the patient's birth year")
        if stream == "hr":
            drop((value < 0.5) | (value >= MAX_BPM + 0.5), f"hr: bpm outside 1..{MAX_BPM}")
        elif stream in ("rr", "sdnn"):
            drop((value <= 0) | (value > MAX_RR_MS), f"{stream}: ms outside (0, {MAX_RR_MS:g}]")
        else:
            begin = arrays[1].astype(np.int64)
            drop((value < 0) | (value > MAX_STEPS_PER_ROW), "steps: count negative or too large")
            drop(begin > t, "steps: interval ends before it starts")
        return keep

    def columns(self, source: str, stream: Stream) -> dict[str, NDArray[np.generic]]:
        """The accepted rows of `source` in `stream`, memory-mapped from the temporary files."""
        spill = self._spills.get((source, stream))
        if spill is None or spill.rows == 0:
            return {name: np.empty(0, dtype=dtype) for name, dtype in _LAYOUT[stream]}
        return {
            name: np.memmap(spill.files[name], dtype=dtype, mode="r", shape=(spill.rows,))
            for name, dtype in _LAYOUT[stream]
        }

    def read(
        self, source: str, stream: Stream, start: int, stop: int
    ) -> dict[str, NDArray[np.generic]]:
        """Rows `start` to `stop` (exclusive) of `source` in `stream`, read from the files.

        Safe while the parser is still adding rows: rows already counted are
        never written again, only appended after.
        """
        spill = self._spills[(source, stream)]
        if not 0 <= start <= stop <= spill.rows:
            raise IndexError(f"rows {start}-{stop} of {source!r} {stream}: {spill.rows} kept")
        return {
            name: np.fromfile(
                spill.files[name],
                dtype=dtype,
                count=stop - start,
                offset=start * np.dtype(dtype).itemsize,
            )
            for name, dtype in _LAYOUT[stream]
        }

    def spans(self) -> Iterator[tuple[int, int]]:
        """(first, last) time in µs of each non-empty (source, stream)."""
        for (source, stream), spill in self._spills.items():
            if spill.rows:
                t = self.columns(source, stream)["time_us"]
                begin = self.columns(source, stream).get("begin_us", t)
                yield int(np.min(begin)), int(np.max(t))
