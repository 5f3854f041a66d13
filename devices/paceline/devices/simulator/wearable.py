"""A simulated wearable: GATT database, notifications from the patient model, scripted faults.

A `SimulatedWearable` is the peripheral side. It advertises, accepts one central at a
time (the `SimulatedBleakClient` backend), serves the services of its kind with real
payloads built by `paceline.devices.gatt`, and, while connected, steps its `PatientModel`
once per simulated second and sends what a real device of that kind would send for that
second. Faults are scripted per device, now or at a simulated time. Everything it sends
is recorded in `truth`, so a fault test can compare what reached the database with what
left the device.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError

from paceline.devices import gatt, uuids
from paceline.devices.clock import SimClock
from paceline.devices.simulator.physiology import (
    DEFAULT_ROUTINE,
    SECONDS_PER_DAY,
    Activity,
    Patient,
    PatientModel,
    Routine,
    SecondOfLife,
)

_LOGGER = logging.getLogger(__name__)

ATT_MTU: Final = 23
"""The default ATT MTU; most straps never negotiate more."""

MAX_NOTIFICATION_BYTES: Final = ATT_MTU - 3
"""A notification carries MTU − 3 bytes (1 opcode + 2 handle); extra RR intervals wait."""

ENERGY_EVERY_N: Final = 10
"""HRS 1.0 §3.1.1.3 suggests sending Energy Expended about once every 10 measurements."""

RESTING_ENERGY_KJ_PER_MIN: Final = 5.0
"""Floor of the energy estimate: Keytel's equation is fitted on exercise heart rates and
undershoots at rest, where expenditure is about 1.2 kcal (5 kJ) per minute."""

TEST_COMPANY_ID: Final = 0xFFFF
"""Bluetooth SIG company identifier reserved for tests: marks simulated advertisements."""


class WearableKind(enum.StrEnum):
    """Which real device a simulated wearable behaves like."""

    CHEST_STRAP = "chest_strap"
    BAND = "band"
    FOOTPOD = "footpod"
    PINETIME = "pinetime"


class ConnectFault(enum.StrEnum):
    """How a scripted connect attempt fails, mirroring what bleak raises on Linux."""

    TIMEOUT = "timeout"
    EOF = "eof"
    IN_PROGRESS = "in_progress"
    ABORTED = "aborted"
    NOT_FOUND = "not_found"


def connect_fault_error(fault: ConnectFault, address: str) -> Exception:
    """The exception a real stack raises for `fault`."""
    match fault:
        case ConnectFault.TIMEOUT:
            return TimeoutError(f"simulated: connecting to {address} timed out")
        case ConnectFault.EOF:
            # dbus-fast raises EOFError when the bus socket dies mid-call.
            return EOFError()
        case ConnectFault.IN_PROGRESS:
            return BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"])
        case ConnectFault.ABORTED:
            return BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"])
        case ConnectFault.NOT_FOUND:
            return BleakDeviceNotFoundError(
                address, f"Device with address {address} was not found."
            )


class MalformedKind(enum.StrEnum):
    """A broken Heart Rate Measurement of the kinds firmware bugs and RF corruption produce."""

    EMPTY = "empty"
    TRUNCATED_UINT16_BPM = "truncated_uint16_bpm"
    ENERGY_WITHOUT_BYTES = "energy_without_bytes"
    ODD_RR_BYTE = "odd_rr_byte"


MALFORMED_HEART_RATE: Final[dict[MalformedKind, bytes]] = {
    MalformedKind.EMPTY: b"",
    MalformedKind.TRUNCATED_UINT16_BPM: bytes([0x01, 0x48]),
    MalformedKind.ENERGY_WITHOUT_BYTES: bytes([0x08, 0x48]),
    MalformedKind.ODD_RR_BYTE: bytes([0x16, 0x48, 0x00, 0x04, 0x01]),
}


@dataclass(frozen=True, slots=True)
class SimCharacteristic:
    """A characteristic in a simulated GATT database."""

    uuid: str
    properties: tuple[CharacteristicPropertyName, ...]


@dataclass(frozen=True, slots=True)
class SimService:
    """A service in a simulated GATT database."""

    uuid: str
    characteristics: tuple[SimCharacteristic, ...]


class Central(Protocol):
    """The side of the simulated client the wearable talks to."""

    def is_notifying(self, characteristic_uuid: str) -> bool:
        """Whether notifications are enabled on the characteristic."""
        ...

    def deliver(self, characteristic_uuid: str, payload: bytes) -> None:
        """Hand a notification to the subscribed callback."""
        ...

    def link_lost(self) -> None:
        """The peripheral dropped the link."""
        ...


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True, slots=True)
class EmittedNotification:
    """A notification as it left the device: payload bytes and when (simulated time)."""

    seq: int
    time_s: float
    wall: datetime
    characteristic_uuid: str
    payload: bytes
    malformed: bool


@dataclass(frozen=True, slots=True)
class EmittedHeartRate:
    """The values of a well-formed Heart Rate Measurement the device sent."""

    seq: int
    time_s: float
    bpm: int
    sensor_contact: bool | None
    energy_kj: int | None
    rr_1024: tuple[int, ...]

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """The RR intervals as the receiver converts them."""
        return tuple(value * gatt.MS_PER_RR_UNIT for value in self.rr_1024)


@dataclass(frozen=True, slots=True)
class EmittedCadence:
    """The values of an RSC Measurement the device sent."""

    seq: int
    time_s: float
    cadence_spm: int
    speed_256: int


@dataclass(frozen=True, slots=True)
class EmittedStepCount:
    """A step-counter value the device sent."""

    seq: int
    time_s: float
    count: int


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A change of the link as the device saw it."""

    time_s: float
    event: str


@dataclass
class GroundTruth:
    """Everything a simulated wearable emitted, plus what the patient really did."""

    notifications: list[EmittedNotification] = field(default_factory=list)
    heart_rate: list[EmittedHeartRate] = field(default_factory=list)
    cadence: list[EmittedCadence] = field(default_factory=list)
    step_counts: list[EmittedStepCount] = field(default_factory=list)
    links: list[LinkChange] = field(default_factory=list)
    steps_taken: list[tuple[float, int]] = field(default_factory=list)
    """(simulated time, steps) of every second with steps, whether or not anyone listened."""

    def rr_ms(self) -> list[float]:
        """Every RR interval sent in a well-formed notification, in order, as the receiver sees it."""
        return [rr for sample in self.heart_rate for rr in sample.rr_ms]

    def malformed(self) -> list[EmittedNotification]:
        """The malformed payloads sent."""
        return [n for n in self.notifications if n.malformed]

    def total_steps_taken(self) -> int:
        """All steps the patient took while the model ran."""
        return sum(steps for _, steps in self.steps_taken)


CATCH_UP_S: Final = 10
"""Simulated seconds a connected device sends in one turn of the event loop when it has
fallen behind its clock. A host too slow for the fleet at its speed then sees the devices
fall further behind (`max_lag_s`) instead of one device's catch-up holding the loop,
and with it the daemon's timers and shutdown, for ever longer stretches."""


# --------------------------------------------------------------------------- the device


_GATT_ATTRIBUTE_PROPS: Final[dict[str, tuple[CharacteristicPropertyName, ...]]] = {
    "read": ("read",),
    "notify": ("notify",),
    "read_notify": ("read", "notify"),
    "write": ("write",),
}


def _layout(kind: WearableKind) -> tuple[SimService, ...]:
    """The GATT database of a kind of wearable, in handle order."""
    r, n, rn, w = (_GATT_ATTRIBUTE_PROPS[k] for k in ("read", "notify", "read_notify", "write"))
    dis = SimService(
        uuids.DEVICE_INFORMATION_SERVICE,
        tuple(SimCharacteristic(codec.UUID, r) for codec in gatt.DEVICE_INFORMATION_STRINGS),
    )
    battery = SimService(uuids.BATTERY_SERVICE, (SimCharacteristic(uuids.BATTERY_LEVEL, rn),))
    hrs = SimService(
        uuids.HEART_RATE_SERVICE,
        (
            SimCharacteristic(uuids.HEART_RATE_MEASUREMENT, n),
            SimCharacteristic(uuids.BODY_SENSOR_LOCATION, r),
            SimCharacteristic(uuids.HEART_RATE_CONTROL_POINT, w),
        ),
    )
    rsc = SimService(
        uuids.RUNNING_SPEED_AND_CADENCE_SERVICE,
        (SimCharacteristic(uuids.RSC_MEASUREMENT, n), SimCharacteristic(uuids.RSC_FEATURE, r)),
    )
    match kind:
        case WearableKind.CHEST_STRAP:
            return (hrs, battery, dis)
        case WearableKind.BAND:
            band_hrs = SimService(
                uuids.HEART_RATE_SERVICE,
                (
                    SimCharacteristic(uuids.HEART_RATE_MEASUREMENT, n),
                    SimCharacteristic(uuids.BODY_SENSOR_LOCATION, r),
                ),
            )
            return (band_hrs, rsc, battery, dis)
        case WearableKind.FOOTPOD:
            return (rsc, battery, dis)
        case WearableKind.PINETIME:
            # InfiniTime's order: device information, battery, heart rate, motion.
            infinitime_hrs = SimService(
                uuids.HEART_RATE_SERVICE, (SimCharacteristic(uuids.HEART_RATE_MEASUREMENT, rn),)
            )
            motion = SimService(
                uuids.INFINITIME_MOTION_SERVICE,
                (
                    SimCharacteristic(uuids.INFINITIME_STEP_COUNT, rn),
                    SimCharacteristic(uuids.INFINITIME_MOTION_VALUES, rn),
                ),
            )
            return (dis, battery, infinitime_hrs, motion)


_ADVERTISED: Final[dict[WearableKind, tuple[str, ...]]] = {
    WearableKind.CHEST_STRAP: (uuids.HEART_RATE_SERVICE,),
    WearableKind.BAND: (uuids.HEART_RATE_SERVICE, uuids.RUNNING_SPEED_AND_CADENCE_SERVICE),
    WearableKind.FOOTPOD: (uuids.RUNNING_SPEED_AND_CADENCE_SERVICE,),
    # InfiniTime puts only its name in the advertisement.
    WearableKind.PINETIME: (),
}

_NAME_PREFIX: Final[dict[WearableKind, str]] = {
    WearableKind.CHEST_STRAP: "Paceline Strap",
    WearableKind.BAND: "Paceline Band",
    WearableKind.FOOTPOD: "Paceline Pod",
    WearableKind.PINETIME: "InfiniTime",
}


def _device_information(kind: WearableKind, address: str) -> gatt.DeviceInformation:
    """What the Device Information Service of a kind says."""
    serial = address.replace(":", "")
    if kind is WearableKind.PINETIME:
        return gatt.DeviceInformation("PINE64", "PineTime", "0", "1.14.0", "1.0.0", "InfiniTime")
    model = {
        WearableKind.CHEST_STRAP: "HR Strap S1",
        WearableKind.BAND: "Wrist Band B2",
        WearableKind.FOOTPOD: "Footpod F1",
    }[kind]
    return gatt.DeviceInformation("Paceline Simulated", model, serial, "2.3.1", "1.0", "sim-1")


class SimulatedWearable:
    """A strap, band, footpod or PineTime driven by a seeded patient model on a `SimClock`."""

    def __init__(
        self,
        address: str,
        kind: WearableKind,
        *,
        clock: SimClock,
        patient: Patient | None = None,
        routine: Routine = DEFAULT_ROUTINE,
        seed: int = 0,
        name: str | None = None,
        battery_percent: int = 90,
        rssi_dbm: int = -60,
    ) -> None:
        """Build the device, its GATT database and its patient model, not yet connected."""
        self.address = address.upper()
        self.kind = kind
        self.clock = clock
        self.name = name or (
            _NAME_PREFIX[kind]
            if kind is WearableKind.PINETIME
            else f"{_NAME_PREFIX[kind]} {self.address[-5:].replace(':', '')}"
        )
        self.patient = patient or Patient.sample(seed)
        wall = clock.wall()
        self._origin_s = clock.monotonic()
        self._start_second_of_day = float(wall.hour * 3600 + wall.minute * 60 + wall.second)
        self.model = PatientModel(
            self.patient, routine, seed=seed, start_second_of_day=self._start_second_of_day
        )
        self.services = _layout(kind)
        self.device_information = _device_information(kind, self.address)
        self.truth = GroundTruth()
        self.rssi_dbm = rssi_dbm
        self._rng = random.Random(seed ^ 0x5EED)
        self._battery_percent = float(battery_percent)
        self._client: Central | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.max_lag_s = 0.0
        """The most simulated seconds the device fell behind its clock while connected (a host
        too busy to run it on time sends those seconds in one burst when it catches up)."""
        self._seq = 0
        self._changed = asyncio.Event()
        # Faults and script.
        self._silent = False
        self._in_range = True
        self._connect_faults: collections.deque[ConnectFault] = collections.deque()
        self._malformed: collections.deque[MalformedKind] = collections.deque()
        self._hang_disconnects = 0
        self._script: list[tuple[float, int, Callable[[SimulatedWearable], None]]] = []
        self._script_order = 0
        # Sensor state.
        self._pending_rr_ms: list[float] = []
        self._recent_rr_ms: collections.deque[float] = collections.deque(maxlen=4)
        self._hr_notifications = 0
        self._energy_kj = 0.0
        self._distance_dm = 0.0
        self._step_count = 0

    # ------------------------------------------------------------------ properties

    @property
    def has_heart_rate(self) -> bool:
        """Whether this kind measures heart rate."""
        return self.kind is not WearableKind.FOOTPOD

    @property
    def has_rsc(self) -> bool:
        """Whether this kind sends RSC Measurement."""
        return self.kind in (WearableKind.BAND, WearableKind.FOOTPOD)

    @property
    def is_connected(self) -> bool:
        """Whether a central holds the link."""
        return self._client is not None

    @property
    def is_advertising(self) -> bool:
        """Whether a scanner can hear it: in range and not connected (one central at a time)."""
        return self._in_range and self._client is None

    @property
    def silent(self) -> bool:
        """Whether the device is connected-but-silent."""
        return self._silent

    @property
    def now_s(self) -> float:
        """The simulated time of the end of the last simulated second."""
        return self._origin_s + self.model.elapsed_s

    @property
    def step_count(self) -> int:
        """The device's cumulative step counter (PineTime)."""
        return self._step_count

    @property
    def battery_percent(self) -> int:
        """The battery level the device would report."""
        return max(0, min(100, round(self._battery_percent)))

    def advertisement(self) -> AdvertisementData:
        """The advertisement a scanner receives now."""
        return AdvertisementData(
            local_name=self.name,
            manufacturer_data={TEST_COMPANY_ID: b"paceline-sim"},
            service_data={},
            service_uuids=list(_ADVERTISED[self.kind]),
            tx_power=0,
            rssi=self.rssi_dbm + self._rng.randint(-3, 3),
            platform_data=(),
        )

    def worn(self, activity: Activity) -> bool:
        """Whether the sensor is on the body: chest straps come off for the night."""
        return not (self.kind is WearableKind.CHEST_STRAP and activity is Activity.SLEEP)

    # ------------------------------------------------------------------ waiting

    def _notify_change(self) -> None:
        """Wake everything waiting in `wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[GroundTruth], bool]) -> None:
        """Return once `predicate(self.truth)` holds (re-checked after every emission or link change)."""
        while not predicate(self.truth):
            await self._changed.wait()

    # ------------------------------------------------------------------ link (called by the backend)

    def attach(self, central: Central) -> None:
        """Accept a connection from `central`, or raise what a scripted failure raises."""
        if not self._in_range:
            raise connect_fault_error(ConnectFault.NOT_FOUND, self.address)
        if self._connect_faults:
            fault = self._connect_faults.popleft()
            _LOGGER.debug("%s: scripted connect failure %s", self.address, fault)
            raise connect_fault_error(fault, self.address)
        if self._client is not None:
            # A connected peripheral stops advertising; a second central cannot find it.
            raise connect_fault_error(ConnectFault.NOT_FOUND, self.address)
        # Seconds that passed unobserved still happened to the patient.
        self._advance(emit=False)
        self._client = central
        self._pending_rr_ms.clear()
        self.truth.links.append(LinkChange(self.clock.monotonic(), "connected"))
        self._ticker = asyncio.get_running_loop().create_task(
            self._run(), name=f"simulated-wearable-{self.address}"
        )
        self._notify_change()

    def detach(self, central: Central, event: str = "disconnected") -> None:
        """End the link with `central` (requested by it, or dropped)."""
        if self._client is not central:
            return
        self._client = None
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not asyncio.current_task():
            ticker.cancel()
        self.truth.links.append(LinkChange(self.clock.monotonic(), event))
        self._notify_change()

    def consume_disconnect_hang(self) -> bool:
        """Whether the next requested disconnect should hang (scripted)."""
        if self._hang_disconnects:
            self._hang_disconnects -= 1
            return True
        return False

    def read(self, characteristic_uuid: str) -> bytes:
        """The current value of a readable characteristic."""
        info = self.device_information
        strings = {
            uuids.MANUFACTURER_NAME: info.manufacturer,
            uuids.MODEL_NUMBER: info.model,
            uuids.SERIAL_NUMBER: info.serial,
            uuids.FIRMWARE_REVISION: info.firmware,
            uuids.HARDWARE_REVISION: info.hardware,
            uuids.SOFTWARE_REVISION: info.software,
        }
        if characteristic_uuid in strings:
            return (strings[characteristic_uuid] or "").encode("utf-8")
        if characteristic_uuid == uuids.BATTERY_LEVEL:
            return bytes(gatt.BatteryLevel(self.battery_percent))
        if characteristic_uuid == uuids.BODY_SENSOR_LOCATION:
            location = (
                gatt.SensorLocation.CHEST
                if self.kind is WearableKind.CHEST_STRAP
                else gatt.SensorLocation.WRIST
            )
            return bytes(gatt.BodySensorLocation(location))
        if characteristic_uuid == uuids.RSC_FEATURE:
            features = gatt.RSCFeatureFlags.WALKING_OR_RUNNING_STATUS
            if self.kind is WearableKind.FOOTPOD:
                features |= gatt.RSCFeatureFlags.STRIDE_LENGTH | gatt.RSCFeatureFlags.TOTAL_DISTANCE
            return bytes(gatt.RSCFeature(features))
        if characteristic_uuid == uuids.INFINITIME_STEP_COUNT:
            return bytes(gatt.MotionStepCount(self._step_count))
        if characteristic_uuid == uuids.INFINITIME_MOTION_VALUES:
            return bytes(self._motion_values())
        if characteristic_uuid == uuids.HEART_RATE_MEASUREMENT:
            # InfiniTime allows reading the last measurement.
            return bytes(gatt.HeartRateMeasurement(round(self.model.hr_bpm)))
        raise KeyError(characteristic_uuid)

    def write(self, characteristic_uuid: str, data: bytes) -> None:
        """Handle a write; only the Heart Rate Control Point's 'reset energy expended' exists."""
        if characteristic_uuid == uuids.HEART_RATE_CONTROL_POINT and data == b"\x01":
            self._energy_kj = 0.0
            return
        raise BleakError(f"simulated {self.name}: write to {characteristic_uuid} not supported")

    # ------------------------------------------------------------------ scripted faults

    def drop_link(self) -> None:
        """Drop the link from the device side (out of range, reset): the client's callback fires."""
        central = self._client
        if central is None:
            return
        self.detach(central, "dropped")
        central.link_lost()

    def go_silent(self) -> None:
        """Stay connected but send nothing (a hung sensor)."""
        self._silent = True

    def resume(self) -> None:
        """Send notifications again after `go_silent`."""
        self._silent = False

    def corrupt_next_heart_rate(self, kind: MalformedKind, count: int = 1) -> None:
        """Replace the next `count` heart-rate notifications with a malformed payload."""
        self._malformed.extend([kind] * count)

    def inject(self, characteristic_uuid: str, payload: bytes) -> bool:
        """Send `payload` on a characteristic now, if subscribed; recorded as malformed."""
        return self._send(uuids.normalize(characteristic_uuid), payload, malformed=True)

    def fail_next_connects(
        self, count: int, fault: ConnectFault = ConnectFault.IN_PROGRESS
    ) -> None:
        """Make the next `count` connection attempts fail with `fault`."""
        self._connect_faults.extend([fault] * count)

    def hang_next_disconnect(self, count: int = 1) -> None:
        """Make the next requested disconnect never complete (until cancelled)."""
        self._hang_disconnects += count

    def reset_step_counter(self) -> None:
        """Zero the cumulative step counter, as a reboot or midnight does."""
        self._step_count = 0

    def set_in_range(self, in_range: bool) -> None:
        """Walk out of (or back into) radio range; leaving drops the link."""
        self._in_range = in_range
        if not in_range:
            self.drop_link()

    def schedule(self, at_s: float, action: Callable[[SimulatedWearable], None]) -> None:
        """Run `action(self)` when the simulated clock passes `at_s` (while the model runs)."""
        self._script_order += 1
        self._script.append((at_s, self._script_order, action))
        self._script.sort(key=lambda entry: (entry[0], entry[1]))

    # ------------------------------------------------------------------ simulation

    async def _run(self) -> None:
        """Step the model once per simulated second while a central is connected."""
        while self._client is not None:
            await self.clock.sleep_until(self.now_s + 1.0)
            self.max_lag_s = max(self.max_lag_s, self.clock.monotonic() - (self.now_s + 1.0))
            self._advance(emit=True, at_most_s=CATCH_UP_S)

    def _advance(self, *, emit: bool, at_most_s: int | None = None) -> None:
        """Simulate every whole second up to the clock's now (at most `at_most_s` of them)."""
        now = self.clock.monotonic()
        if at_most_s is not None:
            now = min(now, self.now_s + at_most_s)
        while self.now_s + 1.0 <= now:
            life = self.model.step()
            # What a device sends for a second, it sends at the end of that second, even
            # when the simulation is catching up after the event loop was busy.
            with self.clock.pinned(self._origin_s + life.t_s):
                self._apply(life, emit=emit and self._client is not None)
                self._run_script()

    def _run_script(self) -> None:
        """Fire the scripted actions whose time has come."""
        while self._script and self._script[0][0] <= self.now_s:
            _, _, action = self._script.pop(0)
            action(self)

    def _apply(self, life: SecondOfLife, *, emit: bool) -> None:
        """Turn one second of the patient's life into the device's state and notifications."""
        time_s = self._origin_s + life.t_s
        if life.steps:
            self.truth.steps_taken.append((time_s, life.steps))
        # Straps last ~400 h on a coin cell, watches about a week: drain on that scale.
        hours = 400.0 if self.kind is WearableKind.CHEST_STRAP else 160.0
        before = self.battery_percent
        self._battery_percent = max(0.0, self._battery_percent - 100.0 / (hours * 3600.0))
        self._energy_kj += self._energy_rate_kj_per_min(life.hr_bpm) / 60.0
        live = emit and not self._silent

        if self.has_heart_rate:
            self._heart_rate_second(life, time_s, live=live)
        if self.has_rsc:
            self._distance_dm += life.speed_m_s * 10.0
            if live:
                self._send_rsc(life, time_s)
        if self.kind is WearableKind.PINETIME:
            self._step_counter_second(life, time_s, live=live)
        if live and self.battery_percent != before:
            self._send(uuids.BATTERY_LEVEL, bytes(gatt.BatteryLevel(self.battery_percent)))

    def _energy_rate_kj_per_min(self, hr_bpm: float) -> float:
        """Energy expenditure from heart rate (Keytel et al. 2005, men's equation, kJ/min)."""
        p = self.patient
        keytel = -55.0969 + 0.6309 * hr_bpm + 0.1988 * p.weight_kg + 0.2017 * p.age_years
        return max(RESTING_ENERGY_KJ_PER_MIN, keytel)

    def _heart_rate_second(self, life: SecondOfLife, time_s: float, *, live: bool) -> None:
        """Build and send this second's Heart Rate Measurement."""
        worn = self.worn(life.activity)
        if worn:
            self._pending_rr_ms.extend(life.rr_ms)
            self._recent_rr_ms.extend(life.rr_ms)
        else:
            self._pending_rr_ms.clear()
            self._recent_rr_ms.clear()
        if not live or not self._is_notifying(uuids.HEART_RATE_MEASUREMENT):
            # Beats nobody is listening for are gone: straps keep no history.
            self._pending_rr_ms.clear()
            return
        if self._malformed:
            kind = self._malformed.popleft()
            self._pending_rr_ms.clear()
            self._send(uuids.HEART_RATE_MEASUREMENT, MALFORMED_HEART_RATE[kind], malformed=True)
            return
        measurement = self._measurement(life, worn)
        seq = self._seq + 1
        if self._send(uuids.HEART_RATE_MEASUREMENT, bytes(measurement)):
            self.truth.heart_rate.append(
                EmittedHeartRate(
                    seq,
                    time_s,
                    measurement.bpm,
                    measurement.sensor_contact,
                    measurement.energy_kj,
                    measurement.rr_1024,
                )
            )

    def _measurement(self, life: SecondOfLife, worn: bool) -> gatt.HeartRateMeasurement:
        """What this kind puts in a Heart Rate Measurement for this second."""
        if self.kind is WearableKind.PINETIME:
            # InfiniTime: flags 0, a uint8 rate from its PPG, no contact bit, no RR.
            self._pending_rr_ms.clear()
            return gatt.HeartRateMeasurement(min(255, round(life.hr_bpm)))
        if not worn:
            # No skin contact: straps keep notifying, with 0 bpm meaning "no reading".
            return gatt.HeartRateMeasurement(0, sensor_contact=False)
        self._hr_notifications += 1
        energy: int | None = None
        if self.kind is WearableKind.CHEST_STRAP and self._hr_notifications % ENERGY_EVERY_N == 1:
            # The field saturates at 0xFFFF until reset (HRS 1.0 §3.1.1.3).
            energy = min(gatt.UINT16_MAX, round(self._energy_kj))
        room = MAX_NOTIFICATION_BYTES - 2 - (2 if energy is not None else 0)
        take = room // 2
        sent, self._pending_rr_ms = self._pending_rr_ms[:take], self._pending_rr_ms[take:]
        if self._recent_rr_ms:
            # Straps report a rate averaged over the last few beats.
            bpm = round(60_000.0 / (sum(self._recent_rr_ms) / len(self._recent_rr_ms)))
        else:
            bpm = round(life.hr_bpm)
        return gatt.HeartRateMeasurement(
            min(gatt.UINT16_MAX, bpm),
            sensor_contact=True,
            energy_kj=energy,
            rr_1024=tuple(min(gatt.UINT16_MAX, round(rr * 1.024)) for rr in sent),
        )

    def _send_rsc(self, life: SecondOfLife, time_s: float) -> None:
        """Send this second's RSC Measurement."""
        if not self._is_notifying(uuids.RSC_MEASUREMENT):
            return
        cadence = min(255, round(life.cadence_spm))
        speed_256 = min(gatt.UINT16_MAX, round(life.speed_m_s * 256))
        if self.kind is WearableKind.FOOTPOD:
            # RSC stride length is foot-to-same-foot: two steps.
            stride_cm = round(2 * life.speed_m_s * 60 / life.cadence_spm * 100) if cadence else 0
            measurement = gatt.RSCMeasurement(
                speed_256,
                cadence,
                stride_length_cm=min(gatt.UINT16_MAX, stride_cm),
                total_distance_dm=round(self._distance_dm) % (gatt.UINT32_MAX + 1),
            )
        else:
            measurement = gatt.RSCMeasurement(speed_256, cadence)
        seq = self._seq + 1
        if self._send(uuids.RSC_MEASUREMENT, bytes(measurement)):
            self.truth.cadence.append(EmittedCadence(seq, time_s, cadence, speed_256))

    def _step_counter_second(self, life: SecondOfLife, time_s: float, *, live: bool) -> None:
        """Count steps (zeroing at midnight, as InfiniTime does) and notify a changed counter."""
        second_of_day = (self._start_second_of_day + life.t_s) % SECONDS_PER_DAY
        before = self._step_count
        if second_of_day < 1.0:
            self._step_count = 0
        self._step_count = (self._step_count + life.steps) % (gatt.UINT32_MAX + 1)
        if live and self._step_count != before and self._is_notifying(uuids.INFINITIME_STEP_COUNT):
            seq = self._seq + 1
            if self._send(
                uuids.INFINITIME_STEP_COUNT, bytes(gatt.MotionStepCount(self._step_count))
            ):
                self.truth.step_counts.append(EmittedStepCount(seq, time_s, self._step_count))

    def _motion_values(self) -> gatt.MotionValues:
        """A plausible accelerometer reading (about 1 g on Z at rest, jitter while walking)."""
        jitter = 300 if self.model.activity_now() in (Activity.WALK, Activity.BRISK_WALK) else 20
        return gatt.MotionValues(
            self._rng.randint(-jitter, jitter),
            self._rng.randint(-jitter, jitter),
            1024 + self._rng.randint(-jitter, jitter),
        )

    def _is_notifying(self, characteristic_uuid: str) -> bool:
        """Whether the connected central enabled notifications on the characteristic."""
        return self._client is not None and self._client.is_notifying(characteristic_uuid)

    def _send(self, characteristic_uuid: str, payload: bytes, *, malformed: bool = False) -> bool:
        """Notify the central (if subscribed) and record the payload; False if nobody listened."""
        central = self._client
        if central is None or not central.is_notifying(characteristic_uuid):
            return False
        self._seq += 1
        self.truth.notifications.append(
            EmittedNotification(
                self._seq,
                self.clock.monotonic(),
                self.clock.wall(),
                characteristic_uuid,
                payload,
                malformed,
            )
        )
        central.deliver(characteristic_uuid, payload)
        self._notify_change()
        return True


__all__ = [
    "ATT_MTU",
    "MALFORMED_HEART_RATE",
    "Central",
    "ConnectFault",
    "EmittedCadence",
    "EmittedHeartRate",
    "EmittedNotification",
    "EmittedStepCount",
    "GroundTruth",
    "LinkChange",
    "MalformedKind",
    "SimCharacteristic",
    "SimService",
    "SimulatedWearable",
    "WearableKind",
    "connect_fault_error",
]
