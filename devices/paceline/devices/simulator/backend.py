"""bleak backends for simulated wearables: `BleakClient(address, backend=SimulatedBleakClient)`.

`SimulatedBleakClient` implements bleak's `BaseBleakClient` against a `SimulatedWearable`
found by address in a `SimulatedDeviceRegistry`; `SimulatedBleakScanner` implements
`BaseBleakScanner` and reports the advertisements of the registry's devices. Everything
above them (the `BleakClient`/`BleakScanner` front ends, bleak-retry-connector, the
transport) runs unchanged. Where platforms differ, these follow BlueZ, the stack a Linux
gateway runs: the disconnected callback also fires after a requested disconnect, a second
`start_notify` on a characteristic replaces the first callback, and a disconnect that
is cancelled still leaves the client disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final, Literal

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)

from paceline.devices import uuids
from paceline.devices.simulator.registry import DEFAULT_REGISTRY, SimulatedDeviceRegistry
from paceline.devices.simulator.wearable import ATT_MTU, SimulatedWearable

_LOGGER = logging.getLogger(__name__)

ADVERTISING_REPORT_INTERVAL_S: Final = 0.1
"""Real seconds between advertising reports; real wearables advertise every 0.1–1 s."""

SIMULATED_DETAILS_SOURCE: Final = "paceline-simulator"
"""`BLEDevice.details["source"]` of simulated devices (bleak-retry-connector prints it)."""


def _not_found(address: str) -> BleakDeviceNotFoundError:
    """The error bleak raises for an address the stack has never seen."""
    return BleakDeviceNotFoundError(address, f"Device with address {address} was not found.")


class SimulatedBleakClient(BaseBleakClient):
    """A bleak client backend talking to a `SimulatedWearable` instead of a radio.

    Extra keyword argument: `registry`, the `SimulatedDeviceRegistry` to look the address
    up in (default: `DEFAULT_REGISTRY`).
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        registry: SimulatedDeviceRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        """Bind to an address (or BLEDevice) and the registry to find it in."""
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.address = self.address.upper()
        self._registry = registry if registry is not None else DEFAULT_REGISTRY
        self._service_filter = (
            None if services is None else {uuids.normalize(uuid) for uuid in services}
        )
        self._device: SimulatedWearable | None = None
        self._connected = False
        self._callbacks: dict[int, NotifyCallback] = {}

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """The device's name, or the address with dashes if the device is unknown (as bleak does)."""
        device = self._device or self._registry.get(self.address)
        return device.name if device is not None else self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The ATT MTU: simulated devices keep the default."""
        return ATT_MTU

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connected

    # ------------------------------------------------------------------ connection

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect to the simulated device and discover its services."""
        if self._connected:
            return
        device = self._registry.get(self.address)
        if device is None:
            raise _not_found(self.address)
        # A real connect always suspends; callers must not rely on it completing synchronously.
        await asyncio.sleep(0)
        device.attach(self)
        self._device = device
        self._connected = True
        self.services = self._build_services(device)

    async def disconnect(self) -> None:
        """Disconnect; a scripted hang waits until cancelled, and the link is down either way."""
        device = self._device
        if not self._connected or device is None:
            return
        try:
            if device.consume_disconnect_hang():
                await asyncio.Event().wait()
        finally:
            self._teardown()
            device.detach(self)
            self._schedule_disconnected_callback()

    def link_lost(self) -> None:
        """The device dropped the link: tear down and fire the disconnected callback."""
        if not self._connected:
            return
        self._teardown()
        self._schedule_disconnected_callback()

    def _teardown(self) -> None:
        """Forget the session's state, as bleak does when a link ends."""
        self._connected = False
        self._callbacks.clear()
        self.services = None

    def _schedule_disconnected_callback(self) -> None:
        """Schedule the disconnected callback on the loop, as every bleak backend does."""
        callback = self._disconnected_callback
        if callback is not None:
            asyncio.get_running_loop().call_soon(callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Simulated wearables need no pairing (heart-rate straps do not either)."""
        _LOGGER.debug("%s: pairing is a no-op for simulated devices", self.address)

    async def unpair(self) -> None:
        """Nothing to unpair."""
        _LOGGER.debug("%s: unpairing is a no-op for simulated devices", self.address)

    def _build_services(self, device: SimulatedWearable) -> BleakGATTServiceCollection:
        """Bleak's service collection for the device: real UUIDs, properties, handles, CCCDs."""
        collection = BleakGATTServiceCollection()
        handle = 1
        for spec in device.services:
            # Handles are allocated for every service, filtered or not, so they never shift.
            keep = self._service_filter is None or spec.uuid in self._service_filter
            service = BleakGATTService(spec, handle, spec.uuid)
            if keep:
                collection.add_service(service)
            handle += 1
            for char_spec in spec.characteristics:
                characteristic = BleakGATTCharacteristic(
                    char_spec,
                    handle,
                    char_spec.uuid,
                    list(char_spec.properties),
                    lambda: ATT_MTU - 3,
                    service,
                )
                handle += 2  # declaration + value
                if keep:
                    collection.add_characteristic(characteristic)
                if "notify" in char_spec.properties or "indicate" in char_spec.properties:
                    if keep:
                        collection.add_descriptor(
                            BleakGATTDescriptor(
                                None,
                                handle,
                                uuids.CLIENT_CHARACTERISTIC_CONFIGURATION,
                                characteristic,
                            )
                        )
                    handle += 1
        return collection

    # ------------------------------------------------------------------ the wearable's side

    def is_notifying(self, characteristic_uuid: str) -> bool:
        """Whether a callback is registered for the characteristic."""
        return self._find(characteristic_uuid) is not None

    def _find(self, characteristic_uuid: str) -> NotifyCallback | None:
        """The callback registered for a characteristic UUID."""
        if not self._connected or self.services is None:
            return None
        for handle, callback in self._callbacks.items():
            characteristic = self.services.get_characteristic(handle)
            if characteristic is not None and characteristic.uuid == characteristic_uuid:
                return callback
        return None

    def deliver(self, characteristic_uuid: str, payload: bytes) -> None:
        """Hand a notification to its callback, as a `bytearray` like every bleak backend."""
        callback = self._find(characteristic_uuid)
        if callback is not None:
            callback(bytearray(payload))

    # ------------------------------------------------------------------ GATT I/O

    def _require_device(self) -> SimulatedWearable:
        """The connected device, or the error bleak raises when not connected."""
        if not self._connected or self._device is None:
            raise BleakError("Not connected")
        return self._device

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic's current value."""
        device = self._require_device()
        if "read" not in characteristic.properties:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)
        await asyncio.sleep(0)
        return bytearray(device.read(characteristic.uuid))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor: only CCCDs exist, reporting whether notifications are on."""
        self._require_device()
        if descriptor.uuid != uuids.CLIENT_CHARACTERISTIC_CONFIGURATION:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)
        notifying = descriptor.characteristic_handle in self._callbacks
        return bytearray(b"\x01\x00" if notifying else b"\x00\x00")

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic (the Heart Rate Control Point is the only writable one)."""
        device = self._require_device()
        allowed = "write" if response else "write-without-response"
        if allowed not in characteristic.properties:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)
        device.write(characteristic.uuid, bytes(data))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """No simulated descriptor is writable directly (CCCDs go through start_notify)."""
        self._require_device()
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications; a second call replaces the callback (BlueZ behaviour)."""
        self._require_device()
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"Characteristic {characteristic.uuid} does not support notifications")
        await asyncio.sleep(0)
        self._callbacks[characteristic.handle] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications."""
        self._require_device()
        self._callbacks.pop(characteristic.handle, None)


class SimulatedBleakScanner(BaseBleakScanner):
    """A bleak scanner backend reporting the advertisements of simulated wearables.

    Extra keyword argument: `registry` (default: `DEFAULT_REGISTRY`).
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None = None,
        service_uuids: list[str] | None = None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        registry: SimulatedDeviceRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        """Set up filters and the registry; scanning starts with `start()`."""
        super().__init__(detection_callback, service_uuids)
        self._registry = registry if registry is not None else DEFAULT_REGISTRY
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening (clears what was seen before, as bleak requires)."""
        self.seen_devices = {}
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        """Stop listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def report(self) -> None:
        """Deliver one round of advertisements from every advertising device."""
        for device in self._registry.advertising():
            adv = device.advertisement()
            if not self.is_allowed_uuid(adv.service_uuids):
                continue
            ble_device = self.create_or_update_device(
                device.address,
                device.address,
                device.name,
                {"source": SIMULATED_DETAILS_SOURCE},
                adv,
            )
            self.call_detection_callbacks(ble_device, adv)

    async def _listen(self) -> None:
        """Report advertisements periodically until stopped."""
        while True:
            self.report()
            await asyncio.sleep(ADVERTISING_REPORT_INTERVAL_S)


def simulated_ble_device(device: SimulatedWearable) -> BLEDevice:
    """The `BLEDevice` a scan would return for `device`, without scanning."""
    return BLEDevice(device.address, device.name, {"source": SIMULATED_DETAILS_SOURCE})


__all__ = [
    "ADVERTISING_REPORT_INTERVAL_S",
    "SIMULATED_DETAILS_SOURCE",
    "SimulatedBleakClient",
    "SimulatedBleakScanner",
    "simulated_ble_device",
]
