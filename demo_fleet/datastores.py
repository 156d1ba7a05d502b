"""Throwaway PostgreSQL cluster and Redis server for `demo up --db postgres --cache redis`.

Both are the distribution's real servers, started on a free loopback port with their data
in the demo's workdir, and stopped by pid like everything else the demo starts.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fleetscope.collector.process import ManagedProcess
from fleetscope.errors import FleetscopeError

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_SYSTEM_USER = "postgres"
DEMO_DATABASE = "fleetscope_demo"
DEMO_DB_USER = "fleetscope"
# A throwaway cluster: durability costs time and buys nothing here.
POSTGRES_SETTINGS = (
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)


@dataclass(frozen=True)
class PostgresBinaries:
    initdb: Path
    postgres: Path


def _version_key(path: Path) -> tuple[int, ...]:
    version = path.parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def locate_postgres() -> PostgresBinaries:
    """initdb and postgres: $FLEETSCOPE_POSTGRES_BIN, the newest /usr/lib/postgresql/*/bin, PATH."""
    explicit = os.environ.get("FLEETSCOPE_POSTGRES_BIN")
    candidates = (
        [Path(explicit)]
        if explicit
        else sorted(
            (p for p in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))),
            key=_version_key,
            reverse=True,
        )
    )
    for directory in candidates:
        initdb, postgres = directory / "initdb", directory / "postgres"
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return PostgresBinaries(initdb, postgres)
    on_path = shutil.which("initdb"), shutil.which("postgres")
    if not explicit and on_path[0] and on_path[1]:
        return PostgresBinaries(Path(on_path[0]), Path(on_path[1]))
    where = f"FLEETSCOPE_POSTGRES_BIN={explicit}" if explicit else (f"{POSTGRES_BIN_GLOB} or PATH")
    raise FleetscopeError(
        f"--db postgres needs PostgreSQL's initdb and postgres; none found in {where}. Install "
        "the distribution package (`apt-get install postgresql`), point FLEETSCOPE_POSTGRES_BIN "
        "at the directory holding them, or use --db sqlite."
    )


def locate_redis() -> Path:
    explicit = os.environ.get("FLEETSCOPE_REDIS_SERVER")
    found = explicit if explicit and os.access(explicit, os.X_OK) else shutil.which("redis-server")
    if not found:
        raise FleetscopeError(
            "--cache redis needs redis-server; it is not on PATH"
            + (f" and FLEETSCOPE_REDIS_SERVER={explicit} is not executable" if explicit else "")
            + ". Install the distribution package (`apt-get install redis-server`) or use "
            "--cache locmem."
        )
    return Path(found)


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, drop to the postgres system user."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        raise FleetscopeError(
            "Running as root, --db postgres must start PostgreSQL as the postgres user, but "
            "setpriv (util-linux) is missing. Run the demo as a normal user or use --db sqlite."
        )
    try:
        import pwd

        pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        raise FleetscopeError(
            "Running as root, --db postgres needs the postgres system user (created by the "
            "postgresql package). Run the demo as a normal user or use --db sqlite."
        ) from None
    # setpriv execs (no fork), so the recorded pid is the postmaster itself.
    return [
        "setpriv",
        f"--reuid={POSTGRES_SYSTEM_USER}",
        f"--regid={POSTGRES_SYSTEM_USER}",
        "--init-groups",
        "--",
    ]


def _give_to_postgres_user(directory: Path) -> None:
    import pwd

    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _usable_by(prefix: list[str], directory: Path) -> bool:
    if not prefix:
        return True
    result = subprocess.run([*prefix, "test", "-w", str(directory)], capture_output=True)
    return result.returncode == 0


@dataclass
class PostgresCluster:
    process: ManagedProcess
    port: int
    data_dir: Path
    # Set when the cluster lives outside the workdir and must be removed by `down`.
    outside_workdir: bool

    @property
    def url(self) -> str:
        return f"postgres://{DEMO_DB_USER}@127.0.0.1:{self.port}/{DEMO_DATABASE}"


def postgres_data_dir(workdir: Path) -> tuple[Path, bool]:
    """Where the cluster lives: `<workdir>/postgres`, or a private temporary directory when
    the postgres user cannot reach the workdir (root's private temp dirs); True if outside."""
    prefix = _as_postgres_user()
    directory = workdir / "postgres"
    directory.mkdir(parents=True, exist_ok=True)
    if prefix:
        _give_to_postgres_user(directory)
    if _usable_by(prefix, directory):
        return directory / "data", False
    outside = Path(tempfile.mkdtemp(prefix="fleetscope-demo-postgres-"))
    _give_to_postgres_user(outside)
    return outside / "data", True


def start_postgres(
    workdir: Path, port: int, log: Path, data_dir: Path, outside: bool, timeout: float = 60.0
) -> PostgresCluster:
    """initdb (once per data dir), start postgres on `port`, create the demo database."""
    binaries = locate_postgres()
    prefix = _as_postgres_user()
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [
                *prefix,
                str(binaries.initdb),
                "-D",
                str(data_dir),
                "-U",
                DEMO_DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise FleetscopeError(
                f"initdb failed for {data_dir}:\n{(result.stdout + result.stderr).strip()}"
            )
    settings = [arg for setting in POSTGRES_SETTINGS for arg in ("-c", setting)]
    process = ManagedProcess(
        "postgres",
        [*prefix, str(binaries.postgres), "-D", str(data_dir), "-p", str(port), *settings],
        log,
    ).start()
    try:
        process.wait_ready(lambda: _postgres_ready(port), timeout)
        _create_database(port)
    except BaseException:
        process.stop()
        raise
    return PostgresCluster(process, port, data_dir, outside)


def _postgres_ready(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=DEMO_DB_USER, dbname="postgres", connect_timeout=1
        ):
            return True
    except psycopg.OperationalError:
        return False


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user=DEMO_DB_USER, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')


@dataclass
class RedisServer:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(workdir: Path, port: int, log: Path, timeout: float = 30.0) -> RedisServer:
    """redis-server on `port`, no persistence (a cache that starts cold each run)."""
    binary = locate_redis()
    data = workdir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        "redis",
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data.resolve()),
            "--daemonize",
            "no",
        ],
        log,
    ).start()
    try:
        process.wait_ready(lambda: _redis_ready(port), timeout)
    except BaseException:
        process.stop()
        raise
    return RedisServer(process, port)


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
