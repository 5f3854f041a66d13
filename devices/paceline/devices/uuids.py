"""GATT service and characteristic UUIDs, spelled the way bleak reports them.

bleak normalises every UUID to the 128-bit, lower-case form, so 16-bit SIG numbers
are expanded onto the Bluetooth base UUID here once instead of at every comparison.
Numbers are from the Bluetooth SIG Assigned Numbers document; the InfiniTime motion
service is from InfiniTime's `doc/MotionService.md`.
"""

from __future__ import annotations

from typing import Final

_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


def uuid16(number: int) -> str:
    """Expand a 16-bit SIG-assigned number onto the Bluetooth base UUID."""
    if not 0 <= number <= 0xFFFF:
        raise ValueError(f"a 16-bit UUID must be in 0..0xFFFF, got {number:#x}")
    return f"0000{number:04x}{_BASE_UUID_SUFFIX}"


def normalize(uuid: str) -> str:
    """Return `uuid` in bleak's form: 16-bit and 32-bit short forms expanded, lower case."""
    text = uuid.strip().lower()
    if len(text) == 4:
        return f"0000{text}{_BASE_UUID_SUFFIX}"
    if len(text) == 8:
        return f"{text}{_BASE_UUID_SUFFIX}"
    return text


# Services
HEART_RATE_SERVICE: Final = uuid16(0x180D)
BATTERY_SERVICE: Final = uuid16(0x180F)
DEVICE_INFORMATION_SERVICE: Final = uuid16(0x180A)
RUNNING_SPEED_AND_CADENCE_SERVICE: Final = uuid16(0x1814)
INFINITIME_MOTION_SERVICE: Final = "00030000-78fc-48fe-8e23-433b3a1942d0"

# Heart Rate Service
HEART_RATE_MEASUREMENT: Final = uuid16(0x2A37)
BODY_SENSOR_LOCATION: Final = uuid16(0x2A38)
HEART_RATE_CONTROL_POINT: Final = uuid16(0x2A39)

# Battery Service
BATTERY_LEVEL: Final = uuid16(0x2A19)

# Device Information Service
MANUFACTURER_NAME: Final = uuid16(0x2A29)
MODEL_NUMBER: Final = uuid16(0x2A24)
SERIAL_NUMBER: Final = uuid16(0x2A25)
FIRMWARE_REVISION: Final = uuid16(0x2A26)
HARDWARE_REVISION: Final = uuid16(0x2A27)
SOFTWARE_REVISION: Final = uuid16(0x2A28)

# Running Speed and Cadence Service
RSC_MEASUREMENT: Final = uuid16(0x2A53)
RSC_FEATURE: Final = uuid16(0x2A54)

# InfiniTime motion service (PineTime)
INFINITIME_STEP_COUNT: Final = "00030001-78fc-48fe-8e23-433b3a1942d0"
INFINITIME_MOTION_VALUES: Final = "00030002-78fc-48fe-8e23-433b3a1942d0"

# Descriptors
CLIENT_CHARACTERISTIC_CONFIGURATION: Final = uuid16(0x2902)
