"""`paceline.signal` is pure: numpy, scipy and side-effect-free standard library only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import paceline.signal

PACKAGE = Path(paceline.signal.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
# Standard-library modules with no I/O that the package may use.
ALLOWED_ROOTS = {
    "__future__",
    "collections",
    "dataclasses",
    "enum",
    "math",
    "typing",
    "numpy",
    "scipy",
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module)
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_only_numpy_scipy_and_pure_stdlib(path: Path) -> None:
    for name in _imported_roots(path):
        if name.startswith("paceline."):
            assert name.startswith("paceline.signal"), f"{path.name} imports {name}"
        else:
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_is_named_signal(path: Path) -> None:
    assert path.stem != "signal"


def test_importing_the_package_loads_no_other_paceline_package_and_keeps_stdlib_signal() -> None:
    code = (
        "import sys, signal, paceline.signal, paceline.signal.daily, paceline.signal.simulate;"
        "print(sorted(m for m in sys.modules if m.startswith('paceline.')"
        " and not m.startswith('paceline.signal')));"
        "print(hasattr(signal, 'getsignal'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"


def test_every_public_function_has_a_docstring() -> None:
    missing = []
    for path in MODULES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef) or node.name[0] == "_":
                continue
            if ast.get_docstring(node) is None:
                missing.append(f"{path.name}:{node.name}")
    assert missing == []


def test_signal_error_is_a_value_error_and_the_root_of_the_typed_errors() -> None:
    from paceline.signal import errors

    assert issubclass(paceline.signal.SignalError, ValueError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), paceline.signal.SignalError)
