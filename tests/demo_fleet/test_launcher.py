"""Launcher pieces that need no running fleet: ports, state file, stopping by pid, load split."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from fleetscope.collector.run import CollectorPorts
from fleetscope.demo import cli, loadgen
from fleetscope.demo.launcher import DemoLauncher, DemoOptions, celery_worker_command, node_env
from fleetscope.demo.ports import check_plan, fixed_plan, free_plan
from fleetscope.demo.state import (
    Component,
    DemoState,
    LoadWindow,
    is_alive,
    load_state,
    remove_state,
    stop_component,
)
from fleetscope.errors import FleetscopeError


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_collector_ports() -> CollectorPorts:
    return free_plan(1).collector


# -- ports ------------------------------------------------------------------------------------


def test_a_taken_node_port_names_the_port_the_option_and_free_ports(listening: int) -> None:
    plan = fixed_plan(_free_collector_ports(), free_plan(1).prometheus, listening, nodes=2)

    with pytest.raises(FleetscopeError) as error:
        check_plan(plan)

    message = str(error.value)
    assert f"Port {listening}" in message
    assert "node-1" in message
    assert "--base-port" in message
    assert "--free-ports" in message


def test_a_taken_prometheus_port_names_its_option(listening: int) -> None:
    plan = fixed_plan(_free_collector_ports(), listening, free_plan(2).nodes[0], nodes=1)

    with pytest.raises(FleetscopeError, match=f"Port {listening}.*--prometheus-port"):
        check_plan(plan)


def test_a_taken_collector_port_names_its_option(listening: int) -> None:
    ports = free_plan(1)
    collector = CollectorPorts(
        otlp_grpc=ports.collector.otlp_grpc,
        otlp_http=listening,
        health=ports.collector.health,
        self_metrics=ports.collector.self_metrics,
        prometheus_exporter=ports.collector.prometheus_exporter,
        pprof=ports.collector.pprof,
        zpages=ports.collector.zpages,
    )
    plan = fixed_plan(collector, ports.prometheus, ports.nodes[0], nodes=1)

    with pytest.raises(FleetscopeError, match=f"Port {listening}.*OTLP/HTTP.*--otlp-http-port"):
        check_plan(plan)


def test_the_same_port_for_two_components_is_refused_naming_both_options() -> None:
    ports = free_plan(1)
    plan = fixed_plan(ports.collector, ports.prometheus, ports.prometheus, nodes=1)

    with pytest.raises(FleetscopeError) as error:
        check_plan(plan)

    assert "--base-port" in str(error.value)
    assert "--prometheus-port" in str(error.value)


def test_free_ports_are_distinct_and_pass_the_check() -> None:
    plan = free_plan(5)
    ports = [use.port for use in plan.uses()]

    assert len(ports) == len(set(ports)) == 7 + 1 + 5
    check_plan(plan)


def test_design_default_ports_and_node_numbering() -> None:
    plan = DemoOptions(nodes=3).port_plan()

    assert plan.prometheus == 9090
    assert (plan.collector.otlp_grpc, plan.collector.otlp_http) == (4317, 4318)
    assert plan.nodes == (8001, 8002, 8003)


def test_up_refuses_a_taken_port_with_exit_code_2_and_starts_nothing(
    listening: int, tmp_path: Path
) -> None:
    free = free_plan(1)
    ports = free.collector
    result = CliRunner().invoke(
        cli.app,
        [
            "up",
            "--workdir",
            str(tmp_path),
            "--nodes",
            "1",
            "--prometheus-port",
            str(listening),
            "--base-port",
            str(free.nodes[0]),
            *("--otlp-grpc-port", str(ports.otlp_grpc), "--otlp-http-port", str(ports.otlp_http)),
            *("--collector-health-port", str(ports.health)),
            *("--collector-metrics-port", str(ports.self_metrics)),
            *("--collector-exporter-port", str(ports.prometheus_exporter)),
            *("--collector-pprof-port", str(ports.pprof)),
            *("--collector-zpages-port", str(ports.zpages)),
        ],
    )

    assert result.exit_code == 2
    assert f"Port {listening}" in result.stderr
    assert "--prometheus-port" in result.stderr
    assert load_state(tmp_path) is None


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--nodes", "0"], "--nodes"),
        (["--nodes", "3", "--users", "2", "--no-balancer"], "--users"),
        (["--users", "0"], "--users"),
        (["--workers", "0"], "--workers"),
        (["--nodes", "3", "--workers", "2,1"], "--workers"),
        (["--workers", "2,x"], "--workers"),
        (["--nodes", "2", "--weights", "3"], "--weights"),
        (["--nodes", "2", "--weights", "1,300"], "--weights"),
        (["--nodes", "2", "--weights", "2,1", "--no-balancer"], "--weights"),
        (["--duration", "0"], "--duration"),
        (["--task-concurrency", "0"], "--task-concurrency"),
    ],
)
def test_up_rejects_impossible_options_naming_them(
    args: list[str], option: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli.app, ["up", "--workdir", str(tmp_path), *args])

    assert result.exit_code == 2
    assert option in result.stderr


# -- load shaping ------------------------------------------------------------------------------


def test_three_nodes_get_three_to_two_to_one_of_the_default_users() -> None:
    assert loadgen.users_per_node(loadgen.default_users(3), 3) == [6, 4, 2]


@given(nodes=st.integers(1, 12), extra=st.integers(0, 500))
def test_enough_users_give_every_node_a_different_load(nodes: int, extra: int) -> None:
    users = nodes * (nodes + 1) // 2 + extra

    shares = loadgen.users_per_node(users, nodes)

    assert sum(shares) == users
    assert all(a > b for a, b in itertools.pairwise(shares))
    assert shares[-1] >= 1


@given(nodes=st.integers(1, 20), extra=st.integers(0, 40))
def test_every_node_gets_load_and_the_split_never_favours_a_later_node(
    nodes: int, extra: int
) -> None:
    users = nodes + extra

    shares = loadgen.users_per_node(users, nodes)

    assert sum(shares) == users
    assert min(shares) >= 1
    assert all(a >= b for a, b in itertools.pairwise(shares))


def test_fewer_users_than_nodes_is_an_error_naming_the_option() -> None:
    with pytest.raises(FleetscopeError, match="--users 2 cannot load 3 nodes"):
        loadgen.users_per_node(2, 3)


def test_locust_runs_headless_for_the_duration_and_writes_final_stats(tmp_path: Path) -> None:
    command = loadgen.locust_command("http://127.0.0.1:8001", 4, tmp_path / "node-1", 30)

    assert command[:3] == [sys.executable, "-m", "locust"]
    assert "--headless" in command
    assert command[command.index("--users") + 1] == "4"
    assert command[command.index("--run-time") + 1] == "30s"
    assert command[command.index("--json-file") + 1] == str(tmp_path / "node-1")
    assert "--run-time" not in loadgen.locust_command("http://h", 1, tmp_path / "x", None)


def test_locust_stats_are_read_final_first_then_running(tmp_path: Path) -> None:
    prefix = tmp_path / "node-1"
    (tmp_path / "node-1_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count\nGET,/,10,0\n,Aggregated,25,2\n"
    )
    assert loadgen.read_stats(prefix) == loadgen.LoadStats(25, 2)

    (tmp_path / "node-1.json").write_text(
        json.dumps(
            [
                {"name": "/", "method": "GET", "num_requests": 20, "num_failures": 0},
                {"name": "/orders/", "method": "POST", "num_requests": 7, "num_failures": 3},
            ]
        )
    )
    assert loadgen.read_stats(prefix) == loadgen.LoadStats(27, 3)
    assert loadgen.read_stats(tmp_path / "node-9") is None


# -- node environment --------------------------------------------------------------------------


def test_node_env_names_the_node_and_drops_inherited_telemetry_and_stores(tmp_path: Path) -> None:
    inherited = {
        "PATH": "/usr/bin",
        "OTEL_SERVICE_NAME": "someone-else",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://elsewhere:4318/v1/metrics",
        "DATABASE_URL": "postgres://prod/db",
        "REDIS_URL": "redis://prod",
    }

    env = node_env(
        inherited,
        workdir=tmp_path,
        node="node-2",
        otlp_endpoint="http://127.0.0.1:4318",
        export_interval_ms=5000,
        trace_sample_ratio=0.1,
        database_url=None,
        redis_url=None,
    )

    assert env["FLEETSCOPE_NODE"] == "node-2"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert env["OTEL_METRIC_EXPORT_INTERVAL"] == "5000"
    assert env["FLEETSCOPE_DEMO_DB"] == str(tmp_path / "demo.sqlite3")
    assert env["PATH"] == "/usr/bin"
    for dropped in (
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "DATABASE_URL",
        "REDIS_URL",
    ):
        assert dropped not in env


def test_node_env_points_at_the_demo_postgres_and_redis(tmp_path: Path) -> None:
    env = node_env(
        {},
        workdir=tmp_path,
        node="node-1",
        otlp_endpoint="http://127.0.0.1:4318",
        export_interval_ms=1000,
        trace_sample_ratio=1.0,
        database_url="postgres://fleetscope@127.0.0.1:5433/fleetscope_demo",
        redis_url="redis://127.0.0.1:6380/0",
    )

    assert env["DATABASE_URL"] == "postgres://fleetscope@127.0.0.1:5433/fleetscope_demo"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6380/0"


# -- state file --------------------------------------------------------------------------------


def test_state_file_round_trips(tmp_path: Path) -> None:
    state = DemoState(
        tmp_path,
        prometheus_url="http://127.0.0.1:9090",
        otlp_endpoint="http://127.0.0.1:4318",
        launcher=Component("launcher", "launcher", 100, 1.5),
        load=LoadWindow(started=10.0, ended=40.5, settle_s=11.0),
        cleanup_dirs=[str(tmp_path / "pg")],
    )
    state.add(Component("collector", "collector", 101, 2.25, "http://127.0.0.1:4318", "c.log"))
    state.add(Component("postgres", "database", 102, 3.0, stop_signal="SIGINT"))

    loaded = load_state(tmp_path)

    assert loaded == state


def test_recording_a_component_again_replaces_it(tmp_path: Path) -> None:
    state = DemoState(tmp_path)
    state.add(Component("node-1", "node", 1, 1.0))
    state.add(Component("node-1", "node", 2, 2.0))

    loaded = load_state(tmp_path)

    assert loaded is not None
    assert [c.pid for c in loaded.components] == [2]


def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")

    with pytest.raises(FleetscopeError, match="delete the file"):
        load_state(tmp_path)


def test_removing_state_deletes_the_file_and_recorded_outside_dirs(tmp_path: Path) -> None:
    outside = tmp_path / "outside-cluster"
    (outside / "data").mkdir(parents=True)
    state = DemoState(tmp_path / "demo", cleanup_dirs=[str(outside)])
    state.save()

    remove_state(state)

    assert load_state(tmp_path / "demo") is None
    assert not outside.exists()


def test_report_window_defaults_to_the_recorded_load() -> None:
    load = LoadWindow(started=1000.0, ended=1060.2, settle_s=11.0)

    # Evaluated once the last export has been scraped, over everything since the load began:
    # a window only as long as the load would leave out its first settle_s seconds.
    assert cli.report_window(load, now=2000.0) == ("72s", 1071.2)
    assert cli.report_window(None, now=2000.0) == ("5m", None)
    assert cli.report_window(LoadWindow(started=1000.0), now=1042.0) == ("42s", None)


# -- stopping exactly what was recorded --------------------------------------------------------


def _spawn_group() -> subprocess.Popen[bytes]:
    """A process group leader with a child of its own, like gunicorn and its workers."""
    return subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)


def _wait_for_children(pid: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children(recursive=True)
        if children:
            return children
        time.sleep(0.05)
    raise AssertionError("the test process group never forked")


def test_stopping_a_component_stops_its_whole_process_group() -> None:
    leader = _spawn_group()
    try:
        children = _wait_for_children(leader.pid)
        component = Component.of("node-1", "node", leader.pid)

        stopped = stop_component(component, timeout=5)

        assert leader.pid in stopped
        assert not is_alive(component)
        assert all(not child.is_running() for child in children)
    finally:
        if leader.poll() is None:
            leader.kill()
        leader.wait()


def test_a_reused_pid_is_never_signalled() -> None:
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        started = psutil.Process(bystander.pid).create_time()
        # What the state file would hold had our process died and its pid been reused.
        recorded = Component("node-1", "node", bystander.pid, started - 3600)

        assert not is_alive(recorded)
        assert stop_component(recorded, timeout=1) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_down_stops_the_recorded_processes_and_forgets_them(tmp_path: Path) -> None:
    leader = _spawn_group()
    unrelated = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        children = _wait_for_children(leader.pid)
        state = DemoState(tmp_path)
        state.add(Component.of("node-1", "node", leader.pid))

        result = CliRunner().invoke(cli.app, ["down", "--workdir", str(tmp_path)])

        assert result.exit_code == 0, result.output
        assert "node-1" in result.stdout
        assert leader.wait(timeout=10) is not None
        assert all(not child.is_running() for child in children)
        assert unrelated.poll() is None
        assert load_state(tmp_path) is None
    finally:
        for process in (leader, unrelated):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_status_tells_alive_from_gone(tmp_path: Path) -> None:
    alive = subprocess.Popen(["sleep", "300"], start_new_session=True)
    gone = subprocess.Popen(["true"], start_new_session=True)
    gone_component = Component.of("node-2", "node", gone.pid)
    gone.wait()
    try:
        state = DemoState(tmp_path, prometheus_url="http://127.0.0.1:9")
        state.add(Component.of("node-1", "node", alive.pid))
        state.add(gone_component)

        result = CliRunner().invoke(cli.app, ["status", "--workdir", str(tmp_path)])

        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert any("node-1" in line and "alive" in line for line in lines)
        assert any("node-2" in line and "gone" in line for line in lines)
    finally:
        alive.kill()
        alive.wait()


def test_status_and_down_without_a_demo_say_so(tmp_path: Path) -> None:
    for command in ("status", "down"):
        result = CliRunner().invoke(cli.app, [command, "--workdir", str(tmp_path)])
        assert result.exit_code == 0
        assert "no demo recorded" in result.stdout.lower()


# -- the Celery worker node -----------------------------------------------------------------


def _launcher(tmp_path: Path, **options: Any) -> DemoLauncher:
    import io

    from rich.console import Console

    from fleetscope.demo.progress import DemoDisplay

    launcher = DemoLauncher(
        DemoOptions(workdir=tmp_path, **options), DemoDisplay(Console(file=io.StringIO()))
    )
    launcher.state.otlp_endpoint = "http://127.0.0.1:4318"
    return launcher


def test_the_task_worker_node_is_a_prefork_worker_on_the_shop_queues() -> None:
    command = celery_worker_command("worker-1", 3)

    assert command[:5] == [sys.executable, "-m", "celery", "-A", "fleetscope.demo.celery_app"]
    pairs = dict(itertools.pairwise(command))
    assert pairs["--pool"] == "prefork"
    assert pairs["--concurrency"] == "3"
    assert pairs["--queues"] == "celery,reports"
    assert pairs["--hostname"] == "worker-1@%h"


def test_nodes_get_the_demo_broker_never_one_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETSCOPE_DEMO_BROKER_URL", "redis://elsewhere:6379/0")
    launcher = _launcher(tmp_path)
    assert "FLEETSCOPE_DEMO_BROKER_URL" not in launcher._env("node-1")

    launcher.broker_url = "redis://127.0.0.1:1234/1"
    assert launcher._env("node-1")["FLEETSCOPE_DEMO_BROKER_URL"] == "redis://127.0.0.1:1234/1"
    assert launcher._env("worker-1")["FLEETSCOPE_NODE"] == "worker-1"


def test_with_a_redis_cache_the_broker_is_its_database_one(tmp_path: Path) -> None:
    from fleetscope.demo.datastores import RedisServer

    launcher = _launcher(tmp_path, cache="redis")
    launcher.redis_server = RedisServer(process=None, port=6399)  # type: ignore[arg-type]
    launcher._start_broker()  # reuses the cache's server: starts nothing

    assert launcher.broker_url == "redis://127.0.0.1:6399/1"
    assert launcher.state.components == []


def test_tasks_without_redis_say_how_to_run_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("FLEETSCOPE_REDIS_SERVER", raising=False)

    with pytest.raises(FleetscopeError, match=r"broker is Redis.*--no-tasks"):
        _launcher(tmp_path)._preflight_tasks()
    _launcher(tmp_path, tasks=False).options.validate()  # --no-tasks needs no Redis
