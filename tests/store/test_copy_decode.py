"""Reading binary COPY output: the stream's signature, trailer and field layout are checked."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from paceline.store.copybinary import HEADER, TRAILER, decode
from paceline.store.errors import CopyFormatError

ROW = np.dtype([("n", ">i2"), ("l0", ">i4"), ("t", ">i8"), ("l1", ">i4"), ("steps", ">i4")])


def tuple_bytes(t: int, steps: int | None) -> bytes:
    second = struct.pack(">i", -1) if steps is None else struct.pack(">ii", 4, steps)
    return struct.pack(">hiq", 2, 8, t) + second


def test_rows_come_back_as_the_record_layout() -> None:
    data = HEADER + tuple_bytes(10, 3) + tuple_bytes(20, 7) + TRAILER
    rows = decode(data, ROW)
    assert rows["t"].tolist() == [10, 20]
    assert rows["steps"].tolist() == [3, 7]


def test_no_output_is_no_rows_and_a_header_without_tuples_too() -> None:
    assert decode(b"", ROW).size == 0
    assert decode(HEADER + TRAILER, ROW).size == 0


def test_a_stream_without_the_pgcopy_signature_is_refused() -> None:
    # The old reader skipped 19 bytes whatever they were, text COPY included.
    text = b"10\t3\n20\t7\n" * 3
    with pytest.raises(CopyFormatError, match="signature"):
        decode(text, ROW)


def test_a_null_field_or_a_truncated_stream_is_refused_not_read_as_numbers() -> None:
    with pytest.raises(CopyFormatError):
        decode(HEADER + tuple_bytes(10, None) + b"\x00\x00\x00\x00" + TRAILER, ROW)
    with pytest.raises(CopyFormatError, match="end-of-data"):
        decode(HEADER + tuple_bytes(10, 3), ROW)


def test_header_flags_the_reader_does_not_handle_are_refused() -> None:
    with_oids = HEADER[:11] + struct.pack(">i", 1 << 16) + HEADER[15:]
    with pytest.raises(CopyFormatError, match="flags"):
        decode(with_oids + tuple_bytes(10, 3) + TRAILER, ROW)
