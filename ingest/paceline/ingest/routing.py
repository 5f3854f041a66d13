"""Routing an upload batch: the rows the store would refuse are set aside before sending.

Values no device could send are taken out in one validation pass; rows of a device the
store does not know or has bound to another patient, and rows from the future by the
server's clock, in one look at the database. The writer stays the authority: what it
still refuses is split out by the uploader, row by row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from paceline.ingest.batch_rows import BatchRows
from paceline.ingest.chunks import SAMPLE_DTYPES
from paceline.ingest.held import HeldRows
from paceline.store import registry
from paceline.store.writer import MAX_FUTURE_S


def route(conn: psycopg.Connection[Any], columns: BatchRows, held: HeldRows) -> BatchRows:
    """Take out rows the writer would refuse for a reason that concerns many rows at once.

    Those are rows of a device the store does not know or has bound to another patient
    (a re-bound strap's backlog), and rows from more than five minutes in the future by
    the server's clock (a gateway whose clock was stepped back). The writer would
    refuse the batch for each of them in turn; one look here saves a split per row.
    The writer stays the authority: anything it still refuses is split out later.
    """
    device_ids = sorted(columns.rows_per_device())
    if not device_ids:
        return columns
    bound, limit_us = registry.device_owners(conn, device_ids, ahead_s=MAX_FUTURE_S)
    keys = np.array(device_ids, dtype=np.int64)
    owners = np.array([-1 if bound.get(d) is None else bound[d] for d in device_ids])
    out = columns
    for stream, a in columns.streams.items():
        if not a.size:
            continue
        owner = owners[np.searchsorted(keys, a["device_id"])]
        wrong = np.flatnonzero((owner != a["patient_id"]) | (a["time_us"] > limit_us))
        if not wrong.size:
            continue
        for i in wrong.tolist():
            device_id = int(a["device_id"][i])
            if device_id not in bound:
                reason = f"unknown device {device_id}"
            elif bound[device_id] is None:
                reason = f"device {device_id} is not bound to a patient"
            elif bound[device_id] != int(a["patient_id"][i]):
                reason = (
                    f"device {device_id} is bound to patient {bound[device_id]},"
                    f" not patient {int(a['patient_id'][i])}"
                )
            else:
                reason = f"time is more than {MAX_FUTURE_S // 60} minutes in the future"
            held.add(stream, reason, columns.row(stream, i), device_id)
        out = out.without(stream, wrong)
    return out


def take_out_invalid(columns: BatchRows, held: HeldRows) -> BatchRows:
    """Take out, in one pass per stream, the rows holding values no device could send."""
    out = columns
    for stream in SAMPLE_DTYPES:
        if not out.streams[stream].size:
            continue
        _rows, bad = out.checked_rows(stream)
        if not bad:
            continue
        for i, reason in bad.items():
            row = out.row(stream, i)
            held.add(stream, reason, row, int(row["device_id"]))
        out = out.without(stream, np.fromiter(bad, dtype=np.intp, count=len(bad)))
    return out


__all__ = ["route", "take_out_invalid"]
