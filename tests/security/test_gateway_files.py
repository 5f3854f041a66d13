"""The gateway's spool holds heart data: its directory is 0700 and its files 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from paceline.ingest.chunks import SampleBuffer
from paceline.ingest.spool import Spool
from paceline.ingest.spool_file import daemon_lock, spool_path


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_a_new_spool_is_private(tmp_path: Path) -> None:
    path = spool_path(tmp_path / "data")
    with daemon_lock(path), Spool.open(path) as spool:
        buffer = SampleBuffer()
        buffer.add_rr(1, 10, time_us=1_000_000, received_us=1_000_000, rr_ms=800.0)
        spool.append(buffer.take())
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        files = _modes(path.parent)
        assert {"spool.sqlite", "spool.sqlite-wal", "spool.sqlite.lock"} <= set(files)
        assert all(mode == 0o600 for mode in files.values()), files


def test_a_spool_left_readable_by_an_older_version_is_narrowed(tmp_path: Path) -> None:
    path = spool_path(tmp_path)
    with Spool.open(path):
        pass
    path.parent.chmod(0o755)
    path.chmod(0o644)
    with Spool.open(path):
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert all(mode == 0o600 for mode in _modes(path.parent).values())
