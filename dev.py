#!/usr/bin/env python3
"""Run Paceline from a fresh checkout: `python3 dev.py demo` or `python3 dev.py test`.

Needs only Python 3.11+. On first use (and whenever pyproject.toml changes) it
creates `.venv/` beside this file and installs Paceline into it with pip, so
nothing is installed into the system interpreter.
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
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

commands:
  demo [ARGS]   run the Paceline demo on the embedded database (ARGS go to `paceline demo`)
  test [ARGS]   run ruff, mypy --strict and the whole pytest suite (ARGS go to pytest)
  bench [NAME]  run the benchmarks in bench/ (all, or the named ones) and summarise them
  paceline ARGS run any `paceline` command inside the project environment
"""


def _wanted_stamp(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{extras}:{digest}"


def ensure_env(*, dev: bool) -> None:
    """Create or refresh `.venv` so that it holds Paceline (and its dev tools)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py must explain itself on old Pythons
        sys.exit(f"Paceline needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    extras = "dev" if dev else "run"
    current = STAMP.read_text() if STAMP.exists() else ""
    if current == _wanted_stamp(extras) or (not dev and current == _wanted_stamp("dev")):
        return
    if not PYTHON.exists():
        print(f"dev.py: creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    target = ".[dev]" if dev else "."
    print(f"dev.py: installing {target} into {VENV} (first run takes a minute)", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    STAMP.write_text(_wanted_stamp(extras))


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """Install Debian's Chromium for the browser test when it is missing and we are root.

    Otherwise say how; the browser test then fails with the same advice (it never skips).
    """
    if CHROMIUM.exists() or os.environ.get("PACELINE_CHROMIUM"):
        return
    apt = shutil.which("apt-get")
    if os.name == "posix" and os.geteuid() == 0 and apt:
        print("dev.py: installing chromium for the browser test (apt-get)", flush=True)
        subprocess.run([apt, "install", "-y", "-q", "chromium"], check=False)
        return
    print(
        "dev.py: the browser test needs Chromium at /usr/bin/chromium:"
        " run `sudo apt-get install -y chromium` (or set PACELINE_CHROMIUM)",
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

    scripts = sorted((ROOT / "bench").glob("*.py"))
    chosen = [s for s in scripts if not names or s.stem in names]
    unknown = set(names) - {s.stem for s in scripts}
    if unknown:
        print(f"dev.py: no such benchmark: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results: dict[str, object] = {}
    for script in chosen:
        # -P keeps bench/ off sys.path: bench/signal.py would otherwise shadow
        # the standard library's signal module for every script run from there.
        argv = [str(PYTHON), "-P", str(script)]
        print(f"dev.py: $ {' '.join(argv)}", flush=True)
        proc = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            print(f"dev.py: {script.name} failed (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode or 1
        results[script.stem] = json.loads(lines[-1])
    print(json.dumps(results, indent=2))
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
        ensure_chromium()
        return run([str(PYTHON), "-m", "pytest", *rest])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
