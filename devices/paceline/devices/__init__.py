"""Wearables: pure GATT codecs, device profiles, the bleak transport and the simulated wearable.

Modules, from the bytes up:

- `uuids`: the service and characteristic UUIDs, in bleak's 128-bit lower-case form.
- `gatt`: pure codecs, one frozen dataclass per characteristic (`from_bytes` / `__bytes__`).
- `steps`: turning cadence and cumulative counters into steps per interval (pure, by value).
- `profiles`: which services a device has, which codec reads each characteristic and
  which stream it feeds; a registry, so a new device type is a new profile.
- `clock`: wall/monotonic clocks (host and simulated) and the receive stamps.
- `events`: what the transport hands to its sink (`Reading`, `Rejected`, `LinkLost`).
- `samples`: readings turned into rows for the raw streams (HR, RR, steps, battery).
- `transport`: the thin async layer over `bleak.BleakClient` a daemon drives.
- `simulator`: a bleak backend that behaves like a strap, band, footpod or PineTime.

Nothing here imports another `paceline` package or touches a database.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every error raised by `paceline.devices`."""


class PayloadError(DeviceError, ValueError):
    """A GATT payload that no conforming device could have sent."""


class ConnectError(DeviceError):
    """A wearable could not be connected (after bleak-retry-connector's own retries).

    `error` is what bleak-retry-connector (or bleak) raised, kept as it was: its type
    says why (not found, out of connection slots, a BlueZ error), and the retry policy
    reads it from here rather than by walking the chain of causes.
    """

    def __init__(self, address: str, reason: str, *, error: BaseException | None = None) -> None:
        """Keep the address, the reason, and the error bleak-retry-connector raised."""
        self.address = address
        self.reason = reason
        self.error = error
        super().__init__(f"cannot connect to {address}: {reason}")


class AdapterUnavailableError(DeviceError):
    """No usable Bluetooth on the host: no adapter, no BlueZ, or access denied."""

    def __init__(self, reason: str) -> None:
        """Keep what bleak reported."""
        self.reason = reason
        super().__init__(f"no usable Bluetooth adapter: {reason}")


class UnsupportedDeviceError(DeviceError):
    """A connected device offers no service combination that any registered profile reads."""

    def __init__(self, address: str, service_uuids: tuple[str, ...]) -> None:
        """Keep the address and the service UUIDs that were found."""
        self.address = address
        self.service_uuids = service_uuids
        listed = ", ".join(service_uuids) or "none"
        super().__init__(
            f"{address} matches no device profile (services: {listed}); "
            "register a profile for it in paceline.devices.profiles"
        )


class LinkError(DeviceError):
    """A read, subscription or other GATT operation failed on an established link."""

    def __init__(self, address: str, operation: str, reason: str) -> None:
        """Keep the address, the operation and what went wrong."""
        self.address = address
        self.operation = operation
        self.reason = reason
        super().__init__(f"{operation} on {address} failed: {reason}")


__all__ = [
    "AdapterUnavailableError",
    "ConnectError",
    "DeviceError",
    "LinkError",
    "PayloadError",
    "UnsupportedDeviceError",
]
