"""A real gunicorn node (2 workers, --preload) -> built collector -> Prometheus: exact counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .stack import LocalStack, Node, eventually, seed_books, start_gunicorn_node

CANARY = "canary-5e1d7b-topsecret"
HEADERS = {"X-Api-Key": CANARY, "Authorization": f"Bearer {CANARY}"}

# (path, expected status, times)
SCRIPT = [
    ("/hello/", 200, 10),
    ("/items/1/", 200, 3),
    ("/items/2/", 200, 3),
    ("/no/such/page/", 404, 3),
    ("/boom/", 500, 2),
    ("/books/n-plus-one/", 200, 3),
    ("/books/fixed/", 200, 3),
    ("/slow/", 200, 2),
    ("/cached/?key=alpha", 200, 3),  # miss, hit, hit on the shared file cache
    ("/local-cache/", 200, 4),  # one hit and one miss each on `local`
    (f"/authors/lookup/?name={CANARY}", 200, 1),  # SQL parameter
    (f"/authors/literal/?name={CANARY}", 200, 1),  # SQL literal
    (f"/cached/?key={CANARY}", 200, 1),  # cache key
]


@pytest.fixture(scope="module")
def node(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir: Path = tmp_path_factory.mktemp("node")
    started = start_gunicorn_node(
        stack,
        workdir,
        "node-it",
        "tests.integration.node_settings",
        "tests.integration.node_wsgi:application",
        workers=2,
        preload=True,
        env={"OTEL_TRACES_SAMPLER": "always_on"},
    )
    try:
        with httpx.Client(base_url=started.url, headers=HEADERS, timeout=30) as client:
            seed_books(workdir)  # authors and books for the N+1 views
            for path, status, times in SCRIPT:
                for _ in range(times):
                    assert client.get(path).status_code == status, path
        yield started
    finally:
        started.process.stop()


def _value(stack: LocalStack, promql: str, expected: float) -> float:
    def probe() -> float | None:
        result = stack.query(promql)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if value == expected else None

    try:
        return eventually(probe, timeout=60, what=f"{promql} == {expected}")
    except AssertionError:
        result = stack.query(promql)
        raise AssertionError(f"{promql}: expected {expected}, Prometheus says {result}") from None


SEL = 'job="it-node", host_name="node-it"'


@pytest.mark.parametrize(
    ("route", "status", "count"),
    [
        ("/hello/", "200", 10),
        ("/items/<int:pk>/", "200", 6),
        ("unmatched", "404", 3),
        ("/boom/", "500", 2),
        ("/books/n-plus-one/", "200", 3),
        ("/slow/", "200", 2),
    ],
)
def test_requests_by_route_and_status(
    stack: LocalStack, node: Node, route: str, status: str, count: int
) -> None:
    _value(
        stack,
        f'sum(http_server_request_duration_seconds_count{{{SEL}, http_route="{route}",'
        f' http_response_status_code="{status}"}})',
        count,
    )


def test_queries_by_fingerprint(stack: LocalStack, node: Node) -> None:
    # The N+1 view runs 1 list query + 6 author lookups per request, 3 requests.
    author_fp = _fingerprint(stack, 'WHERE "testapp_author"."id" = ?')
    _value(
        stack,
        f"sum(db_client_operation_duration_seconds_count{{{SEL},"
        f' django_db_fingerprint="{author_fp}"}})',
        18,
    )


def test_n_plus_one_only_for_the_view_that_causes_it(stack: LocalStack, node: Node) -> None:
    author_fp = _fingerprint(stack, 'WHERE "testapp_author"."id" = ?')
    _value(
        stack,
        f'sum(django_db_n_plus_one_total{{{SEL}, http_route="/books/n-plus-one/",'
        f' django_db_fingerprint="{author_fp}"}})',
        3,
    )
    # One (fingerprint, route) pair, whichever workers saw it.
    _value(
        stack,
        f"count(count by (django_db_fingerprint, http_route) "
        f"(django_db_n_plus_one_total{{{SEL}}})) or vector(0)",
        1,
    )


def test_slow_queries_for_the_slow_view(stack: LocalStack, node: Node) -> None:
    slow_fp = _fingerprint(stack, "WITH RECURSIVE")
    _value(
        stack,
        f'sum(django_db_slow_queries_total{{{SEL}, http_route="/slow/",'
        f' django_db_fingerprint="{slow_fp}"}})',
        2,
    )


def test_queries_per_request(stack: LocalStack, node: Node) -> None:
    _value(
        stack,
        f'sum(django_db_queries_per_request_sum{{{SEL}, http_route="/books/n-plus-one/"}})',
        21,
    )


@pytest.mark.parametrize(
    ("alias", "operation", "result", "count"),
    [
        ("default", "get", "miss", 2),  # alpha once, the canary key once
        ("default", "get", "hit", 2),
        ("default", "set", "none", 2),
        ("local", "get", "hit", 4),
        ("local", "get", "miss", 4),
    ],
)
def test_cache_hits_and_misses_per_alias(
    stack: LocalStack, node: Node, alias: str, operation: str, result: str, count: int
) -> None:
    _value(
        stack,
        f'sum(django_cache_operations_total{{{SEL}, django_cache_alias="{alias}",'
        f' django_cache_operation="{operation}", django_cache_result="{result}"}})',
        count,
    )


def test_process_metrics_for_each_worker(stack: LocalStack, node: Node) -> None:
    _value(stack, f"count(process_memory_usage_bytes{{{SEL}}})", 2)
    _value(stack, f"count(count by (instance) (process_cpu_time_seconds_total{{{SEL}}}))", 2)


def test_every_series_carries_node_identity(stack: LocalStack, node: Node) -> None:
    eventually(lambda: stack.query(f"django_db_statement_info{{{SEL}}}"), what="statement info")
    # What the node exported, not what Prometheus' own rules derive from it (recorded series
    # are named level:metric:operation; alerts are ALERTS/ALERTS_FOR_STATE).
    series = _series(stack, '{job="it-node", __name__!~".*:.*|ALERTS.*"}')
    assert series
    for labels in series:
        assert labels.get("job") == "it-node"
        assert labels.get("host_name") == "node-it"
        assert labels.get("instance", "").startswith("node-it/")


def test_canary_never_leaves_the_node(stack: LocalStack, node: Node) -> None:
    # Wait until the canary requests' spans and metrics have certainly been exported.
    eventually(
        lambda: [s for s in stack.spans() if "/authors/literal/" in s["name"]],
        what="the literal view's span",
    )
    _value(
        stack,
        f'sum(http_server_request_duration_seconds_count{{{SEL}, http_route="/authors/literal/"}})',
        1,
    )
    traces = stack.collector.traces_file.read_text()
    assert "testapp_author" in traces  # the statements are there, normalized
    assert CANARY not in traces
    everything = repr(_series(stack, '{job="it-node"}'))
    assert CANARY not in everything
    exporter = httpx.get(f"http://{stack.collector.ports.prometheus_exporter_target}/metrics")
    assert "testapp_author" in exporter.text
    assert CANARY not in exporter.text


def _series(stack: LocalStack, match: str) -> list[dict[str, str]]:
    response = httpx.get(f"{stack.prometheus_url}/api/v1/series", params={"match[]": match})
    return list(response.json()["data"])


def _fingerprint(stack: LocalStack, text_fragment: str) -> str:
    def probe() -> str | None:
        for series in stack.query(f"django_db_statement_info{{{SEL}}}"):
            if text_fragment in series["metric"].get("db_query_text", ""):
                return str(series["metric"]["django_db_fingerprint"])
        return None

    return eventually(probe, what=f"statement info containing {text_fragment!r}")


def test_latency_exemplars_link_to_exported_traces(stack: LocalStack, node: Node) -> None:
    import time

    def exemplars() -> list[dict[str, str]]:
        now = time.time()
        response = httpx.get(
            f"{stack.prometheus_url}/api/v1/query_exemplars",
            params={
                "query": f"http_server_request_duration_seconds_bucket{{{SEL}}}",
                "start": now - 600,
                "end": now + 60,
            },
        )
        return [e["labels"] for group in response.json()["data"] for e in group["exemplars"]]

    found = eventually(exemplars, what="exemplars on the request-duration histogram")
    trace_ids = {labels["trace_id"] for labels in found}
    assert trace_ids
    eventually(
        lambda: trace_ids <= {span["traceId"] for span in stack.spans()},
        what="every exemplar's trace in the collector's trace output",
    )
