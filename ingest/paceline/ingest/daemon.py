"""The ingest daemon: one task per bound wearable, a flusher into the spool, an uploader out of it.

The device tasks (`paceline.ingest.worker`) queue rows in one shared buffer; the flusher
commits that buffer to the spool every `flush_interval_s` (half a second by default, so
every sample is durable within a second of arrival) together with the counters and each
device's step-counter state; the uploader drains the spool into the database. On SIGTERM
or SIGINT the daemon stops the device tasks (each disconnect bounded), flushes what they
delivered, gives the uploader a few seconds to empty the spool, and exits; what is left
waits in the spool for the next run.

Time: the device tasks run on the daemon's `Clock` (a test or a benchmark passes an
accelerated `SimClock`); the flusher and the uploader work in real seconds, because
durability and database retries are about the real world.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from bleak.backends.client import BaseBleakClient

from paceline.devices.clock import SYSTEM_CLOCK, Clock, Stamper
from paceline.devices.profiles import DEFAULT_PROFILES, ProfileRegistry
from paceline.ingest.chunks import SampleBuffer, epoch_us
from paceline.ingest.config import DEFAULT_CONFIG, DaemonConfig
from paceline.ingest.gateway_state import DeviceBinding, DeviceFacts
from paceline.ingest.spool import Spool, SpoolStatus
from paceline.ingest.spool_file import SpoolDamagedError, daemon_lock
from paceline.ingest.uploader import Uploader
from paceline.ingest.worker import DeviceStats, DeviceWorker, LinkState, Locate, scan_locator
from paceline.store import StoreError, connect, registry

logger = logging.getLogger(__name__)


def load_bindings(dsn: str, spool: Spool) -> list[DeviceBinding]:
    """The bound devices from the database (remembered in the spool), or the spool's copy if it is away."""
    try:
        with connect(dsn, autocommit=True) as conn:
            devices = registry.list_devices(conn, bound_only=True)
    except (psycopg.Error, StoreError) as exc:
        saved = spool.gateway.load_bindings()
        logger.warning(
            "database unavailable (%s); using the %s bound device(s) saved in the spool",
            exc,
            len(saved),
        )
        return saved
    bindings = [
        DeviceBinding(d.address, d.device_id, d.patient_id, d.name, d.profile)
        for d in devices
        if d.patient_id is not None
    ]
    spool.gateway.save_bindings(bindings)
    return bindings


@dataclass(frozen=True)
class DeviceProgress:
    """One progress line's worth of a device: what this run received, spooled and uploaded."""

    address: str
    device_id: int
    patient_id: int
    state: str
    received: int
    zero_hr: int
    malformed: int
    spooled: int
    uploaded: int
    quarantined: int
    reconnects: int
    last_error: str | None = None


@dataclass(frozen=True)
class Progress:
    """What the daemon has done so far, per device, plus the spool's backlog."""

    devices: tuple[DeviceProgress, ...]
    backlog_rows: int
    lag_s: float
    upload_error: str | None


@dataclass
class _Running:
    """The daemon's tasks while it runs, and the events that stop the long-lived ones."""

    upload_stop: asyncio.Event
    flush_stop: asyncio.Event
    devices: list[asyncio.Task[None]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None
    uploader: asyncio.Task[None] | None = None
    progress: asyncio.Task[None] | None = None


@dataclass
class _Counters:
    """Daemon-side counters not yet committed to the spool."""

    pending: dict[tuple[int, str], int] = field(default_factory=dict)

    def add(self, device_id: int, name: str, n: int) -> None:
        if n:
            key = (device_id, name)
            self.pending[key] = self.pending.get(key, 0) + n


class IngestDaemon:
    """The gateway's daemon: device tasks, the spool flusher, the uploader, clean shutdown."""

    def __init__(
        self,
        bindings: Sequence[DeviceBinding],
        *,
        spool_path: Path,
        dsn: str,
        locate: Locate | None = None,
        clock: Clock = SYSTEM_CLOCK,
        config: DaemonConfig = DEFAULT_CONFIG,
        profiles: ProfileRegistry = DEFAULT_PROFILES,
        backend: type[BaseBleakClient] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        gateway_id: str | None = None,
        rng: random.Random | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.config = config
        self.spool_path = spool_path
        self.dsn = dsn
        self.clock = clock
        self.buffer = SampleBuffer()
        self._rng = rng or random.Random()
        stamper = Stamper(clock, floor=config.clock_floor)
        self._stamper = stamper
        self._released = False
        self._on_progress = on_progress
        self._gateway_id = gateway_id
        self.workers = [
            DeviceWorker(
                binding,
                self.buffer,
                locate=locate or scan_locator(config.locate_timeout_s),
                clock=clock,
                config=config,
                profiles=profiles,
                backend=backend,
                client_kwargs=client_kwargs,
                rng=random.Random(self._rng.random()),
                stamper=stamper,
            )
            for binding in bindings
        ]
        self._reported = {w.binding.device_id: DeviceStats() for w in self.workers}
        self.stop_event = asyncio.Event()
        self.uploader: Uploader | None = None
        self._writer: Spool | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-writer")
        self._executor_closed = False
        self._repair_needed = False
        self._saved_steps: dict[int, int] = {}
        self._saved_facts: dict[int, DeviceFacts] = {}
        self._baseline: SpoolStatus | None = None
        self.dropped_rows = 0
        self._dropped: dict[tuple[int, str], int] = {}
        """Rows dropped per device, not yet counted in the spool (it could not be written)."""
        self.flushes = 0

    def stop(self) -> None:
        """Ask the daemon to stop (what SIGTERM and SIGINT do)."""
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def _in_writer(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Shielded: once handed to the writer thread, a spool write runs to its end even if
        # the caller is cancelled, so rows taken from the buffer are never lost in between.
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        return await asyncio.shield(job)

    async def run(self, *, duration_s: float | None = None, signals: bool = True) -> None:
        """Run until stopped (signal, `stop()`, or `duration_s` real seconds).

        Raises `SpoolError` if the spool cannot be opened or another daemon holds it.
        """
        loop = asyncio.get_running_loop()
        deadline = None if duration_s is None else loop.time() + duration_s
        with daemon_lock(self.spool_path):
            while True:
                self._repair_needed = False
                left = None if deadline is None else max(0.0, deadline - loop.time())
                await self._run(duration_s=left, signals=signals)
                if not self._repair_needed or (deadline is not None and loop.time() >= deadline):
                    return
                # The spool file is damaged where appends need it: every task has stopped
                # and the rows are still in memory; reopening rebuilds the file.
                logger.error(
                    "restarting on a rebuilt spool; %s rows wait in memory", len(self.buffer)
                )
                self.stop_event.clear()

    async def _run(self, *, duration_s: float | None, signals: bool) -> None:
        if signals:
            self.install_signal_handlers()
        if self._executor_closed:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-writer")
            self._executor_closed = False
        self._writer = await self._in_writer(
            lambda: Spool.open(self.spool_path, gateway_id=self._gateway_id, repair=True)
        )
        writer = self._writer
        assert writer is not None
        await self._in_writer(writer.gateway.save_bindings, [w.binding for w in self.workers])
        counts: dict[int, int] = await self._in_writer(writer.gateway.load_step_counts)
        for w in self.workers:
            if w.binding.device_id in counts:
                w.resume_step_count(counts[w.binding.device_id])
                self._saved_steps[w.binding.device_id] = counts[w.binding.device_id]
        upload_spool = await asyncio.to_thread(Spool.open, self.spool_path)
        self.uploader = Uploader(
            upload_spool,
            self.dsn,
            batch_rows=self.config.batch_rows,
            backoff=self.config.upload_backoff,
            rng=random.Random(self._rng.random()),
        )
        running = _Running(upload_stop=asyncio.Event(), flush_stop=asyncio.Event())
        running.devices = [
            asyncio.create_task(w.run(self.stop_event), name=f"device-{w.address}")
            for w in self.workers
        ]
        running.flusher = asyncio.create_task(
            self._flush_loop(running.flush_stop), name="spool-flusher"
        )
        running.uploader = asyncio.create_task(
            self.uploader.run(running.upload_stop, idle_s=self.config.upload_idle_s),
            name="uploader",
        )
        self._baseline = await self._status()
        if self._on_progress and self.config.progress_every_s:
            running.progress = asyncio.create_task(self._progress_loop(), name="progress")
        logger.info("ingest daemon running for %s device(s)", len(self.workers))
        try:
            if duration_s is None:
                await self.stop_event.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), timeout=duration_s)
        finally:
            self.stop_event.set()
            await self._shutdown(running)

    async def _shutdown(self, running: _Running) -> None:
        """Stop devices (bounded), flush what they sent, then stop the uploader after its batch."""
        if running.devices:
            _done, pending = await asyncio.wait(
                running.devices, timeout=self.config.shutdown_grace_s
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*running.devices, return_exceptions=True)
        running.flush_stop.set()
        if running.flusher is not None:
            await asyncio.gather(running.flusher, return_exceptions=True)
        await self.flush()
        if self.uploader is not None:
            self.uploader.nudge()
        await self._drain(self.config.drain_on_stop_s)
        running.upload_stop.set()
        if self.uploader is not None:
            self.uploader.nudge()
        uploader_stopped = await self._stop_uploader(running.uploader)
        if running.progress is not None:
            running.progress.cancel()
            await asyncio.gather(running.progress, return_exceptions=True)
            self._report_progress(await self._status())
        if self.uploader is not None and uploader_stopped:
            await asyncio.to_thread(self._close_uploader)
        if self._writer is not None:
            await self._in_writer(self._writer.close)
        self._executor.shutdown(wait=True)
        self._executor_closed = True
        logger.info("ingest daemon stopped")

    async def _stop_uploader(self, task: asyncio.Task[None] | None) -> bool:
        """Let the uploader finish its batch for `uploader_stop_s`, then cancel it; True if it ended.

        A cancelled upload leaves its batch in the spool's outbox, re-sent under the same
        id next run. Its thread may still be inside a database call (a dead network); the
        connection and spool are then left open rather than closed under it.
        """
        if task is None:
            return True
        done, _pending = await asyncio.wait([task], timeout=self.config.uploader_stop_s)
        if done:
            return True
        logger.warning(
            "uploader still busy after %.1f s; stopping it, its batch stays in the spool",
            self.config.uploader_stop_s,
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False

    async def _drain(self, timeout_s: float) -> None:
        """Give the uploader up to `timeout_s` to empty the spool, unless the database is failing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            status = await self._status()
            if status.pending_rows == 0 and status.in_flight is None:
                return
            if self.uploader is not None and self.uploader.last_error is not None:
                logger.info("leaving %s rows in the spool for the next run", status.pending_rows)
                return
            await asyncio.sleep(0.05)

    def _close_uploader(self) -> None:
        assert self.uploader is not None
        self.uploader.close()
        self.uploader.spool.close()

    # ------------------------------------------------------------------ flushing

    def _counter_deltas(self) -> dict[tuple[int, str], int]:
        counters = _Counters()
        for w in self.workers:
            seen = self._reported[w.binding.device_id]
            now = w.stats
            for name in ("received", "zero_hr", "malformed", "notifications"):
                counters.add(w.binding.device_id, name, getattr(now, name) - getattr(seen, name))
                setattr(seen, name, getattr(now, name))
        return counters.pending

    def _uncount(self, deltas: Mapping[tuple[int, str], int]) -> None:
        for (device_id, name), n in deltas.items():
            seen = self._reported[device_id]
            setattr(seen, name, getattr(seen, name) - n)

    async def flush(self) -> int:
        """Commit everything queued to the spool now; return the rows committed.

        While the host clock has never been plausible the rows are held in memory (their
        times are provisional); once it is, they are given their real times and go out.
        """
        if not self._stamper.check():
            if len(self.buffer):
                logger.warning(
                    "holding %s rows until the wall clock reads after %s",
                    len(self.buffer),
                    self._stamper.floor.date(),
                )
                self._bound_buffer()
            return 0
        if not self._released:
            offset = self._stamper.release_offset_us
            assert offset is not None
            moved = self.buffer.release(offset, below_us=epoch_us(self._stamper.floor))
            self._released = True
            if moved:
                logger.info("released %s rows held while the wall clock was unset", moved)
        try:
            chunks = self.buffer.take()
        except Exception:
            # `take` empties the buffer only once it has packed every row, so they wait
            # for the next flush; the counters are not taken either.
            logger.exception("cannot pack %s buffered rows; keeping them", len(self.buffer))
            return 0
        counted = self._counter_deltas()
        drops = dict(self._dropped)
        deltas = dict(counted)
        for key, n in drops.items():
            deltas[key] = deltas.get(key, 0) + n
        steps = {
            w.binding.device_id: w.step_count
            for w in self.workers
            if w.step_count is not None
            and self._saved_steps.get(w.binding.device_id) != w.step_count
        }
        facts = {
            w.binding.device_id: w.facts
            for w in self.workers
            if self._saved_facts.get(w.binding.device_id, DeviceFacts()) != w.facts
        }
        if not chunks and not deltas and not steps and not facts:
            return 0
        assert self._writer is not None
        try:
            await self._in_writer(self._writer.append, chunks, deltas, steps, facts)
            self._saved_steps.update(steps)
            self._saved_facts.update(facts)
        except SpoolDamagedError:
            self.buffer.restore(chunks)
            self._uncount(counted)
            if not self._repair_needed:
                logger.exception("the spool is damaged; stopping to rebuild it")
                self._repair_needed = True
                self.stop_event.set()
            return 0
        except Exception:
            self.buffer.restore(chunks)  # first, so that the count below is what is kept
            logger.exception("cannot write the spool; keeping %s rows in memory", len(self.buffer))
            self._uncount(counted)
            self._bound_buffer()
            return 0
        # Committed with the rows: the drops are counted in the spool now, for good.
        for key, n in drops.items():
            left = self._dropped.get(key, 0) - n
            if left:
                self._dropped[key] = left
            else:
                self._dropped.pop(key, None)
        self.flushes += 1
        return sum(c.count for c in chunks)

    def _bound_buffer(self) -> None:
        excess = len(self.buffer) - self.config.max_buffer_rows
        if excess <= 0:
            return
        # Dropping the oldest keeps the newest data, which the patient is producing now.
        per_device = self.buffer.drop_oldest(excess)
        now = sum(per_device.values())
        self.dropped_rows += now
        for device_id, n in per_device.items():
            key = (device_id, "dropped")
            self._dropped[key] = self._dropped.get(key, 0) + n
        logger.error(
            "spool unwritable: dropped the %s oldest buffered rows (%s in this run);"
            " the count is written to the spool once it can be written",
            now,
            self.dropped_rows,
        )

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        """Flush every `flush_interval_s` until `stop` is set (never cancelled mid-write)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.flush_interval_s)
            try:
                await self.flush()
            except Exception:
                # `flush` keeps what it could not commit; a flusher that died here would
                # leave every later sample in memory, never reaching the spool.
                logger.exception("flush failed; retrying at the next interval")

    # ------------------------------------------------------------------ progress

    async def _status(self) -> SpoolStatus:
        assert self._writer is not None
        status: SpoolStatus = await self._in_writer(self._writer.status)
        return status

    async def _progress_loop(self) -> None:
        assert self.config.progress_every_s is not None
        while True:
            await asyncio.sleep(self.config.progress_every_s)
            try:
                self._report_progress(await self._status())
            except Exception:
                logger.exception("cannot read the spool status")

    def _report_progress(self, status: SpoolStatus) -> None:
        if self._on_progress is None:
            return
        devices = []
        for w in self.workers:
            counted = status.counters.get(w.binding.device_id, {})
            before = self._baseline.counters.get(w.binding.device_id, {}) if self._baseline else {}
            devices.append(
                DeviceProgress(
                    address=w.address,
                    device_id=w.binding.device_id,
                    patient_id=w.binding.patient_id,
                    state=str(w.stats.state),
                    received=w.stats.received,
                    zero_hr=w.stats.zero_hr,
                    malformed=w.stats.malformed,
                    spooled=_since(counted, before, "spooled"),
                    uploaded=_since(counted, before, "uploaded"),
                    quarantined=_since(counted, before, "quarantined"),
                    reconnects=max(0, w.stats.connects - 1),
                    last_error=w.stats.last_error,
                )
            )
        error = self.uploader.last_error if self.uploader is not None else None
        self._on_progress(Progress(tuple(devices), status.pending_rows, status.lag_s(), error))


def _since(now: Mapping[str, int], was: Mapping[str, int], name: str) -> int:
    """How much a spool counter grew during this run."""
    return now.get(name, 0) - was.get(name, 0)


__all__ = [
    "DaemonConfig",
    "DeviceProgress",
    "DeviceStats",
    "DeviceWorker",
    "IngestDaemon",
    "LinkState",
    "Locate",
    "Progress",
    "load_bindings",
    "scan_locator",
]
