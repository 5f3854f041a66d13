"""Device profiles: from a device's services, what it can give and which codec reads what.

A `DeviceProfile` names the services a kind of device must have (`required`) and may have
(`optional`), and for each characteristic the codec that decodes it and the raw streams
(heart rate, RR intervals, steps, battery) it feeds. A `ProfileRegistry` picks the most
specific profile for a device, first from its advertisement (to label scan results) and
then, authoritatively, from the services discovered after connecting. Supporting a new
kind of wearable means registering one more profile; the transport and the daemon only
ever walk the resolved bindings.

Everything here is pure: discovered services come in as plain dataclasses, so profiles
are tested without bleak.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from paceline.devices import gatt, uuids
from paceline.devices.gatt import GattValue


class Stream(enum.StrEnum):
    """A raw stream a wearable can feed (the ingest layer maps each to its table)."""

    HEART_RATE = "hr"
    RR_INTERVAL = "rr"
    STEPS = "steps"
    BATTERY = "battery"


@dataclass(frozen=True, slots=True)
class CharacteristicSpec:
    """A characteristic a profile understands: its UUID, codec and the streams it feeds."""

    uuid: str
    codec: type[GattValue]
    streams: frozenset[Stream] = frozenset()
    required: bool = True


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service a profile understands and the characteristics it reads from it."""

    uuid: str
    characteristics: tuple[CharacteristicSpec, ...]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """A kind of wearable: the services it must and may have, and how to read each.

    `advertised_names` are local-name prefixes for devices that advertise no service UUID
    (InfiniTime advertises only its name); they label scan results and play no part in
    resolving a connected device, which is decided by its discovered services.
    """

    name: str
    description: str
    required: tuple[ServiceSpec, ...]
    optional: tuple[ServiceSpec, ...] = ()
    advertised_names: tuple[str, ...] = ()

    @property
    def streams(self) -> frozenset[Stream]:
        """Every stream a device of this kind can feed when all optional services are present."""
        return frozenset(
            stream
            for service in (*self.required, *self.optional)
            for characteristic in service.characteristics
            for stream in characteristic.streams
        )


@dataclass(frozen=True, slots=True)
class DiscoveredCharacteristic:
    """A characteristic found on a connected device (a bleak-free copy of what matters)."""

    uuid: str
    handle: int
    properties: frozenset[str]


@dataclass(frozen=True, slots=True)
class DiscoveredService:
    """A service found on a connected device with its characteristics."""

    uuid: str
    handle: int
    characteristics: tuple[DiscoveredCharacteristic, ...]


@dataclass(frozen=True, slots=True)
class Binding:
    """One characteristic of one connected device, bound to the codec that reads it."""

    service_uuid: str
    characteristic_uuid: str
    handle: int
    codec: type[GattValue]
    streams: frozenset[Stream]
    notify: bool
    readable: bool

    def decode(self, data: gatt.BytesLike) -> GattValue:
        """Decode a payload of this characteristic (raises `PayloadError` if malformed)."""
        return self.codec.from_bytes(data)


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    """The profile chosen for a connected device and the bindings it has on that device."""

    profile: DeviceProfile
    bindings: tuple[Binding, ...]

    @property
    def name(self) -> str:
        """The profile's name (what the `device.profile` column holds)."""
        return self.profile.name

    @property
    def streams(self) -> frozenset[Stream]:
        """The streams this particular device can feed."""
        return frozenset(stream for binding in self.bindings for stream in binding.streams)

    @property
    def notify_bindings(self) -> tuple[Binding, ...]:
        """The bindings to subscribe to, in discovery order: those that notify and feed a stream.

        A characteristic that feeds no stream (InfiniTime's raw motion values notify many
        times a second) is left unsubscribed: it would only cost radio time and battery.
        """
        return tuple(binding for binding in self.bindings if binding.notify and binding.streams)

    def binding_for(self, characteristic_uuid: str) -> Binding | None:
        """The first binding of a characteristic UUID, or None if the device lacks it."""
        wanted = uuids.normalize(characteristic_uuid)
        return next((b for b in self.bindings if b.characteristic_uuid == wanted), None)


def _find_service(services: Sequence[DiscoveredService], uuid: str) -> DiscoveredService | None:
    """The first discovered service with `uuid`."""
    return next((service for service in services if service.uuid == uuid), None)


def _find_characteristic(service: DiscoveredService, uuid: str) -> DiscoveredCharacteristic | None:
    """The first characteristic of `service` with `uuid`."""
    return next((char for char in service.characteristics if char.uuid == uuid), None)


def _satisfies(services: Sequence[DiscoveredService], spec: ServiceSpec) -> bool:
    """Whether the device has the service and every required characteristic of it."""
    service = _find_service(services, spec.uuid)
    if service is None:
        return False
    return all(
        _find_characteristic(service, char.uuid) is not None
        for char in spec.characteristics
        if char.required
    )


def _bind(profile: DeviceProfile, services: Sequence[DiscoveredService]) -> tuple[Binding, ...]:
    """Bind every characteristic of `profile` that this device has."""
    bindings: list[Binding] = []
    for spec in (*profile.required, *profile.optional):
        service = _find_service(services, spec.uuid)
        if service is None:
            continue
        for char_spec in spec.characteristics:
            found = _find_characteristic(service, char_spec.uuid)
            if found is None:
                continue
            bindings.append(
                Binding(
                    service_uuid=service.uuid,
                    characteristic_uuid=found.uuid,
                    handle=found.handle,
                    codec=char_spec.codec,
                    streams=char_spec.streams,
                    notify="notify" in found.properties,
                    readable="read" in found.properties,
                )
            )
    return tuple(bindings)


class ProfileRegistry:
    """The known device profiles; resolution picks the most specific one that fits.

    Most specific means: the most required services, then the most streams actually
    available on this device, then the earliest registered.
    """

    def __init__(self, profiles: Iterable[DeviceProfile] = ()) -> None:
        """Register `profiles` in order."""
        self._profiles: dict[str, DeviceProfile] = {}
        for profile in profiles:
            self.register(profile)

    def register(self, profile: DeviceProfile) -> DeviceProfile:
        """Add a profile; its name must be new."""
        if profile.name in self._profiles:
            raise ValueError(f"a device profile named {profile.name!r} is already registered")
        if not profile.required:
            raise ValueError(f"device profile {profile.name!r} requires no service")
        self._profiles[profile.name] = profile
        return profile

    def __iter__(self) -> Iterator[DeviceProfile]:
        """Iterate the profiles in registration order."""
        return iter(self._profiles.values())

    def __len__(self) -> int:
        """The number of registered profiles."""
        return len(self._profiles)

    def get(self, name: str) -> DeviceProfile | None:
        """The profile registered under `name`."""
        return self._profiles.get(name)

    def resolve(self, services: Sequence[DiscoveredService]) -> ResolvedProfile | None:
        """Choose the profile for a connected device from its discovered services."""
        best: tuple[tuple[int, int, int], ResolvedProfile] | None = None
        for order, profile in enumerate(self._profiles.values()):
            if not all(_satisfies(services, spec) for spec in profile.required):
                continue
            resolved = ResolvedProfile(profile, _bind(profile, services))
            score = (len(profile.required), len(resolved.streams), -order)
            if best is None or score > best[0]:
                best = (score, resolved)
        return None if best is None else best[1]

    def guess(self, service_uuids: Iterable[str], local_name: str | None) -> DeviceProfile | None:
        """Guess a profile from an advertisement (service UUIDs and local name) for scan results.

        Most specific means: matched by name, then the most required services, then the
        most of the profile's services advertised, then the earliest registered.
        """
        advertised = {uuids.normalize(uuid) for uuid in service_uuids}
        best: tuple[tuple[int, int, int, int], DeviceProfile] | None = None
        for order, profile in enumerate(self._profiles.values()):
            by_name = bool(local_name) and any(
                (local_name or "").startswith(prefix) for prefix in profile.advertised_names
            )
            by_services = all(spec.uuid in advertised for spec in profile.required)
            if not (by_name or by_services):
                continue
            known = {spec.uuid for spec in (*profile.required, *profile.optional)}
            score = (int(by_name), len(profile.required), len(known & advertised), -order)
            if best is None or score > best[0]:
                best = (score, profile)
        return None if best is None else best[1]


# --------------------------------------------------------------------------- built-in profiles

_HR_AND_RR: Final = frozenset({Stream.HEART_RATE, Stream.RR_INTERVAL})

HEART_RATE_SERVICE_SPEC: Final = ServiceSpec(
    uuids.HEART_RATE_SERVICE,
    (
        CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, gatt.HeartRateMeasurement, _HR_AND_RR),
        CharacteristicSpec(uuids.BODY_SENSOR_LOCATION, gatt.BodySensorLocation, required=False),
    ),
)

BATTERY_SERVICE_SPEC: Final = ServiceSpec(
    uuids.BATTERY_SERVICE,
    (CharacteristicSpec(uuids.BATTERY_LEVEL, gatt.BatteryLevel, frozenset({Stream.BATTERY})),),
)

DEVICE_INFORMATION_SERVICE_SPEC: Final = ServiceSpec(
    uuids.DEVICE_INFORMATION_SERVICE,
    tuple(
        CharacteristicSpec(codec.UUID, codec, required=False)
        for codec in gatt.DEVICE_INFORMATION_STRINGS
    ),
)

RSC_SERVICE_SPEC: Final = ServiceSpec(
    uuids.RUNNING_SPEED_AND_CADENCE_SERVICE,
    (
        CharacteristicSpec(uuids.RSC_MEASUREMENT, gatt.RSCMeasurement, frozenset({Stream.STEPS})),
        CharacteristicSpec(uuids.RSC_FEATURE, gatt.RSCFeature, required=False),
    ),
)

INFINITIME_HEART_RATE_SPEC: Final = ServiceSpec(
    uuids.HEART_RATE_SERVICE,
    # InfiniTime's heart-rate service sends a uint8 rate and never RR intervals: its PPG
    # algorithm only produces a rate, so the profile does not promise an RR stream.
    (
        CharacteristicSpec(
            uuids.HEART_RATE_MEASUREMENT,
            gatt.HeartRateMeasurement,
            frozenset({Stream.HEART_RATE}),
        ),
    ),
)

INFINITIME_MOTION_SPEC: Final = ServiceSpec(
    uuids.INFINITIME_MOTION_SERVICE,
    (
        CharacteristicSpec(
            uuids.INFINITIME_STEP_COUNT, gatt.MotionStepCount, frozenset({Stream.STEPS})
        ),
        CharacteristicSpec(uuids.INFINITIME_MOTION_VALUES, gatt.MotionValues, required=False),
    ),
)

HEART_RATE_STRAP: Final = DeviceProfile(
    name="hr_strap",
    description="heart-rate strap or sensor (Heart Rate Service 0x180D)",
    required=(HEART_RATE_SERVICE_SPEC,),
    optional=(BATTERY_SERVICE_SPEC, DEVICE_INFORMATION_SERVICE_SPEC),
)

RSC_SENSOR: Final = DeviceProfile(
    name="rsc_sensor",
    description="footpod or band with Running Speed and Cadence (0x1814), heart rate if present",
    required=(RSC_SERVICE_SPEC,),
    optional=(HEART_RATE_SERVICE_SPEC, BATTERY_SERVICE_SPEC, DEVICE_INFORMATION_SERVICE_SPEC),
)

PINETIME: Final = DeviceProfile(
    name="pinetime",
    description="PineTime running InfiniTime (heart rate 0x180D + InfiniTime motion service)",
    required=(INFINITIME_HEART_RATE_SPEC, INFINITIME_MOTION_SPEC),
    optional=(BATTERY_SERVICE_SPEC, DEVICE_INFORMATION_SERVICE_SPEC),
    advertised_names=("InfiniTime", "Pinetime-JF"),
)


def default_registry() -> ProfileRegistry:
    """A fresh registry holding the built-in profiles (strap, RSC sensor, PineTime)."""
    return ProfileRegistry([HEART_RATE_STRAP, RSC_SENSOR, PINETIME])


DEFAULT_PROFILES: Final = default_registry()


__all__ = [
    "BATTERY_SERVICE_SPEC",
    "DEFAULT_PROFILES",
    "DEVICE_INFORMATION_SERVICE_SPEC",
    "HEART_RATE_SERVICE_SPEC",
    "HEART_RATE_STRAP",
    "INFINITIME_HEART_RATE_SPEC",
    "INFINITIME_MOTION_SPEC",
    "PINETIME",
    "RSC_SENSOR",
    "RSC_SERVICE_SPEC",
    "Binding",
    "CharacteristicSpec",
    "DeviceProfile",
    "DiscoveredCharacteristic",
    "DiscoveredService",
    "ProfileRegistry",
    "ResolvedProfile",
    "ServiceSpec",
    "Stream",
    "default_registry",
]
