"""Stop an embedded PostgreSQL once no process holds it any more, however its holders ended.

Every Paceline process that uses the embedded server holds a shared `flock` on the data
directory's hold file for as long as it uses it. The kernel drops that lock when the
process ends, by a clean exit, SIGTERM, SIGKILL or a crash alike, so waiting for an
exclusive lock on the same file is waiting for the last user to go. The process that
starts the server launches this module as a detached watcher (`python -I reaper.py …`):
it blocks on that exclusive lock, then stops the server (and, for a throwaway server,
deletes its cluster).

Only the standard library is imported: the watcher runs isolated (`-I`) beside a server
whose Python environment may be replaced while it runs, and it must stay small.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

# pg_ctl waits this long for a fast shutdown; sessions are cut, so it takes a second.
STOP_TIMEOUT_S = 60


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster serving `pgdata`, or None when none is running."""
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first.strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def run_as(argv: list[str], uid: int | None, gid: int | None, **kwargs: object) -> None:
    """Run `argv`, as `uid`/`gid` with no supplementary groups when they are given.

    `subprocess`'s `user=` alone keeps the caller's group and supplementary groups, which
    is how a server started by root ends up running with gid 0.
    """
    ids: dict[str, object] = {}
    if uid is not None and gid is not None:
        ids = {"user": uid, "group": gid, "extra_groups": []}
    subprocess.run(argv, check=True, capture_output=True, **ids, **kwargs)  # type: ignore[call-overload]


def shutdown(pgdata: Path, pg_ctl: Path, uid: int | None, gid: int | None, *, delete: bool) -> None:
    """Stop the server of `pgdata` if it runs; remove its private socket directory; delete on request."""
    if postmaster_pid(pgdata) is not None:
        socket_dir = socket_dir_of(pgdata)
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            run_as(
                [
                    str(pg_ctl),
                    "-D",
                    str(pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(STOP_TIMEOUT_S),
                    "stop",
                ],
                uid,
                gid,
                timeout=STOP_TIMEOUT_S + 30,
            )
        if socket_dir is not None:
            # Empty once the server has removed its socket and lock file; a directory
            # that still holds something is not ours to empty.
            with contextlib.suppress(OSError):
                socket_dir.rmdir()
    if delete:
        shutil.rmtree(pgdata, ignore_errors=True)


def socket_dir_of(pgdata: Path) -> Path | None:
    """The socket directory the running server of `pgdata` recorded in postmaster.pid."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None


def main(argv: list[str]) -> int:
    """Detach, wait for the last holder of the hold file to go, then shut the server down."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hold_file", type=Path)
    parser.add_argument("pgdata", type=Path)
    parser.add_argument("pg_ctl", type=Path)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("--delete", action="store_true")
    args = parser.parse_args(argv)
    # Fork once more so that the starter can wait for its child (no zombie, no
    # still-running Popen) while the watcher lives on in its own session.
    if os.fork() > 0:
        return 0
    os.setsid()
    try:
        fd = os.open(args.hold_file, os.O_RDWR)
    except OSError:
        return 1
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        shutdown(args.pgdata, args.pg_ctl, args.uid, args.gid, delete=args.delete)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
