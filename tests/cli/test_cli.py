"""The `paceline` command: settings, db migrate and db status."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from paceline.cli.main import main
from paceline.cli.settings import Settings, SettingsError, parse_duration
from paceline.store.migrate import load_migrations
from paceline.store.testing import temporary_database


def test_help_lists_every_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in (
        "PACELINE_DATABASE_URL",
        "PACELINE_DATA_DIR",
        "PACELINE_COMPRESS_AFTER",
        "PACELINE_RETENTION",
        "PACELINE_ROLLUP_EVERY",
        "PACELINE_NIGHTLY_EVERY",
        "PACELINE_RECOVER_EVERY",
        "PACELINE_CLOCK_START",
        "PACELINE_WORKER_HEARTBEAT",
        "PACELINE_STANDBY_POLL",
    ):
        assert name in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("15 min", timedelta(minutes=15)),
        ("2 weeks", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration("X", text) == expected


@pytest.mark.parametrize("text", ["", "seven days", "0d", "-1d", "5 fortnights"])
def test_bad_durations_name_the_variable(text: str) -> None:
    with pytest.raises(SettingsError, match="X="):
        parse_duration("X", text)


def test_retention_shorter_than_compression_is_refused() -> None:
    with pytest.raises(SettingsError, match="longer than PACELINE_COMPRESS_AFTER"):
        Settings.from_env({"PACELINE_COMPRESS_AFTER": "7d", "PACELINE_RETENTION": "3d"})


def test_settings_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"PACELINE_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.data_dir == tmp_path
    assert settings.compress_after == timedelta(days=7)
    assert settings.retention is None


def test_db_migrate_then_status_on_a_server_url(
    pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with temporary_database(pg_server_dsn, "cli", migrated=False) as dsn:
        monkeypatch.setenv("PACELINE_DATABASE_URL", dsn)
        assert main(["db", "status"]) == 1  # pending migrations
        assert "pending: 0001_core" in capsys.readouterr().out
        assert main(["db", "migrate"]) == 0
        latest = load_migrations()[-1].version
        applied = ", ".join(str(v) for v in range(1, latest + 1))
        assert f"applied migrations {applied}" in capsys.readouterr().out
        assert main(["db", "migrate"]) == 0
        assert "schema is up to date" in capsys.readouterr().out
        assert main(["db", "status"]) == 0
        out = capsys.readouterr().out
        assert f"schema version:  {latest} of {latest}" in out
        assert "mode:" in out


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.invalid/db", "scheme 'http' is not postgresql://"),
        ("postgresql://u:secret@127.0.0.1:1/x", "cannot reach PostgreSQL"),
        ("host=127.0.0.1 port=notaport", "invalid database URL"),
    ],
)
def test_a_wrong_or_unreachable_url_is_a_clear_error(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACELINE_DATABASE_URL", url)
    assert main(["db", "status"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "secret" not in err
