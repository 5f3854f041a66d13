"""One task per wearable: connect, subscribe, watch the link, reconnect with backoff, never give up.

A `DeviceWorker` owns a `paceline.devices.transport.DeviceLink`. It connects (through
bleak-retry-connector), subscribes, and then watches the link until it drops, goes
silent for longer than the watchdog allows, or the daemon stops; after every drop it
disconnects (bounded), waits a backoff with jitter and a cap, and reconnects — which
opens a new session and subscribes again, so each characteristic has exactly one handler
whatever happened before. The worker catches everything a device can throw at it, so
one device never stops the others.

Notifications become rows as they arrive (`paceline.devices.samples`), keyed by the
host's monotonic-based receive time and carrying the wall clock at receipt, and go to the
daemon's shared `SampleBuffer`. A heart rate of 0 is counted and dropped; a payload that
does not decode is counted and queued whole, to be quarantined with its bytes in hex.
The loop, the watchdog and the backoff run on the worker's `Clock`, so tests drive them
with an accelerated `SimClock`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from paceline.devices import ConnectError, DeviceError, UnsupportedDeviceError
from paceline.devices.clock import SYSTEM_CLOCK, Clock, Stamper
from paceline.devices.events import LinkEvent, LinkLost, Reading, Rejected
from paceline.devices.gatt import DeviceInformation
from paceline.devices.profiles import DEFAULT_PROFILES, ProfileRegistry
from paceline.devices.samples import (
    BatterySample,
    HeartRateSample,
    RRIntervalSample,
    StepSample,
    StreamState,
    derive_samples,
)
from paceline.devices.steps import StepCounter
from paceline.devices.transport import DeviceLink, find_device, reconnect_delay_s
from paceline.ingest.chunks import SampleBuffer, epoch_us
from paceline.ingest.config import DEFAULT_CONFIG, DaemonConfig
from paceline.ingest.gateway_state import DeviceBinding, DeviceFacts

logger = logging.getLogger(__name__)

WATCHDOG_CHECKS: Final = 4
"""The silence watchdog looks this many times per timeout, so a silent link is caught
at most a quarter of the timeout late."""


class LinkState(enum.StrEnum):
    """Where a device task is."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class DeviceStats:
    """Counters of one device since the daemon started."""

    notifications: int = 0
    received: int = 0
    zero_hr: int = 0
    malformed: int = 0
    connects: int = 0
    connect_failures: int = 0
    links_lost: int = 0
    silent_reconnects: int = 0
    last_backoff_s: float = 0.0
    max_backoff_s: float = 0.0
    battery_percent: int | None = None
    battery_at_us: int | None = None
    info: DeviceInformation | None = None
    state: LinkState = LinkState.CONNECTING
    last_error: str | None = None


Locate = Callable[[DeviceBinding], Awaitable[BLEDevice]]
"""How a device task finds the `BLEDevice` to connect to (a scan for real hardware)."""


def scan_locator(timeout_s: float = 10.0, **scanner_kwargs: Any) -> Locate:
    """Find devices by scanning for their address (what real hardware needs)."""

    async def locate(binding: DeviceBinding) -> BLEDevice:
        return await find_device(binding.address, timeout_s=timeout_s, **scanner_kwargs)

    return locate


class DeviceWorker:
    """One bound wearable: its link, its per-device state, and the loop that keeps it streaming."""

    def __init__(
        self,
        binding: DeviceBinding,
        buffer: SampleBuffer,
        *,
        locate: Locate,
        clock: Clock = SYSTEM_CLOCK,
        config: DaemonConfig = DEFAULT_CONFIG,
        profiles: ProfileRegistry = DEFAULT_PROFILES,
        backend: type[BaseBleakClient] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        stamper: Stamper | None = None,
    ) -> None:
        self.binding = binding
        # One stamper for the worker's whole life (the daemon shares one across devices):
        # a new link re-reading the wall clock after an NTP step would move every later
        # sample by the step.
        self._stamper = stamper or Stamper(clock)
        self.stats = DeviceStats()
        self._buffer = buffer
        self._locate = locate
        self._clock = clock
        self._config = config
        self._profiles = profiles
        self._backend = backend
        self._client_kwargs = dict(client_kwargs or {})
        self._rng = rng or random.Random()
        self._stream_state = StreamState()
        self._generation = self._stamper.generation
        self.link: DeviceLink | None = None
        self.backoffs: list[float] = []

    @property
    def address(self) -> str:
        """The device's address."""
        return self.binding.address

    @property
    def step_count(self) -> int | None:
        """The device's cumulative step counter as last seen (None before any)."""
        return self._stream_state.counter.last_count

    def resume_step_count(self, count: int) -> None:
        """Continue a cumulative step counter from where the spooled rows of a previous run end."""
        self._stream_state = replace(self._stream_state, counter=StepCounter(count))

    # ------------------------------------------------------------------ events → rows

    def handle(self, event: LinkEvent) -> None:
        """The transport's sink: turn one event into queued rows and counters (never raises)."""
        try:
            self._handle(event)
        except Exception:
            # A sample that cannot be handled is lost, the device task is not.
            logger.exception("%s: could not handle %s", self.address, type(event).__name__)

    def _handle(self, event: LinkEvent) -> None:
        b = self.binding
        if isinstance(event, LinkLost):
            self.stats.links_lost += 1
            return
        if isinstance(event, Rejected):
            self.stats.malformed += 1
            self._buffer.add_payload(
                b.patient_id,
                b.device_id,
                {
                    "address": event.address,
                    "characteristic": event.characteristic_uuid,
                    "hex": event.payload.hex(),
                    "reason": f"malformed payload: {event.reason}",
                    "time_us": epoch_us(event.stamp.time),
                    "received_us": epoch_us(event.stamp.time_received),
                },
            )
            return
        assert isinstance(event, Reading)
        self.stats.notifications += 1
        if self._stamper.generation != self._generation:
            # Re-anchored after a wall-clock step: times follow the new anchor, even back
            # in time, instead of being pushed one microsecond past the old ones.
            self._generation = self._stamper.generation
            self._stream_state = self._stream_state.restarted_times()
        self._stream_state, samples = derive_samples(event, self._stream_state)
        received_us = epoch_us(event.stamp.time_received)
        beats = [s for s in samples if isinstance(s, RRIntervalSample)]
        if beats:
            for beat in beats:
                self._buffer.add_rr(
                    b.patient_id,
                    b.device_id,
                    time_us=epoch_us(beat.time),
                    received_us=received_us,
                    rr_ms=beat.rr_ms,
                )
            self.stats.received += len(beats)
        for sample in samples:
            if isinstance(sample, HeartRateSample):
                self.stats.received += 1
                if not sample.has_reading:
                    self.stats.zero_hr += 1
                    continue
                self._buffer.add_hr(
                    b.patient_id,
                    b.device_id,
                    time_us=epoch_us(sample.time),
                    received_us=received_us,
                    bpm=sample.bpm,
                    sensor_contact=sample.sensor_contact,
                    energy_kj=sample.energy_kj,
                )
            elif isinstance(sample, StepSample):
                self.stats.received += 1
                self._buffer.add_steps(
                    b.patient_id,
                    b.device_id,
                    time_us=epoch_us(sample.time),
                    received_us=received_us,
                    steps=sample.steps,
                )
            elif isinstance(sample, BatterySample):
                self._battery(sample.percent, epoch_us(sample.time))

    # ------------------------------------------------------------------ the loop

    def _new_link(self, device: BLEDevice) -> DeviceLink:
        return DeviceLink(
            device,
            self.handle,
            profiles=self._profiles,
            clock=self._clock,
            stamper=self._stamper,
            backend=self._backend,
            client_kwargs=self._client_kwargs,
            name=self.binding.name,
        )

    async def _open(self) -> None:
        """Locate (first time), connect and subscribe."""
        if self.link is None:
            async with asyncio.timeout(self._config.locate_timeout_s):
                device = await self._locate(self.binding)
            self.link = self._new_link(device)
        self.stats.state = LinkState.CONNECTING
        await self.link.connect(max_attempts=self._config.connect_attempts)
        await self.link.subscribe()
        await self._read_facts(self.link)

    def _battery(self, percent: int, at_us: int) -> None:
        self.stats.battery_percent = percent
        self.stats.battery_at_us = at_us

    @property
    def facts(self) -> DeviceFacts:
        """What the device last said about itself (battery level, Device Information)."""
        return DeviceFacts(
            self.stats.battery_percent,
            self.stats.battery_at_us,
            self.stats.info or DeviceInformation(),
        )

    async def _read_facts(self, link: DeviceLink) -> None:
        """Read the battery level and Device Information once per connection.

        After subscribing, so that no notification waits for the reads. A device that
        cannot answer them keeps streaming: they are for the operator, not the data.
        """
        try:
            battery = await link.read_battery()
            info = await link.read_device_info()
        except (DeviceError, BleakError, TimeoutError) as exc:
            logger.info("%s: battery or device information unreadable: %s", self.address, exc)
            return
        if battery is not None:
            self._battery(battery.percent, epoch_us(self._stamper.stamp().time))
        self.stats.info = info

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the device streaming until `stop` is set; never raises (except cancellation)."""
        attempt = 0
        try:
            while not stop.is_set():
                delay: float
                try:
                    await self._open()
                except UnsupportedDeviceError as exc:
                    self._failed(exc)
                    delay = self._config.unsupported_retry_s
                except (DeviceError, BleakError, TimeoutError, EOFError, OSError) as exc:
                    self._failed(exc)
                    if isinstance(exc, ConnectError | TimeoutError) and self.link is not None:
                        # A fresh advertisement next time: the address may have moved
                        # to another adapter or proxy (bleak-retry-connector's advice).
                        await self._forget_link()
                    delay = reconnect_delay_s(exc, attempt, jitter=self._rng.random())
                except Exception as exc:
                    logger.exception("%s: unexpected error while connecting", self.address)
                    self._failed(exc)
                    delay = reconnect_delay_s(exc, attempt, jitter=self._rng.random())
                else:
                    self.stats.connects += 1
                    self.stats.last_error = None
                    self.stats.state = LinkState.STREAMING
                    started = self._clock.monotonic()
                    reason = await self._watch(stop)
                    await self._disconnect()
                    if reason == "stop":
                        break
                    if reason == "silent":
                        self.stats.silent_reconnects += 1
                        logger.warning(
                            "%s: silent for %.0f s; reconnecting",
                            self.address,
                            self._config.silence_timeout_s,
                        )
                    if self._clock.monotonic() - started >= self._config.stable_link_s:
                        attempt = 0
                    delay = reconnect_delay_s(None, attempt, jitter=self._rng.random())
                attempt += 1
                self._record_backoff(delay)
                self.stats.state = LinkState.BACKOFF
                await self._sleep_or_stop(delay, stop)
        finally:
            self.stats.state = LinkState.STOPPED
            await self._disconnect()

    def _failed(self, exc: BaseException) -> None:
        self.stats.connect_failures += 1
        self.stats.last_error = str(exc) or type(exc).__name__
        logger.info("%s: %s", self.address, self.stats.last_error)

    def _record_backoff(self, delay: float) -> None:
        self.stats.last_backoff_s = delay
        self.stats.max_backoff_s = max(self.stats.max_backoff_s, delay)
        self.backoffs.append(delay)
        if len(self.backoffs) > 1000:
            del self.backoffs[:500]

    async def _disconnect(self) -> None:
        if self.link is not None:
            try:
                await self.link.disconnect(self._config.disconnect_timeout_s)
            except Exception:
                # disconnect() is bounded and catches bleak's errors; anything else is a
                # bug that must not keep the task from reconnecting.
                logger.exception("%s: disconnect failed", self.address)

    async def _forget_link(self) -> None:
        await self._disconnect()
        self.link = None

    async def _watch(self, stop: asyncio.Event) -> str:
        """Wait until the link drops ('lost'), falls silent ('silent') or the daemon stops ('stop')."""
        link = self.link
        assert link is not None
        timeout = self._config.silence_timeout_s
        started = self._clock.monotonic()
        lost = asyncio.ensure_future(link.wait_until_lost())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                last = max(started, link.last_event_monotonic_s or started)
                remaining = timeout - (self._clock.monotonic() - last)
                if remaining <= 0:
                    return "silent"
                timer = asyncio.ensure_future(
                    self._clock.sleep(min(remaining, timeout / WATCHDOG_CHECKS))
                )
                done, _ = await asyncio.wait(
                    {lost, stopping, timer}, return_when=asyncio.FIRST_COMPLETED
                )
                timer.cancel()
                await asyncio.gather(timer, return_exceptions=True)
                if stopping in done:
                    return "stop"
                if lost in done:
                    return "lost"
        finally:
            for future in (lost, stopping):
                future.cancel()
            await asyncio.gather(lost, stopping, return_exceptions=True)

    async def _sleep_or_stop(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep `seconds` on the daemon's clock, or until `stop` is set."""
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({timer, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (timer, stopping):
                future.cancel()
            await asyncio.gather(timer, stopping, return_exceptions=True)


__all__ = [
    "WATCHDOG_CHECKS",
    "DeviceStats",
    "DeviceWorker",
    "LinkState",
    "Locate",
    "scan_locator",
]
