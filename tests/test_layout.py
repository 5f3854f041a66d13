"""The namespace-slice layout and the one-way dependency rule of DESIGN.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLICES = ("devices", "ingest", "store", "signal", "pacing", "dashboard", "cli")
# Which paceline packages each component may import (DESIGN.md, "Dependencies point one way").
ALLOWED = {
    "devices": set(),
    "signal": set(),
    "store": set(),
    "ingest": {"devices", "store"},
    "pacing": {"signal", "store"},
    "dashboard": set(SLICES),
    "cli": set(SLICES),
}


def test_import_signal_is_the_standard_library() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal, asyncio; print(signal.__file__, hasattr(signal, 'getsignal'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    path, has_getsignal = out.split()
    assert "paceline" not in path
    assert has_getsignal == "True"


def test_paceline_signal_is_our_package() -> None:
    import paceline.signal

    assert Path(paceline.signal.__file__).parent == ROOT / "signal" / "paceline" / "signal"


@pytest.mark.parametrize("folder", SLICES)
def test_top_level_folders_are_namespace_slices(folder: str) -> None:
    base = ROOT / folder
    if not base.exists():
        pytest.skip(f"{folder}/ not created yet")
    assert not (base / "__init__.py").exists()
    assert not (base / "paceline" / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "paceline" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("component", list(ALLOWED))
def test_dependencies_point_one_way(component: str) -> None:
    package = ROOT / component / "paceline" / component
    if not package.exists():
        pytest.skip(f"{component} not created yet")
    violations = []
    for path in sorted(package.rglob("*.py")):
        for target in _imports(path) - ALLOWED[component] - {component}:
            violations.append(f"{path.relative_to(ROOT)} imports paceline.{target}")
    assert violations == []


def test_dependency_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from paceline.store import connect\nimport paceline.pacing.flags\n")
    assert _imports(bad) == {"store", "pacing"}


# DESIGN.md, "Inside pacing/": records.py is pacing's SQL, and only pacing's.
SQL_HOME = ROOT / "pacing" / "paceline" / "pacing" / "records.py"
_SQL_CALLS = {"execute", "executemany", "cursor", "copy", "stream"}


def _sql_uses(path: Path) -> list[str]:
    """Where a module runs SQL itself: query calls and `psycopg.sql` imports, by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SQL_CALLS
        ):
            found.append(f"{node.lineno}: .{node.func.attr}(")
        elif isinstance(node, ast.ImportFrom) and node.module == "psycopg":
            found += [f"{node.lineno}: psycopg.{a.name}" for a in node.names if a.name == "sql"]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if a.name == "psycopg.sql"]
    return found


def test_pacing_sql_lives_in_records() -> None:
    package = ROOT / "pacing" / "paceline" / "pacing"
    elsewhere = [
        f"{path.relative_to(ROOT)}:{use}"
        for path in sorted(package.rglob("*.py"))
        if path != SQL_HOME
        for use in _sql_uses(path)
    ]
    assert elsewhere == []
    assert _sql_uses(SQL_HOME)


def test_sql_checker_sees_a_query_outside_records(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from psycopg import sql\n"
        "def f(conn):\n"
        "    conn.execute('SELECT 1')\n"
        "    with conn.cursor() as cur:\n"
        "        pass\n"
    )
    assert _sql_uses(bad) == ["1: psycopg.sql", "3: .execute(", "4: .cursor("]
