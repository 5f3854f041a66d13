"""Settings from `PACELINE_*` environment variables, each with a documented default."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from paceline.store.embedded import default_data_dir


class SettingsError(ValueError):
    """An environment variable holds a value Paceline cannot use."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r}: {reason}")


# (name, default shown in --help, meaning)
DOCUMENTED: tuple[tuple[str, str, str], ...] = (
    ("PACELINE_DATABASE_URL", "unset: embedded PostgreSQL", "PostgreSQL server to use"),
    ("PACELINE_DATA_DIR", str(default_data_dir()), "where the embedded database and spool live"),
    ("PACELINE_COMPRESS_AFTER", "7d", "TimescaleDB: compress sample chunks older than this"),
    (
        "PACELINE_RETENTION",
        "unset: keep forever",
        "TimescaleDB: drop sample chunks older than this",
    ),
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(name: str, text: str) -> timedelta:
    """Parse '90s', '15 min', '12h', '7d', '2 weeks' into a positive timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(name, text, "expected a duration such as 30s, 15min, 12h, 7d or 2w")
    unit = match[2].lower()
    unit = unit[0] if unit[0] in "hdw" else unit
    seconds = float(match[1]) * _UNIT_S[unit]
    if seconds <= 0:
        raise SettingsError(name, text, "must be greater than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Settings:
    """Everything Paceline reads from its environment."""

    database_url: str | None
    data_dir: Path
    compress_after: timedelta
    retention: timedelta | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        url = env.get("PACELINE_DATABASE_URL", "").strip() or None
        data_dir = Path(env.get("PACELINE_DATA_DIR", "").strip() or default_data_dir())
        compress = parse_duration(
            "PACELINE_COMPRESS_AFTER", env.get("PACELINE_COMPRESS_AFTER", "").strip() or "7d"
        )
        retention_text = env.get("PACELINE_RETENTION", "").strip()
        retention = parse_duration("PACELINE_RETENTION", retention_text) if retention_text else None
        if retention is not None and retention <= compress:
            raise SettingsError(
                "PACELINE_RETENTION", retention_text, "must be longer than PACELINE_COMPRESS_AFTER"
            )
        return cls(url, data_dir, compress, retention)
