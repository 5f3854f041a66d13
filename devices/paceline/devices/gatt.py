"""Pure GATT codecs: one frozen dataclass per characteristic, bytes in and exactly the same bytes out.

Every class here has `from_bytes(data)` (raises `PayloadError` naming what is wrong) and
`__bytes__`. The two round-trip exactly in both directions:

- `Cls.from_bytes(bytes(value)) == value` for every value that constructs, and
- `bytes(Cls.from_bytes(data)) == data` for every payload that decodes,

which is why encoding choices a device is free to make (a uint16 heart rate below 256,
reserved flag bits) are kept on the object instead of being normalised away.

Sources: Heart Rate Service 1.0 (HRS_SPEC_V10) and the GATT Specification Supplement
(GSS) for 0x2A37 Heart Rate Measurement, 0x2A38 Body Sensor Location, 0x2A19 Battery
Level, the 0x180A Device Information strings, 0x2A53 RSC Measurement and 0x2A54 RSC
Feature; InfiniTime `doc/MotionService.md` for the PineTime motion characteristics.
Values that are well formed but physiologically implausible are kept: judging them is
the job of `paceline.signal`, not of a codec.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from struct import Struct
from typing import ClassVar, Final, Protocol, Self

from paceline.devices import PayloadError, uuids

BytesLike = bytes | bytearray | memoryview
"""What a codec accepts: bleak hands notification payloads over as `bytearray`."""

_U8: Final = Struct("<B")
_U16: Final = Struct("<H")
_U32: Final = Struct("<I")
_RSC_HEAD: Final = Struct("<BHB")  # flags, instantaneous speed, instantaneous cadence
_I16X3: Final = Struct("<hhh")

RR_UNITS_PER_SECOND: Final = 1024
"""HRS 1.0 §3.1.1.5: RR-Interval resolution is 1/1024 second."""

MS_PER_RR_UNIT: Final = 1000 / RR_UNITS_PER_SECOND

UINT8_MAX: Final = 0xFF
UINT16_MAX: Final = 0xFFFF
UINT32_MAX: Final = 0xFFFF_FFFF


class GattValue(Protocol):
    """A decoded characteristic value: built from bytes and turned back into the same bytes."""

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode a payload, raising `PayloadError` if no conforming device could send it."""
        ...

    def __bytes__(self) -> bytes:
        """Encode to the exact payload a device would send."""
        ...


def _check_uint(name: str, value: int, maximum: int) -> None:
    """Raise `PayloadError` unless `value` fits the unsigned field `name`."""
    if not 0 <= value <= maximum:
        raise PayloadError(f"{name} must be in 0..{maximum}, got {value}")


def _exact_length(data: BytesLike, expected: int, what: str) -> None:
    """Raise `PayloadError` unless a fixed-size payload has exactly `expected` bytes."""
    if len(data) != expected:
        raise PayloadError(f"{what} must be exactly {expected} byte(s), got {len(data)}")


# --------------------------------------------------------------------------- Heart Rate


class HeartRateFlags(enum.IntFlag):
    """The flags byte of Heart Rate Measurement (HRS 1.0 §3.1.1.1); bits 5–7 are reserved."""

    UINT16_BPM = 0x01
    SENSOR_CONTACT_DETECTED = 0x02
    SENSOR_CONTACT_SUPPORTED = 0x04
    ENERGY_EXPENDED_PRESENT = 0x08
    RR_INTERVALS_PRESENT = 0x10


NO_HEART_RATE_FLAGS: Final = HeartRateFlags(0)


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """Heart Rate Measurement (0x2A37): heart rate, sensor contact, energy, RR intervals.

    `rr_1024` holds the RR intervals exactly as sent (units of 1/1024 s, oldest first);
    `rr_ms` converts them. `extra_flags` keeps flag bits the values do not already imply
    (a uint16 heart rate below 256, an RR flag with no intervals, the contact-detected bit
    while contact is unsupported, reserved bits); they change nothing about the meaning
    and exist so that the payload round-trips byte for byte.
    """

    UUID: ClassVar[str] = uuids.HEART_RATE_MEASUREMENT

    bpm: int
    sensor_contact: bool | None = None
    energy_kj: int | None = None
    rr_1024: tuple[int, ...] = ()
    extra_flags: HeartRateFlags = NO_HEART_RATE_FLAGS

    def __post_init__(self) -> None:
        """Check every field fits its wire format and drop flag bits the values already imply."""
        _check_uint("bpm", self.bpm, UINT16_MAX)
        if self.energy_kj is not None:
            _check_uint("energy_kj", self.energy_kj, UINT16_MAX)
        rr = tuple(self.rr_1024)
        for value in rr:
            _check_uint("rr_1024", value, UINT16_MAX)
        object.__setattr__(self, "rr_1024", rr)

        extra = HeartRateFlags(int(self.extra_flags))
        _check_uint("extra_flags", int(extra), UINT8_MAX)
        if extra & HeartRateFlags.ENERGY_EXPENDED_PRESENT and self.energy_kj is None:
            raise PayloadError("extra_flags announce Energy Expended but energy_kj is None")
        if extra & HeartRateFlags.SENSOR_CONTACT_SUPPORTED and self.sensor_contact is None:
            raise PayloadError(
                "extra_flags announce sensor contact support but sensor_contact is None"
            )
        if extra & HeartRateFlags.SENSOR_CONTACT_DETECTED and self.sensor_contact is False:
            raise PayloadError("extra_flags say contact detected but sensor_contact is False")
        implied = self._implied_flags()
        object.__setattr__(self, "extra_flags", HeartRateFlags(int(extra) & ~int(implied)))

    def _implied_flags(self) -> HeartRateFlags:
        """The flag bits that the field values alone require."""
        flags = HeartRateFlags(0)
        if self.bpm > UINT8_MAX:
            flags |= HeartRateFlags.UINT16_BPM
        if self.sensor_contact is not None:
            flags |= HeartRateFlags.SENSOR_CONTACT_SUPPORTED
            if self.sensor_contact:
                flags |= HeartRateFlags.SENSOR_CONTACT_DETECTED
        if self.energy_kj is not None:
            flags |= HeartRateFlags.ENERGY_EXPENDED_PRESENT
        if self.rr_1024:
            flags |= HeartRateFlags.RR_INTERVALS_PRESENT
        return flags

    @property
    def flags(self) -> HeartRateFlags:
        """The flags byte as it goes on the wire."""
        return self._implied_flags() | self.extra_flags

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """Every RR interval of the notification in milliseconds, oldest first."""
        return tuple(value * MS_PER_RR_UNIT for value in self.rr_1024)

    @property
    def has_reading(self) -> bool:
        """False for a heart rate of 0, which straps send when they have no reading."""
        return self.bpm != 0

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode a Heart Rate Measurement notification (every flag combination)."""
        size = len(data)
        if size == 0:
            raise PayloadError(
                "Heart Rate Measurement is empty; it needs a flags byte and a heart rate"
            )
        flags = HeartRateFlags(data[0])
        if flags & HeartRateFlags.UINT16_BPM:
            if size < 3:
                raise PayloadError(
                    f"Heart Rate Measurement flags {int(flags):#04x} announce a uint16 heart rate "
                    f"but only {size - 1} byte(s) follow the flags"
                )
            (bpm,) = _U16.unpack_from(data, 1)
            offset = 3
        else:
            if size < 2:
                raise PayloadError("Heart Rate Measurement has no heart-rate byte after the flags")
            bpm = data[1]
            offset = 2

        sensor_contact: bool | None = None
        if flags & HeartRateFlags.SENSOR_CONTACT_SUPPORTED:
            sensor_contact = bool(flags & HeartRateFlags.SENSOR_CONTACT_DETECTED)

        energy_kj: int | None = None
        if flags & HeartRateFlags.ENERGY_EXPENDED_PRESENT:
            if size < offset + 2:
                raise PayloadError(
                    "Heart Rate Measurement flags announce Energy Expended but only "
                    f"{size - offset} of its 2 bytes are present"
                )
            (energy_kj,) = _U16.unpack_from(data, offset)
            offset += 2

        rest = bytes(data[offset:])
        rr_1024: tuple[int, ...] = ()
        if flags & HeartRateFlags.RR_INTERVALS_PRESENT:
            if len(rest) % 2:
                raise PayloadError(
                    f"Heart Rate Measurement RR-Interval field has an odd trailing byte "
                    f"({len(rest)} bytes; each RR interval is a uint16)"
                )
            rr_1024 = tuple(value for (value,) in _U16.iter_unpack(rest))
        elif rest:
            raise PayloadError(
                f"Heart Rate Measurement has {len(rest)} unexpected byte(s) after the fields "
                f"announced by flags {int(flags):#04x}"
            )
        return cls(
            bpm=bpm,
            sensor_contact=sensor_contact,
            energy_kj=energy_kj,
            rr_1024=rr_1024,
            extra_flags=flags,
        )

    def __bytes__(self) -> bytes:
        """Encode exactly as a device would send it."""
        flags = self.flags
        parts = [_U8.pack(int(flags))]
        parts.append(
            _U16.pack(self.bpm) if flags & HeartRateFlags.UINT16_BPM else _U8.pack(self.bpm)
        )
        if self.energy_kj is not None:
            parts.append(_U16.pack(self.energy_kj))
        parts.extend(_U16.pack(value) for value in self.rr_1024)
        return b"".join(parts)


class SensorLocation(enum.IntEnum):
    """Body Sensor Location values defined by HRS 1.0 §3.2.1.1 (7–255 are reserved)."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


@dataclass(frozen=True, slots=True)
class BodySensorLocation:
    """Body Sensor Location (0x2A38): where the heart-rate sensor sits; reserved codes are kept."""

    UUID: ClassVar[str] = uuids.BODY_SENSOR_LOCATION

    code: int

    def __post_init__(self) -> None:
        """Check the code fits a uint8."""
        _check_uint("body sensor location", self.code, UINT8_MAX)

    @property
    def location(self) -> SensorLocation | None:
        """The location, or None for a code the specification reserves."""
        try:
            return SensorLocation(self.code)
        except ValueError:
            return None

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the one-byte location code."""
        _exact_length(data, 1, "Body Sensor Location")
        return cls(code=data[0])

    def __bytes__(self) -> bytes:
        """Encode the one-byte location code."""
        return _U8.pack(self.code)


# --------------------------------------------------------------------------- Battery


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery Level (0x2A19): remaining charge in percent, 0–100 (GSS §3.27)."""

    UUID: ClassVar[str] = uuids.BATTERY_LEVEL

    percent: int

    def __post_init__(self) -> None:
        """Check the level is a percentage; 101–255 are prohibited by the specification."""
        _check_uint("battery level percent", self.percent, 100)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the one-byte level."""
        _exact_length(data, 1, "Battery Level")
        return cls(percent=data[0])

    def __bytes__(self) -> bytes:
        """Encode the one-byte level."""
        return _U8.pack(self.percent)


# --------------------------------------------------------------------------- Device Information


@dataclass(frozen=True, slots=True)
class DeviceInfoString:
    """A Device Information string characteristic: UTF-8 text, no length prefix (GSS utf8s)."""

    UUID: ClassVar[str] = ""

    value: str

    @property
    def text(self) -> str:
        """The string without the NUL terminator and padding some firmwares append."""
        return self.value.rstrip("\x00").strip()

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the UTF-8 text, keeping any NUL terminator so the bytes round-trip."""
        try:
            return cls(value=bytes(data).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{cls.__name__} is not valid UTF-8: {exc}") from exc

    def __bytes__(self) -> bytes:
        """Encode the text as UTF-8."""
        return self.value.encode("utf-8")


@dataclass(frozen=True, slots=True)
class ManufacturerName(DeviceInfoString):
    """Manufacturer Name String (0x2A29)."""

    UUID: ClassVar[str] = uuids.MANUFACTURER_NAME


@dataclass(frozen=True, slots=True)
class ModelNumber(DeviceInfoString):
    """Model Number String (0x2A24)."""

    UUID: ClassVar[str] = uuids.MODEL_NUMBER


@dataclass(frozen=True, slots=True)
class SerialNumber(DeviceInfoString):
    """Serial Number String (0x2A25)."""

    UUID: ClassVar[str] = uuids.SERIAL_NUMBER


@dataclass(frozen=True, slots=True)
class FirmwareRevision(DeviceInfoString):
    """Firmware Revision String (0x2A26)."""

    UUID: ClassVar[str] = uuids.FIRMWARE_REVISION


@dataclass(frozen=True, slots=True)
class HardwareRevision(DeviceInfoString):
    """Hardware Revision String (0x2A27)."""

    UUID: ClassVar[str] = uuids.HARDWARE_REVISION


@dataclass(frozen=True, slots=True)
class SoftwareRevision(DeviceInfoString):
    """Software Revision String (0x2A28)."""

    UUID: ClassVar[str] = uuids.SOFTWARE_REVISION


DEVICE_INFORMATION_STRINGS: Final[tuple[type[DeviceInfoString], ...]] = (
    ManufacturerName,
    ModelNumber,
    SerialNumber,
    FirmwareRevision,
    HardwareRevision,
    SoftwareRevision,
)


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """What the Device Information Service (0x180A) said; None where a string is absent."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    hardware: str | None = None
    software: str | None = None

    @classmethod
    def from_strings(cls, strings: Iterable[DeviceInfoString]) -> Self:
        """Gather decoded Device Information strings (any subset, any order)."""
        field_by_type: dict[type[DeviceInfoString], str] = {
            ManufacturerName: "manufacturer",
            ModelNumber: "model",
            SerialNumber: "serial",
            FirmwareRevision: "firmware",
            HardwareRevision: "hardware",
            SoftwareRevision: "software",
        }
        values = {field_by_type[type(item)]: item.text for item in strings}
        return cls(**values)


# --------------------------------------------------------------------------- Running Speed and Cadence


class RSCFlags(enum.IntFlag):
    """The flags byte of RSC Measurement (RSCS 1.0 §4.1; bits 3–7 reserved)."""

    STRIDE_LENGTH_PRESENT = 0x01
    TOTAL_DISTANCE_PRESENT = 0x02
    RUNNING = 0x04


_RSC_RESERVED_BITS: Final = 0xF8


@dataclass(frozen=True, slots=True)
class RSCMeasurement:
    """RSC Measurement (0x2A53): speed, cadence (steps/min), stride length, total distance.

    Raw units are kept so the payload round-trips: speed in 1/256 m/s, stride length in
    cm, total distance in dm; `running` is the walking-or-running status bit.
    """

    UUID: ClassVar[str] = uuids.RSC_MEASUREMENT

    speed_256: int
    cadence_spm: int
    stride_length_cm: int | None = None
    total_distance_dm: int | None = None
    running: bool = False
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        """Check every field fits its wire format."""
        _check_uint("speed_256", self.speed_256, UINT16_MAX)
        _check_uint("cadence_spm", self.cadence_spm, UINT8_MAX)
        if self.stride_length_cm is not None:
            _check_uint("stride_length_cm", self.stride_length_cm, UINT16_MAX)
        if self.total_distance_dm is not None:
            _check_uint("total_distance_dm", self.total_distance_dm, UINT32_MAX)
        if self.reserved_flags & ~_RSC_RESERVED_BITS:
            raise PayloadError(
                f"reserved_flags may only hold bits 3-7, got {self.reserved_flags:#04x}"
            )

    @property
    def flags(self) -> RSCFlags:
        """The flags byte as it goes on the wire."""
        flags = RSCFlags(self.reserved_flags)
        if self.stride_length_cm is not None:
            flags |= RSCFlags.STRIDE_LENGTH_PRESENT
        if self.total_distance_dm is not None:
            flags |= RSCFlags.TOTAL_DISTANCE_PRESENT
        if self.running:
            flags |= RSCFlags.RUNNING
        return flags

    @property
    def speed_m_s(self) -> float:
        """Instantaneous speed in metres per second."""
        return self.speed_256 / 256

    @property
    def stride_length_m(self) -> float | None:
        """Instantaneous stride length in metres, if sent."""
        return None if self.stride_length_cm is None else self.stride_length_cm / 100

    @property
    def total_distance_m(self) -> float | None:
        """Total distance in metres, if sent."""
        return None if self.total_distance_dm is None else self.total_distance_dm / 10

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode an RSC Measurement notification (every flag combination)."""
        size = len(data)
        if size < _RSC_HEAD.size:
            raise PayloadError(
                f"RSC Measurement needs at least {_RSC_HEAD.size} bytes "
                f"(flags, speed, cadence), got {size}"
            )
        raw_flags, speed_256, cadence = _RSC_HEAD.unpack_from(data, 0)
        flags = RSCFlags(raw_flags)
        offset = _RSC_HEAD.size
        stride: int | None = None
        if flags & RSCFlags.STRIDE_LENGTH_PRESENT:
            if size < offset + 2:
                raise PayloadError("RSC Measurement flags announce a stride length that is missing")
            (stride,) = _U16.unpack_from(data, offset)
            offset += 2
        distance: int | None = None
        if flags & RSCFlags.TOTAL_DISTANCE_PRESENT:
            if size < offset + 4:
                raise PayloadError(
                    "RSC Measurement flags announce a total distance that is missing"
                )
            (distance,) = _U32.unpack_from(data, offset)
            offset += 4
        if size != offset:
            raise PayloadError(
                f"RSC Measurement has {size - offset} unexpected byte(s) after the fields "
                f"announced by flags {raw_flags:#04x}"
            )
        return cls(
            speed_256=speed_256,
            cadence_spm=cadence,
            stride_length_cm=stride,
            total_distance_dm=distance,
            running=bool(flags & RSCFlags.RUNNING),
            reserved_flags=raw_flags & _RSC_RESERVED_BITS,
        )

    def __bytes__(self) -> bytes:
        """Encode exactly as a device would send it."""
        parts = [_RSC_HEAD.pack(int(self.flags), self.speed_256, self.cadence_spm)]
        if self.stride_length_cm is not None:
            parts.append(_U16.pack(self.stride_length_cm))
        if self.total_distance_dm is not None:
            parts.append(_U32.pack(self.total_distance_dm))
        return b"".join(parts)


class RSCFeatureFlags(enum.IntFlag):
    """RSC Feature (0x2A54) bits (RSCS 1.0 §4.2; bits 5–15 reserved)."""

    STRIDE_LENGTH = 0x01
    TOTAL_DISTANCE = 0x02
    WALKING_OR_RUNNING_STATUS = 0x04
    CALIBRATION_PROCEDURE = 0x08
    MULTIPLE_SENSOR_LOCATIONS = 0x10


@dataclass(frozen=True, slots=True)
class RSCFeature:
    """RSC Feature (0x2A54): which optional RSC Measurement fields the sensor supports."""

    UUID: ClassVar[str] = uuids.RSC_FEATURE

    features: RSCFeatureFlags

    def __post_init__(self) -> None:
        """Check the features fit a uint16."""
        _check_uint("RSC features", int(self.features), UINT16_MAX)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the uint16 feature bits (reserved bits kept)."""
        _exact_length(data, 2, "RSC Feature")
        (features,) = _U16.unpack_from(data, 0)
        return cls(features=RSCFeatureFlags(features))

    def __bytes__(self) -> bytes:
        """Encode the uint16 feature bits."""
        return _U16.pack(int(self.features))


# --------------------------------------------------------------------------- InfiniTime motion


@dataclass(frozen=True, slots=True)
class MotionStepCount:
    """InfiniTime step count (00030001-…): the watch's cumulative daily steps, uint32 LE.

    The counter is cumulative and InfiniTime zeroes it at midnight; turn it into steps per
    interval with `paceline.devices.steps.StepCounter`.
    """

    UUID: ClassVar[str] = uuids.INFINITIME_STEP_COUNT

    steps: int

    def __post_init__(self) -> None:
        """Check the count fits a uint32."""
        _check_uint("step count", self.steps, UINT32_MAX)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the four-byte counter."""
        _exact_length(data, 4, "InfiniTime step count")
        (steps,) = _U32.unpack_from(data, 0)
        return cls(steps=steps)

    def __bytes__(self) -> bytes:
        """Encode the four-byte counter."""
        return _U32.pack(self.steps)


@dataclass(frozen=True, slots=True)
class MotionValues:
    """InfiniTime raw motion values (00030002-…): accelerometer X, Y, Z as three int16 LE."""

    UUID: ClassVar[str] = uuids.INFINITIME_MOTION_VALUES

    x: int
    y: int
    z: int

    def __post_init__(self) -> None:
        """Check every axis fits an int16."""
        for name, value in (("x", self.x), ("y", self.y), ("z", self.z)):
            if not -0x8000 <= value <= 0x7FFF:
                raise PayloadError(f"motion value {name} must fit an int16, got {value}")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode the six-byte X/Y/Z triple."""
        _exact_length(data, _I16X3.size, "InfiniTime motion values")
        x, y, z = _I16X3.unpack_from(data, 0)
        return cls(x=x, y=y, z=z)

    def __bytes__(self) -> bytes:
        """Encode the six-byte X/Y/Z triple."""
        return _I16X3.pack(self.x, self.y, self.z)


__all__ = [
    "DEVICE_INFORMATION_STRINGS",
    "MS_PER_RR_UNIT",
    "RR_UNITS_PER_SECOND",
    "BatteryLevel",
    "BodySensorLocation",
    "BytesLike",
    "DeviceInfoString",
    "DeviceInformation",
    "FirmwareRevision",
    "GattValue",
    "HardwareRevision",
    "HeartRateFlags",
    "HeartRateMeasurement",
    "ManufacturerName",
    "ModelNumber",
    "MotionStepCount",
    "MotionValues",
    "RSCFeature",
    "RSCFeatureFlags",
    "RSCFlags",
    "RSCMeasurement",
    "SensorLocation",
    "SerialNumber",
    "SoftwareRevision",
]
