"""Single sign-on settings and the private Streamlit secrets `paceline dashboard` writes."""

from __future__ import annotations

import stat
import tempfile
import tomllib
from pathlib import Path

import pytest

from paceline.cli import oidc
from paceline.cli.dashboard import streamlit_argv
from paceline.cli.main import main
from paceline.cli.settings import SettingsError
from paceline.dashboard.auth import OIDC_PROVIDER
from paceline.store.secrets import write_secret

# Every character TOML makes special, and one beyond the Basic Multilingual Plane.
AWKWARD = 'q"uo\\te \t tab é 🙂 end'


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "client.secret"
    write_secret(path, AWKWARD)
    return path


def _env(secret_file: Path, **more: str) -> dict[str, str]:
    return {
        "PACELINE_OIDC_ISSUER": "https://login.clinic.example/realms/paceline/",
        "PACELINE_OIDC_CLIENT_ID": "paceline-dashboard",
        "PACELINE_OIDC_CLIENT_SECRET_FILE": str(secret_file),
        **more,
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_without_an_issuer_there_is_no_sign_on_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert oidc.oidc_from_env({}, host="127.0.0.1", port=8501) is None
    with oidc.streamlit_secrets(None) as path:
        assert path is None
    assert list(tmp_path.iterdir()) == []
    argv = streamlit_argv(Path("app.py"), host="127.0.0.1", port=8501)
    assert not any(a.startswith("--secrets.files") for a in argv)


def test_the_secrets_are_private_to_the_run_and_say_what_st_login_needs(
    tmp_path: Path, secret_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    config = oidc.oidc_from_env(_env(secret_file), host="127.0.0.1", port=9123)
    assert config is not None
    assert config.name == "login.clinic.example"
    assert config.redirect_uri == "http://127.0.0.1:9123/oauth2callback"
    assert AWKWARD not in repr(config)
    with oidc.streamlit_secrets(config) as path:
        assert path is not None
        assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
        assert path.parent.parent == tmp_path / "tmp"
        parsed = tomllib.loads(path.read_text(encoding="utf-8"))
        assert streamlit_argv(Path("app.py"), host="h", port=1, secrets=path)[-1] == (
            f"--secrets.files={path}"
        )
    assert not path.exists() and list((tmp_path / "tmp").iterdir()) == []
    auth = parsed["auth"]
    assert auth["redirect_uri"] == "http://127.0.0.1:9123/oauth2callback"
    assert len(auth["cookie_secret"]) >= oidc.MIN_COOKIE_SECRET_CHARS
    assert auth[OIDC_PROVIDER] == {
        "client_id": "paceline-dashboard",
        "client_secret": AWKWARD,
        "server_metadata_url": (
            "https://login.clinic.example/realms/paceline/.well-known/openid-configuration"
        ),
    }


def test_the_dashboard_url_a_cookie_secret_file_and_a_name_are_used(
    tmp_path: Path, secret_file: Path
) -> None:
    cookie = tmp_path / "secrets" / "cookie.secret"
    write_secret(cookie, "c" * 40)
    env = _env(
        secret_file,
        PACELINE_DASHBOARD_URL="https://paceline.clinic.example/",
        PACELINE_OIDC_COOKIE_SECRET_FILE=str(cookie),
        PACELINE_OIDC_NAME="Clinic login",
    )
    config = oidc.oidc_from_env(env, host="0.0.0.0", port=8501)  # noqa: S104 - a name only
    assert config is not None
    assert config.redirect_uri == "https://paceline.clinic.example/oauth2callback"
    assert config.cookie_secret == "c" * 40
    assert config.name == "Clinic login"
    loopback = {**_env(secret_file), "PACELINE_OIDC_ISSUER": "http://127.0.0.1:9400"}
    assert oidc.oidc_from_env(loopback, host="::1", port=8501) is not None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"PACELINE_OIDC_ISSUER": ""}, "PACELINE_OIDC_ISSUER"),  # a client id alone
        ({"PACELINE_OIDC_ISSUER": "http://login.clinic.example"}, "PACELINE_OIDC_ISSUER"),
        ({"PACELINE_OIDC_ISSUER": "login.clinic.example"}, "PACELINE_OIDC_ISSUER"),
        ({"PACELINE_OIDC_ISSUER": "https://login.example/?x=1"}, "PACELINE_OIDC_ISSUER"),
        ({"PACELINE_OIDC_ISSUER": "https://login.example:port"}, "PACELINE_OIDC_ISSUER"),
        ({"PACELINE_OIDC_CLIENT_ID": " "}, "PACELINE_OIDC_CLIENT_ID"),
        ({"PACELINE_OIDC_CLIENT_SECRET_FILE": ""}, "PACELINE_OIDC_CLIENT_SECRET_FILE"),
        ({"PACELINE_OIDC_CLIENT_SECRET_FILE": "/nonexistent"}, "PACELINE_OIDC_CLIENT_SECRET_FILE"),
        ({"PACELINE_DASHBOARD_URL": "ftp://paceline.example"}, "PACELINE_DASHBOARD_URL"),
        ({"PACELINE_DASHBOARD_URL": "https://clinic.example/paceline"}, "PACELINE_DASHBOARD_URL"),
    ],
)
def test_a_bad_setting_is_a_typed_error_naming_it(
    secret_file: Path, change: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as error:
        oidc.oidc_from_env({**_env(secret_file), **change}, host="127.0.0.1", port=8501)
    assert error.value.name == named
    assert named in str(error.value)


def test_secret_files_must_be_private_and_the_cookie_secret_long(
    tmp_path: Path, secret_file: Path
) -> None:
    secret_file.chmod(0o644)
    with pytest.raises(SettingsError, match=r"PACELINE_OIDC_CLIENT_SECRET_FILE.*chmod 600"):
        oidc.oidc_from_env(_env(secret_file), host="127.0.0.1", port=8501)
    secret_file.chmod(0o600)
    cookie = tmp_path / "secrets" / "cookie.secret"
    write_secret(cookie, "too short")
    env = _env(secret_file, PACELINE_OIDC_COOKIE_SECRET_FILE=str(cookie))
    with pytest.raises(SettingsError, match=r"PACELINE_OIDC_COOKIE_SECRET_FILE.*9 characters"):
        oidc.oidc_from_env(env, host="127.0.0.1", port=8501)


def test_a_wildcard_address_needs_the_dashboard_url(secret_file: Path) -> None:
    with pytest.raises(SettingsError) as error:
        oidc.oidc_from_env(_env(secret_file), host="0.0.0.0", port=8501)  # noqa: S104
    assert error.value.name == "PACELINE_DASHBOARD_URL"


def test_paceline_dashboard_refuses_a_bad_configuration_before_starting(
    secret_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _env(secret_file, PACELINE_OIDC_CLIENT_ID="").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PACELINE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["dashboard", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "PACELINE_OIDC_CLIENT_ID" in err and "must be set" in err
