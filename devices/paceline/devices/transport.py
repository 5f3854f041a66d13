"""The BLE transport: a thin async layer over `bleak.BleakClient` that the ingest daemon drives.

`DeviceLink` owns one wearable across its reconnects. Each `connect()` opens a new
session (bleak-retry-connector's `establish_connection`, which retries the transient
failures BlueZ and ESPHome proxies are known for), resolves the device's profile from its
discovered services and returns it; `subscribe()` starts exactly one handler per notifying
characteristic; every notification is stamped on receipt, decoded, and handed to the sink
as a `Reading` (or a `Rejected` when it does not decode); an unsolicited disconnect becomes
a `LinkLost`. Callbacks from an older session are dropped by a generation number, so a stale
client can never deliver twice. `disconnect()` is always bounded by a timeout.

What to do when things fail (how long to wait, when to give up, the silence watchdog) is
the daemon's loop; `reconnect_delay_s` is the pure policy it can call. Sketch::

    queue: asyncio.Queue[LinkEvent] = asyncio.Queue()
    device = await find_device(address)            # scanner_backend=... for the simulator
    link = DeviceLink(device, queue.put_nowait)    # backend=SimulatedBleakClient, clock=...
    attempt, state = 0, StreamState()
    while True:
        try:
            profile = await link.connect()
            await link.subscribe()
        except ConnectError as exc:
            await asyncio.sleep(reconnect_delay_s(exc, attempt, jitter=random.random()))
            attempt += 1
            continue
        attempt = 0
        while not isinstance(event := await queue.get(), LinkLost):
            if isinstance(event, Reading):
                state, rows = derive_samples(event, state)   # → spool
        await asyncio.sleep(reconnect_delay_s(None, 0))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTServiceCollection
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)
from bleak_retry_connector import (
    MAX_CONNECT_ATTEMPTS,
    BleakClientWithServiceCache,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
    establish_connection,
)

from paceline.devices import (
    AdapterUnavailableError,
    ConnectError,
    LinkError,
    PayloadError,
    UnsupportedDeviceError,
    uuids,
)
from paceline.devices.backoff import Backoff
from paceline.devices.clock import SYSTEM_CLOCK, Clock, Stamper
from paceline.devices.events import EventSink, LinkLost, Reading, Rejected
from paceline.devices.gatt import (
    BatteryLevel,
    DeviceInformation,
    DeviceInfoString,
    GattValue,
)
from paceline.devices.profiles import (
    DEFAULT_PROFILES,
    Binding,
    DeviceProfile,
    DiscoveredCharacteristic,
    DiscoveredService,
    ProfileRegistry,
    ResolvedProfile,
)

_LOGGER = logging.getLogger(__name__)

DISCONNECT_TIMEOUT_S: Final = 5.0
"""Upper bound on `disconnect()`.

BlueZ waits up to 10 s for the peripheral to confirm, and a device that has walked out
of range never confirms; five seconds (bleak-retry-connector's own DISCONNECT_TIMEOUT) is
ample for a device that is there, and a daemon must not hang on one that is not.
"""

GATT_TIMEOUT_S: Final = 10.0
"""Upper bound on one read or one notification subscription.

BlueZ's ATT transaction timeout is 30 s; a healthy link answers in tens of milliseconds,
so ten seconds only ever cuts off a link that is already dead, three times sooner.
"""

SCAN_TIMEOUT_S: Final = 10.0
"""How long `find_device` listens: straps advertise every 0.1–1 s, even slow ones twice in 10 s."""

SILENCE_TIMEOUT_S: Final = 15.0
"""A watchdog suggestion for the daemon: straps notify every second, so 15 s of nothing
on a link that still claims to be connected means a hung sensor worth reconnecting."""

RECONNECT_AFTER_LOSS_S: Final = 0.5
"""First retry after a working link dropped: long enough for BlueZ to tear the old
connection down (bleak-retry-connector backs off 0.25 s for the same reason), short enough
to lose about one notification."""

RECONNECT_BASE_DELAY_S: Final = 1.0
"""First delay of the exponential backoff for ordinary connect failures."""

RECONNECT_MAX_DELAY_S: Final = 60.0
"""Cap of the ordinary backoff: a strap back in range is picked up within a minute."""

RECONNECT_NOT_FOUND_DELAY_S: Final = 15.0
"""Floor when the device was not found: a strap taken off the chest sleeps and stops
advertising; hammering the adapter with connects only blocks the other devices' scans."""

RECONNECT_NO_SLOT_DELAY_S: Final = 30.0
"""Floor when the adapter or proxy is out of connection slots: a slot frees only when
another connection ends, which takes far longer than a retry."""

RECONNECT_JITTER_FRACTION: Final = 0.25
"""Spread of the delay so that the devices of one gateway do not all retry together."""
RECONNECT_BACKOFF: Final = Backoff(
    base_s=RECONNECT_BASE_DELAY_S,
    cap_s=RECONNECT_MAX_DELAY_S,
    factor=2.0,
    jitter=RECONNECT_JITTER_FRACTION,
)
"""The ordinary reconnect policy; not-found and no-slot failures wait at least longer."""


def reconnect_delay_s(exc: BaseException | None, attempt: int, *, jitter: float = 0.0) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based), given why the last one failed.

    `exc` is None after a working link was lost, else the error `connect()` raised; a
    `ConnectError` is classified by the bleak-retry-connector error it keeps (`error`).
    `jitter` in [0, 1) comes from the caller's RNG, which keeps this function pure.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    backoff = RECONNECT_BACKOFF.delay_s(attempt)
    if exc is None:
        delay = RECONNECT_AFTER_LOSS_S if attempt == 0 else backoff
    else:
        why = exc.error if isinstance(exc, ConnectError) and exc.error is not None else exc
        if isinstance(why, BleakOutOfConnectionSlotsError):
            delay = max(RECONNECT_NO_SLOT_DELAY_S, backoff)
        elif isinstance(why, BleakNotFoundError | BleakDeviceNotFoundError):
            delay = max(RECONNECT_NOT_FOUND_DELAY_S, backoff)
        else:
            delay = backoff
    return RECONNECT_BACKOFF.stretch(delay, jitter)


NO_ADAPTER_REASONS: Final = frozenset(
    {
        BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
        BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE,
        BleakBluetoothNotAvailableReason.DENIED_BY_USER,
        BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
    }
)
"""Why bleak finds no Bluetooth that waiting would not mend.

A radio that is only powered off (`POWERED_OFF`) is not among them: rfkill, a
laptop's airplane mode or a user switches it back on, so that is worth retrying.
"""

DBUS_NO_BLUEZ: Final = "org.freedesktop.DBus.Error.ServiceUnknown"
"""The D-Bus error when nothing owns `org.bluez`: bluetoothd is not running."""


def adapter_unavailable(exc: BaseException) -> str | None:
    """Why `exc` (from starting a scan) means this host has no usable Bluetooth, or None.

    Pure, like `reconnect_delay_s`. None means a transient adapter error (a radio
    switched off, BlueZ busy or resetting: `org.bluez.Error.NotReady`, `InProgress`)
    that a retry may get past. On Linux bleak reaches BlueZ over the D-Bus system bus,
    so a missing bus socket (`FileNotFoundError`, `[Errno 2]`) or a refused one means
    there is no BlueZ to talk to at all.
    """
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return str(exc.args[0]) if exc.reason in NO_ADAPTER_REASONS else None
    if isinstance(exc, BleakDBusError):
        if exc.dbus_error == DBUS_NO_BLUEZ:
            return "BlueZ is not running (nothing owns org.bluez on the D-Bus system bus)"
        return None
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return f"the D-Bus system bus is not reachable, so BlueZ cannot be ({exc})"
    return None


async def require_adapter(
    *, scanner_backend: type[BaseBleakScanner] | None = None, **scanner_kwargs: Any
) -> BaseException | None:
    """Start and stop a scan once; raise `AdapterUnavailableError` if there is no Bluetooth.

    Returns the transient error a start raised (the caller goes on and its device
    tasks retry), or None when the scan started.
    """
    try:
        async with BleakScanner(backend=scanner_backend, **scanner_kwargs):
            pass
    except (BleakError, OSError) as exc:
        reason = adapter_unavailable(exc)
        if reason is not None:
            raise AdapterUnavailableError(reason) from exc
        _LOGGER.warning("Bluetooth adapter not ready (%s); retrying", exc or type(exc).__name__)
        return exc
    return None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A wearable heard while scanning, with the profile its advertisement suggests."""

    device: BLEDevice
    name: str | None
    rssi: int
    service_uuids: tuple[str, ...]
    profile: DeviceProfile | None

    @property
    def address(self) -> str:
        """The device's Bluetooth address (a UUID on macOS)."""
        return self.device.address


def _scan_result(
    device: BLEDevice, adv: AdvertisementData, profiles: ProfileRegistry
) -> ScanResult:
    """Label one advertisement with the profile it suggests."""
    service_uuids = tuple(uuids.normalize(uuid) for uuid in adv.service_uuids)
    name = adv.local_name or device.name
    return ScanResult(device, name, adv.rssi, service_uuids, profiles.guess(service_uuids, name))


async def scan(
    timeout_s: float = 5.0,
    *,
    scanner_backend: type[BaseBleakScanner] | None = None,
    profiles: ProfileRegistry = DEFAULT_PROFILES,
    known_only: bool = False,
    **scanner_kwargs: Any,
) -> list[ScanResult]:
    """Listen for `timeout_s` seconds and list the devices heard, strongest first."""
    async with BleakScanner(backend=scanner_backend, **scanner_kwargs) as scanner:
        await asyncio.sleep(timeout_s)
    results = [
        _scan_result(device, adv, profiles)
        for device, adv in scanner.discovered_devices_and_advertisement_data.values()
    ]
    if known_only:
        results = [result for result in results if result.profile is not None]
    return sorted(results, key=lambda result: (-result.rssi, result.address))


async def find_device(
    address: str,
    *,
    timeout_s: float = SCAN_TIMEOUT_S,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **scanner_kwargs: Any,
) -> BLEDevice:
    """Scan until the device with `address` advertises; raise `ConnectError` if it does not."""
    wanted = address.upper()
    async with BleakScanner(backend=scanner_backend, **scanner_kwargs) as scanner:
        try:
            async with asyncio.timeout(timeout_s):
                async for device, _adv in scanner.advertisement_data():
                    if device.address.upper() == wanted:
                        return device
        except TimeoutError:
            pass
    raise ConnectError(address, f"not advertising (scanned {timeout_s:g} s)")


def discovered_services(services: BleakGATTServiceCollection) -> tuple[DiscoveredService, ...]:
    """Copy bleak's service collection into the plain dataclasses profiles resolve against."""
    return tuple(
        DiscoveredService(
            uuid=service.uuid,
            handle=service.handle,
            characteristics=tuple(
                DiscoveredCharacteristic(char.uuid, char.handle, frozenset(char.properties))
                for char in service.characteristics
            ),
        )
        for service in services
    )


class DeviceLink:
    """One wearable, across reconnects: connect, resolve its profile, read, subscribe, disconnect.

    `backend` is passed through to `BleakClient` (e.g. the simulator's
    `SimulatedBleakClient`); `client_kwargs` go to the client too (the simulator takes a
    `registry=`). `clock` stamps receipts; pass the simulator's `SimClock` so that samples
    carry simulated time.
    """

    def __init__(
        self,
        device: BLEDevice,
        sink: EventSink,
        *,
        profiles: ProfileRegistry = DEFAULT_PROFILES,
        clock: Clock = SYSTEM_CLOCK,
        stamper: Stamper | None = None,
        backend: type[BaseBleakClient] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        """Prepare the link; nothing is connected until `connect()`."""
        self.device = device
        self._sink = sink
        self._profiles = profiles
        self._stamper = stamper or Stamper(clock)
        self._backend = backend
        self._client_kwargs = dict(client_kwargs or {})
        self._name = name or device.name or device.address
        self._client: BleakClient | None = None
        self._profile: ResolvedProfile | None = None
        self._session = 0
        self._generation = 0
        self._subscribed: set[int] = set()
        self._lost = asyncio.Event()
        self._last_event_monotonic_s: float | None = None

    @property
    def address(self) -> str:
        """The device's address."""
        return self.device.address

    @property
    def profile(self) -> ResolvedProfile | None:
        """The profile resolved at the last connect, None before the first."""
        return self._profile

    @property
    def is_connected(self) -> bool:
        """Whether the current session's client is connected."""
        return self._client is not None and self._client.is_connected

    @property
    def session(self) -> int:
        """How many sessions `connect()` has opened (1 after the first connect)."""
        return self._session

    @property
    def subscribed(self) -> frozenset[str]:
        """The characteristic UUIDs with a handler in the current session."""
        if self._profile is None:
            return frozenset()
        return frozenset(
            binding.characteristic_uuid
            for binding in self._profile.bindings
            if binding.handle in self._subscribed
        )

    @property
    def last_event_monotonic_s(self) -> float | None:
        """Monotonic time of the last reading or rejected payload, for a silence watchdog."""
        return self._last_event_monotonic_s

    async def connect(self, *, max_attempts: int = MAX_CONNECT_ATTEMPTS) -> ResolvedProfile:
        """Open a new session and resolve the device's profile from its services.

        Closes the previous session first, if any. Raises `ConnectError` when
        bleak-retry-connector gives up and `UnsupportedDeviceError` when no profile fits
        (the link is closed again in that case).
        """
        await self.disconnect()
        self._session += 1
        self._generation += 1
        generation = self._generation
        self._subscribed = set()
        self._lost = asyncio.Event()
        kwargs: dict[str, Any] = dict(self._client_kwargs)
        if self._backend is not None:
            kwargs["backend"] = self._backend
        try:
            client = await establish_connection(
                BleakClientWithServiceCache,
                self.device,
                self._name,
                disconnected_callback=partial(self._on_disconnected, generation),
                max_attempts=max_attempts,
                **kwargs,
            )
        except (BleakError, TimeoutError, EOFError, BrokenPipeError) as exc:
            raise ConnectError(self.address, str(exc) or type(exc).__name__, error=exc) from exc
        self._client = client
        services = discovered_services(client.services)
        resolved = self._profiles.resolve(services)
        if resolved is None:
            await self.disconnect()
            raise UnsupportedDeviceError(self.address, tuple(s.uuid for s in services))
        self._profile = resolved
        _LOGGER.debug(
            "%s: connected (session %s) as %s, streams %s",
            self.address,
            self._session,
            resolved.name,
            sorted(resolved.streams),
        )
        return resolved

    def _on_disconnected(self, generation: int, _client: BleakClient) -> None:
        """Bleak's disconnected callback: report an unsolicited loss of the current session."""
        if generation != self._generation:
            # Our own disconnect() moved the generation on before asking: nothing was lost.
            return
        _LOGGER.info("%s: link lost (session %s)", self.address, self._session)
        self._subscribed = set()
        self._lost.set()
        self._sink(LinkLost(self.address, self._stamper.stamp()))

    async def wait_until_lost(self) -> None:
        """Return once the current session's link drops without being asked to."""
        await self._lost.wait()

    def _require(self, operation: str) -> tuple[BleakClient, ResolvedProfile]:
        """The connected client and profile, or `LinkError` naming `operation`."""
        if self._client is None or self._profile is None or not self._client.is_connected:
            raise LinkError(self.address, operation, "not connected")
        return self._client, self._profile

    def _characteristic(self, client: BleakClient, binding: Binding) -> BleakGATTCharacteristic:
        """Bleak's characteristic object for a binding (by handle: UUIDs may repeat)."""
        characteristic = client.services.get_characteristic(binding.handle)
        if characteristic is None:
            raise LinkError(self.address, "lookup", f"handle {binding.handle} vanished")
        return characteristic

    async def subscribe(self) -> frozenset[str]:
        """Start notifications on every notifying characteristic of the profile, once per session.

        Calling it again (after a partial failure, or just twice) only subscribes what is
        not subscribed yet, so each characteristic has exactly one handler.
        """
        client, profile = self._require("subscribe")
        for binding in profile.notify_bindings:
            if binding.handle in self._subscribed:
                continue
            handler = partial(self._on_notification, self._generation, binding)
            try:
                async with asyncio.timeout(GATT_TIMEOUT_S):
                    await client.start_notify(self._characteristic(client, binding), handler)
            except (BleakError, TimeoutError) as exc:
                raise LinkError(
                    self.address, f"subscribe {binding.characteristic_uuid}", str(exc) or "timeout"
                ) from exc
            self._subscribed.add(binding.handle)
        return self.subscribed

    def _on_notification(
        self,
        generation: int,
        binding: Binding,
        _char: BleakGATTCharacteristic,
        data: bytearray,
    ) -> None:
        """Stamp, decode and hand one notification to the sink; drop a stale session's."""
        if generation != self._generation:
            return
        stamp = self._stamper.stamp()
        self._last_event_monotonic_s = stamp.monotonic_s
        payload = bytes(data)
        try:
            value = binding.decode(payload)
        except PayloadError as exc:
            _LOGGER.debug(
                "%s: rejected %s payload %s: %s",
                self.address,
                binding.characteristic_uuid,
                payload.hex(),
                exc,
            )
            self._sink(
                Rejected(self.address, binding.characteristic_uuid, payload, str(exc), stamp)
            )
            return
        self._sink(
            Reading(self.address, binding.characteristic_uuid, value, binding.streams, stamp)
        )

    async def read_value(self, characteristic_uuid: str) -> GattValue | None:
        """Read and decode a readable characteristic of the profile; None if the device lacks it."""
        client, profile = self._require(f"read {characteristic_uuid}")
        binding = profile.binding_for(characteristic_uuid)
        if binding is None or not binding.readable:
            return None
        try:
            async with asyncio.timeout(GATT_TIMEOUT_S):
                data = await client.read_gatt_char(self._characteristic(client, binding))
        except (BleakError, TimeoutError) as exc:
            raise LinkError(
                self.address, f"read {binding.characteristic_uuid}", str(exc) or "timeout"
            ) from exc
        return binding.decode(data)

    async def read_battery(self) -> BatteryLevel | None:
        """The battery level, or None if the device has no Battery Service."""
        value = await self.read_value(uuids.BATTERY_LEVEL)
        return value if isinstance(value, BatteryLevel) else None

    async def read_device_info(self) -> DeviceInformation:
        """Whatever Device Information strings the device has; a malformed string reads as absent."""
        _client, profile = self._require("read device information")
        strings: list[DeviceInfoString] = []
        for binding in profile.bindings:
            if binding.service_uuid != uuids.DEVICE_INFORMATION_SERVICE:
                continue
            try:
                value = await self.read_value(binding.characteristic_uuid)
            except PayloadError as exc:
                _LOGGER.warning("%s: ignoring malformed device information: %s", self.address, exc)
                continue
            if isinstance(value, DeviceInfoString):
                strings.append(value)
        return DeviceInformation.from_strings(strings)

    async def disconnect(self, timeout_s: float = DISCONNECT_TIMEOUT_S) -> None:
        """Close the current session, never waiting more than `timeout_s`; safe to call twice."""
        client = self._client
        if client is None:
            return
        # Move the generation on first, so the callbacks the teardown triggers are ignored.
        self._generation += 1
        self._client = None
        self._subscribed = set()
        try:
            async with asyncio.timeout(timeout_s):
                await client.disconnect()
        except TimeoutError:
            _LOGGER.warning("%s: disconnect did not finish within %s s", self.address, timeout_s)
        except (BleakError, EOFError, BrokenPipeError):
            _LOGGER.warning("%s: error while disconnecting", self.address, exc_info=True)

    async def __aenter__(self) -> DeviceLink:
        """Connect and subscribe."""
        await self.connect()
        await self.subscribe()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Disconnect (bounded)."""
        await self.disconnect()


__all__ = [
    "DBUS_NO_BLUEZ",
    "DISCONNECT_TIMEOUT_S",
    "GATT_TIMEOUT_S",
    "NO_ADAPTER_REASONS",
    "RECONNECT_AFTER_LOSS_S",
    "RECONNECT_BASE_DELAY_S",
    "RECONNECT_JITTER_FRACTION",
    "RECONNECT_MAX_DELAY_S",
    "RECONNECT_NOT_FOUND_DELAY_S",
    "RECONNECT_NO_SLOT_DELAY_S",
    "SCAN_TIMEOUT_S",
    "SILENCE_TIMEOUT_S",
    "DeviceLink",
    "ScanResult",
    "adapter_unavailable",
    "discovered_services",
    "find_device",
    "reconnect_delay_s",
    "require_adapter",
    "scan",
]
