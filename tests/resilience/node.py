"""Gunicorn nodes for the resilience suite, and reading what they reported to Prometheus."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from tests.integration.stack import LocalStack, Node, eventually, start_gunicorn_node

SPAN_QUEUE_SIZE = 200  # per process; TELEMETRY["SPAN_QUEUE_SIZE"] of every node here
SERVICE = "resilience"
PATH = "/hello/"  # no query, no cache: exactly one (server) span per request
ROUTE_COUNT = "http_server_request_duration_seconds_count"


def start_node(
    stack: LocalStack,
    workdir: Path,
    name: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
    graceful_timeout: int = 5,
    server_args: tuple[str, ...] = (),
    wsgi: str = "tests.integration.node_wsgi:application",
) -> Node:
    """A `gunicorn --preload` node sampling every trace, exporting every second."""
    return start_gunicorn_node(
        stack,
        workdir,
        name,
        "tests.resilience.node_settings",
        wsgi,
        workers=workers,
        preload=True,
        env={"OTEL_TRACES_SAMPLER": "always_on", **(env or {})},
        databases=(),  # PATH touches no database
        graceful_timeout=graceful_timeout,
        server_args=server_args,
    )


def selector(node: str, extra: str = "") -> str:
    labels = f'job="{SERVICE}", host_name="{node}"'
    return f"{{{labels}, {extra}}}" if extra else f"{{{labels}}}"


def requests_query(node: str) -> str:
    """Requests of `node` on PATH, summed over its workers."""
    route = f'http_route="{PATH}"'
    return f"sum({ROUTE_COUNT}{selector(node, route)})"


def settle(stack: LocalStack, promql: str, expected: float, timeout: float = 45.0) -> float:
    """Wait until `promql` (one series) equals `expected`; fail with what it last was."""

    def probe() -> bool:
        return stack.value(promql) == expected

    try:
        eventually(probe, timeout=timeout, what=f"{promql} == {expected}")
    except AssertionError:
        raise AssertionError(
            f"{promql}: expected {expected}, Prometheus says {stack.value(promql)}"
        ) from None
    return expected


def counter(stack: LocalStack, promql: str) -> float:
    """A counter that may not exist yet (no event counted): 0 then."""
    value = stack.value(f"sum({promql})")
    return 0.0 if value is None else value


def booted_workers(node: Node) -> list[int]:
    """Pids of every worker gunicorn booted, in order (recycled ones included)."""
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", _log(node))]


def exited_workers(node: Node) -> list[int]:
    return [int(pid) for pid in re.findall(r"Worker exiting \(pid: (\d+)\)", _log(node))]


def killed_workers(node: Node) -> list[int]:
    """Workers the master had to SIGKILL (they overran the graceful timeout)."""
    return [int(pid) for pid in re.findall(r"Worker \(pid:(\d+)\) was sent SIGKILL", _log(node))]


def _log(node: Node) -> str:
    return node.process.log_path.read_text(errors="replace")


def received_spans(files: list[Path], node: str) -> list[tuple[str, str, float]]:
    """(service.instance.id, trace+span id, start time in s) of every span of `node` that the
    collector's file exporter wrote into `files`, duplicates included."""
    spans: list[tuple[str, str, float]] = []
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for resource_spans in json.loads(line).get("resourceSpans", []):
                attributes = {
                    a["key"]: a["value"].get("stringValue")
                    for a in resource_spans.get("resource", {}).get("attributes", [])
                }
                if attributes.get("host.name") != node:
                    continue
                instance = str(attributes.get("service.instance.id"))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        spans.append(
                            (
                                instance,
                                span["traceId"] + span["spanId"],
                                int(span["startTimeUnixNano"]) / 1e9,
                            )
                        )
    return spans


def stop_gracefully(node: Node, timeout: float = 60.0) -> float:
    """SIGTERM to the gunicorn master, as a process manager sends it; wait for it to exit.
    Returns the seconds it took."""
    assert node.process.popen is not None
    started = time.monotonic()
    os.kill(node.process.pid, signal.SIGTERM)
    node.process.popen.wait(timeout)
    return time.monotonic() - started
