"""The spool: durable records under a sequence that never repeats, replayable batches, corruption set aside."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paceline.ingest.chunks import Chunk, SampleBuffer
from paceline.ingest.gateway_state import DeviceBinding
from paceline.ingest.spool import Spool
from paceline.ingest.spool_file import SpoolError


def _chunk(first_us: int, n: int, *, device_id: int = 10, patient_id: int = 1) -> Chunk:
    buffer = SampleBuffer()
    for i in range(n):
        t = first_us + i * 1_000_000
        buffer.add_rr(patient_id, device_id, time_us=t, received_us=t, rr_ms=800.0 + i)
    (chunk,) = buffer.take()
    return chunk


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool.open(tmp_path / "spool" / "spool.sqlite", gateway_id="gw-test")


def test_batches_cover_the_records_in_order_under_deterministic_ids(spool: Spool) -> None:
    for k in range(5):
        spool.append([_chunk(k * 10_000_000, 4)])
    batch = spool.next_batch(max_rows=8)
    assert batch is not None
    assert (batch.first_seq, batch.last_seq, batch.rows) == (1, 2, 8)
    assert batch.batch_id == f"gw-test/{spool.spool_id}:1-2"
    spool.ack(batch)
    rest = spool.next_batch(max_rows=100)
    assert rest is not None
    assert (rest.first_seq, rest.last_seq, rest.rows) == (3, 5, 12)


def test_an_unacknowledged_batch_is_offered_again_under_the_same_id(
    spool: Spool, tmp_path: Path
) -> None:
    spool.append([_chunk(0, 3)])
    planned = spool.next_batch()
    assert planned is not None
    spool.append([_chunk(50_000_000, 3)])  # arrives while the batch is in flight
    spool.close()
    reopened = Spool.open(spool.path)
    again = reopened.next_batch()
    assert again is not None
    assert (again.batch_id, again.first_seq, again.last_seq) == (
        planned.batch_id,
        planned.first_seq,
        planned.last_seq,
    )
    assert reopened.status().in_flight == planned.batch_id


def test_sequence_numbers_are_never_reused_after_pruning(spool: Spool) -> None:
    spool.append([_chunk(0, 2), _chunk(9_000_000, 2)])
    batch = spool.next_batch()
    assert batch is not None
    spool.ack(batch)
    assert spool.prune(keep_uploaded_s=0) == 2
    spool.append([_chunk(20_000_000, 2)])
    later = spool.next_batch()
    assert later is not None
    assert later.first_seq == 3
    assert later.batch_id != batch.batch_id


def test_status_shows_backlog_lag_and_counters(spool: Spool) -> None:
    spool.append([_chunk(0, 4)], {(10, "received"): 5, (10, "zero_hr"): 1})
    status = spool.status()
    assert (status.pending_records, status.pending_rows, status.acked_seq) == (1, 4, 0)
    assert status.lag_s() >= 0
    assert status.counters[10] == {"received": 5, "zero_hr": 1, "spooled": 4}
    batch = spool.next_batch()
    assert batch is not None
    spool.ack(batch, {(10, "uploaded"): 4})
    after = spool.status()
    assert (after.pending_rows, after.lag_s(), after.counters[10]["uploaded"]) == (0, 0.0, 4)


def test_a_record_with_flipped_bits_is_set_aside_and_the_rest_recovered(spool: Spool) -> None:
    spool.append([_chunk(0, 3)])
    spool.append([_chunk(10_000_000, 3)])
    spool.append([_chunk(20_000_000, 3)])
    spool.close()
    raw = sqlite3.connect(spool.path)
    data = bytearray(raw.execute("SELECT data FROM chunk WHERE seq = 2").fetchone()[0])
    data[5] ^= 0x01
    raw.execute("UPDATE chunk SET data = ? WHERE seq = 2", (bytes(data),))
    raw.commit()
    raw.close()
    batch = Spool.open(spool.path).next_batch()
    assert batch is not None
    assert [seq for seq, _chunk in batch.chunks] == [1, 3]
    (bad,) = batch.corrupt
    assert (bad.seq, bad.reason, bad.device_id) == (2, "checksum mismatch", 10)
    assert bad.raw_hex == bytes(data).hex()


def test_damage_on_disk_is_caught_by_the_record_checksum(spool: Spool) -> None:
    marker = 1234.5678
    buffer = SampleBuffer()
    buffer.add_rr(1, 10, time_us=77, received_us=77, rr_ms=marker)
    spool.append(buffer.take())
    spool.append([_chunk(10_000_000, 2)])
    spool.close()
    # Fold the WAL into the main file, then flip a bit of the marker where it lies on disk.
    raw = sqlite3.connect(spool.path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    content = bytearray(spool.path.read_bytes())
    at = content.find(np.float64(marker).tobytes())
    assert at > 0
    content[at] ^= 0x04
    spool.path.write_bytes(bytes(content))
    batch = Spool.open(spool.path).next_batch()
    assert batch is not None
    assert [r.seq for r in batch.corrupt] == [1]
    assert [seq for seq, _chunk in batch.chunks] == [2]


def test_committed_records_survive_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    writer = """
import sys
from pathlib import Path
from paceline.ingest.chunks import SampleBuffer
from paceline.ingest.spool import Spool
spool = Spool.open(Path(sys.argv[1]))
i = 0
while True:
    buffer = SampleBuffer()
    for _ in range(50):
        buffer.add_rr(1, 10, time_us=i, received_us=i, rr_ms=800.0)
        i += 1
    spool.append(buffer.take())
    print(spool.status().last_seq, flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for _ in range(20):
        reported = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    spool = Spool.open(path)
    status = spool.status()
    assert status.last_seq >= reported
    batch = spool.next_batch(max_rows=10**9)
    assert batch is not None
    assert batch.corrupt == ()
    times = np.concatenate([chunk.samples()["time_us"] for _seq, chunk in batch.chunks])
    assert times.tolist() == list(range(status.last_seq * 50))


def test_step_counters_are_committed_with_the_rows_they_end(spool: Spool) -> None:
    spool.append([_chunk(0, 2)], step_counts={10: 1234})
    spool.append([_chunk(5_000_000, 2)], step_counts={10: 1300, 11: 7})
    assert Spool.open(spool.path).gateway.load_step_counts() == {10: 1300, 11: 7}


def test_bindings_are_remembered_for_a_start_without_the_database(spool: Spool) -> None:
    bound = [DeviceBinding("AA:BB:CC:DD:EE:01", 4, 2, "strap", "hr_strap")]
    spool.gateway.save_bindings(bound)
    assert Spool.open(spool.path).gateway.load_bindings() == bound


def test_a_file_that_is_not_a_spool_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(b"this is not an SQLite database, just text" * 100)
    with pytest.raises(SpoolError, match=r"spool\.sqlite"):
        Spool.open(path)
