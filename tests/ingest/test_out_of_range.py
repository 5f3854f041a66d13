"""Values a device can send but no heart can beat: quarantined with the reason, never a stopped daemon."""

from __future__ import annotations

import struct

from paceline.devices import uuids
from paceline.ingest.chunks import PAYLOAD, SampleBuffer
from tests.ingest.conftest import (
    RigFactory,
    assert_stored_exactly_what_was_emitted,
    eventually,
    guarded,
    quarantined,
)
from tests.ingest.test_daemon import _heart_rates_at_least, _run_until, _until

UINT16_BPM_FLAG = 0x01
"""Heart Rate Measurement flags bit 0: bpm is a uint16 (Bluetooth HRS 1.0, 3.1.1.1)."""


async def test_a_heart_rate_beyond_the_spool_range_is_quarantined_and_flushing_goes_on(
    make_rig: RigFactory,
) -> None:
    rig = make_rig()
    strap = rig.wearable()
    daemon = rig.daemon()

    async def inject_amid_normal_readings() -> None:
        await _until(strap, _heart_rates_at_least(20))
        assert strap.inject(
            uuids.HEART_RATE_MEASUREMENT, struct.pack("<BH", UINT16_BPM_FLAG, 40000)
        )
        sent = len(strap.truth.heart_rate)
        await _until(strap, _heart_rates_at_least(sent + 30))

    await _run_until(daemon, inject_amid_normal_readings)
    assert daemon.dropped_rows == 0
    assert_stored_exactly_what_was_emitted(rig)
    device_id = rig.binding().device_id
    held = [(row, reason) for _s, row, reason in quarantined(rig.dsn, "hr")]
    assert [(row["bpm"], reason) for row, reason in held if row["device_id"] == device_id] == [
        (40000, "bpm 40000 is outside 1..300")
    ]


async def test_flushing_survives_a_failing_spool_write(make_rig: RigFactory) -> None:
    rig = make_rig()
    strap = rig.wearable()
    daemon = rig.daemon()
    failures: list[int] = []
    real_flush = daemon.flush

    async def flush_failing_once() -> int:
        if not failures:
            failures.append(1)
            raise RuntimeError("a flush that fails in a way nobody foresaw")
        return await real_flush()

    daemon.flush = flush_failing_once  # type: ignore[method-assign]

    async def flushes_after_the_failure() -> None:
        await _until(strap, _heart_rates_at_least(20))
        await eventually(lambda: bool(failures) and daemon.flushes >= 2)

    await guarded(_run_until(daemon, flushes_after_the_failure))
    assert_stored_exactly_what_was_emitted(rig)


def test_a_row_that_does_not_fit_the_spool_becomes_a_payload_and_the_rest_is_kept() -> None:
    buffer = SampleBuffer()
    for i, bpm in enumerate([70, 70_000, 71]):  # 70,000 does not fit uint16
        buffer.add_hr(1, 10, time_us=i, received_us=i, bpm=bpm, sensor_contact=True, energy_kj=None)
    buffer.add_hr(2, 20, time_us=5, received_us=5, bpm=80, sensor_contact=None, energy_kj=None)
    chunks = {(c.stream, c.device_id): c for c in buffer.take()}
    assert len(buffer) == 0
    assert chunks[("hr", 10)].samples()["bpm"].tolist() == [70, 71]
    assert chunks[("hr", 20)].samples()["bpm"].tolist() == [80]
    (rejected,) = chunks[(PAYLOAD, 10)].payloads()
    assert rejected["values"][2] == 70_000
    assert rejected["reason"].startswith("hr sample does not fit the spool")
