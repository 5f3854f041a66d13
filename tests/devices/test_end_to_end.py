"""Simulator → bleak → transport → samples, compared with the simulator's ground truth."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from paceline.devices.clock import SimClock
from paceline.devices.events import Reading
from paceline.devices.gatt import MotionStepCount
from paceline.devices.samples import (
    HeartRateSample,
    RRIntervalSample,
    Sample,
    StepSample,
    StreamState,
    derive_samples,
)
from paceline.devices.simulator import (
    Activity,
    Routine,
    SimulatedBleakClient,
    SimulatedDeviceRegistry,
    SimulatedWearable,
    WearableKind,
    fake_address,
    simulated_ble_device,
)
from paceline.devices.transport import DeviceLink
from tests.devices.conftest import DeviceFactory, EventLog, within_guard


def derive_all(events: EventLog) -> list[Sample]:
    """Run every reading through derive_samples with one device state, as the daemon will."""
    state = StreamState()
    samples: list[Sample] = []
    for event in events.of_type(Reading):
        state, produced = derive_samples(event, state)
        samples.extend(produced)
    return samples


def open_link(
    device: SimulatedWearable, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> DeviceLink:
    """A link to a simulated device, stamping in simulated time."""
    return DeviceLink(
        simulated_ble_device(device),
        events,
        clock=clock,
        backend=SimulatedBleakClient,
        client_kwargs={"registry": registry},
    )


async def test_every_emitted_rr_interval_becomes_exactly_one_row(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """HR and RR rows equal what the strap sent, across a dropped link (beats while down are lost)."""
    routine = Routine.of([("00:00", Activity.REST), ("09:01", Activity.WALK)])
    strap = make_device(WearableKind.CHEST_STRAP, routine=routine)
    link = open_link(strap, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(strap.wait_until(lambda truth: len(truth.heart_rate) >= 60))
    strap.drop_link()
    await within_guard(link.wait_until_lost())
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(strap.wait_until(lambda truth: len(truth.heart_rate) >= 150))
    await link.disconnect()

    samples = derive_all(events)
    hr_rows = [s for s in samples if isinstance(s, HeartRateSample)]
    rr_rows = [s for s in samples if isinstance(s, RRIntervalSample)]
    assert [row.bpm for row in hr_rows] == [hr.bpm for hr in strap.truth.heart_rate]
    assert [row.rr_ms for row in rr_rows] == strap.truth.rr_ms()
    # Every beat has its own time (the table key), increasing.
    times = [row.time for row in rr_rows]
    assert len(set(times)) == len(times)
    assert times == sorted(times)
    # The walk started a minute in: heart rate rose within what was received.
    assert max(row.bpm for row in hr_rows[-30:]) > min(row.bpm for row in hr_rows[:30]) + 10


async def test_rsc_cadence_integrates_to_the_steps_taken(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """Steps integrated from a band's cadence match the patient's real steps within 2 %."""
    band = make_device(WearableKind.BAND, activity=Activity.WALK)
    link = open_link(band, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(band.wait_until(lambda truth: len(truth.cadence) >= 300))
    await link.disconnect()

    derived = sum(s.steps for s in derive_all(events) if isinstance(s, StepSample))
    first, last = band.truth.cadence[0].time_s, band.truth.cadence[-1].time_s
    taken = sum(steps for t, steps in band.truth.steps_taken if first < t <= last)
    assert taken > 400
    assert derived == pytest.approx(taken, rel=0.02)


async def test_pinetime_counter_reset_never_loses_or_invents_steps(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """Derived steps equal the steps taken between the first and last counter value, reset included."""
    watch = make_device(WearableKind.PINETIME, activity=Activity.WALK)
    link = open_link(watch, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(watch.wait_until(lambda truth: len(truth.step_counts) >= 30))
    watch.reset_step_counter()
    await within_guard(watch.wait_until(lambda truth: len(truth.step_counts) >= 60))
    await link.disconnect()

    counts = [c.count for c in watch.truth.step_counts]
    assert any(b < a for a, b in itertools.pairwise(counts)), "the reset shows in the counter"
    rows = [s for s in derive_all(events) if isinstance(s, StepSample)]
    assert all(row.steps > 0 for row in rows)
    first, last = watch.truth.step_counts[0].time_s, watch.truth.step_counts[-1].time_s
    taken = sum(steps for t, steps in watch.truth.steps_taken if first < t <= last)
    assert sum(row.steps for row in rows) == taken


async def test_pinetime_zeroes_its_counter_at_midnight(
    registry: SimulatedDeviceRegistry, events: EventLog
) -> None:
    """InfiniTime's daily counter restarts at midnight; the derived steps carry straight on."""
    clock = SimClock(speed=400.0, start=datetime(2026, 3, 2, 23, 59, 0, tzinfo=UTC))
    watch = registry.add(
        SimulatedWearable(
            fake_address(0x77),
            WearableKind.PINETIME,
            clock=clock,
            routine=Routine.constant(Activity.WALK),
        )
    )
    link = open_link(watch, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(watch.wait_until(lambda truth: len(truth.step_counts) >= 150))
    await link.disconnect()
    received = [
        event.value.steps
        for event in events.of_type(Reading)
        if isinstance(event.value, MotionStepCount)
    ]
    assert received == [count.count for count in watch.truth.step_counts]
    # The watch was made at 23:59:00, at the clock's zero: midnight is 60 simulated seconds in.
    midnight_s = 59.5
    after_midnight = [c.count for c in watch.truth.step_counts if c.time_s >= midnight_s]
    before_midnight = [c.count for c in watch.truth.step_counts if c.time_s < midnight_s]
    assert after_midnight[0] < 10 < before_midnight[-1]
    first, last = watch.truth.step_counts[0].time_s, watch.truth.step_counts[-1].time_s
    taken = sum(steps for t, steps in watch.truth.steps_taken if first < t <= last)
    assert sum(s.steps for s in derive_all(events) if isinstance(s, StepSample)) == taken


async def test_steps_taken_while_disconnected_are_counted_after_reconnect(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A cumulative counter keeps counting while the link is down; one state across sessions sees it."""
    watch = make_device(WearableKind.PINETIME, activity=Activity.WALK)
    link = open_link(watch, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(watch.wait_until(lambda truth: len(truth.step_counts) >= 10))
    watch.drop_link()
    await within_guard(link.wait_until_lost())
    await within_guard(clock.sleep_until(clock.monotonic() + 60))
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(watch.wait_until(lambda truth: len(truth.step_counts) >= 20))
    await link.disconnect()
    first, last = watch.truth.step_counts[0].time_s, watch.truth.step_counts[-1].time_s
    taken = sum(steps for t, steps in watch.truth.steps_taken if first < t <= last)
    derived = sum(s.steps for s in derive_all(events) if isinstance(s, StepSample))
    assert derived == taken
    assert taken > 10 * 100 / 60 + 60 * 90 / 60  # the minute offline is in there
