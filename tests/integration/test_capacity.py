"""Queue time and saturation for real: two gunicorn nodes behind the real HAProxy, one with a
single worker, driven past that node's capacity.

The balancer splits requests evenly, so the single-worker node gets as many as the
four-worker one: its requests wait in its listen queue (queue time, from HAProxy's
X-Request-Start stamp) and its worker is never idle (busy time), while the other node idles.
Requests that reach a node without the header record no queue time at all, and a stamp
from the future is counted as clock skew and never recorded. Every number is read back from
the real collector and Prometheus with the Capacity dashboard's own queries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fleetscope.collector.process import ManagedProcess
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries, substitute

from .stack import LocalStack, Node, eventually, start_balancer, start_gunicorn_node

SERVICE = "cap-fleet"
WORKERS = {"node-small": 1, "node-large": 4}
SLEEP_MS = 50  # each request holds a worker this long, without using CPU
CLIENTS = 6  # closed loop: past node-small's 20 requests/s at an even split
LOAD_S = 20.0
FUTURE_STAMP_AHEAD_S = 60


@dataclass
class Fleet:
    stack: LocalStack
    nodes: dict[str, Node]
    balancer_url: str
    load_started: float
    load_ended: float
    sent: int


def _drive(url: str, clients: int, seconds: float) -> int:
    """`clients` threads, each sending requests back to back through the balancer."""
    deadline = time.monotonic() + seconds
    counts = [0] * clients
    failures: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                response = http.get(f"/sleep/?ms={SLEEP_MS}")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    return sum(counts)


def _scalar(stack: LocalStack, expr: str) -> float | None:
    result = stack.query(expr)
    return float(result[0]["value"][1]) if result else None


def _seen(stack: LocalStack, route: str) -> float:
    return (
        _scalar(
            stack,
            f'sum(http_server_request_duration_seconds_count{{job="{SERVICE}", '
            f'http_route="{route}"}})',
        )
        or 0.0
    )


@pytest.fixture(scope="module")
def fleet(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    processes: list[ManagedProcess] = []
    try:
        nodes = {}
        for name, workers in WORKERS.items():
            node = start_gunicorn_node(
                stack,
                tmp_path_factory.mktemp(name),
                name,
                "tests.integration.node_settings",
                "tests.integration.node_wsgi:application",
                workers=workers,
                env={"OTEL_SERVICE_NAME": SERVICE, "OTEL_TRACES_SAMPLER": "always_off"},
            )
            processes.append(node.process)
            nodes[name] = node
        url, balancer = start_balancer(
            stack, tmp_path_factory.mktemp("haproxy"), SERVICE, list(nodes.values())
        )
        processes.append(balancer)
        # Straight to the nodes, bypassing the balancer: no X-Request-Start, and one stamp
        # from the future (HAProxy would have replaced it with its own).
        with httpx.Client(timeout=30) as direct:
            for node in nodes.values():
                for _ in range(3):
                    assert direct.get(f"{node.url}/hello/").status_code == 200
            future = f"t={int((time.time() + FUTURE_STAMP_AHEAD_S) * 1e6)}"
            response = direct.get(
                f"{nodes['node-small'].url}/items/7/", headers={"X-Request-Start": future}
            )
            assert response.status_code == 200
        started = time.time()
        sent = _drive(url, CLIENTS, LOAD_S)
        ended = time.time()
        eventually(
            lambda: _seen(stack, "/sleep/") == sent and _seen(stack, "/items/<int:pk>/") == 1,
            timeout=60,
            what=f"{sent} balanced requests in Prometheus",
        )
        time.sleep(3)  # a few more scrapes of the final values (the balancer's too)
        yield Fleet(stack, nodes, url, started, ended, sent)
    finally:
        for process in reversed(processes):
            process.stop()


# A request served at t is in Prometheus by t + export interval (1 s) + scrape (1 s).
LAG_S = 2.0


def _column(fleet: Fleet, header_ref: str) -> dict[str, float]:
    """One column of the Capacity dashboard's nodes table over the load, by node: the range is
    the load itself, evaluated when its last requests had reached Prometheus."""
    window = f"{int(fleet.load_ended - fleet.load_started)}s"
    at = fleet.load_ended + LAG_S
    for query in iter_queries(dashboard_models()):
        if (
            query.dashboard_uid,
            query.panel_title,
            query.ref_id,
        ) == ("fleetscope-capacity", "Nodes: traffic, queue time and utilization", header_ref):
            expr = substitute(query.expr, {"service": SERVICE}, rate_interval="1m", range_=window)
            return {
                s["metric"]["host_name"]: float(s["value"][1]) for s in fleet.stack.query(expr, at)
            }
    raise AssertionError(f"no column {header_ref}")


# refIds of the nodes table: A share of traffic, B requests/s, C queue p50, D queue p95,
# E utilization, F workers (dashboards/capacity.py, nodes_table).
SHARE, QUEUE_P95, UTILIZATION, WORKER_COUNT = "A", "D", "E", "F"


def test_the_balancer_split_the_traffic_evenly(fleet: Fleet) -> None:
    share = _column(fleet, SHARE)

    assert set(share) == set(WORKERS)
    assert share["node-small"] == pytest.approx(0.5, abs=0.05)
    assert share["node-large"] == pytest.approx(0.5, abs=0.05)


def test_the_single_worker_node_queues_far_longer(fleet: Fleet) -> None:
    p95 = _column(fleet, QUEUE_P95)

    # Queueing theory puts node-small's wait near 4 service times; node-large barely waits.
    assert p95["node-small"] > 2 * SLEEP_MS / 1000, p95
    assert p95["node-small"] > 5 * p95["node-large"], p95


def test_the_single_worker_node_is_saturated_and_the_other_is_not(fleet: Fleet) -> None:
    utilization = _column(fleet, UTILIZATION)
    workers = _column(fleet, WORKER_COUNT)

    assert workers == {name: float(count) for name, count in WORKERS.items()}
    # Busy time covers the middleware's span of each request; what the worker does around it
    # (accept, parse, write, Django's request signals) is not counted. On a CPU-starved
    # machine that is tens of ms per request, so a worker that never idles can read ~70 %
    # (docs/capacity.md); on a quiet one, close to 100 %.
    assert utilization["node-small"] > 0.5, utilization
    assert utilization["node-large"] < 0.4, utilization
    assert utilization["node-small"] > 3 * utilization["node-large"], utilization


def test_requests_without_the_header_record_no_queue_time(fleet: Fleet) -> None:
    served = _scalar(
        fleet.stack,
        f'sum(http_server_request_duration_seconds_count{{job="{SERVICE}", http_route="/hello/"}})',
    )
    queued = fleet.stack.query(
        f'http_server_request_queue_time_seconds_count{{job="{SERVICE}", http_route="/hello/"}}'
    )

    assert served == 3 * len(WORKERS)
    assert queued == []  # absent, not zero


def test_a_stamp_from_the_future_is_counted_as_skew_and_not_recorded(fleet: Fleet) -> None:
    rejected = fleet.stack.query(f'fleetscope_request_queue_time_rejected_total{{job="{SERVICE}"}}')
    recorded = fleet.stack.query(
        f'http_server_request_queue_time_seconds_count{{job="{SERVICE}", '
        'http_route="/items/<int:pk>/"}'
    )

    assert [(s["metric"]["host_name"], s["metric"]["reason"], s["value"][1]) for s in rejected] == [
        ("node-small", "future", "1")
    ]
    assert recorded == []


def test_every_balanced_request_was_stamped_and_measured(fleet: Fleet) -> None:
    stamped = _scalar(
        fleet.stack,
        f'sum(http_server_request_queue_time_seconds_count{{job="{SERVICE}", '
        'http_route="/sleep/"})',
    )

    assert stamped == fleet.sent


def _panel_series(fleet: Fleet, title: str) -> list[dict[str, Any]]:
    for query in iter_queries(dashboard_models()):
        if query.dashboard_uid == "fleetscope-capacity" and query.panel_title == title:
            return fleet.stack.query(substitute(query.expr, {"service": SERVICE}))
    raise AssertionError(title)


def test_the_balancer_panels_read_haproxys_own_series(fleet: Fleet) -> None:
    connections = _panel_series(fleet, "Connections per server")
    response_time = _panel_series(fleet, "Response time per server (balancer's view)")

    assert {s["metric"]["server"] for s in connections} == set(WORKERS)
    times = {s["metric"]["server"]: float(s["value"][1]) for s in response_time}
    # The balancer sees the small node's queueing in its response time.
    assert times["node-small"] > times["node-large"]
