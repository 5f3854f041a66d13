"""Which database a command talks to, and as which role.

With `PACELINE_DATABASE_URL` the deployment decides: each service gets its
own URL (its own role) and, with `PACELINE_DATABASE_PASSWORD_FILE`, reads the
password from a secret file instead of the environment. Without it Paceline
starts the embedded server; administrative commands then connect as its
superuser, and the services as their own roles with passwords kept in
`PACELINE_SECRETS_DIR` (created 0600 on first use).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from paceline.cli.settings import Settings
from paceline.store import roles
from paceline.store.connection import check_dsn, connect
from paceline.store.embedded import EmbeddedServer
from paceline.store.identity import IdentityKey
from paceline.store.secrets import read_or_create_secret, read_secret


@contextmanager
def database_dsn(
    settings: Settings, *, role: str | None = None, announce: bool = True
) -> Iterator[str]:
    """Yield the DSN to use, starting the embedded server for the duration when no URL is set.

    `role` names the service role the command runs as (`roles.INGEST`,
    `roles.WORKER`, …); it matters only for the embedded server, where the
    command would otherwise be the superuser.
    """
    if settings.database_url:
        check_dsn(settings.database_url)
        dsn = settings.database_url
        if settings.database_password_file is not None:
            dsn = roles.with_password(dsn, read_secret(settings.database_password_file))
        yield dsn
        return
    server = EmbeddedServer.start(settings.data_dir)
    if announce:
        print(f"embedded PostgreSQL: data in {server.pgdata}", file=sys.stderr)
    try:
        if role is None:
            yield server.dsn
        else:
            password = role_password(settings.secrets, role)
            with connect(server.dsn, autocommit=True) as admin:
                # Creates the role with this password, or sets it (e.g. after the
                # secrets directory was restored or replaced).
                roles.bootstrap(admin, passwords={role: password})
            yield roles.role_dsn(server.dsn, role, password)
    finally:
        server.stop()


def role_password(secrets_dir: Path, role: str) -> str:
    """The password of service role `role` kept in `secrets_dir` (created on first use)."""
    return read_or_create_secret(secrets_dir / f"{role}.password", roles.generate_password)


def administrator_secrets(settings: Settings) -> dict[str, str]:
    """Passwords an administrator's `paceline db migrate` sets for the service roles.

    Embedded: every service role, created on first use. With a URL: the
    `<role>.password` files present in `PACELINE_SECRETS_DIR` (compose mounts them).
    """
    if settings.database_url is None:
        return {role: role_password(settings.secrets, role) for role in roles.SERVICE_ROLES}
    found = {}
    for role in roles.SERVICE_ROLES:
        path = settings.secrets / f"{role}.password"
        if path.exists():
            found[role] = read_secret(path)
    return found


def identity_key(settings: Settings) -> IdentityKey | None:
    """The person-identity key: created for the embedded server, read if present otherwise."""
    path = settings.identity_key_path
    if settings.database_url is None:
        return IdentityKey.load_or_create(path)
    return IdentityKey.load(path) if path.exists() else None
