"""Fakes of the radio that subclass bleak's own types and script their failures."""

from __future__ import annotations

from typing import Any

from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError


class FailingScanner(BaseBleakScanner):
    """A scanner backend whose start raises `error` (class attribute, set per subclass)."""

    error: BaseException = BleakError("unset")

    def __init__(
        self, detection_callback: Any = None, service_uuids: Any = None, *_: Any, **__: Any
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        raise self.error

    async def stop(self) -> None:
        return None


def failing_scanner(error: BaseException) -> type[BaseBleakScanner]:
    """A `FailingScanner` subclass that raises `error` on every start."""
    return type("Scripted", (FailingScanner,), {"error": error})
