"""Faults a test injects that are not a process to kill: an endpoint that never answers, and
one that answers with a chosen HTTP status."""

from __future__ import annotations

import hashlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Connection:
    opened: float  # time.monotonic()
    closed: float | None = None  # when the client gave up (closed its end)
    received: int = 0  # bytes of request the client sent

    @property
    def held(self) -> float | None:
        return None if self.closed is None else self.closed - self.opened


class Blackhole:
    """A TCP endpoint that accepts every connection, reads what it is sent, and never answers.

    It records each connection's life, from accept until the client closes it: how long a
    client waited before giving up, and how many attempts it made."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.connections: list[Connection] = []
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blackhole", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                if key.data is None:
                    conn, _ = self._listener.accept()
                    conn.setblocking(False)
                    record = Connection(time.monotonic())
                    self.connections.append(record)
                    self._selector.register(conn, selectors.EVENT_READ, (conn, record))
                    continue
                conn, record = key.data
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                record.received += len(data)
                if not data:
                    record.closed = time.monotonic()
                    self._selector.unregister(conn)
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


@dataclass(frozen=True)
class Answered:
    at: float
    path: str
    status: int
    body: bytes

    @property
    def body_hash(self) -> str:
        """The same batch sent again hashes the same."""
        return hashlib.sha1(self.body).hexdigest()


class StatusServer:
    """An OTLP/HTTP endpoint that answers every request with `status` (changeable while it
    runs) and an empty body; it records each request's body and what it answered."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.answered: list[Answered] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = server.status
                server.answered.append(Answered(time.monotonic(), self.path, status, body))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
