"""Row 9, secrets: canaries in SQL parameters and literals, cache keys, Authorization, Cookie
and API-key headers, query strings, JSON and multipart bodies and the path of a token route,
sent to two real gunicorn nodes that sample every trace and profile every request in Silk.

Promise: no canary anywhere Fleetscope writes or exports: the collector's trace and metric
files, its Prometheus exporter, every label value in Prometheus, the nodes' and collector's
logs (the telemetry logger at DEBUG), and the Silk tables (masked there). Server spans carry
the route, not the raw path; with RECORD_URL_PATH on, token-like segments are scrubbed.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .input_stack import InputStack, Node, NodeSpec, running_stack, start_nodes, wait_for

pytestmark = pytest.mark.integration  # real servers on loopback

PREFIX = "cnry"


def canary(channel: str) -> str:
    """Token-like (letters and digits, 20+ characters) and unique to its channel."""
    return f"{PREFIX}{channel}{secrets.token_hex(10)}"


CANARIES = {
    channel: canary(channel)
    for channel in (
        "param", "literal", "cache", "bearer", "cookie", "apikey", "query", "json", "jsontoken",
        "form", "file", "uid", "token", "path",
    )
}  # fmt: skip


def _send_canaries(base_url: str) -> list[str]:
    """Every canary, through the door a real client would use; returns the trace ids sent."""
    c = CANARIES
    trace_ids = []
    with httpx.Client(base_url=base_url, timeout=60) as client:

        def get(path: str, **kwargs: Any) -> httpx.Response:
            trace_id = secrets.token_hex(16)
            trace_ids.append(trace_id)
            headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
            headers.update(kwargs.pop("headers", {}))
            return client.request(kwargs.pop("method", "GET"), path, headers=headers, **kwargs)

        response = get(
            f"/users/lookup/?name={c['param']}",
            headers={
                "Authorization": f"Bearer {c['bearer']}",
                "Cookie": f"sessionid={c['cookie']}",  # read: a django_session lookup
                "X-Api-Key": c["apikey"],
            },
        )
        assert response.status_code == 200
        assert get(f"/users/literal/?name={c['literal']}").status_code == 200
        assert get(f"/cached/?key={c['cache']}").status_code == 200
        assert get(f"/healthz?token={c['query']}&next=/").status_code == 200
        response = get(
            "/echo/",
            method="POST",
            json={"password": c["json"], "api_token": c["jsontoken"], "n": 1},
        )
        assert response.status_code == 200
        response = get(
            "/echo/",
            method="POST",
            data={"password": c["form"]},
            files={"upload": ("notes.txt", c["file"].encode(), "text/plain")},
        )
        assert response.status_code == 200
        assert get(f"/reset/{c['uid']}/{c['token']}/").status_code == 200
        assert get(f"/api/keys/{c['path']}/").status_code == 404
    return trace_ids


@dataclass
class Fleet:
    plain: Node  # RECORD_URL_PATH off (the default)
    paths: Node  # RECORD_URL_PATH on
    trace_ids: dict[str, list[str]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputStack]:
    with running_stack(tmp_path_factory.mktemp("stack-secrets")) as running:
        yield running


@pytest.fixture(scope="module")
def fleet(stack: InputStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    everything = {"OTEL_TRACES_SAMPLER": "always_on", "FLEETSCOPE_SILK_RATE": "1"}
    plain, paths = start_nodes(
        tmp_path_factory,
        NodeSpec("secrets-plain", stack.otlp_endpoint, env=everything),
        NodeSpec(
            "secrets-paths",
            stack.otlp_endpoint,
            telemetry={"RECORD_URL_PATH": True},
            env=everything,
        ),
    )
    try:
        sent = {node.name: _send_canaries(node.url) for node in (plain, paths)}
        yield Fleet(plain, paths, sent)
    finally:
        plain.stop()
        paths.stop()


def _span_attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def _server_spans(stack: InputStack, trace_ids: list[str]) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        spans = [s for s in stack.spans() if s.get("kind") == 2 and s["traceId"] in trace_ids]
        return spans if {s["traceId"] for s in spans} == set(trace_ids) else None

    return list(wait_for(complete, "the server span of every canary request"))


def _exported(stack: InputStack, fleet: Fleet) -> None:
    """Wait until every canary request's span, and the nodes' metrics, left the nodes."""
    for ids in fleet.trace_ids.values():
        _server_spans(stack, ids)
    for node in (fleet.plain, fleet.paths):
        wait_for(
            lambda node=node: stack.value(  # type: ignore[misc]
                f'sum(http_server_request_duration_seconds_count{{host_name="{node.name}",'
                ' http_route="/reset/<uidb64>/<token>/"})'
            ),
            f"{node.name}'s request counts in Prometheus",
        )


def _leaks(text: str) -> list[str]:
    return sorted(channel for channel, value in CANARIES.items() if value in text)


def test_no_canary_in_what_the_collector_received(stack: InputStack, fleet: Fleet) -> None:
    _exported(stack, fleet)
    traces, metrics = stack.traces_text(), stack.metrics_text()
    assert "/reset/<uidb64>/<token>/" in traces and "django_session" in metrics  # it is all there
    assert _leaks(traces) == []
    assert _leaks(metrics) == []
    assert _leaks(stack.exporter_text()) == []


def test_no_canary_in_any_prometheus_label(stack: InputStack, fleet: Fleet) -> None:
    _exported(stack, fleet)
    names = httpx.get(f"{stack.prometheus_url}/api/v1/labels", timeout=10).json()["data"]
    values: list[str] = []
    for name in names:
        response = httpx.get(f"{stack.prometheus_url}/api/v1/label/{name}/values", timeout=10)
        values += response.json()["data"]
    assert "/reset/<uidb64>/<token>/" in values
    assert _leaks("\n".join(values)) == []


def test_no_canary_in_logs(stack: InputStack, fleet: Fleet) -> None:
    _exported(stack, fleet)
    for node in (fleet.plain, fleet.paths):
        assert _leaks(node.log_text()) == [], node.name
    assert _leaks(stack.collector.log_file.read_text(errors="replace")) == []


def _silk_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(database) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if name.startswith(("silk_", "telemetry_"))
        ]
        return {
            table: connection.execute(f'SELECT * FROM "{table}"').fetchall() for table in tables
        }


def test_silk_profiled_every_request_and_stored_no_canary(fleet: Fleet) -> None:
    for node in (fleet.plain, fleet.paths):
        rows = _silk_rows(node.database)
        # Silk recorded the canary requests: their rows, their SQL, their links.
        assert len(rows["silk_request"]) >= len(fleet.trace_ids[node.name]), node.name
        assert rows["silk_sqlquery"] and rows["telemetry_profilelink"], node.name
        dump = "\n".join(
            f"{table}: {row!r}" for table, table_rows in rows.items() for row in table_rows
        )
        assert _leaks(dump) == [], (node.name, [
            line for line in dump.splitlines() if PREFIX in line
        ][:10])  # fmt: skip


def test_server_spans_carry_routes_not_paths(stack: InputStack, fleet: Fleet) -> None:
    spans = _server_spans(stack, fleet.trace_ids[fleet.plain.name])
    routes = {_span_attributes(span).get("http.route") for span in spans}
    assert {"/reset/<uidb64>/<token>/", "unmatched", "/users/lookup/"} <= routes
    assert all("url.path" not in _span_attributes(span) for span in spans)
    assert "GET /reset/<uidb64>/<token>/" in {span["name"] for span in spans}


def test_recorded_paths_have_their_tokens_scrubbed(stack: InputStack, fleet: Fleet) -> None:
    spans = _server_spans(stack, fleet.trace_ids[fleet.paths.name])
    paths = {_span_attributes(span).get("url.path") for span in spans}
    assert "/reset/<uidb64>/<token>/" in paths
    assert "/api/keys/<token>/" in paths  # unmatched: token-like segment folded
    assert "/users/lookup/" in paths  # and the query string is never part of it
    assert _leaks(repr(paths)) == []
