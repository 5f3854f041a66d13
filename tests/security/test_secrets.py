"""Secret files stay private, and a deployment's password file reaches the connection."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from paceline.cli.database import database_dsn
from paceline.cli.settings import Settings
from paceline.store.identity import IdentityKey
from paceline.store.secrets import SecretFileError, read_secret, write_secret


def test_a_secret_is_written_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "x.password"
    write_secret(path, "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_secret(path) == "s3cret"
    with pytest.raises(FileExistsError):
        write_secret(path, "other")


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.password"
    path.write_text("s3cret\n")
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600") as caught:
        read_secret(path)
    assert caught.value.path == path


def test_an_identity_key_never_prints_its_secret(tmp_path: Path) -> None:
    key = IdentityKey.load_or_create(tmp_path / "identity.key")
    assert key.secret.hex() not in repr(key)
    assert IdentityKey.load(tmp_path / "identity.key") == key
    (tmp_path / "short.key").write_text("abcd\n")
    (tmp_path / "short.key").chmod(0o600)
    with pytest.raises(SecretFileError, match="hex key"):
        IdentityKey.load(tmp_path / "short.key")


def test_the_password_file_goes_into_the_database_url(tmp_path: Path) -> None:
    secret = tmp_path / "worker.password"
    write_secret(secret, "from-the-file")
    settings = Settings.from_env(
        {
            "PACELINE_DATABASE_URL": "postgresql://paceline_worker@db:5432/paceline",
            "PACELINE_DATABASE_PASSWORD_FILE": str(secret),
        }
    )
    with database_dsn(settings) as dsn:
        params = conninfo_to_dict(dsn)
    assert (params["user"], params["password"], params["host"]) == (
        "paceline_worker",
        "from-the-file",
        "db",
    )
