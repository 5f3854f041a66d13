"""Fixtures for the devices tests: a fast simulated clock, an isolated registry, device factories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import pytest

from paceline.devices.clock import SimClock
from paceline.devices.events import LinkEvent
from paceline.devices.simulator import (
    Activity,
    Routine,
    SimulatedDeviceRegistry,
    SimulatedWearable,
    WearableKind,
    fake_address,
)

HANG_GUARD_S = 30.0
"""Only a guard against a hung test; nothing asserts on how long anything took."""

SIM_SPEED = 400.0
"""Simulated seconds per real second: a simulated minute takes 0.15 s."""

MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

T = TypeVar("T")


async def within_guard(awaitable: Awaitable[T]) -> T:
    """Await with the hang guard."""
    return await asyncio.wait_for(awaitable, timeout=HANG_GUARD_S)


class DeviceFactory(Protocol):
    """Builds and registers a simulated wearable."""

    def __call__(
        self,
        kind: WearableKind,
        *,
        activity: Activity = ...,
        routine: Routine | None = ...,
        seed: int = ...,
    ) -> SimulatedWearable:
        """Make a device of `kind` doing `activity` all day (or following `routine`)."""
        ...


@pytest.fixture
def clock() -> SimClock:
    """A simulated clock starting on a Monday morning, running fast."""
    return SimClock(speed=SIM_SPEED, start=MORNING)


@pytest.fixture
async def registry() -> AsyncIterator[SimulatedDeviceRegistry]:
    """An isolated registry, emptied (links dropped) after the test."""
    reg = SimulatedDeviceRegistry()
    yield reg
    reg.clear()
    # Let the ticker tasks that clear() cancelled finish their cancellation.
    await asyncio.sleep(0)


@pytest.fixture
def make_device(clock: SimClock, registry: SimulatedDeviceRegistry) -> DeviceFactory:
    """A factory for registered simulated wearables with distinct addresses."""
    counter = iter(range(1, 1000))

    def make(
        kind: WearableKind,
        *,
        activity: Activity = Activity.REST,
        routine: Routine | None = None,
        seed: int = 1,
    ) -> SimulatedWearable:
        """Make a device of `kind` doing `activity` all day (or following `routine`)."""
        return registry.add(
            SimulatedWearable(
                fake_address(next(counter)),
                kind,
                clock=clock,
                routine=routine or Routine.constant(activity),
                seed=seed,
            )
        )

    return make


class EventLog:
    """A sink that keeps every event and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        """Start with no events."""
        self.events: list[LinkEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: LinkEvent) -> None:
        """Record an event (the transport's sink)."""
        self.events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()

    def of_type(self, kind: type[T]) -> list[T]:
        """The events of one type, in order."""
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(self, predicate: Callable[[EventLog], bool]) -> None:
        """Return once `predicate(self)` holds, bounded by the hang guard."""

        async def wait() -> None:
            """Block until the predicate holds."""
            while not predicate(self):
                await self._changed.wait()

        await within_guard(wait())


@pytest.fixture
def events() -> EventLog:
    """A recording event sink."""
    return EventLog()
