"""memcached and redis-server from the distribution packages, on free loopback ports.

Django's cache tests run their memcached and Redis classes only when settings.CACHES names
such a backend; the job starts one server of each for both runs and stops them by pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fleetscope.collector.process import ManagedProcess, free_port
from fleetscope.demo.datastores import start_redis
from fleetscope.errors import FleetscopeError


@dataclass(frozen=True)
class CacheServers:
    memcached_port: int
    redis_port: int


def locate_memcached() -> Path:
    found = shutil.which("memcached") or shutil.which("memcached", path="/usr/bin:/usr/sbin")
    if not found:
        raise FleetscopeError(
            "The transparency job needs memcached (Django's memcached cache tests): install "
            "the distribution package (`apt-get install memcached`, or scripts/"
            "install-system-deps.sh)."
        )
    return Path(found)


def _memcached_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(32).startswith(b"VERSION")
    except OSError:
        return False


def start_memcached(port: int, log: Path, timeout: float = 30.0) -> ManagedProcess:
    args = [str(locate_memcached()), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
    if os.geteuid() == 0:  # memcached refuses to run as root unless told which user to be
        args += ["-u", pwd.getpwuid(0).pw_name]
    process = ManagedProcess("memcached", args, log).start()
    try:
        process.wait_ready(lambda: _memcached_ready(port), timeout)
    except BaseException:
        process.stop()
        raise
    return process


@contextmanager
def cache_servers(workdir: Path) -> Iterator[CacheServers]:
    """A memcached and a redis-server for the duration of the block, always stopped after."""
    memcached_port = free_port()
    memcached = start_memcached(memcached_port, workdir / "memcached.log")
    try:
        redis = start_redis(workdir, free_port(), workdir / "redis.log")
        try:
            yield CacheServers(memcached_port=memcached_port, redis_port=redis.port)
        finally:
            redis.process.stop()
    finally:
        memcached.stop()
