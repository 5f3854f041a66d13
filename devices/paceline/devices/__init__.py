"""Wearables: pure GATT codecs, device profiles, the bleak transport and the simulated wearable."""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every error raised by `paceline.devices`."""


class PayloadError(DeviceError, ValueError):
    """A GATT payload that no conforming device could have sent."""


__all__ = ["DeviceError", "PayloadError"]
