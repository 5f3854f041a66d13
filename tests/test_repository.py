"""What a fresh checkout needs: declared dependencies that are used, and test data in the repo."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CORE_SLICES = ("devices", "ingest", "store", "signal", "pacing", "cli")
"""Everything a gateway or a worker installs; the dashboard is an extra."""

DASHBOARD_ONLY = {"streamlit", "pandas", "pyarrow"}
"""Heavy packages only the dashboard needs; a Raspberry Pi gateway must not build them."""


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _core_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return [Requirement(text) for text in project["dependencies"]]


def _installed_closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of every installed distribution the requirements pull in (no extras)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # a platform-specific dependency of another platform
        for text in dist.requires or ():
            sub = Requirement(text)
            # Extras asked for by the parent (psycopg[binary]) are part of the install.
            if sub.marker is not None and not any(
                sub.marker.evaluate({"extra": extra}) for extra in ("", *req.extras)
            ):
                continue
            sub.marker = None
            todo.append(sub)
    return seen


def _imported_top_level(folders: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def test_the_core_install_pulls_in_no_dashboard_stack() -> None:
    assert _installed_closure(_core_requirements()) & DASHBOARD_ONLY == set()


def test_the_dashboard_stack_is_the_dashboard_extra() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    extras = project["optional-dependencies"]
    assert "streamlit" in {canonicalize_name(Requirement(r).name) for r in extras["dashboard"]}


def test_no_core_module_imports_the_dashboard_stack() -> None:
    assert _imported_top_level(CORE_SLICES) & DASHBOARD_ONLY == set()


def test_every_core_dependency_is_imported_by_the_core() -> None:
    provides = metadata.packages_distributions()
    imported_dists = {
        canonicalize_name(dist)
        for module in _imported_top_level(CORE_SLICES)
        for dist in provides.get(module, ())
    }
    declared = {canonicalize_name(req.name) for req in _core_requirements()}
    assert declared - imported_dists == set()


OUTSIDE_PATH = re.compile(r"""["'](/work/|\.\./shared|~/)""")


def test_tests_read_no_data_from_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_PATH.search(line)
    ]
    assert offenders == []


def test_every_data_file_states_its_source_and_licence() -> None:
    data = ROOT / "tests" / "data"
    readme = (data / "README.md").read_text()
    files = sorted(p.name for p in data.iterdir() if p.name != "README.md")
    assert files, "tests/data holds the recordings the tests use"
    for name in files:
        section = readme.split(f"## `{name}`", 1)
        assert len(section) == 2, f"{name} has no section in tests/data/README.md"
        body = section[1].split("\n## ", 1)[0]
        assert "**Source**" in body
        assert "**Licence**" in body


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_docs_point_to_nothing_outside_the_repository() -> None:
    """A clone is all a reader has: the README and docs/ link only to files it contains."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 3, "docs/ holds the architecture and the clinical model"
    for page in pages:
        text = page.read_text()
        assert "../" not in text, f"{page.name} points outside the repository"
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{page.name}: {target}"
