"""The report and the dashboards count exactly what a node counted, for patterns Prometheus'
`increase()` loses: an N+1 burst held in one export interval by a worker that then exits,
a cache pattern first used mid-window, and workers restarting inside the window.

The node runs gunicorn with `--max-requests`, as many production deployments do: every
worker serves a handful of requests, exports once more at exit and is replaced by a new
process (a new `instance`, so its counters start again from zero). What the node counted
is known by construction: each N+1 page is one detection, each slow page one slow run,
each new cache key one miss and then hits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries, substitute
from fleetscope.demo.report import Report, collect_report

from .stack import LocalStack, Node, eventually, seed_books, start_gunicorn_node

SERVICE = "exact-fleet"
MAX_REQUESTS = 4  # per worker, then gunicorn replaces it
N_PLUS_ONE_ROUTE = "/books/n-plus-one/"
# (path, what it adds at the source). Workers change every MAX_REQUESTS requests.
SCRIPT: list[tuple[str, dict[str, int]]] = [
    ("/hello/", {}),
    ("/hello/", {}),
    # The burst: two detections by a worker that exits right after them.
    (N_PLUS_ONE_ROUTE, {"n_plus_one": 1}),
    (N_PLUS_ONE_ROUTE, {"n_plus_one": 1}),
    ("pause", {}),
    # The cache is first used here, mid-window: key a misses once then hits twice, key b
    # misses once then hits once.
    ("/cached/?key=a", {"miss": 1}),
    ("/cached/?key=a", {"hit": 1}),
    ("/cached/?key=b", {"miss": 1}),
    ("/cached/?key=a", {"hit": 1}),
    ("/cached/?key=b", {"hit": 1}),
    ("/slow/", {"slow": 1}),
    (N_PLUS_ONE_ROUTE, {"n_plus_one": 1}),
    ("/slow/", {"slow": 1}),
    (N_PLUS_ONE_ROUTE, {"n_plus_one": 1}),
    (N_PLUS_ONE_ROUTE, {"n_plus_one": 1}),
]


def _expected() -> dict[str, int]:
    totals = {"requests": 0, "n_plus_one": 0, "hit": 0, "miss": 0, "slow": 0}
    for path, adds in SCRIPT:
        if path != "pause":
            totals["requests"] += 1
        for key, value in adds.items():
            totals[key] += value
    return totals


EXPECTED = _expected()


def _sum_of_latest(stack: LocalStack, series: str) -> float:
    """The node's raw cumulative counters as exported, summed over every worker (all of them
    were born inside the test, so this is what the node counted)."""
    result = stack.query(f'sum(last_over_time({series}{{job="{SERVICE}"}}[10m]))')
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def played(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("exact-node")
    node: Node = start_gunicorn_node(
        stack,
        workdir,
        "exact-node",
        "tests.integration.node_settings",
        "tests.integration.node_wsgi:application",
        workers=1,
        env={"OTEL_SERVICE_NAME": SERVICE, "OTEL_TRACES_SAMPLER": "always_off"},
        server_args=("--max-requests", str(MAX_REQUESTS)),
    )
    try:
        seed_books(workdir)
        started = time.time()
        with httpx.Client(base_url=node.url, timeout=30) as client:
            for path, _ in SCRIPT:
                if path == "pause":
                    time.sleep(3)  # a few scrapes with the burst's series unchanged
                    continue
                assert client.get(path).status_code == 200, path
        eventually(
            lambda: (
                _sum_of_latest(stack, "http_server_request_duration_seconds_count")
                == EXPECTED["requests"]
                and _sum_of_latest(stack, "django_db_n_plus_one_total") == EXPECTED["n_plus_one"]
            ),
            timeout=60,
            what="every worker's last export in Prometheus",
        )
        time.sleep(2)  # a couple more scrapes of the final values
        window = f"{math.ceil(time.time() - started) + 5}s"
        report = collect_report(stack.prometheus_url, window, service=SERVICE)
        yield {"report": report, "window": window, "workdir": workdir}
    finally:
        node.process.stop()


def _panel(stack: LocalStack, uid: str, title: str, window: str, ref_id: str = "A") -> Any:
    for query in iter_queries(dashboard_models()):
        if (query.dashboard_uid, query.panel_title, query.ref_id) == (uid, title, ref_id):
            expr = substitute(query.expr, {"service": SERVICE}, rate_interval=window, range_=window)
            return stack.query(expr)
    raise AssertionError(f"no panel {title!r} on {uid}")


def test_workers_were_really_replaced_inside_the_window(
    stack: LocalStack, played: dict[str, Any]
) -> None:
    instances = stack.query(
        f"count by (instance) (last_over_time(http_server_request_duration_seconds_count"
        f'{{job="{SERVICE}"}}[10m]))'
    )
    # One worker per MAX_REQUESTS requests (the last may still be alive).
    assert len(instances) == math.ceil(EXPECTED["requests"] / MAX_REQUESTS)


def test_report_counts_exactly_what_the_node_counted(played: dict[str, Any]) -> None:
    report: Report = played["report"]
    [node] = report.nodes
    assert node.requests == EXPECTED["requests"]
    [n_plus_one] = report.n_plus_one
    assert (n_plus_one.route, n_plus_one.detections) == (N_PLUS_ONE_ROUTE, EXPECTED["n_plus_one"])
    [slow] = report.slow_queries
    assert slow.slow_runs == EXPECTED["slow"]
    [cache] = report.cache
    assert cache.alias == "default"
    assert cache.hit_ratio == pytest.approx(EXPECTED["hit"] / (EXPECTED["hit"] + EXPECTED["miss"]))


def test_panels_count_exactly_what_the_node_counted(
    stack: LocalStack, played: dict[str, Any]
) -> None:
    window = played["window"]
    [total] = _panel(stack, "fleetscope-db", "N+1 detections (range)", window)
    assert float(total["value"][1]) == EXPECTED["n_plus_one"]
    [row] = _panel(stack, "fleetscope-db", "N+1 detections by route and query", window)
    assert float(row["value"][1]) == EXPECTED["n_plus_one"]
    [per_second] = _panel(stack, "fleetscope-db", "N+1 detections/s by route", window)
    seconds = float(window.removesuffix("s"))
    assert float(per_second["value"][1]) * seconds == pytest.approx(EXPECTED["n_plus_one"])
    slow_runs = _panel(stack, "fleetscope-db", "Slow queries across the fleet", window, "F")
    assert [float(s["value"][1]) for s in slow_runs if float(s["value"][1]) > 0] == [
        EXPECTED["slow"]
    ]
    [ratio] = _panel(stack, "fleetscope-cache", "Hit ratio by alias", window)
    assert float(ratio["value"][1]) == pytest.approx(
        EXPECTED["hit"] / (EXPECTED["hit"] + EXPECTED["miss"])
    )


def test_counts_equal_the_raw_counters_and_nothing_is_negative(
    stack: LocalStack, played: dict[str, Any]
) -> None:
    assert _sum_of_latest(stack, "django_db_n_plus_one_total") == EXPECTED["n_plus_one"]
    assert _sum_of_latest(stack, "django_db_slow_queries_total") == EXPECTED["slow"]
    window = played["window"]
    for uid, title in (
        ("fleetscope-db", "N+1 detections by route and query"),
        ("fleetscope-fleet", "Requests/s per node"),
        ("fleetscope-fleet", "Top routes by time spent"),
    ):
        values = [float(s["value"][1]) for s in _panel(stack, uid, title, window)]
        assert values and all(v >= 0 for v in values), (title, values)
