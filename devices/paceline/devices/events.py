"""What the transport hands to its sink: decoded readings, rejected payloads, lost links.

A daemon typically passes `queue.put_nowait` of an `asyncio.Queue[LinkEvent]` as the sink
and consumes events in the order they arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paceline.devices.clock import ReceiveStamp
from paceline.devices.gatt import GattValue
from paceline.devices.profiles import Stream


@dataclass(frozen=True, slots=True)
class Reading:
    """A notification (or read) that decoded cleanly, with its host receive stamp."""

    address: str
    characteristic_uuid: str
    value: GattValue
    streams: frozenset[Stream]
    stamp: ReceiveStamp


@dataclass(frozen=True, slots=True)
class Rejected:
    """A payload that did not decode: kept whole, with the reason, to be counted."""

    address: str
    characteristic_uuid: str
    payload: bytes
    reason: str
    stamp: ReceiveStamp


@dataclass(frozen=True, slots=True)
class LinkLost:
    """The device dropped the link without being asked to (out of range, strap off, reset)."""

    address: str
    stamp: ReceiveStamp


LinkEvent = Reading | Rejected | LinkLost
EventSink = Callable[[LinkEvent], None]

__all__ = ["EventSink", "LinkEvent", "LinkLost", "Reading", "Rejected"]
