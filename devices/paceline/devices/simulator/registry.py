"""Which simulated wearables exist: address → device, so several coexist in one process.

The bleak backends look devices up here by address. `DEFAULT_REGISTRY` is what
`BleakClient(address, backend=SimulatedBleakClient)` uses; tests that want isolation pass
their own registry as `registry=` (bleak forwards unknown keyword arguments to the backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from paceline.devices.simulator.wearable import SimulatedWearable


class SimulatedDeviceRegistry:
    """Simulated wearables by (upper-case) address."""

    def __init__(self) -> None:
        """Start empty."""
        self._devices: dict[str, SimulatedWearable] = {}

    def add(self, device: SimulatedWearable) -> SimulatedWearable:
        """Register a device; its address must be new."""
        if device.address in self._devices:
            raise ValueError(f"a simulated device with address {device.address} already exists")
        self._devices[device.address] = device
        return device

    def remove(self, address: str) -> None:
        """Forget a device, dropping its link first."""
        device = self._devices.pop(address.upper(), None)
        if device is not None:
            device.drop_link()

    def get(self, address: str) -> SimulatedWearable | None:
        """The device with `address`, if any."""
        return self._devices.get(address.upper())

    def advertising(self) -> list[SimulatedWearable]:
        """The devices a scanner can hear now."""
        return [device for device in self._devices.values() if device.is_advertising]

    def clear(self) -> None:
        """Forget every device, dropping their links."""
        for address in list(self._devices):
            self.remove(address)

    def __iter__(self) -> Iterator[SimulatedWearable]:
        """Iterate the devices in the order they were added."""
        return iter(list(self._devices.values()))

    def __len__(self) -> int:
        """The number of devices."""
        return len(self._devices)


DEFAULT_REGISTRY: Final = SimulatedDeviceRegistry()

__all__ = ["DEFAULT_REGISTRY", "SimulatedDeviceRegistry"]
