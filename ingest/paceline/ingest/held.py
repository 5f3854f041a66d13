"""Rows set aside from an upload batch: with the reason, bound for `ingest_quarantine`.

A batch sets rows aside for what the spool itself says (payloads that did not decode,
records that failed their checksum) and for what the store would refuse (see
`paceline.ingest.routing`). They are quarantined in the batch's own transaction, so the
attempt that claims the batch id decides them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from paceline.ingest.chunks import PAYLOAD
from paceline.ingest.spool import CorruptRecord, SpoolBatch

MAX_QUARANTINED_HEX: Final = 65_536
"""Raw bytes kept of a corrupt spool record, as hex characters: enough to inspect it,
bounded so that one damaged megabyte does not bloat the quarantine table."""


@dataclass
class HeldRows:
    """Rows set aside from one batch, with their reasons, and how many each device had."""

    by_key: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    per_device: dict[int, int] = field(default_factory=dict)

    def add(self, stream: str, reason: str, row: dict[str, Any], device_id: int) -> None:
        """Set one row aside, with why, and count it against its device."""
        self.by_key.setdefault((stream, reason), []).append(row)
        self.per_device[device_id] = self.per_device.get(device_id, 0) + 1

    def __len__(self) -> int:
        """How many rows are set aside."""
        return sum(len(rows) for rows in self.by_key.values())

    def entries(self) -> list[tuple[str, dict[str, Any], str]]:
        """(stream, row, reason) of every held row, as `write_batch(quarantined=...)` takes them."""
        return [
            (stream, row, reason)
            for (stream, reason), rows in sorted(self.by_key.items())
            for row in rows
        ]


def held_unreadable(batch: SpoolBatch) -> HeldRows:
    """The rows a spool batch sets aside by itself: rejected payloads and corrupt records."""
    held = HeldRows()
    for seq, chunk in batch.chunks:
        if chunk.stream == PAYLOAD:
            for item in chunk.payloads():
                held.add(
                    PAYLOAD,
                    str(item.get("reason", "malformed payload")),
                    {**item, "spool_seq": seq},
                    chunk.device_id,
                )
    for record in batch.corrupt:
        held.add(
            PAYLOAD,
            f"spool record failed its check: {record.reason}",
            _corrupt_row(record),
            record.device_id,
        )
    return held


def _corrupt_row(record: CorruptRecord) -> dict[str, Any]:
    raw = record.raw_hex
    return {
        "spool_seq": record.seq,
        "hex": None if raw is None else raw[:MAX_QUARANTINED_HEX],
        "truncated": raw is not None and len(raw) > MAX_QUARANTINED_HEX,
    }


__all__ = ["MAX_QUARANTINED_HEX", "HeldRows", "held_unreadable"]
