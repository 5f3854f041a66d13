"""Spool records: packed columns that read back exactly, and checksums that catch any change."""

from __future__ import annotations

import numpy as np
import pytest

from paceline.ingest.chunks import PAYLOAD, Chunk, RecordError, SampleBuffer


def _buffer_with_everything() -> SampleBuffer:
    buffer = SampleBuffer()
    buffer.add_hr(
        1, 10, time_us=1_000, received_us=1_005, bpm=72, sensor_contact=True, energy_kj=None
    )
    buffer.add_hr(
        1, 10, time_us=2_000, received_us=2_004, bpm=74, sensor_contact=None, energy_kj=12
    )
    buffer.add_rr(1, 10, time_us=1_000, received_us=1_005, rr_ms=812.5)
    buffer.add_steps(2, 20, time_us=5_000, received_us=5_001, steps=3)
    buffer.add_payload(1, 10, {"hex": "0148", "reason": "truncated"})
    return buffer


def test_a_taken_buffer_groups_rows_by_stream_and_device() -> None:
    buffer = _buffer_with_everything()
    assert len(buffer) == 5
    chunks = {(c.stream, c.device_id): c for c in buffer.take()}
    assert len(buffer) == 0
    assert set(chunks) == {("hr", 10), ("rr", 10), ("steps", 20), (PAYLOAD, 10)}
    hr = chunks[("hr", 10)].samples()
    assert hr["bpm"].tolist() == [72, 74]
    assert hr["contact"].tolist() == [1, -1]
    assert hr["energy_kj"].tolist() == [-1, 12]
    assert chunks[("rr", 10)].samples()["rr_ms"].tolist() == [812.5]
    assert chunks[(PAYLOAD, 10)].payloads() == [{"hex": "0148", "reason": "truncated"}]


def test_restored_chunks_come_back_ahead_of_newer_rows() -> None:
    buffer = SampleBuffer()
    buffer.add_rr(1, 10, time_us=1, received_us=1, rr_ms=800.0)
    failed = buffer.take()
    buffer.add_rr(1, 10, time_us=2, received_us=2, rr_ms=900.0)
    buffer.restore(failed)
    (chunk,) = buffer.take()
    assert chunk.samples()["time_us"].tolist() == [1, 2]


def test_a_verified_chunk_equals_what_was_written() -> None:
    (chunk,) = [c for c in _buffer_with_everything().take() if c.stream == "hr"]
    again = Chunk.verified(
        7,
        stream=chunk.stream,
        patient_id=chunk.patient_id,
        device_id=chunk.device_id,
        count=chunk.count,
        data=chunk.data,
        crc=chunk.crc,
    )
    assert again.data == chunk.data
    assert np.array_equal(again.samples(), chunk.samples())


@pytest.mark.parametrize("flip", [0, 9, 17, -1])
def test_any_flipped_bit_fails_the_checksum(flip: int) -> None:
    (chunk,) = [c for c in _buffer_with_everything().take() if c.stream == "hr"]
    data = bytearray(chunk.data)
    data[flip] ^= 0x10
    with pytest.raises(RecordError, match="checksum"):
        Chunk.verified(
            3,
            stream="hr",
            patient_id=chunk.patient_id,
            device_id=chunk.device_id,
            count=chunk.count,
            data=bytes(data),
            crc=chunk.crc,
        )


def test_a_record_whose_length_does_not_fit_its_stream_is_refused() -> None:
    data = b"\x00" * 7
    crc = Chunk("rr", 1, 1, 1, data).crc
    with pytest.raises(RecordError, match="do not hold"):
        Chunk.verified(4, stream="rr", patient_id=1, device_id=1, count=1, data=data, crc=crc)
