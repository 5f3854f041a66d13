"""One table of `PACELINE_*` settings, and every variable the repository reads is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paceline.cli.main import main
from paceline.cli.settings import READ_BY, SETTINGS, help_lines, settings_read_by

ROOT = Path(__file__).resolve().parent.parent.parent
NAME = re.compile(r"\bPACELINE_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
SKIP_DIRS = {".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "data"}
TEXT_SUFFIXES = {
    ".py", ".sql", ".toml", ".yml", ".yaml", ".md", ".sh", ".cfg", ".ini", ".txt",
    ".example", ".service", ".conf",
}  # fmt: skip
TEXT_NAMES = {"Dockerfile", "run"}


def _sources() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*"))
        if path.is_file()
        and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
        and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES)
        and path != Path(__file__)
    ]


def _names_in(paths: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        for name in NAME.findall(path.read_text(errors="replace")):
            found.setdefault(name, set()).add(path.name)
    return found


def test_every_paceline_variable_in_the_repository_is_in_the_settings_table() -> None:
    table = {setting.name for setting in SETTINGS}
    missing = {name: sorted(where) for name, where in _names_in(_sources()).items()}
    missing = {name: where for name, where in missing.items() if name not in table}
    assert missing == {}, "add these to paceline.cli.settings.SETTINGS"


def test_the_grep_sees_a_variable_in_any_source(tmp_path: Path) -> None:
    source = tmp_path / "new.py"
    source.write_text('os.environ.get("PACELINE_SOMETHING_NEW", "")\n')
    assert set(_names_in([source])) == {"PACELINE_SOMETHING_NEW"}


def test_every_setting_in_the_table_is_read_somewhere() -> None:
    documentation = {ROOT / "README.md", ROOT / "cli" / "paceline" / "cli" / "settings.py"}
    used = _names_in([p for p in _sources() if p not in documentation])
    assert {s.name for s in SETTINGS} - set(used) == set()


def test_help_prints_the_whole_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for setting in SETTINGS:
        assert setting.name in out
        assert setting.default in out
    assert "PACELINE_TEST_DSN" in out


def test_the_readme_documents_the_whole_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert {s.name for s in SETTINGS} - set(NAME.findall(readme)) == set()


def test_each_setting_names_a_known_reader() -> None:
    assert {s.read_by for s in SETTINGS} <= set(READ_BY)
    assert sum(len(settings_read_by(group)) for group in READ_BY) == len(SETTINGS)
    with pytest.raises(ValueError, match="unknown settings group"):
        settings_read_by("nobody")
    assert help_lines(("tests",))[0].endswith("the test suite (python3 dev.py test):")
