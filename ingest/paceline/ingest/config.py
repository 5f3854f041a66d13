"""How the ingest daemon behaves: intervals, timeouts and limits, with the reasons for their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bleak_retry_connector import MAX_CONNECT_ATTEMPTS

from paceline.devices.backoff import Backoff
from paceline.devices.clock import CLOCK_FLOOR
from paceline.devices.transport import (
    DISCONNECT_TIMEOUT_S,
    RECONNECT_MAX_DELAY_S,
    SILENCE_TIMEOUT_S,
)
from paceline.ingest.spool import DEFAULT_BATCH_ROWS
from paceline.ingest.uploader import DB_BACKOFF

STABLE_LINK_S: Final = 30.0
"""A link that stayed up this long resets the backoff; one that drops sooner keeps
climbing it, so a device that connects and falls over at once cannot spin."""
SHUTDOWN_GRACE_S: Final = 10.0
"""Real seconds device tasks get to disconnect on shutdown before they are cancelled
(two bounded disconnects' worth)."""
UPLOADER_STOP_S: Final = 5.0
"""Real seconds the uploader gets, after the drain, to finish the batch in hand on shutdown;
then its task is cancelled. Its batch stays in the spool's outbox and is re-sent under the
same id next run, so nothing is lost or doubled; a call blocked on a dead network ends in
its thread when the connection's TCP timeouts fire (`paceline.store.connection.KEEPALIVE`)."""
MAX_BUFFER_ROWS: Final = 5_000_000
"""Rows kept in memory while the spool cannot be written (a full disk): about an hour of
a hundred devices; beyond it the oldest are dropped and counted, not the daemon."""


@dataclass(frozen=True)
class DaemonConfig:
    """Knobs of the daemon; the defaults are what a gateway runs with."""

    flush_interval_s: float = 0.5
    silence_timeout_s: float = SILENCE_TIMEOUT_S
    stable_link_s: float = STABLE_LINK_S
    connect_attempts: int = MAX_CONNECT_ATTEMPTS
    unsupported_retry_s: float = RECONNECT_MAX_DELAY_S
    locate_timeout_s: float = 10.0
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    disconnect_timeout_s: float = DISCONNECT_TIMEOUT_S
    drain_on_stop_s: float = 5.0
    uploader_stop_s: float = UPLOADER_STOP_S
    batch_rows: int = DEFAULT_BATCH_ROWS
    upload_idle_s: float = 1.0
    upload_backoff: Backoff = DB_BACKOFF
    progress_every_s: float | None = None
    max_buffer_rows: int = MAX_BUFFER_ROWS
    clock_floor: datetime = CLOCK_FLOOR
    """Wall times before this are an unset clock: samples are held until it is set."""

    def __post_init__(self) -> None:
        """Check the intervals are usable."""
        if not 0 < self.flush_interval_s <= 1.0:
            raise ValueError("flush_interval_s must be in (0, 1]: samples are durable within 1 s")
        if self.silence_timeout_s <= 0:
            raise ValueError("silence_timeout_s must be positive")


DEFAULT_CONFIG: Final = DaemonConfig()
"""What a gateway runs with."""

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_BUFFER_ROWS",
    "SHUTDOWN_GRACE_S",
    "STABLE_LINK_S",
    "UPLOADER_STOP_S",
    "DaemonConfig",
]
