"""The transport (`DeviceLink`) driving simulated wearables through bleak and bleak-retry-connector."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import pytest
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import NotifyCallback
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)
from bleak_retry_connector import (
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
)

from paceline.devices import (
    AdapterUnavailableError,
    ConnectError,
    LinkError,
    UnsupportedDeviceError,
    uuids,
)
from paceline.devices.clock import SimClock
from paceline.devices.events import LinkLost, Reading, Rejected
from paceline.devices.gatt import BatteryLevel, HeartRateMeasurement
from paceline.devices.profiles import PINETIME, ProfileRegistry, Stream
from paceline.devices.simulator import (
    ConnectFault,
    MalformedKind,
    SimulatedBleakClient,
    SimulatedBleakScanner,
    SimulatedDeviceRegistry,
    SimulatedWearable,
    WearableKind,
    populate_demo,
    simulated_ble_device,
)
from paceline.devices.transport import (
    RECONNECT_AFTER_LOSS_S,
    RECONNECT_BASE_DELAY_S,
    RECONNECT_JITTER_FRACTION,
    RECONNECT_MAX_DELAY_S,
    RECONNECT_NO_SLOT_DELAY_S,
    RECONNECT_NOT_FOUND_DELAY_S,
    SILENCE_TIMEOUT_S,
    DeviceLink,
    adapter_unavailable,
    find_device,
    reconnect_delay_s,
    require_adapter,
    scan,
)
from tests.devices.conftest import MORNING, DeviceFactory, EventLog, within_guard
from tests.devices.fakes import failing_scanner


class CountingClient(SimulatedBleakClient):
    """The simulated backend, counting start_notify calls per characteristic handle."""

    calls: ClassVar[Counter[int]] = Counter()

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Count, then subscribe as usual."""
        CountingClient.calls[characteristic.handle] += 1
        await super().start_notify(characteristic, callback, **kwargs)


def link_for(
    device: SimulatedWearable,
    registry: SimulatedDeviceRegistry,
    clock: SimClock,
    events: EventLog,
    **kwargs: Any,
) -> DeviceLink:
    """A DeviceLink on the simulated backend, stamping in simulated time."""
    kwargs.setdefault("backend", SimulatedBleakClient)
    return DeviceLink(
        simulated_ble_device(device),
        events,
        clock=clock,
        client_kwargs={"registry": registry},
        **kwargs,
    )


def heart_rate_readings(events: EventLog) -> list[HeartRateMeasurement]:
    """The decoded heart-rate values received, in order."""
    return [
        event.value
        for event in events.of_type(Reading)
        if isinstance(event.value, HeartRateMeasurement)
    ]


@pytest.mark.parametrize(
    ("kind", "profile", "streams"),
    [
        (
            WearableKind.CHEST_STRAP,
            "hr_strap",
            {Stream.HEART_RATE, Stream.RR_INTERVAL, Stream.BATTERY},
        ),
        (
            WearableKind.BAND,
            "rsc_sensor",
            {Stream.HEART_RATE, Stream.RR_INTERVAL, Stream.STEPS, Stream.BATTERY},
        ),
        (WearableKind.FOOTPOD, "rsc_sensor", {Stream.STEPS, Stream.BATTERY}),
        (WearableKind.PINETIME, "pinetime", {Stream.HEART_RATE, Stream.STEPS, Stream.BATTERY}),
    ],
)
async def test_connect_resolves_profile_and_reads_device(
    kind: WearableKind,
    profile: str,
    streams: set[Stream],
    *,
    make_device: DeviceFactory,
    registry: SimulatedDeviceRegistry,
    clock: SimClock,
    events: EventLog,
) -> None:
    """Each kind resolves to its profile; device information and battery read back."""
    device = make_device(kind)
    link = link_for(device, registry, clock, events)
    resolved = await within_guard(link.connect())
    try:
        assert resolved.name == profile
        assert resolved.streams == streams
        assert link.profile is resolved and link.is_connected and link.session == 1
        info = await link.read_device_info()
        assert info == device.device_information
        assert await link.read_battery() == BatteryLevel(device.battery_percent)
    finally:
        await link.disconnect()
    assert not link.is_connected and not device.is_connected


async def test_subscribe_twice_registers_exactly_one_handler_per_characteristic(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A second subscribe() in the same session subscribes nothing new, and nothing arrives twice."""
    strap = make_device(WearableKind.CHEST_STRAP)
    CountingClient.calls.clear()
    link = link_for(strap, registry, clock, events, backend=CountingClient)
    await within_guard(link.connect())
    first = await link.subscribe()
    second = await link.subscribe()
    assert first == second == {uuids.HEART_RATE_MEASUREMENT, uuids.BATTERY_LEVEL}
    assert set(CountingClient.calls.values()) == {1}
    await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 10)
    await link.disconnect()
    assert len(heart_rate_readings(events)) == len(strap.truth.heart_rate)


async def test_reconnect_resubscribes_and_every_notification_arrives_once(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """Across a dropped link and a reconnect, received readings equal emitted ones, in order, once each."""
    strap = make_device(WearableKind.CHEST_STRAP)
    CountingClient.calls.clear()
    link = link_for(strap, registry, clock, events, backend=CountingClient)
    await within_guard(link.connect())
    await link.subscribe()
    await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 5)
    strap.drop_link()
    await within_guard(link.wait_until_lost())
    assert not link.is_connected
    assert link.subscribed == frozenset()
    await within_guard(link.connect())
    await link.subscribe()
    await link.subscribe()
    assert link.session == 2
    await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 15)
    await link.disconnect()

    emitted = [
        (hr.bpm, hr.sensor_contact, hr.energy_kj, hr.rr_1024) for hr in strap.truth.heart_rate
    ]
    received = [
        (m.bpm, m.sensor_contact, m.energy_kj, m.rr_1024) for m in heart_rate_readings(events)
    ]
    assert received == emitted
    assert len(events.of_type(LinkLost)) == 1
    # One start_notify per characteristic per session: two sessions, two calls each.
    assert set(CountingClient.calls.values()) == {2}


async def test_requested_reconnect_is_not_reported_as_a_lost_link(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """connect() on a live link closes the old session quietly (BlueZ still fires its callback)."""
    strap = make_device(WearableKind.CHEST_STRAP)
    link = link_for(strap, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    await within_guard(link.connect())
    await link.subscribe()
    await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 3)
    await link.disconnect()
    await link.disconnect()
    assert events.of_type(LinkLost) == []
    assert [change.event for change in strap.truth.links] == [
        "connected",
        "disconnected",
        "connected",
        "disconnected",
    ]


async def test_scripted_drop_reaches_the_sink_as_link_lost(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A drop scripted at a simulated time becomes exactly one LinkLost, stamped in simulated time."""
    strap = make_device(WearableKind.CHEST_STRAP)
    link = link_for(strap, registry, clock, events)
    await within_guard(link.connect())
    await link.subscribe()
    before = len(heart_rate_readings(events))
    strap.schedule(strap.now_s + 20, SimulatedWearable.drop_link)
    await events.wait_for(lambda log: bool(log.of_type(LinkLost)))
    (lost,) = events.of_type(LinkLost)
    assert lost.address == strap.address
    assert lost.stamp.monotonic_s >= 20
    assert lost.stamp.time > MORNING
    # One notification for each of the 20 simulated seconds before the scripted drop.
    assert len(heart_rate_readings(events)) - before == 20
    await link.disconnect()


async def test_readings_are_stamped_in_simulated_time_and_ordered(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """Stamps come from the clock passed in: simulated morning, increasing, after the send."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with link_for(strap, registry, clock, events):
        await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 20)
    stamps = [
        event.stamp
        for event in events.of_type(Reading)
        if event.characteristic_uuid == uuids.HEART_RATE_MEASUREMENT
    ]
    times = [stamp.time for stamp in stamps]
    assert times == sorted(times)
    assert times[0].date() == MORNING.date() and times[0] >= MORNING
    assert times[-1] <= clock.wall()
    # Stamped on receipt: never before the simulated moment the device sent it.
    sent = [
        n
        for n in strap.truth.notifications
        if n.characteristic_uuid == uuids.HEART_RATE_MEASUREMENT
    ]
    assert all(
        stamp.monotonic_s >= notification.time_s
        for stamp, notification in zip(stamps, sent, strict=False)
    )


async def test_silent_link_stays_connected_and_shows_in_the_watchdog_seam(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """While the device is silent, last_event_monotonic_s stops and the link still claims to be up."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with link_for(strap, registry, clock, events) as link:
        await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 3)
        strap.go_silent()
        last = link.last_event_monotonic_s
        assert last is not None
        await within_guard(clock.sleep_until(last + SILENCE_TIMEOUT_S + 5))
        assert link.is_connected
        assert link.last_event_monotonic_s == last
        assert clock.monotonic() - last > SILENCE_TIMEOUT_S
        strap.resume()
        await events.wait_for(lambda log: (link.last_event_monotonic_s or 0) > last)


async def test_malformed_notification_becomes_rejected_and_the_stream_goes_on(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A broken payload is handed over whole with the reason; readings continue after it."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with link_for(strap, registry, clock, events):
        await events.wait_for(lambda log: len(heart_rate_readings(log)) >= 2)
        strap.corrupt_next_heart_rate(MalformedKind.TRUNCATED_UINT16_BPM)
        strap.corrupt_next_heart_rate(MalformedKind.ODD_RR_BYTE)
        await events.wait_for(lambda log: len(log.of_type(Rejected)) == 2)
        count = len(heart_rate_readings(events))
        await events.wait_for(lambda log: len(heart_rate_readings(log)) >= count + 3)
    rejected = events.of_type(Rejected)
    assert [event.payload for event in rejected] == [n.payload for n in strap.truth.malformed()]
    assert "uint16 heart rate" in rejected[0].reason
    assert "odd trailing byte" in rejected[1].reason
    assert all(event.characteristic_uuid == uuids.HEART_RATE_MEASUREMENT for event in rejected)


@pytest.mark.parametrize(
    ("fault", "count"),
    [
        (ConnectFault.IN_PROGRESS, 2),
        (ConnectFault.EOF, 3),
        (ConnectFault.TIMEOUT, 1),
        (ConnectFault.ABORTED, 2),
    ],
)
async def test_transient_connect_failures_are_retried_by_bleak_retry_connector(
    fault: ConnectFault,
    count: int,
    *,
    make_device: DeviceFactory,
    registry: SimulatedDeviceRegistry,
    clock: SimClock,
    events: EventLog,
) -> None:
    """establish_connection retries the scripted failures and the link comes up."""
    strap = make_device(WearableKind.CHEST_STRAP)
    strap.fail_next_connects(count, fault)
    link = link_for(strap, registry, clock, events)
    resolved = await within_guard(link.connect())
    assert resolved.name == "hr_strap" and link.is_connected
    await link.disconnect()


async def test_persistent_connect_failure_raises_connect_error_with_the_cause(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """When the attempts run out the error is a ConnectError; the policy reads its cause."""
    strap = make_device(WearableKind.CHEST_STRAP)
    strap.fail_next_connects(2, ConnectFault.IN_PROGRESS)
    link = link_for(strap, registry, clock, events)
    with pytest.raises(ConnectError, match="InProgress") as raised:
        await within_guard(link.connect(max_attempts=2))
    assert isinstance(raised.value.error, BleakConnectionError)
    assert raised.value.address == strap.address
    assert not link.is_connected
    assert reconnect_delay_s(raised.value, 0) == RECONNECT_BASE_DELAY_S
    await within_guard(link.connect())
    await link.disconnect()


async def test_device_no_profile_fits_is_unsupported_and_released(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A strap seen by a gateway that only knows PineTimes is refused and the link is closed."""
    strap = make_device(WearableKind.CHEST_STRAP)
    link = link_for(strap, registry, clock, events, profiles=ProfileRegistry([PINETIME]))
    with pytest.raises(UnsupportedDeviceError, match="no device profile") as raised:
        await within_guard(link.connect())
    assert uuids.HEART_RATE_SERVICE in raised.value.service_uuids
    assert not strap.is_connected


async def test_disconnect_is_bounded_when_the_device_never_confirms(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """A hung disconnect is cut off by the timeout; the link is down and the device free."""
    strap = make_device(WearableKind.CHEST_STRAP)
    link = link_for(strap, registry, clock, events)
    await within_guard(link.connect())
    strap.hang_next_disconnect()
    await within_guard(link.disconnect(timeout_s=0.05))
    assert not link.is_connected
    assert strap.is_advertising
    assert events.of_type(LinkLost) == []


async def test_operations_on_a_closed_link_raise_link_error(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """Reads and subscriptions need a connection; absent characteristics read as None."""
    pod = make_device(WearableKind.FOOTPOD)
    link = link_for(pod, registry, clock, events)
    with pytest.raises(LinkError, match="not connected"):
        await link.subscribe()
    await within_guard(link.connect())
    assert await link.read_value(uuids.BODY_SENSOR_LOCATION) is None
    pod.drop_link()
    await within_guard(link.wait_until_lost())
    with pytest.raises(LinkError, match="not connected"):
        await link.read_battery()
    await link.disconnect()


async def test_scan_labels_simulated_devices_with_profiles(
    registry: SimulatedDeviceRegistry, clock: SimClock
) -> None:
    """scan() lists every demo device with the profile its advertisement suggests."""
    devices = populate_demo(registry, clock=clock, seed=2)
    results = await within_guard(
        scan(0.3, scanner_backend=SimulatedBleakScanner, registry=registry)
    )
    by_address = {result.address: result for result in results}
    assert set(by_address) == {device.address for device in devices}
    labels = {device.kind: by_address[device.address].profile for device in devices}
    assert {kind: profile.name if profile else None for kind, profile in labels.items()} == {
        WearableKind.CHEST_STRAP: "hr_strap",
        WearableKind.BAND: "rsc_sensor",
        WearableKind.FOOTPOD: "rsc_sensor",
        WearableKind.PINETIME: "pinetime",
    }
    assert [result.rssi for result in results] == sorted(
        (result.rssi for result in results), reverse=True
    )


async def test_find_device_then_connect(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """find_device returns the scanned BLEDevice; an absent address is a ConnectError."""
    watch = make_device(WearableKind.PINETIME)
    device = await within_guard(
        find_device(watch.address.lower(), scanner_backend=SimulatedBleakScanner, registry=registry)
    )
    assert device.address == watch.address
    link = DeviceLink(
        device,
        events,
        clock=clock,
        backend=SimulatedBleakClient,
        client_kwargs={"registry": registry},
    )
    assert (await within_guard(link.connect())).name == "pinetime"
    await link.disconnect()
    with pytest.raises(ConnectError, match="not advertising"):
        await find_device(
            "C0:FF:EE:AA:AA:AA",
            timeout_s=0.2,
            scanner_backend=SimulatedBleakScanner,
            registry=registry,
        )


def test_policy_after_a_lost_link_retries_promptly_then_backs_off() -> None:
    """First retry after a working link drops is quick; then exponential, capped."""
    assert reconnect_delay_s(None, 0) == RECONNECT_AFTER_LOSS_S
    delays = [reconnect_delay_s(RuntimeError("x"), attempt) for attempt in range(10)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays)
    assert max(delays) == RECONNECT_MAX_DELAY_S
    assert reconnect_delay_s(RuntimeError("x"), 10_000) == RECONNECT_MAX_DELAY_S


def test_policy_classifies_by_cause() -> None:
    """Not found and out-of-slots wait longer, also when kept in a ConnectError."""
    wrapped = ConnectError("AA", "gone", error=BleakNotFoundError("gone"))
    assert reconnect_delay_s(wrapped, 0) == RECONNECT_NOT_FOUND_DELAY_S
    assert ConnectError("AA", "gone", error=BleakNotFoundError("x")).__cause__ is None
    assert (
        reconnect_delay_s(BleakOutOfConnectionSlotsError("no slot"), 0) == RECONNECT_NO_SLOT_DELAY_S
    )
    assert reconnect_delay_s(BleakNotFoundError("gone"), 8) == RECONNECT_MAX_DELAY_S


def test_policy_jitter_and_validation() -> None:
    """Jitter stretches the delay by at most the jitter fraction; bad inputs are refused."""
    assert reconnect_delay_s(None, 0, jitter=0.999) == pytest.approx(
        RECONNECT_AFTER_LOSS_S * (1 + RECONNECT_JITTER_FRACTION * 0.999)
    )
    with pytest.raises(ValueError, match="jitter"):
        reconnect_delay_s(None, 0, jitter=1.0)
    with pytest.raises(ValueError, match="attempt"):
        reconnect_delay_s(None, -1)


async def test_four_devices_at_once_like_a_gateway(
    registry: SimulatedDeviceRegistry, clock: SimClock, events: EventLog
) -> None:
    """One sink, four links: each device's readings carry its own address and expected streams."""
    devices = populate_demo(registry, clock=clock, seed=4)
    links = [link_for(device, registry, clock, events) for device in devices]
    for link in links:
        await within_guard(link.connect())
        await link.subscribe()
    await events.wait_for(
        lambda log: (
            {event.address for event in log.of_type(Reading)} == {d.address for d in devices}
        )
    )
    profiles = {link.address: link.profile for link in links}
    for link in links:
        await link.disconnect()
    for device in devices:
        readings = [event for event in events.of_type(Reading) if event.address == device.address]
        resolved = profiles[device.address]
        assert readings and resolved is not None
        assert all(event.streams <= resolved.streams for event in readings)
    assert all(not device.is_connected for device in devices)


# ---------------------------------------------------------------- no adapter vs a busy one


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(2, "No such file or directory"),  # no D-Bus system bus socket
        ConnectionRefusedError(111, "Connection refused"),
        BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["org.bluez unknown"]),
        BleakBluetoothNotAvailableError(
            "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
        ),
        BleakBluetoothNotAvailableError(
            "denied", BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM
        ),
    ],
)
def test_no_bluetooth_on_the_host_is_recognised(exc: BaseException) -> None:
    assert adapter_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        BleakBluetoothNotAvailableError(
            "No powered Bluetooth adapters found.", BleakBluetoothNotAvailableReason.POWERED_OFF
        ),
        BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]),
        BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]),
        BleakError("something odd"),
        TimeoutError(),
    ],
)
def test_a_transient_adapter_error_is_left_to_the_retries(exc: BaseException) -> None:
    assert adapter_unavailable(exc) is None


async def test_require_adapter_raises_without_bluetooth() -> None:
    backend = failing_scanner(FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(AdapterUnavailableError, match="D-Bus system bus") as info:
        await require_adapter(scanner_backend=backend)
    assert isinstance(info.value.__cause__, FileNotFoundError)


async def test_require_adapter_lets_a_transient_error_through() -> None:
    busy = BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"])
    assert await require_adapter(scanner_backend=failing_scanner(busy)) is busy
