"""Settings from `PACELINE_*` environment variables, each with a documented default."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from paceline.store.embedded import default_data_dir


class SettingsError(ValueError):
    """An environment variable holds a value Paceline cannot use."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r}: {reason}")


@dataclass(frozen=True)
class Setting:
    """One `PACELINE_*` environment variable: its default as --help shows it, and who reads it."""

    name: str
    default: str
    meaning: str
    read_by: str


READ_BY: Final = {
    "paceline": "every command",
    "scheduler": "paceline scheduler",
    "worker": "paceline worker",
    "dashboard": "the dashboard (paceline dashboard)",
    "tests": "the test suite (python3 dev.py test)",
    "compose": "docker-compose.yml only",
    "alerts": "alert delivery (paceline worker, the scheduler's periodic jobs)",
}
"""Who reads the settings of each group, in the order --help lists them."""

SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "PACELINE_DATABASE_URL",
        "unset: embedded PostgreSQL",
        "PostgreSQL server to use (postgresql://...)",
        "paceline",
    ),
    Setting(
        "PACELINE_DATA_DIR",
        str(default_data_dir()),
        "where the embedded database (pgdata/), the spool (spool/) and the demo's files"
        " (demo.log, demo-mail/, demo-webhooks/, demo-logins.json) live",
        "paceline",
    ),
    Setting(
        "PACELINE_COMPRESS_AFTER",
        "7d",
        "TimescaleDB: compress sample chunks older than this",
        "paceline",
    ),
    Setting(
        "PACELINE_RETENTION",
        "unset: keep forever",
        "TimescaleDB: drop sample chunks older than this",
        "paceline",
    ),
    Setting(
        "PACELINE_DATABASE_PASSWORD_FILE",
        "unset: the password in the URL, if any",
        "file (mode 0600) holding the password of the URL's user; compose secrets",
        "paceline",
    ),
    Setting(
        "PACELINE_SECRETS_DIR",
        "$PACELINE_DATA_DIR/secrets",
        "0700 directory of the service roles' passwords (<role>.password, 0600) that"
        " `paceline db migrate` sets as an administrator",
        "paceline",
    ),
    Setting(
        "PACELINE_ROLLUP_EVERY",
        "5min",
        "how often the clock defers the daily-metrics rollup tick",
        "scheduler",
    ),
    Setting(
        "PACELINE_NIGHTLY_EVERY",
        "15min",
        "how often the clock looks for patients whose local nightly time (01:00) has come",
        "scheduler",
    ),
    Setting(
        "PACELINE_RECOVER_EVERY",
        "1min",
        "how often the clock defers putting back the jobs of dead workers",
        "scheduler",
    ),
    Setting(
        "PACELINE_STANDBY_POLL",
        "10s",
        "how often a standby tries to take over (and the leader checks its lock)",
        "scheduler",
    ),
    Setting(
        "PACELINE_CLOCK_START",
        "unset: the real time",
        "an ISO 8601 instant the clock starts from, then advancing in real time (replays,"
        " demos, tests); `paceline worker` (evaluations, reminders, delivery retries),"
        " `paceline demo` and `ingest run --simulate` follow the same clock",
        "scheduler",
    ),
    Setting(
        "PACELINE_WORKER_HEARTBEAT",
        "10s",
        "how often a worker says it is alive; its running jobs are put back after three missed",
        "worker",
    ),
    Setting(
        "PACELINE_DASHBOARD_IDLE_TIMEOUT",
        "30",
        "minutes without activity after which a dashboard login ends",
        "dashboard",
    ),
    Setting(
        "PACELINE_DASHBOARD_DSN",
        "set by paceline dashboard",
        "the dashboard app's database, logged in as paceline_dashboard",
        "dashboard",
    ),
    Setting(
        "PACELINE_DASHBOARD_LOGIN_DSN",
        "set by paceline dashboard",
        "the dashboard's password checks' database, logged in as paceline_login"
        " (with PACELINE_DATABASE_URL: that URL as paceline_login, the password from"
        " $PACELINE_SECRETS_DIR/paceline_login.password)",
        "dashboard",
    ),
    Setting(
        "PACELINE_IDENTITY_KEY_FILE",
        "$PACELINE_SECRETS_DIR/identity.key",
        "key (mode 0600) that signs person identities; paceline dashboard passes it to the app,"
        " paceline db migrate installs it",
        "dashboard",
    ),
    Setting(
        "PACELINE_OIDC_ISSUER",
        "unset: password sign-in only",
        "single sign-on: the OpenID provider's issuer URL (https://; http only on loopback);"
        " its /.well-known/openid-configuration is read",
        "dashboard",
    ),
    Setting(
        "PACELINE_OIDC_CLIENT_ID",
        "required with PACELINE_OIDC_ISSUER",
        "single sign-on: the dashboard's client id at the provider",
        "dashboard",
    ),
    Setting(
        "PACELINE_OIDC_CLIENT_SECRET_FILE",
        "required with PACELINE_OIDC_ISSUER",
        "single sign-on: file (mode 0600) holding the client secret",
        "dashboard",
    ),
    Setting(
        "PACELINE_OIDC_COOKIE_SECRET_FILE",
        "unset: a new secret each run",
        "single sign-on: file (mode 0600, 32+ characters) signing Streamlit's identity cookie",
        "dashboard",
    ),
    Setting(
        "PACELINE_OIDC_NAME",
        "the issuer's host name",
        'single sign-on: the provider as the login page names it ("Sign in with ...")',
        "dashboard",
    ),
    Setting(
        "PACELINE_DASHBOARD_OIDC",
        "set by paceline dashboard",
        "the provider's name when paceline dashboard has written the app's single sign-on"
        " secrets (a private 0600 secrets.toml for the run); unset without single sign-on",
        "dashboard",
    ),
    Setting(
        "PACELINE_CHROMIUM",
        "/usr/bin/chromium",
        "the Chromium binary the browser test drives",
        "tests",
    ),
    Setting(
        "PACELINE_UPDATE_SCREENSHOTS",
        "unset: a temporary directory",
        "1: the browser test writes its screenshots into docs/screenshots/ (the README's)",
        "tests",
    ),
    Setting(
        "PACELINE_TEST_DSN",
        "unset: an embedded server per test session",
        "the PostgreSQL server the test suite uses (must allow CREATE DATABASE and roles)",
        "tests",
    ),
    Setting(
        "PACELINE_DB_PASSWORD",
        "none: must be set",
        "password of the paceline database user of the compose deployment",
        "compose",
    ),
    Setting(
        "PACELINE_DB_PUBLISH",
        "5432",
        "host port of the compose database, for remote gateways (TLS only)",
        "compose",
    ),
    Setting(
        "PACELINE_DASHBOARD_PUBLISH",
        "8501",
        "loopback port of the compose dashboard (a TLS proxy serves it to the clinic)",
        "compose",
    ),
    Setting(
        "PACELINE_GATEWAY_DATABASE_URL",
        "the server on this host, verify-full against ca.crt",
        "the database URL the compose gateway profile uploads to",
        "compose",
    ),
    Setting(
        "PACELINE_SIM_WEARABLES",
        "3",
        "simulated wearables the compose sim-gateway profile streams",
        "compose",
    ),
    Setting(
        "PACELINE_SMTP_URL",
        "unset: no e-mail",
        "alert e-mail server: smtp://user:pass@host:port (STARTTLS when offered), smtps:// for TLS",
        "alerts",
    ),
    Setting("PACELINE_ALERT_FROM", "paceline@localhost", "From: address of alert e-mail", "alerts"),
    Setting(
        "PACELINE_WEBHOOK_URL",
        "unset: no webhook",
        "endpoint for alert webhooks signed per Standard Webhooks",
        "alerts",
    ),
    Setting(
        "PACELINE_WEBHOOK_SECRET",
        "required with PACELINE_WEBHOOK_URL",
        "webhook signing secret: whsec_ + base64 of at least 24 bytes",
        "alerts",
    ),
    Setting(
        "PACELINE_DASHBOARD_URL",
        "http://localhost:8501",
        "dashboard address that alert e-mail and webhooks link to; with single sign-on the"
        " provider sends people back to it (/oauth2callback; default http://HOST:PORT of"
        " paceline dashboard)",
        "alerts",
    ),
    Setting(
        "PACELINE_ALERT_DETAIL",
        "unset: ids, rule, severity, window and link only",
        "comma list of channels (email, webhook) whose messages may carry the alert in words",
        "alerts",
    ),
    Setting(
        "PACELINE_ALERT_TIMEOUT", "10", "seconds one SMTP or webhook attempt may take", "alerts"
    ),
)
"""Every `PACELINE_*` variable anything in the repository reads; `paceline --help` prints it.

A test greps the repository for `PACELINE_` names and fails on one missing here.
"""


def settings_read_by(group: str) -> tuple[Setting, ...]:
    """The settings one part of Paceline reads (a key of `READ_BY`)."""
    if group not in READ_BY:
        raise ValueError(f"unknown settings group {group!r}; known: {', '.join(READ_BY)}")
    return tuple(setting for setting in SETTINGS if setting.read_by == group)


def help_lines(groups: tuple[str, ...] = tuple(READ_BY)) -> list[str]:
    """The settings table as --help prints it, one heading per group."""
    lines: list[str] = []
    for group in groups:
        if lines:
            lines.append("")
        lines.append(f"environment variables read by {READ_BY[group]}:")
        lines += [
            f"  {s.name:<26} {s.meaning} (default: {s.default})" for s in settings_read_by(group)
        ]
    return lines


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(name: str, text: str) -> timedelta:
    """Parse '90s', '15 min', '12h', '7d', '2 weeks' into a positive timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(name, text, "expected a duration such as 30s, 15min, 12h, 7d or 2w")
    unit = match[2].lower()
    unit = unit[0] if unit[0] in "hdw" else unit
    seconds = float(match[1]) * _UNIT_S[unit]
    if seconds <= 0:
        raise SettingsError(name, text, "must be greater than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Settings:
    """Everything Paceline reads from its environment."""

    database_url: str | None
    data_dir: Path
    compress_after: timedelta
    retention: timedelta | None
    database_password_file: Path | None = None
    secrets_dir: Path | None = None
    identity_key_file: Path | None = None

    @property
    def secrets(self) -> Path:
        """The directory of the service roles' password files."""
        return self.secrets_dir or self.data_dir / "secrets"

    @property
    def identity_key_path(self) -> Path:
        """The identity key file."""
        return self.identity_key_file or self.secrets / "identity.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        url = env.get("PACELINE_DATABASE_URL", "").strip() or None
        data_dir = Path(env.get("PACELINE_DATA_DIR", "").strip() or default_data_dir())
        compress = parse_duration(
            "PACELINE_COMPRESS_AFTER", env.get("PACELINE_COMPRESS_AFTER", "").strip() or "7d"
        )
        retention_text = env.get("PACELINE_RETENTION", "").strip()
        retention = parse_duration("PACELINE_RETENTION", retention_text) if retention_text else None
        if retention is not None and retention <= compress:
            raise SettingsError(
                "PACELINE_RETENTION", retention_text, "must be longer than PACELINE_COMPRESS_AFTER"
            )
        paths = {
            name: Path(text) if (text := env.get(name, "").strip()) else None
            for name in (
                "PACELINE_DATABASE_PASSWORD_FILE",
                "PACELINE_SECRETS_DIR",
                "PACELINE_IDENTITY_KEY_FILE",
            )
        }
        return cls(
            url,
            data_dir,
            compress,
            retention,
            database_password_file=paths["PACELINE_DATABASE_PASSWORD_FILE"],
            secrets_dir=paths["PACELINE_SECRETS_DIR"],
            identity_key_file=paths["PACELINE_IDENTITY_KEY_FILE"],
        )
