"""Secret files: passwords and keys kept readable by their owner only (0600 in a 0700 directory)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from paceline.store.errors import StoreError


class SecretFileError(StoreError):
    """A secret file is missing, unreadable, empty, or readable by group or others."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"secret file {path}: {reason}")


def read_secret(path: Path) -> str:
    """The text of a secret file, refusing one that group or others may read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SecretFileError(path, "does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(path, f"cannot be read: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(path, f"mode {stat.S_IMODE(mode):04o} lets others read it; chmod 600")
    if not text:
        raise SecretFileError(path, "is empty")
    return text


def write_secret(path: Path, text: str) -> None:
    """Create `path` with mode 0600 holding `text` (its directory 0700 if created); never overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, creating it with `make()` first if there is none."""
    if not path.exists():
        # Another process may create it at the same moment; then read theirs.
        with contextlib.suppress(FileExistsError):
            write_secret(path, make())
    return read_secret(path)
