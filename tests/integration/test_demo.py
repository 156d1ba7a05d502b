"""`fleetscope demo` for real: two gunicorn nodes under locust, the real collector and Prometheus.

One short demo (2 nodes, 30 s of load, free ports) runs through the CLI exactly as a user
runs it, once on SQLite with the local-memory cache behind the real HAProxy (the default:
one locust loads the balancer, the nodes run 2 and 1 workers), and once on a throwaway
PostgreSQL cluster with a Redis cache and `--no-balancer` (one locust per node, users 2:1);
the tests then check that its report agrees with what locust sent and shows what the shop
is built to show, and that `fleetscope demo down` leaves nothing of it running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from fleetscope.collector.run import config_path, validate
from fleetscope.demo import datastores
from fleetscope.demo.loadgen import LoadStats, read_final_stats
from fleetscope.demo.state import (
    Component,
    DemoState,
    group_members,
    load_state,
    remove_state,
    stop_component,
    stop_components,
)

FLEETSCOPE = [sys.executable, "-m", "fleetscope"]
NODES = ("node-1", "node-2")
USERS = {"node-1": 4, "node-2": 2}  # what --users 6 splits into over two nodes (2:1)
WORKERS = {"node-1": 2, "node-2": 1}  # behind the balancer: --workers 2,1
DURATION_S = {"locmem": 30, "redis": 45}
# The catalogue's keys expire after 30 s. A shared Redis cache misses each key once for the
# whole fleet, early in the run, where rate() cannot see a new series' first counts; 45 s
# of load puts the misses after expiry inside the report window.
REPO = Path(__file__).resolve().parents[2]


@dataclass
class DemoRun:
    workdir: Path
    cache: str  # "locmem" (per worker process) or "redis" (shared by the fleet)
    balanced: bool  # HAProxy in front (one locust), or each node loaded directly
    report: dict[str, Any]  # printed by `up --json` when the load ended
    later_report: dict[str, Any]  # `fleetscope demo report --json` afterwards
    sent: dict[str, LoadStats]  # locust's final counts per node, or {"balancer": ...}
    state: DemoState  # as recorded while the fleet ran
    status: str
    processes: list[psutil.Process]  # every recorded process and its descendants
    down: subprocess.CompletedProcess[str]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLEETSCOPE, "demo", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(
    scope="module",
    params=[("sqlite", "locmem", True), ("postgres", "redis", False)],
    ids=["sqlite-locmem-balancer", "postgres-redis-direct"],
)
def demo(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DemoRun]:
    db, cache, balanced = request.param
    workdir = tmp_path_factory.mktemp(f"demo-{db}")
    shape = ("--workers", "2,1") if balanced else ("--workers", "2", "--no-balancer")
    try:
        up = _run(
            "up",
            *("--db", db, "--cache", cache),
            *("--nodes", "2", *shape, "--users", "6"),
            *("--duration", str(DURATION_S[cache]), "--free-ports", "--keep", "--json"),
            *("--export-interval-ms", "1000", "--scrape-interval", "1"),
            *("--workdir", str(workdir)),
            timeout=240,
        )
        assert up.returncode == 0, up.stderr
        state = load_state(workdir)
        assert state is not None, "up --keep must leave its state file"
        later = _run("report", "--json", "--workdir", str(workdir))
        assert later.returncode == 0, later.stderr
        status = _run("status", "--workdir", str(workdir))
        processes = [p for c in state.components for p in group_members(c)]
        down = _run("down", "--workdir", str(workdir))
        yield DemoRun(
            workdir=workdir,
            cache=cache,
            balanced=balanced,
            report=json.loads(up.stdout),
            later_report=json.loads(later.stdout),
            sent={
                load: stats
                for load in (("balancer",) if balanced else NODES)
                if (stats := read_final_stats(workdir / "locust" / load)) is not None
            },
            state=state,
            status=status.stdout,
            processes=processes,
            down=down,
        )
    finally:
        # Whatever happened above, nothing this module started may outlive it.
        leftover = load_state(workdir)
        if leftover is not None:
            stop_components(reversed(leftover.components))
            remove_state(leftover)


def _nodes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["node"]: row for row in report["nodes"]}


def _capacity(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["node"]: row for row in report["capacity"]}


def test_prometheus_counts_every_request_locust_sent(demo: DemoRun) -> None:
    nodes = _nodes(demo.report)
    if demo.balanced:
        sent = demo.sent["balancer"].requests
        seen = sum(nodes[node]["requests"] for node in NODES)
        # In flight when locust stopped: at most one per user.
        assert sent > 0
        assert abs(seen - sent) <= sum(USERS.values()) + 0.01 * sent, (seen, sent)
        return

    assert set(demo.sent) == set(NODES)
    for node in NODES:
        sent = demo.sent[node].requests
        seen = nodes[node]["requests"]
        # Requests in flight when locust stopped are counted by the server but not by
        # locust: at most one per user.
        assert sent > 0
        assert abs(seen - sent) <= USERS[node] + 0.01 * sent, (node, seen, sent)


def test_nodes_carry_different_non_zero_load(demo: DemoRun) -> None:
    nodes = _nodes(demo.report)

    rates = [nodes[node]["requests_per_s"] for node in NODES]
    assert rates[1] > 0
    if demo.balanced:
        # Round-robin: the same load on both, whatever their workers.
        assert rates[0] == pytest.approx(rates[1], rel=0.2)
    else:
        # node-1 has twice node-2's users.
        assert rates[0] > rates[1]
    for node in NODES:
        assert nodes[node]["p95_latency_s"] > 0
        assert nodes[node]["cpu_cores"] > 0
        assert nodes[node]["rss_bytes"] > 10 * 2**20


def test_the_slow_report_query_is_listed_with_its_normalized_statement(demo: DemoRun) -> None:
    rows = [r for r in demo.report["slow_queries"] if '"shop_review"' in r["statement"]]

    assert rows, demo.report["slow_queries"]
    slow = rows[0]
    assert slow["slow_runs"] > 0
    assert slow["summary"].startswith("SELECT")
    assert "?" in slow["statement"]
    # The view filters on 2025-01-01..2026-01-01 and LIKE '%broke%': no literal survives.
    assert "2025" not in slow["statement"]
    assert "broke" not in slow["statement"]


def test_the_n_plus_one_view_is_detected_and_its_fixed_twin_is_not(demo: DemoRun) -> None:
    routes = {row["route"] for row in demo.report["n_plus_one"]}

    assert "/products/n-plus-one/" in routes
    assert "/products/fixed/" not in routes
    n_plus_one = [r for r in demo.report["n_plus_one"] if r["route"] == "/products/n-plus-one/"]
    assert all(r["detections"] > 0 and r["statement"] for r in n_plus_one)


def test_cache_hit_ratio_is_strictly_between_zero_and_one(demo: DemoRun) -> None:
    ratios = {(r["alias"], r["node"]): r["hit_ratio"] for r in demo.report["cache"]}

    assert {("default", node) for node in NODES} <= set(ratios)
    by_node = [ratios[("default", node)] for node in NODES]
    if demo.cache == "locmem":
        # Each worker process has its own cache: every node both misses and hits.
        assert all(0 < ratio < 1 for ratio in by_node), by_node
    else:
        # One cache for the fleet: the node that asks first takes the miss, so a node may
        # see only hits; the fleet as a whole misses and hits.
        assert all(0 < ratio <= 1 for ratio in by_node), by_node
        assert min(by_node) < 1, by_node


def test_the_worker_node_ran_the_tasks_the_shop_queued(demo: DemoRun) -> None:
    tasks = {row["task"].rsplit(".", 1)[-1]: row for row in demo.report["tasks"]}

    assert {"send_order_confirmation", "sync_inventory", "refresh_category_ratings"} <= set(tasks)
    for name in ("send_order_confirmation", "sync_inventory", "refresh_category_ratings"):
        row = tasks[name]
        assert row["runs"] > 0 and row["runs_per_s"] > 0, row
        assert row["p95_duration_s"] > 0 and row["p95_queue_wait_s"] is not None, row
    # The warehouse fails 35 % of the calls: over dozens of orders, some sync retries.
    assert tasks["sync_inventory"]["retries"] > 0
    assert {"celery", "reports"} <= {row["queue"] for row in demo.report["queues"]}
    # The ratings task's N+1 is the task's, not a route's.
    assert "" not in {row["route"] for row in demo.report["n_plus_one"]}


def test_report_later_reads_the_same_load_window(demo: DemoRun) -> None:
    assert demo.later_report["window"] == demo.report["window"]
    assert demo.later_report["evaluated_at"] == pytest.approx(demo.report["evaluated_at"])
    later, first = _nodes(demo.later_report), _nodes(demo.report)
    assert {n: later[n]["requests"] for n in NODES} == {n: first[n]["requests"] for n in NODES}


def test_the_capacity_section_shows_the_balancers_split_queue_time_and_utilization(
    demo: DemoRun,
) -> None:
    rows = _capacity(demo.report)

    assert set(rows) == set(NODES)
    for node in NODES:
        assert 0 < rows[node]["utilization"] <= 1
        if demo.balanced:
            assert rows[node]["workers"] == WORKERS[node]
            assert rows[node]["share_of_traffic"] == pytest.approx(0.5, abs=0.05)
            assert rows[node]["queue_p95_s"] is not None and rows[node]["queue_p95_s"] >= 0
        else:
            assert rows[node]["workers"] == 2
            # No balancer, no stamp: queue time is absent, not zero.
            assert rows[node]["share_of_traffic"] is None
            assert rows[node]["queue_p95_s"] is None


def test_status_showed_the_running_fleet(demo: DemoRun) -> None:
    balancer = ["balancer"] if demo.balanced else []
    for name in ("collector", "prometheus", "redis", "worker-1", *NODES, *balancer):
        assert any(name in line and "alive" in line for line in demo.status.splitlines()), name


def test_down_leaves_no_process_of_the_demo_running(demo: DemoRun) -> None:
    assert demo.down.returncode == 0, demo.down.stderr
    recorded = {c.name for c in demo.state.components}
    loads = ["balancer"] if demo.balanced else NODES
    extra = {"balancer"} if demo.balanced else set()
    assert {"collector", "prometheus", "redis", "worker-1", *NODES, *extra} <= recorded
    assert {f"locust-{n}" for n in loads} <= recorded
    # Collector, Prometheus, HAProxy, and each gunicorn master with its workers were running
    # when the snapshot was taken (locust had finished).
    workers = WORKERS if demo.balanced else dict.fromkeys(NODES, 2)
    assert len(demo.processes) >= 2 + len(extra) + sum(w + 1 for w in workers.values())

    assert [p.pid for p in demo.processes if p.is_running()] == []
    node_binds = [c.endpoint.removeprefix("http://") for c in demo.state.components]
    survivors = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(demo.workdir) in cmdline or any(bind and bind in cmdline for bind in node_binds):
            survivors.append((process.info["pid"], cmdline))
    assert survivors == []
    assert load_state(demo.workdir) is None


def test_the_compose_collector_config_is_valid_for_the_real_collector() -> None:
    compose = yaml.safe_load((REPO / "demo_fleet" / "docker-compose.yml").read_text())
    collector_env = compose["services"]["collector"]["environment"]
    env = dict(os.environ, **{k: str(v) for k, v in collector_env.items()})

    validate((config_path("local"), config_path("local").parent / "tracestore.yaml"), env)


def test_throwaway_postgres_and_redis_start_serve_and_stop_without_leftovers(
    tmp_path: Path,
) -> None:
    import psycopg
    import redis

    from fleetscope.collector.process import ManagedProcess, free_port

    data_dir, outside = datastores.postgres_data_dir(tmp_path)
    state = DemoState(tmp_path, cleanup_dirs=[str(data_dir.parent)] if outside else [])
    started: list[ManagedProcess] = []
    try:
        cluster = datastores.start_postgres(
            tmp_path, free_port(), tmp_path / "postgres.log", data_dir, outside
        )
        started.append(cluster.process)
        state.add(Component.of("postgres", "database", cluster.process.pid, stop_signal="SIGINT"))
        server = datastores.start_redis(tmp_path, free_port(), tmp_path / "redis.log")
        started.append(server.process)
        state.add(Component.of("redis", "cache", server.process.pid))

        with psycopg.connect(cluster.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("fleetscope_demo",)
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping() is True
        finally:
            client.close()

        processes = [p for c in state.components for p in group_members(c)]
        assert len(processes) > 2  # postgres forks its background workers
        for component in reversed(state.components):
            stop_component(component)
        assert [p.pid for p in processes if p.is_running()] == []
    finally:
        stop_components(reversed(state.components))
        remove_state(state)
        for process in started:
            process.stop()
