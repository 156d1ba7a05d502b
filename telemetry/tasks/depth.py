"""Queue depth: messages waiting per broker queue, read at export time by one process per node.

Every process that publishes or runs tasks knows its Celery app; only the one holding the
node's lock file reads the depth, so a node of 16 workers reports each queue once (and a
fleet of N nodes N times: dashboards take `max by (queue)`). The lock is an `flock` on a
file named after the service and node in the temporary directory: it is released when its
holder exits, and another process of the node takes over at its next export.

The depth is read with the app's own broker connection pool (the connections the process
publishes with) through a passive queue declare, which every kombu transport answers with
the queue's message count: Redis (`LLEN` over its priority lists) and RabbitMQ (ready
messages; see docs/tasks.md). It runs on the export thread, never on a request or a task.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..aggregate import Key
    from ..runtime import Runtime
    from .recorder import Bounded

logger = logging.getLogger("telemetry")

# Seconds to wait for a pooled connection before skipping one export's reading.
POOL_TIMEOUT_S = 1.0


def lock_path(service: str, node: str) -> str:
    digest = hashlib.blake2b(f"{service}\0{node}".encode(), digest_size=8).hexdigest()
    return os.path.join(tempfile.gettempdir(), f"fleetscope-queue-depth-{os.getuid()}-{digest}")


class NodeLock:
    """Whether this process is the node's queue-depth reader (fork-aware)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._pid = 0
        self.held = False

    def acquire(self, path: str) -> bool:
        import fcntl

        pid = os.getpid()
        if self._pid != pid:
            # A forked child shares its parent's open file, lock included: it must open its
            # own (closing the inherited descriptor does not release the parent's lock).
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            self._fd, self._pid, self.held = None, pid, False
        if self.held:
            return True
        try:
            if self._fd is None:
                self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        self.held = True
        return True


_locks: dict[str, NodeLock] = {}


def node_lock(path: str) -> NodeLock:
    """The process's lock object for `path` (one per process, whatever the runtimes)."""
    lock = _locks.get(path)
    if lock is None:
        lock = _locks.setdefault(path, NodeLock())
    return lock


class QueueDepth:
    """The depth of the queues a Celery app uses, as `celery.queue.depth` points."""

    def __init__(self, runtime: Runtime, queues: Bounded) -> None:
        self.runtime = runtime
        self.queues = queues  # queue names this process published to or consumed from
        self.app: Any = None
        self._failed_once = False

    def watch(self, app: Any, queues: Sequence[str] = ()) -> None:
        """A Celery app in use here (idempotent); tries to become the node's reader now, so a
        worker's main process, which watches first, is the one that reads."""
        for queue in queues:
            self.queues(queue)
        if self.app is None:
            self.app = app
        self._elected()

    def _elected(self) -> bool:
        config = self.runtime.config
        path = lock_path(config.service_name, config.node)
        return node_lock(path).acquire(path)

    def names(self) -> list[str]:
        names = set(self.queues.values())
        # An app whose configuration cannot be read: the queues seen here are enough.
        with contextlib.suppress(Exception):
            names.update(self.app.amqp.queues)
        names.discard("other")
        return sorted(names)[: self.queues.cap]

    def observe(self) -> list[tuple[Key, int | float]]:
        """Called by the exporter: one point per queue, or none when not the reader."""
        app = self.app
        if app is None or not self._elected():
            return []
        try:
            depths = read_depths(app, self.names())
        except Exception as exc:
            if not self._failed_once:  # the next export tries again; say it once
                self._failed_once = True
                logger.warning(
                    "Fleetscope could not read the Celery queue depth (%s); it is retried "
                    "at every export.",
                    type(exc).__qualname__,
                )
            return []
        return [((name,), depth) for name, depth in depths.items()]


def read_depths(app: Any, names: list[str]) -> dict[str, int]:
    """Messages waiting in each named queue, through the app's broker connection pool."""
    from kombu.transport.virtual import Channel as VirtualChannel

    depths: dict[str, int] = {}
    with app.pool.acquire(block=True, timeout=POOL_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.default_channel
        opened = []
        try:
            for name in names:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True)[1])
                except connection.channel_errors:
                    # No such queue: Redis deletes an empty list, so an empty queue is
                    # "not found" too. AMQP closes the channel on it: open another.
                    depths[name] = 0
                    if not isinstance(channel, VirtualChannel):
                        channel = connection.channel()
                        opened.append(channel)
        finally:
            for extra in opened:
                with contextlib.suppress(Exception):
                    extra.close()
    return depths
