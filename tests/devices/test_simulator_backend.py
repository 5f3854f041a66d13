"""The simulated wearable through a real `bleak.BleakClient` and `bleak.BleakScanner`."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from paceline.devices import PayloadError, uuids
from paceline.devices.gatt import (
    BatteryLevel,
    BodySensorLocation,
    HeartRateMeasurement,
    MotionStepCount,
    RSCMeasurement,
    SensorLocation,
)
from paceline.devices.simulator import (
    Activity,
    ConnectFault,
    MalformedKind,
    SimulatedBleakClient,
    SimulatedBleakScanner,
    SimulatedDeviceRegistry,
    WearableKind,
)
from tests.devices.conftest import DeviceFactory, within_guard


class Notifications:
    """Collects notification payloads per characteristic UUID and wakes waiters."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self.payloads: dict[str, list[bytes]] = {}
        self._changed = asyncio.Event()

    def __call__(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        """The bleak notification callback."""
        assert isinstance(data, bytearray)
        self.payloads.setdefault(characteristic.uuid, []).append(bytes(data))
        self._changed.set()
        self._changed = asyncio.Event()

    def of(self, uuid: str) -> list[bytes]:
        """Payloads received on a characteristic."""
        return self.payloads.get(uuid, [])

    async def wait_for(self, uuid: str, count: int) -> list[bytes]:
        """Wait until `count` payloads arrived on `uuid`."""

        async def wait() -> None:
            """Block until enough payloads arrived."""
            while len(self.of(uuid)) < count:
                await self._changed.wait()

        await within_guard(wait())
        return self.of(uuid)


def client_for(address: str, registry: SimulatedDeviceRegistry, **kwargs: object) -> BleakClient:
    """A real BleakClient on the simulated backend."""
    return BleakClient(address, backend=SimulatedBleakClient, registry=registry, **kwargs)  # type: ignore[arg-type]


async def test_connect_discovers_real_gatt_services(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A strap serves HRS, Battery and DIS with the spec's UUIDs, properties and CCCDs."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with client_for(strap.address, registry) as client:
        assert client.is_connected
        assert client.backend_id == "SimulatedBleakClient"
        assert client.name == strap.name
        services = {service.uuid for service in client.services}
        assert services == {
            uuids.HEART_RATE_SERVICE,
            uuids.BATTERY_SERVICE,
            uuids.DEVICE_INFORMATION_SERVICE,
        }
        measurement = client.services.get_characteristic(uuids.HEART_RATE_MEASUREMENT)
        assert measurement is not None
        assert measurement.properties == ["notify"]
        assert measurement.service_uuid == uuids.HEART_RATE_SERVICE
        cccd = measurement.get_descriptor(uuids.CLIENT_CHARACTERISTIC_CONFIGURATION)
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x00\x00")
        location = BodySensorLocation.from_bytes(
            await client.read_gatt_char(uuids.BODY_SENSOR_LOCATION)
        )
        assert location.location is SensorLocation.CHEST
        battery = BatteryLevel.from_bytes(await client.read_gatt_char(uuids.BATTERY_LEVEL))
        assert battery.percent == strap.battery_percent
        serial = await client.read_gatt_char(uuids.SERIAL_NUMBER)
        assert serial.decode() == strap.address.replace(":", "")
    assert not client.is_connected


async def test_service_filter_keeps_handles_stable(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """bleak's `services=` filter resolves only those services, at the same handles."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with client_for(strap.address, registry) as client:
        full = client.services.get_characteristic(uuids.BATTERY_LEVEL)
        assert full is not None
        full_handle = full.handle
    async with client_for(strap.address, registry, services=["180f"]) as client:
        assert [service.uuid for service in client.services] == [uuids.BATTERY_SERVICE]
        battery = client.services.get_characteristic(uuids.BATTERY_LEVEL)
        assert battery is not None and battery.handle == full_handle


async def test_strap_notifies_decodable_heart_rate_with_rr(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """Notifications are real HRS payloads: contact, RR consistent with the rate, energy now and then."""
    strap = make_device(WearableKind.CHEST_STRAP, activity=Activity.REST)
    received = Notifications()
    async with client_for(strap.address, registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        characteristic = client.services.get_characteristic(uuids.HEART_RATE_MEASUREMENT)
        assert characteristic is not None
        cccd = characteristic.get_descriptor(uuids.CLIENT_CHARACTERISTIC_CONFIGURATION)
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x01\x00")
        payloads = await received.wait_for(uuids.HEART_RATE_MEASUREMENT, 30)
    measurements = [HeartRateMeasurement.from_bytes(payload) for payload in payloads]
    assert all(m.sensor_contact is True and m.has_reading for m in measurements)
    assert any(m.energy_kj is not None for m in measurements)
    rr = [ms for m in measurements for ms in m.rr_ms]
    mean_bpm = sum(m.bpm for m in measurements) / len(measurements)
    assert sum(rr) / len(rr) == pytest.approx(60_000 / mean_bpm, rel=0.08)
    # Every payload fits one default-MTU notification.
    assert max(len(payload) for payload in payloads) <= 20


async def test_strap_off_the_chest_sends_zero_bpm_without_contact(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """At night the strap is off: contact False and 0 bpm, the 'no reading' case."""
    strap = make_device(WearableKind.CHEST_STRAP, activity=Activity.SLEEP)
    received = Notifications()
    async with client_for(strap.address, registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        payloads = await received.wait_for(uuids.HEART_RATE_MEASUREMENT, 3)
    for payload in payloads:
        measurement = HeartRateMeasurement.from_bytes(payload)
        assert measurement.sensor_contact is False
        assert not measurement.has_reading
        assert measurement.rr_1024 == ()


async def test_footpod_notifies_rsc_cadence_while_walking(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A walking footpod reports cadence, speed, stride and a growing total distance."""
    pod = make_device(WearableKind.FOOTPOD, activity=Activity.WALK)
    received = Notifications()
    async with client_for(pod.address, registry) as client:
        await client.start_notify(uuids.RSC_MEASUREMENT, received)
        payloads = await received.wait_for(uuids.RSC_MEASUREMENT, 10)
    measurements = [RSCMeasurement.from_bytes(payload) for payload in payloads]
    assert all(90 <= m.cadence_spm <= 130 for m in measurements)
    assert all(
        m.stride_length_cm is not None and 100 <= m.stride_length_cm <= 180 for m in measurements
    )
    distances = [m.total_distance_dm for m in measurements]
    assert distances == sorted(distances)  # type: ignore[type-var]


async def test_pinetime_counts_steps_and_sends_uint8_heart_rate(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """InfiniTime: flags-0 heart rate with no RR, and a cumulative counter that only rises."""
    watch = make_device(WearableKind.PINETIME, activity=Activity.WALK)
    received = Notifications()
    async with client_for(watch.address, registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        await client.start_notify(uuids.INFINITIME_STEP_COUNT, received)
        counts = await received.wait_for(uuids.INFINITIME_STEP_COUNT, 5)
        rates = await received.wait_for(uuids.HEART_RATE_MEASUREMENT, 3)
        current = MotionStepCount.from_bytes(
            await client.read_gatt_char(uuids.INFINITIME_STEP_COUNT)
        )
    values = [MotionStepCount.from_bytes(payload).steps for payload in counts]
    assert values == sorted(values) and values[0] > 0
    assert current.steps >= values[-1]
    assert all(payload[0] == 0x00 and len(payload) == 2 for payload in rates)


async def test_dropped_link_fires_the_disconnected_callback(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A device-side drop reaches bleak's disconnected callback with the client, and ends the link."""
    strap = make_device(WearableKind.CHEST_STRAP)
    lost = asyncio.Event()
    seen: list[BleakClient] = []

    def on_disconnect(client: BleakClient) -> None:
        """Record the client the callback was called with."""
        seen.append(client)
        lost.set()

    client = client_for(strap.address, registry, disconnected_callback=on_disconnect)
    await client.connect()
    await client.start_notify(uuids.HEART_RATE_MEASUREMENT, Notifications())
    strap.drop_link()
    await within_guard(lost.wait())
    assert seen == [client]
    assert not client.is_connected
    assert not strap.is_connected and strap.is_advertising
    with pytest.raises(BleakError):
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, Notifications())
    assert [change.event for change in strap.truth.links] == ["connected", "dropped"]


async def test_silent_device_stays_connected_but_sends_nothing(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """While silent the link is up and reads work, yet no notification arrives; then it resumes."""
    strap = make_device(WearableKind.CHEST_STRAP)
    received = Notifications()
    async with client_for(strap.address, registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        await received.wait_for(uuids.HEART_RATE_MEASUREMENT, 2)
        strap.go_silent()
        before = len(received.of(uuids.HEART_RATE_MEASUREMENT))
        silent_from = strap.now_s
        await within_guard(strap.clock.sleep_until(silent_from + 30))
        assert client.is_connected
        assert await client.read_gatt_char(uuids.BATTERY_LEVEL)
        assert len(received.of(uuids.HEART_RATE_MEASUREMENT)) == before
        assert strap.model.elapsed_s > 0  # the patient lived on meanwhile
        strap.resume()
        await received.wait_for(uuids.HEART_RATE_MEASUREMENT, before + 2)


@pytest.mark.parametrize("kind", list(MalformedKind))
async def test_malformed_payload_injection(
    kind: MalformedKind, make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A corrupted notification is sent as is, fails to decode, and is recorded as malformed."""
    strap = make_device(WearableKind.CHEST_STRAP)
    received = Notifications()
    async with client_for(strap.address, registry) as client:
        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, received)
        await received.wait_for(uuids.HEART_RATE_MEASUREMENT, 1)
        strap.corrupt_next_heart_rate(kind)
        await within_guard(strap.wait_until(lambda truth: bool(truth.malformed())))
        count = len(received.of(uuids.HEART_RATE_MEASUREMENT))
        payloads = await received.wait_for(uuids.HEART_RATE_MEASUREMENT, count + 2)
    (sent,) = strap.truth.malformed()
    broken = [payload for payload in payloads if payload == sent.payload]
    assert len(broken) == 1
    # Every other payload received is well formed.
    for payload in payloads:
        if payload != sent.payload:
            HeartRateMeasurement.from_bytes(payload)
    with pytest.raises(PayloadError):
        HeartRateMeasurement.from_bytes(broken[0])


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (ConnectFault.TIMEOUT, TimeoutError),
        (ConnectFault.EOF, EOFError),
        (ConnectFault.IN_PROGRESS, BleakDBusError),
        (ConnectFault.ABORTED, BleakDBusError),
        (ConnectFault.NOT_FOUND, BleakDeviceNotFoundError),
    ],
)
async def test_scripted_connect_failures_raise_what_bleak_raises(
    fault: ConnectFault,
    error: type[BaseException],
    make_device: DeviceFactory,
    registry: SimulatedDeviceRegistry,
) -> None:
    """The next N connects fail with the scripted error; the one after succeeds."""
    strap = make_device(WearableKind.CHEST_STRAP)
    strap.fail_next_connects(2, fault)
    client = client_for(strap.address, registry)
    for _ in range(2):
        with pytest.raises(error):
            await client.connect()
        assert not client.is_connected
    await client.connect()
    assert client.is_connected
    await client.disconnect()


async def test_in_progress_error_looks_like_bluez(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """The InProgress fault carries BlueZ's D-Bus error name."""
    strap = make_device(WearableKind.CHEST_STRAP)
    strap.fail_next_connects(1, ConnectFault.IN_PROGRESS)
    with pytest.raises(BleakDBusError) as raised:
        await client_for(strap.address, registry).connect()
    assert raised.value.dbus_error == "org.bluez.Error.InProgress"


async def test_unknown_and_out_of_range_devices_are_not_found(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """An address nobody registered, or a device out of range, is BleakDeviceNotFoundError."""
    with pytest.raises(BleakDeviceNotFoundError):
        await client_for("C0:FF:EE:99:99:99", registry).connect()
    strap = make_device(WearableKind.CHEST_STRAP)
    strap.set_in_range(False)
    with pytest.raises(BleakDeviceNotFoundError):
        await client_for(strap.address, registry).connect()


async def test_one_central_at_a_time(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A connected peripheral stops advertising; a second central cannot reach it."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with client_for(strap.address, registry):
        assert not strap.is_advertising
        with pytest.raises(BleakDeviceNotFoundError):
            await client_for(strap.address, registry).connect()


async def test_hung_disconnect_still_ends_the_link_when_cancelled(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """A disconnect that never completes can be bounded by the caller; the client is down afterwards."""
    strap = make_device(WearableKind.CHEST_STRAP)
    client = client_for(strap.address, registry)
    await client.connect()
    strap.hang_next_disconnect()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.disconnect()
    assert not client.is_connected
    assert not strap.is_connected


async def test_writes_and_protocol_errors(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """Reading a notify-only characteristic is an ATT error; the control point resets energy."""
    strap = make_device(WearableKind.CHEST_STRAP)
    async with client_for(strap.address, registry) as client:
        with pytest.raises(BleakGATTProtocolError):
            await client.read_gatt_char(uuids.HEART_RATE_MEASUREMENT)
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(uuids.BATTERY_LEVEL, b"\x10", response=True)
        await client.write_gatt_char(uuids.HEART_RATE_CONTROL_POINT, b"\x01", response=True)


class Heard:
    """A scanner detection callback counting advertisements per address."""

    def __init__(self) -> None:
        """Start with nothing heard."""
        self.count: dict[str, int] = {}
        self.data: dict[str, AdvertisementData] = {}
        self._changed = asyncio.Event()

    def __call__(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """Record one advertisement."""
        self.count[device.address] = self.count.get(device.address, 0) + 1
        self.data[device.address] = adv
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, address: str, times: int) -> None:
        """Wait until `address` was heard `times` times."""

        async def wait() -> None:
            """Block until the address was heard often enough."""
            while self.count.get(address, 0) < times:
                await self._changed.wait()

        await within_guard(wait())


async def test_scanner_lists_simulated_devices_with_advertisement_data(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """BleakScanner with the simulated backend hears every advertising device."""
    strap = make_device(WearableKind.CHEST_STRAP)
    watch = make_device(WearableKind.PINETIME)
    found = await within_guard(
        BleakScanner.find_device_by_address(
            strap.address,
            backend=SimulatedBleakScanner,
            registry=registry,  # type: ignore[call-arg]
        )
    )
    assert found is not None and found.address == strap.address
    heard = Heard()
    async with BleakScanner(heard, backend=SimulatedBleakScanner, registry=registry) as scanner:
        await heard.wait_for(watch.address, 1)
        await heard.wait_for(strap.address, 1)
        seen = scanner.discovered_devices_and_advertisement_data
    assert seen[watch.address][1].local_name == "InfiniTime"
    assert seen[strap.address][1].service_uuids == [uuids.HEART_RATE_SERVICE]
    assert seen[strap.address][1].manufacturer_data == {0xFFFF: b"paceline-sim"}


async def test_scanner_honours_the_service_filter_and_skips_connected_devices(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """Filtering on 0x180D hides the PineTime (name-only advert); a connected strap is not heard."""
    strap = make_device(WearableKind.CHEST_STRAP)
    watch = make_device(WearableKind.PINETIME)
    busy = make_device(WearableKind.CHEST_STRAP)
    heard = Heard()
    async with (
        client_for(busy.address, registry),
        BleakScanner(
            heard,
            service_uuids=[uuids.HEART_RATE_SERVICE],
            backend=SimulatedBleakScanner,
            registry=registry,
        ),
    ):
        # Three rounds of advertising reports: the others would have shown up by now.
        await heard.wait_for(strap.address, 3)
    assert set(heard.count) == {strap.address}
    assert watch.address not in heard.count


async def test_multiple_devices_coexist(
    make_device: DeviceFactory, registry: SimulatedDeviceRegistry
) -> None:
    """Two straps in one process each deliver their own notifications to their own client."""
    first = make_device(WearableKind.CHEST_STRAP, seed=1)
    second = make_device(WearableKind.CHEST_STRAP, seed=2)
    a, b = Notifications(), Notifications()
    async with (
        client_for(first.address, registry) as one,
        client_for(second.address, registry) as two,
    ):
        await one.start_notify(uuids.HEART_RATE_MEASUREMENT, a)
        await two.start_notify(uuids.HEART_RATE_MEASUREMENT, b)
        await a.wait_for(uuids.HEART_RATE_MEASUREMENT, 5)
        await b.wait_for(uuids.HEART_RATE_MEASUREMENT, 5)
    sent_first = {n.payload for n in first.truth.notifications}
    sent_second = {n.payload for n in second.truth.notifications}
    assert set(a.of(uuids.HEART_RATE_MEASUREMENT)) <= sent_first
    assert set(b.of(uuids.HEART_RATE_MEASUREMENT)) <= sent_second
