"""Row 13, client disconnects under ASGI: real uvicorn nodes, a slow view, and clients that hang
up while it runs (the socket closed mid-request, as a browser tab closed or a proxy timing out).

Two middleware chains: Fleetscope's middleware alone (every layer async: Django cancels the
view's task) and the demo's full chain, whose sync-only Silk middleware makes Django run the
chain in a worker thread that finishes the view after the client left.

Promises: the active-requests gauge returns to its baseline; every server span that started
ends (it reaches the collector, marked with the cancellation); nothing of a cancelled request
leaks into the next one (new trace id, fresh per-request state).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from .input_stack import InputStack, Node, NodeSpec, running_stack, start_nodes, wait_for

pytestmark = pytest.mark.integration  # real servers on loopback

CANCELLED = 5
CHAINS = {"async-chain": {"FLEETSCOPE_TEST_LEAN": "1"}, "full-chain": {}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputStack]:
    with running_stack(tmp_path_factory.mktemp("stack-cancel")) as running:
        yield running


@pytest.fixture(scope="module")
def nodes(stack: InputStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    started = start_nodes(
        tmp_path_factory,
        *(
            NodeSpec(
                name,
                stack.otlp_endpoint,
                env={**extra, "OTEL_TRACES_SAMPLER": "always_on"},
                server="uvicorn",
            )
            for name, extra in CHAINS.items()
        ),
    )
    try:
        yield {node.name: node for node in started}
    finally:
        for node in started:
            node.stop()


def _hang_up_during(node: Node, trace_id: str, marker: str, seconds: float) -> None:
    """Send a request to the slow view, wait until the view runs, then close the socket."""
    host, port = node.url.removeprefix("http://").split(":")
    request = (
        f"GET /slow-async/?marker={marker}&seconds={seconds} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"traceparent: 00-{trace_id}-{secrets.token_hex(8)}-01\r\n\r\n"
    ).encode()
    started = Path(node.workdir, marker)
    with socket.create_connection((host, int(port)), timeout=30) as client:
        client.sendall(request)
        wait_for(started.exists, f"the slow view to start ({marker})", timeout=30)
    # The connection is closed here, mid-request.


def _selector(node: Node) -> str:
    return f'job="resilience", host_name="{node.name}"'


def _active(stack: InputStack, node: Node) -> float | None:
    return stack.value(f"sum(http_server_active_requests{{{_selector(node)}}})")


def _at_rest(stack: InputStack, node: Node) -> bool:
    return _active(stack, node) == 0


@pytest.fixture(scope="module")
def cancelled(stack: InputStack, nodes: dict[str, Node]) -> dict[str, list[str]]:
    """Per chain: the trace ids of the requests whose clients hung up."""
    sent: dict[str, list[str]] = {}
    for name, node in nodes.items():
        with httpx.Client(base_url=node.url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200  # the gauge exists, at rest
        wait_for(partial(_at_rest, stack, node), f"{name}'s gauge at rest")
        sent[name] = []
        for number in range(CANCELLED):
            trace_id = secrets.token_hex(16)
            # The full chain finishes the view in its thread: keep that short.
            seconds = 30 if name == "async-chain" else 2
            _hang_up_during(node, trace_id, f"{name}-{number}", seconds)
            sent[name].append(trace_id)
    return sent


@pytest.mark.parametrize("chain", list(CHAINS))
def test_the_active_requests_gauge_returns_to_its_baseline(
    stack: InputStack, nodes: dict[str, Node], cancelled: dict[str, list[str]], chain: str
) -> None:
    node = nodes[chain]
    began = time.monotonic()
    wait_for(lambda: _active(stack, node) == 0, f"{chain}'s gauge back at 0")
    # It did count the hung-up requests while they ran (a sample of 1 or more)...
    peak = stack.value(
        f"max_over_time(sum(http_server_active_requests{{{_selector(node)}}})[5m:1s])"
    )
    assert peak is not None and peak >= 1
    # ... and stays at rest.
    time.sleep(3)
    assert _active(stack, node) == 0
    print(f"row 13 {chain}: peak {peak:.0f}, back at 0 after {time.monotonic() - began:.1f} s")


def _server_spans(stack: InputStack, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    def complete() -> dict[str, dict[str, Any]] | None:
        found = {
            span["traceId"]: span
            for span in stack.spans()
            if span.get("kind") == 2 and span["traceId"] in trace_ids
        }
        return found if len(found) == len(trace_ids) else None

    return dict(wait_for(complete, "a server span for every hung-up request"))


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_every_started_server_span_ends(
    stack: InputStack, cancelled: dict[str, list[str]], chain: str
) -> None:
    spans = _server_spans(stack, cancelled[chain])
    for span in spans.values():
        attributes = _attributes(span)
        assert attributes["http.route"] == "/slow-async/"
        assert int(span["endTimeUnixNano"]) > int(span["startTimeUnixNano"])
    statuses = {_attributes(s).get("error.type", "ok") for s in spans.values()}
    print(f"row 13 {chain}: {len(spans)} server spans ended; error.type {sorted(statuses)}")
    if chain == "async-chain":  # Django cancelled the view: the span says so
        assert statuses == {"CancelledError"}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_nothing_leaks_into_the_next_request(
    nodes: dict[str, Node], cancelled: dict[str, list[str]], chain: str
) -> None:
    with httpx.Client(base_url=nodes[chain].url, timeout=30) as client:
        seen = [client.get("/context/").json() for _ in range(3)]
    trace_ids = [answer["trace_id"] for answer in seen]
    assert len(set(trace_ids)) == 3 and not set(trace_ids) & set(cancelled[chain])
    assert all(int(trace_id, 16) for trace_id in trace_ids)  # a real, sampled trace
    # A fresh per-request state: the cancelled requests' query is not counted here.
    assert all(answer["state"] == {"queries": 0, "repeats": 0, "slow": 0} for answer in seen)
