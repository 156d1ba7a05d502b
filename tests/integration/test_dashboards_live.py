"""Every dashboard query against the live Prometheus fed by two real nodes with unequal load,
behind the real HAProxy for the Capacity dashboard's series, and a Celery worker node
(prefork, on a real Redis) running the tasks node-a queues."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fleetscope.collector.process import ManagedProcess
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import check_all, iter_queries, substitute
from fleetscope.dashboards.rules import task_alert_measures

from .stack import (
    LocalStack,
    Node,
    eventually,
    seed_books,
    start_balancer,
    start_celery_worker,
    start_gunicorn_node,
    start_redis_broker,
)

SERVICE = "dash-fleet"
VARIABLES = {"service": SERVICE}
# One round per request kind. Each round reads a fresh key three times on the node's
# file cache (a miss, then two hits) and makes one hit and one miss on `local`.
ROUND = [
    "/hello/",
    "/items/1/",
    "/items/2/",
    "/books/n-plus-one/",
    "/books/fixed/",
    "/slow/",
    "/cached/?key={key}",
    "/cached/?key={key}",
    "/cached/?key={key}",
    "/local-cache/",
]
ROUNDS = {"node-a": 4, "node-b": 2}
# A rolling deploy caught half way: node-b already runs the next release (the worker runs
# node-a's).
VERSIONS = {"node-a": "2.0.0", "node-b": "2.1.0", "worker-a": "2.0.0"}
# node-a also queues one of each task per round: every task signal, for the Tasks dashboard.
TASK_ROUND = [
    f"/tasks/enqueue/?task={task}"
    # (Not the cache task: the cache panels' expected ratios count only ROUND's lookups.)
    for task in ("ok", "fails", "retries_once", "n_plus_one", "slow")
]
TASK_PUBLISHER = "node-a"
TASK_RUNS_PER_ROUND = len(TASK_ROUND) + 1  # retries_once runs twice
TASK_WORKER = "worker-a"
CAPACITY = "fleetscope-capacity"
# Capacity series in each phase: requests through the balancer (stamped with X-Request-Start,
# split round-robin) and one request with a stamp from the future, straight to node-a (the
# balancer would replace the stamp).
BALANCED = {"warm": 2, "run": 4}
SKEWED_NODE = "node-a"


def _through_balancer(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(count):
            assert client.get("/hello/").status_code == 200


def _skewed(node: Node) -> None:
    future = f"t={int((time.time() + 60) * 1e6)}"
    response = httpx.get(f"{node.url}/hello/", headers={"X-Request-Start": future}, timeout=30)
    assert response.status_code == 200


def _extra(node: str, phases: tuple[str, ...]) -> int:
    """Requests of the capacity traffic a node served in `phases` (round-robin: half each)."""
    return sum(BALANCED[p] // 2 + (node == SKEWED_NODE) for p in phases)


def _round(node: Node) -> list[str]:
    return ROUND + (TASK_ROUND if node.name == TASK_PUBLISHER else [])


def _play(node: Node, rounds: int, tag: str) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        for index in range(rounds):
            for path in _round(node):
                url = path.format(key=f"{tag}-{index}")
                assert client.get(url).status_code == 200, url


def _requests_seen(stack: LocalStack, node: str) -> float | None:
    return _scalar(
        stack,
        f'sum(http_server_request_duration_seconds_count{{job="{SERVICE}", host_name="{node}"}})',
    )


def _sees(stack: LocalStack, node: str, count: int) -> Callable[[], bool]:
    return lambda: _requests_seen(stack, node) == count


def _task_runs(stack: LocalStack) -> float | None:
    return _scalar(stack, f'sum(celery_task_duration_seconds_count{{job="{SERVICE}"}})')


@pytest.fixture(scope="module")
def fleet(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    nodes: list[Node] = []
    others: list[ManagedProcess] = []
    try:
        redis, broker_url = start_redis_broker(tmp_path_factory.mktemp("redis"))
        others.append(redis)
        env = {
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_TRACES_SAMPLER": "always_off",
            "FLEETSCOPE_TEST_BROKER_URL": broker_url,
        }
        for name in ROUNDS:
            workdir = tmp_path_factory.mktemp(name)
            nodes.append(
                start_gunicorn_node(
                    stack,
                    workdir,
                    name,
                    "tests.integration.node_settings",
                    # One worker: series are per worker, and the warm-up must create them all.
                    "tests.integration.node_wsgi:application",
                    workers=1,
                    env={**env, "OTEL_RESOURCE_ATTRIBUTES": f"service.version={VERSIONS[name]}"},
                )
            )
            seed_books(workdir)
            if name == TASK_PUBLISHER:  # the worker shares the publisher's database
                others.append(
                    start_celery_worker(
                        stack,
                        workdir,
                        TASK_WORKER,
                        broker_url,
                        concurrency=1,
                        env={
                            **env,
                            "OTEL_RESOURCE_ATTRIBUTES": f"service.version={VERSIONS[TASK_WORKER]}",
                        },
                    )
                )
        url, balancer = start_balancer(
            stack, tmp_path_factory.mktemp("haproxy"), SERVICE, list(nodes)
        )
        others.append(balancer)
        by_name = {node.name: node for node in nodes}
        # Warm-up: every series exists in Prometheus before the measured traffic, so rate()
        # sees the measured increase (a series' first sample carries no increase).
        for node in nodes:
            _play(node, 1, "warm")
        _through_balancer(url, BALANCED["warm"])
        _skewed(by_name[SKEWED_NODE])
        for node in nodes:
            warm = len(_round(node)) + _extra(node.name, ("warm",))
            eventually(_sees(stack, node.name, warm), what=f"warm-up of {node.name}")
        eventually(lambda: _task_runs(stack) == TASK_RUNS_PER_ROUND, what="the warm-up's task runs")
        time.sleep(3)  # a few more scrapes of the warm-up values
        for node in nodes:
            _play(node, ROUNDS[node.name], "run")
        _through_balancer(url, BALANCED["run"])
        _skewed(by_name[SKEWED_NODE])
        for node in nodes:
            total = (1 + ROUNDS[node.name]) * len(_round(node)) + _extra(node.name, ("warm", "run"))
            eventually(_sees(stack, node.name, total), what=f"{total} requests of {node.name}")
        runs = (1 + ROUNDS[TASK_PUBLISHER]) * TASK_RUNS_PER_ROUND
        eventually(lambda: _task_runs(stack) == runs, what=f"{runs} task runs")
        # The SLO recording rules (evaluated every 2 s here) have caught up with the traffic.
        # Every request counts: the rounds, and the balanced and skewed capacity traffic.
        requests = sum(
            (1 + ROUNDS[node.name]) * len(_round(node)) + _extra(node.name, ("warm", "run"))
            for node in nodes
        )
        eventually(
            lambda: (
                _scalar(stack, f'sum(fleetscope:slo_requests:period{{job="{SERVICE}"}})')
                == 2 * requests
            ),
            what="SLO rules over every request",
        )
        time.sleep(3)  # the balancer's exporter is scraped with the final counts
        yield nodes
    finally:
        for node in nodes:
            node.process.stop()
        for process in reversed(others):
            process.stop()


def _scalar(stack: LocalStack, expr: str) -> float | None:
    result = stack.query(expr)
    return float(result[0]["value"][1]) if result else None


def _panel(stack: LocalStack, uid: str, title: str, ref_id: str = "A") -> list[dict[str, Any]]:
    for query in iter_queries(dashboard_models()):
        if (query.dashboard_uid, query.panel_title, query.ref_id) == (uid, title, ref_id):
            return stack.query(substitute(query.expr, VARIABLES, rate_interval="2m", range_="10m"))
    raise AssertionError(f"no panel {title!r} on {uid}")


def test_every_panel_and_variable_returns_data(stack: LocalStack, fleet: list[Node]) -> None:
    results = check_all(stack.prometheus_url, VARIABLES, rate_interval="2m", range_="10m")
    problems = [
        f"{r.dashboard_uid} / {r.panel_title} {r.ref_id}: {r.status} {r.error or ''}"
        for r in results
        if not r.ok
    ]
    assert not problems, "\n".join(problems)


def test_dashboards_check_command_passes_on_the_live_fleet(
    stack: LocalStack, fleet: list[Node]
) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetscope",
            "dashboards",
            "check",
            "--prometheus",
            stack.prometheus_url,
            "--var",
            f"service={SERVICE}",
            "--rate-interval",
            "2m",
            "--range",
            "10m",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Requests/s per node" in result.stdout


def test_cache_hit_ratio_panel_equals_what_the_script_produced(
    stack: LocalStack, fleet: list[Node]
) -> None:
    expected = 2 / 3  # default alias: one miss and two hits per measured round
    by_alias = {
        s["metric"]["django_cache_alias"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-cache", "Hit ratio by alias")
    }
    assert by_alias["default"] == pytest.approx(expected, abs=0.01)
    assert by_alias["local"] == pytest.approx(0.5, abs=0.01)


def test_slow_query_table_lists_the_slow_views_fingerprint(
    stack: LocalStack, fleet: list[Node]
) -> None:
    info = stack.query(f'django_db_statement_info{{job="{SERVICE}"}}')
    slow = {
        s["metric"]["django_db_fingerprint"]
        for s in info
        if "WITH RECURSIVE" in s["metric"]["db_query_text"]
    }
    assert len(slow) == 1
    rows = _panel(stack, "fleetscope-db", "Slow queries across the fleet", "F")
    counted = {s["metric"]["django_db_fingerprint"]: float(s["value"][1]) for s in rows}
    assert counted.get(slow.pop(), 0) > 0


def test_requests_per_node_separates_unequal_loads(stack: LocalStack, fleet: list[Node]) -> None:
    rates = {
        s["metric"]["host_name"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-fleet", "Requests/s per node")
    }
    assert set(rates) == set(ROUNDS)
    assert rates["node-a"] > rates["node-b"] > 0


def test_service_version_labels_request_and_db_series(stack: LocalStack, fleet: list[Node]) -> None:
    for series in (
        "http_server_request_duration_seconds_count",
        "db_client_operation_duration_seconds_count",
        "django_db_queries_per_request_count",
    ):
        versions = {
            s["metric"].get("host_name"): s["metric"].get("service_version")
            for s in stack.query(f'{series}{{job="{SERVICE}"}}')
        }
        assert {"node-a", "node-b"} <= set(versions), series
        assert versions == {host: VERSIONS[host] for host in versions}, series


def test_version_panels_separate_the_two_releases(stack: LocalStack, fleet: list[Node]) -> None:
    rates = {
        s["metric"]["service_version"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-fleet", "Requests/s by version")
    }
    assert set(rates) == set(VERSIONS.values())
    assert rates["2.0.0"] > rates["2.1.0"] > 0  # node-a (2.0.0) carries twice the rounds
    queries = {
        s["metric"]["service_version"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-fleet", "SQL queries per request by version (mean)")
    }
    assert set(queries) == set(VERSIONS.values())


def test_slo_dashboard_reads_the_recorded_objectives(stack: LocalStack, fleet: list[Node]) -> None:
    targets = {
        s["metric"]["slo"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-slo", "Objectives")
    }
    assert targets == {"availability": 0.999, "latency": 0.99}
    budgets = {
        s["metric"]["slo"]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-slo", "Objectives", "B")
    }
    assert budgets["availability"] == 1.0  # no 5xx at all
    # Latency: the share of requests over 1 s (the slow view nears it on a busy machine),
    # from the raw histogram, against a 1 % budget.
    job = f'job="{SERVICE}"'
    total = _scalar(stack, f"sum(http_server_request_duration_seconds_count{{{job}}})")
    fast = _scalar(
        stack, f'sum(http_server_request_duration_seconds_bucket{{{job}, le=~"1(\\\\.0)?"}})'
    )
    assert total and fast is not None
    assert budgets["latency"] == pytest.approx(1 - (1 - fast / total) / 0.01)


def test_every_task_alert_measure_returns_data(stack: LocalStack, fleet: list[Node]) -> None:
    empty = [
        f"{alert}: {expr}"
        for alert, exprs in task_alert_measures().items()
        for expr in exprs
        if not stack.query(expr)
    ]
    assert not empty, "\n".join(empty)


def test_task_panels_count_what_the_worker_ran(stack: LocalStack, fleet: list[Node]) -> None:
    runs = {
        (s["metric"]["celery_task_name"].rsplit(".", 1)[-1], s["metric"]["celery_task_outcome"])
        for s in _panel(stack, "fleetscope-tasks", "Task runs/s by task and outcome")
    }
    assert {("ok", "success"), ("fails", "failure"), ("retries_once", "retry")} <= runs
    detections = {
        s["metric"]["celery_task_name"].rsplit(".", 1)[-1]: float(s["value"][1])
        for s in _panel(stack, "fleetscope-tasks", "N+1 detections by task and query")
    }
    assert list(detections) == ["n_plus_one"] and detections["n_plus_one"] > 0
    routes = {
        s["metric"].get("http_route")
        for s in _panel(stack, "fleetscope-db", "N+1 detections by route and query")
    }
    assert routes == {"/books/n-plus-one/"}  # the task's N+1 is not a route's


def test_capacity_panels_show_both_nodes_behind_the_balancer(
    stack: LocalStack, fleet: list[Node]
) -> None:
    title = "Nodes: traffic, queue time and utilization"
    columns = {
        ref: {
            s["metric"]["host_name"]: float(s["value"][1])
            for s in _panel(stack, CAPACITY, title, ref)
        }
        for ref in "ACEF"  # share of traffic, queue p50, utilization, workers
    }

    assert columns["A"] == pytest.approx({"node-a": 0.5, "node-b": 0.5}, abs=0.01)
    assert set(columns["C"]) == set(ROUNDS)  # stamped requests reached both nodes
    assert all(0 < u < 1 for u in columns["E"].values())
    assert columns["F"] == {"node-a": 1.0, "node-b": 1.0}
    rejected = _panel(stack, CAPACITY, "Rejected queue-time stamps")
    assert [(s["metric"]["host_name"], s["metric"]["reason"]) for s in rejected] == [
        (SKEWED_NODE, "future")
    ]


def test_the_capacity_alerts_measure_the_live_fleet(stack: LocalStack, fleet: list[Node]) -> None:
    from fleetscope.dashboards.rules import node_queue_time_p95, node_utilization

    for expr in (node_queue_time_p95("5m"), node_utilization("5m")):
        nodes = {
            s["metric"]["host_name"] for s in stack.query(expr) if s["metric"]["job"] == SERVICE
        }
        assert nodes == set(ROUNDS), expr
