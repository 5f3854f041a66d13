"""PostgreSQL binary COPY data with numpy, no per-row Python: column batches in, record arrays out.

The format (PostgreSQL docs, "COPY … Binary Format"): an 11-byte signature,
int32 flags, int32 header-extension length, then per tuple an int16 field
count and, per field, an int32 byte length (-1 for NULL) followed by the value
in network byte order; an int16 -1 ends the stream. timestamptz travels as
int64 microseconds since 2000-01-01 UTC.

Each row is laid out as a packed big-endian numpy record, so a whole column
batch becomes one `tobytes()`. Rows with NULLs have a different length, so
rows are grouped by which fields are NULL and each group is encoded on its own
(row order within a COPY does not matter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from paceline.store.columns import HrRows, Rows, RrRows, SdnnRows, StepRows
from paceline.store.errors import CopyFormatError

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
# Seconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
PG_EPOCH_OFFSET_US = 946_684_800 * 1_000_000


def _field(name: str, code: str) -> list[tuple[str, str]]:
    return [(f"{name}_len", ">i4"), (name, code)]


def _dtype(*fields: list[tuple[str, str]]) -> np.dtype[np.void]:
    flat: list[tuple[str, str]] = [("nfields", ">i2")]
    for f in fields:
        flat.extend(f)
    return np.dtype(flat)


_KEYS = (_field("patient_id", ">i8"), _field("device_id", ">i8"), _field("time", ">i8"))
_RR = _dtype(*_KEYS, _field("rr_ms", ">f8"))
_STEPS = _dtype(*_KEYS, _field("steps", ">i4"))
_SDNN = _dtype(*_KEYS, _field("sdnn_ms", ">f8"))


def _null(name: str) -> list[tuple[str, str]]:
    return [(f"{name}_len", ">i4")]


def _fill_keys(rec: NDArray[np.void], rows: Rows, index: NDArray[np.intp] | slice) -> None:
    rec["patient_id_len"] = 8
    rec["patient_id"] = rows.patient_id[index]
    rec["device_id_len"] = 8
    rec["device_id"] = rows.device_id[index]
    rec["time_len"] = 8
    rec["time"] = rows.time_us[index] - PG_EPOCH_OFFSET_US


def _encode_float8(rows: Rows, dtype: np.dtype[np.void], name: str, values: NDArray[Any]) -> bytes:
    rec = np.empty(len(rows), dtype=dtype)
    rec["nfields"] = 4
    _fill_keys(rec, rows, slice(None))
    rec[f"{name}_len"] = 8
    rec[name] = values
    return HEADER + rec.tobytes() + TRAILER


def encode_rr(rows: RrRows) -> bytes:
    """Binary COPY payload for `rr_interval (patient_id, device_id, time, rr_ms)`."""
    return _encode_float8(rows, _RR, "rr_ms", rows.rr_ms)


def encode_steps(rows: StepRows) -> bytes:
    """Binary COPY payload for `step_sample (patient_id, device_id, time, steps)`."""
    rec = np.empty(len(rows), dtype=_STEPS)
    rec["nfields"] = 4
    _fill_keys(rec, rows, slice(None))
    rec["steps_len"] = 4
    rec["steps"] = rows.steps
    return HEADER + rec.tobytes() + TRAILER


def encode_sdnn(rows: SdnnRows) -> bytes:
    """Binary COPY payload for `hrv_sdnn_sample (patient_id, device_id, time, sdnn_ms)`."""
    return _encode_float8(rows, _SDNN, "sdnn_ms", rows.sdnn_ms)


def encode_hr(rows: HrRows) -> bytes:
    """Binary COPY payload for `hr_sample (patient_id, device_id, time, bpm, sensor_contact, energy_kj)`."""
    parts = [HEADER]
    has_contact = rows.sensor_contact >= 0
    for contact in (True, False):
        for energy in (True, False):
            index = np.flatnonzero((has_contact == contact) & (rows.energy_present == energy))
            if index.size == 0:
                continue
            dtype = _dtype(
                *_KEYS,
                _field("bpm", ">i2"),
                _field("contact", "u1") if contact else _null("contact"),
                _field("energy", ">i4") if energy else _null("energy"),
            )
            rec = np.empty(index.size, dtype=dtype)
            rec["nfields"] = 6
            _fill_keys(rec, rows, index)
            rec["bpm_len"] = 2
            rec["bpm"] = rows.bpm[index]
            if contact:
                rec["contact_len"] = 1
                rec["contact"] = rows.sensor_contact[index]
            else:
                rec["contact_len"] = -1
            if energy:
                rec["energy_len"] = 4
                rec["energy"] = rows.energy_kj[index]
            else:
                rec["energy_len"] = -1
            parts.append(rec.tobytes())
    parts.append(TRAILER)
    return b"".join(parts)


def encode(rows: Rows) -> bytes:
    """Binary COPY payload for any stream's rows."""
    if isinstance(rows, HrRows):
        return encode_hr(rows)
    if isinstance(rows, RrRows):
        return encode_rr(rows)
    if isinstance(rows, SdnnRows):
        return encode_sdnn(rows)
    return encode_steps(rows)


#: The fixed part of the header: the 11-byte signature, int32 flags (0: no OIDs).
SIGNATURE = HEADER[:11]


def decode(data: bytes, dtype: np.dtype[Any]) -> NDArray[Any]:
    """Rows of a binary `COPY … TO STDOUT (FORMAT BINARY)` stream as a packed numpy record array.

    `dtype` lays out one tuple: an ``>i2`` field count, then per field an ``>i4``
    length and the value (the shape `encode` writes). The stream's signature,
    flags, header extension and trailer are checked, and so is every tuple's
    field count and field lengths, so a NULL, a column of another type or a
    truncated stream raises `CopyFormatError` instead of turning into numbers.
    An empty `data` (no COPY output at all) is no rows.
    """
    if not data:
        return np.zeros(0, dtype=dtype)
    if data[:11] != SIGNATURE:
        raise CopyFormatError("missing PGCOPY signature")
    if len(data) < 19 + len(TRAILER):
        raise CopyFormatError("shorter than its header and trailer")
    flags = int.from_bytes(data[11:15], "big", signed=True)
    # Bits 0-15 flag critical format changes and bit 16 says OIDs follow: neither is read here.
    if flags & 0xFFFF or flags & (1 << 16):
        raise CopyFormatError(f"unsupported header flags {flags:#x}")
    extension = int.from_bytes(data[15:19], "big", signed=True)
    start = 19 + extension
    if data[-len(TRAILER) :] != TRAILER:
        raise CopyFormatError("missing end-of-data marker")
    body = data[start : -len(TRAILER)]
    if len(body) % dtype.itemsize:
        raise CopyFormatError(
            f"{len(body)} bytes of tuples are not a whole number of {dtype.itemsize}-byte rows"
        )
    rows = np.frombuffer(body, dtype=dtype)
    names = dtype.names or ()
    layout = dtype.fields
    if layout is None or len(names) % 2 != 1:
        raise CopyFormatError("the row layout must be a count and (length, value) pairs")
    fields = (len(names) - 1) // 2
    if rows.size and not (rows[names[0]] == fields).all():
        raise CopyFormatError(f"a tuple without {fields} fields")
    for length, value in zip(names[1::2], names[2::2], strict=True):
        size = layout[value][0].itemsize
        if rows.size and not (rows[length] == size).all():
            raise CopyFormatError(f"field {value}: NULL or not {size} bytes")
    return rows
