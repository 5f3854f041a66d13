"""Single sign-on for the dashboard: the OIDC settings, and the Streamlit secrets `st.login` reads.

Streamlit's `st.login` takes its identity provider from the `[auth]` section of
a `secrets.toml`. `paceline dashboard` writes that file for one run only, into
a fresh 0700 directory of its own (mode 0600), points Streamlit at it alone
(`--secrets.files`) and removes it when it stops, so that the client secret
never lands in the checkout or anywhere another user can read it. Without
`PACELINE_OIDC_ISSUER` nothing is written and the login page shows only the
password form.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from paceline.cli.settings import SettingsError
from paceline.dashboard.auth import OIDC_PROVIDER
from paceline.store.secrets import SecretFileError, read_secret

ISSUER: Final = "PACELINE_OIDC_ISSUER"
CLIENT_ID: Final = "PACELINE_OIDC_CLIENT_ID"
CLIENT_SECRET_FILE: Final = "PACELINE_OIDC_CLIENT_SECRET_FILE"  # noqa: S105 - a name
COOKIE_SECRET_FILE: Final = "PACELINE_OIDC_COOKIE_SECRET_FILE"  # noqa: S105 - a name
NAME: Final = "PACELINE_OIDC_NAME"
DASHBOARD_URL: Final = "PACELINE_DASHBOARD_URL"
#: Set for the app (to the provider's name) when the secrets are written; unset otherwise.
APP_FLAG: Final = "PACELINE_DASHBOARD_OIDC"
#: Streamlit's callback route, which the provider must redirect to.
CALLBACK: Final = "/oauth2callback"
#: A cookie secret shorter than this is refused (Streamlit itself only warns below 14 bytes).
MIN_COOKIE_SECRET_CHARS: Final = 32
_WILDCARD_HOSTS: Final = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - names, not binds


@dataclass(frozen=True)
class OidcConfig:
    """One identity provider, as `st.login` needs it."""

    issuer: str
    client_id: str
    name: str
    redirect_uri: str
    client_secret: str = field(repr=False)
    cookie_secret: str = field(repr=False)

    @property
    def metadata_url(self) -> str:
        """The provider's discovery document (OpenID Connect Discovery 1.0, §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(name: str, url: str, *, what: str) -> tuple[str, str]:
    """(scheme, host) of an http(s) URL, or `SettingsError` naming `name`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise SettingsError(name, url, f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(name, url, f"expected {what}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(name, url, f"expected {what}, without query, fragment or user")
    return parts.scheme, parts.hostname


def _issuer(env: Mapping[str, str]) -> str:
    issuer = env.get(ISSUER, "").strip()
    scheme, host = _origin(ISSUER, issuer, what="the provider's https:// issuer URL")
    # An identity provider is reached over TLS; plain http only on this machine
    # (a test provider), as Authlib itself allows (RFC 8252 §7.3).
    if scheme != "https" and not _loopback(host):
        raise SettingsError(ISSUER, issuer, "must be https:// (http only on a loopback address)")
    return issuer.rstrip("/")


def _redirect_uri(env: Mapping[str, str], *, host: str, port: int) -> str:
    url = env.get(DASHBOARD_URL, "").strip().rstrip("/")
    if not url:
        if host in _WILDCARD_HOSTS:
            raise SettingsError(
                DASHBOARD_URL,
                url,
                "must be set with PACELINE_OIDC_ISSUER when the dashboard listens on every"
                " address: the identity provider sends people back to it",
            )
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}"
    _origin(DASHBOARD_URL, url, what="the dashboard's address, http(s)://host[:port]")
    if urlsplit(url).path:
        raise SettingsError(
            DASHBOARD_URL, url, "single sign-on needs the dashboard at the root of its address"
        )
    return url + CALLBACK


def _secret(name: str, path_text: str) -> str:
    try:
        return read_secret(Path(path_text))
    except SecretFileError as exc:
        raise SettingsError(name, path_text, exc.reason) from None


def oidc_from_env(env: Mapping[str, str], *, host: str, port: int) -> OidcConfig | None:
    """The configured identity provider, None when `PACELINE_OIDC_ISSUER` is unset.

    `host` and `port` are where the dashboard listens: the redirect URI is
    `PACELINE_DASHBOARD_URL` (or `http://host:port`) + `/oauth2callback`. A
    missing or unusable setting raises `SettingsError` naming it.
    """
    if not env.get(ISSUER, "").strip():
        stray = [n for n in (CLIENT_ID, CLIENT_SECRET_FILE, COOKIE_SECRET_FILE, NAME) if env.get(n)]
        if stray:
            raise SettingsError(ISSUER, "", f"must be set for {', '.join(stray)} to mean anything")
        return None
    issuer = _issuer(env)
    client_id = env.get(CLIENT_ID, "").strip()
    if not client_id:
        raise SettingsError(CLIENT_ID, "", "must be set with PACELINE_OIDC_ISSUER")
    secret_file = env.get(CLIENT_SECRET_FILE, "").strip()
    if not secret_file:
        raise SettingsError(
            CLIENT_SECRET_FILE, "", "must name the 0600 file holding the client secret"
        )
    cookie_file = env.get(COOKIE_SECRET_FILE, "").strip()
    if cookie_file:
        cookie_secret = _secret(COOKIE_SECRET_FILE, cookie_file)
        if len(cookie_secret) < MIN_COOKIE_SECRET_CHARS:
            raise SettingsError(
                COOKIE_SECRET_FILE,
                cookie_file,
                f"the cookie secret has {len(cookie_secret)} characters;"
                f" at least {MIN_COOKIE_SECRET_CHARS} are needed",
            )
    else:
        # One per run: a restart signs browsers out of Streamlit's identity cookie,
        # which a Paceline session outlives by no more than the idle timeout anyway.
        cookie_secret = secrets.token_urlsafe(32)
    return OidcConfig(
        issuer=issuer,
        client_id=client_id,
        name=env.get(NAME, "").strip() or (urlsplit(issuer).hostname or issuer),
        redirect_uri=_redirect_uri(env, host=host, port=port),
        client_secret=_secret(CLIENT_SECRET_FILE, secret_file),
        cookie_secret=cookie_secret,
    )


def _toml_string(text: str) -> str:
    """`text` as a TOML basic string (TOML 1.0 §String: escape quote, backslash, controls)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def secrets_toml(config: OidcConfig) -> str:
    """The `secrets.toml` text that configures `st.login(OIDC_PROVIDER)`."""
    auth = {"redirect_uri": config.redirect_uri, "cookie_secret": config.cookie_secret}
    provider = {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "server_metadata_url": config.metadata_url,
    }
    lines = ["# Written by `paceline dashboard` for one run; removed when it stops.", "[auth]"]
    lines += [f"{k} = {_toml_string(v)}" for k, v in auth.items()]
    lines += ["", f"[auth.{OIDC_PROVIDER}]"]
    lines += [f"{k} = {_toml_string(v)}" for k, v in provider.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def streamlit_secrets(config: OidcConfig | None) -> Iterator[Path | None]:
    """A private `secrets.toml` for this run (None without single sign-on), removed afterwards.

    The directory is made by `tempfile.mkdtemp` (mode 0700, a name nobody can
    guess) and the file is created 0600 with O_EXCL, so no other user can read
    or plant it.
    """
    if config is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="paceline-dashboard-") as directory:
        path = Path(directory) / "secrets.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets_toml(config))
        yield path
