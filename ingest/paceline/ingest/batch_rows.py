"""The rows of an upload batch: the spool's chunks as one keyed record array per stream.

`BatchRows` is what the uploader works on between the spool and the store: validated in
one pass per stream, deduplicated by key, turned into the store's column batch. The
batch's identity (row count and digest of the spool records as read) comes from here too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from paceline.ingest.chunks import PAYLOAD, SAMPLE_DTYPES, Chunk
from paceline.ingest.held import HeldRows
from paceline.ingest.spool import SpoolBatch
from paceline.store import Batch, BatchIdentity, ColumnError, HrRows, RrRows, StepRows
from paceline.store.columns import MAX_ENERGY_KJ, Rows, problems

_KEY_FIELDS: Final = [("patient_id", "<i8"), ("device_id", "<i8")]


def _with_keys(stream: str) -> np.dtype[np.void]:
    return np.dtype(_KEY_FIELDS + SAMPLE_DTYPES[stream].descr)


_KEYED: Final = {stream: _with_keys(stream) for stream in SAMPLE_DTYPES}


@dataclass(frozen=True, eq=False)
class BatchRows:
    """The sample rows of a batch, one keyed record array per stream."""

    streams: dict[str, NDArray[np.void]]

    @classmethod
    def of_chunks(cls, chunks: list[Chunk]) -> BatchRows:
        """Concatenate the sample chunks of a spool batch, stream by stream."""
        parts: dict[str, list[NDArray[np.void]]] = {s: [] for s in SAMPLE_DTYPES}
        for chunk in chunks:
            if chunk.stream == PAYLOAD:
                continue
            samples = chunk.samples()
            keyed = np.empty(samples.size, dtype=_KEYED[chunk.stream])
            keyed["patient_id"] = chunk.patient_id
            keyed["device_id"] = chunk.device_id
            for name in samples.dtype.names or ():
                keyed[name] = samples[name]
            parts[chunk.stream].append(keyed)
        return cls(
            {s: np.concatenate(p) if p else np.empty(0, dtype=_KEYED[s]) for s, p in parts.items()}
        )

    def __len__(self) -> int:
        return sum(int(a.size) for a in self.streams.values())

    def without(self, stream: str, index: NDArray[np.intp]) -> BatchRows:
        """Everything except the rows at `index` of `stream`."""
        keep = np.ones(self.streams[stream].size, dtype=np.bool_)
        keep[index] = False
        return BatchRows({s: (a[keep] if s == stream else a) for s, a in self.streams.items()})

    def row(self, stream: str, i: int) -> dict[str, Any]:
        """One row as JSON-able values (for quarantine)."""
        record = self.streams[stream][i]
        names = record.dtype.names or ()
        return {name: record[name].item() for name in names}

    def rows_per_device(self) -> dict[int, int]:
        """How many rows each device has in these columns."""
        counts: dict[int, int] = {}
        for a in self.streams.values():
            ids, n = np.unique(a["device_id"], return_counts=True)
            for device_id, count in zip(ids.tolist(), n.tolist(), strict=True):
                counts[device_id] = counts.get(device_id, 0) + count
        return counts

    def dedupe(self, held: HeldRows) -> tuple[BatchRows, int]:
        """Drop rows repeating an earlier row's (patient, device, time) key, as the writer would.

        Done here so that a row number in the writer's rejection is a row number of ours.
        A repeat whose values differ is a second reading for one key, which the writer
        refuses: it is set aside (with the first kept) rather than failing the batch.
        """
        out: dict[str, NDArray[np.void]] = {}
        dropped = 0
        for s, a in self.streams.items():
            order = np.lexsort((a["time_us"], a["device_id"], a["patient_id"]))
            p, d, t = a["patient_id"][order], a["device_id"][order], a["time_us"][order]
            first = np.ones(order.size, dtype=np.bool_)
            first[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1]) | (t[1:] != t[:-1])
            if first.all():
                out[s] = a
                continue
            head = order[np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
            conflict = np.zeros(order.size, dtype=np.bool_)
            for name in SAMPLE_DTYPES[s].names or ():
                if name not in ("time_us", "received_us"):
                    conflict |= ~first & (a[name][order] != a[name][head])
            for k in np.flatnonzero(conflict).tolist():
                i = int(order[k])
                reason = (
                    f"a second {s} reading for the time of row {int(head[k])}, with other values"
                )
                held.add(s, reason, self.row(s, i), int(a["device_id"][i]))
            keep = np.sort(order[first])
            dropped += int(a.size - keep.size - np.count_nonzero(conflict))
            out[s] = a[keep]
        return BatchRows(out), dropped

    def checked_rows(self, stream: str) -> tuple[Rows, dict[int, str]]:
        """Store columns for one stream, and every row no device could have sent, with why.

        Every check runs once over the whole stream (a batch with 50,000 bad rows costs
        one pass, not one per bad row).
        """
        a = self.streams[stream]
        time_col = a["time_us"].astype("datetime64[us]")
        rows: Rows
        if stream == "hr":
            hr, checks = HrRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                bpm=a["bpm"],
            )
            energy = a["energy_kj"].astype(np.int64)
            checks.append(
                (
                    (energy < -1) | (energy > MAX_ENERGY_KJ),
                    lambda i: f"energy_kj {energy[i]} is outside 0..{MAX_ENERGY_KJ}",
                )
            )
            # The spool's sentinels (-1) map straight onto the writer's own encoding, without
            # a per-row Python detour through None that would halve the drain rate.
            rows = dataclasses.replace(
                hr,
                sensor_contact=np.clip(a["contact"], -1, 1).astype(np.int8),
                energy_kj=np.clip(energy, 0, MAX_ENERGY_KJ).astype(np.int32),
                energy_present=energy >= 0,
            )
        elif stream == "rr":
            rows, checks = RrRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                rr_ms=a["rr_ms"],
            )
        else:
            rows, checks = StepRows.checked(
                patient_id=a["patient_id"],
                device_id=a["device_id"],
                time=time_col,
                steps=a["steps"],
            )
        return rows, problems(checks, int(a.size))

    def to_rows(self, stream: str) -> Rows:
        """Validated store columns for one stream; raises `ColumnError` naming the first bad row."""
        rows, bad = self.checked_rows(stream)
        if bad:
            i, reason = next(iter(bad.items()))
            raise ColumnError(stream, i, reason)
        return rows

    def to_batch(self, batch_id: str) -> Batch:
        """A store batch of these columns; raises `ColumnError` if a value is invalid."""
        made: dict[str, Any] = {}
        for s, a in self.streams.items():
            if a.size:
                made[s] = self.to_rows(s)
        return Batch(batch_id, hr=made.get("hr"), rr=made.get("rr"), steps=made.get("steps"))


def spool_identity(batch: SpoolBatch) -> BatchIdentity:
    """What the batch id stands for: the spool's records as read, before anything was set aside.

    Independent of what the database decides (routing, quarantine), so a replay of the
    same records is recognised as one, and the same id offered for other records is not.
    """
    digest = hashlib.sha256()
    for seq, chunk in batch.chunks:
        digest.update(
            f"{seq}:{chunk.stream}:{chunk.patient_id}:{chunk.device_id}:{chunk.count}:".encode()
        )
        digest.update(chunk.data)
    for record in batch.corrupt:
        digest.update(f"{record.seq}:corrupt:".encode())
    return BatchIdentity(
        row_count=batch.rows + len(batch.corrupt),
        digest=digest.digest(),
        spool_id=batch.spool_id,
        first_seq=batch.first_seq,
        last_seq=batch.last_seq,
    )


__all__ = ["BatchRows", "spool_identity"]
