"""Row "Collector restart with the persistent queue": a node exports to an agent collector
(collector/configs/agent.yaml: file_storage + the exporter's persistent sending queue) whose
gateway is down. The agent is SIGKILLed with the data on disk and restarted while the
gateway is still down; when the gateway comes back, every span and the final request count
arrive. Spans that arrive twice are counted, not mistaken for loss."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from fleetscope.collector.run import CollectorPorts, CollectorSettings, config_path, start_collector
from tests.integration.stack import eventually, start_stack

from .figures import record
from .load import FixedRateLoad, failures
from .node import (
    PATH,
    counter,
    received_spans,
    requests_query,
    selector,
    settle,
    start_node,
    stop_gracefully,
)

RATE = 30.0
DURATION = 8.0
NODE = "agent-fed"


def self_metric(settings: CollectorSettings, name: str) -> float:
    """Sum of one of the collector's own metrics, read from its self-metrics endpoint."""
    ports = settings.ports
    text = httpx.get(f"http://{ports.self_metrics_target}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def test_agent_killed_with_a_full_disk_queue_delivers_after_restart(tmp_path: Path) -> None:
    gateway = start_stack(tmp_path / "gateway")
    agent = CollectorSettings(
        ports=CollectorPorts.free(),
        workdir=tmp_path / "agent",
        configs=(config_path("agent"),),
        extra_env={
            "FLEETSCOPE_GATEWAY_ENDPOINT": f"127.0.0.1:{gateway.collector.ports.otlp_grpc}",
            "FLEETSCOPE_QUEUE_DIR": str(tmp_path / "agent-queue"),
        },
    )
    processes = []
    node = None
    try:
        gateway.kill_collector(signal.SIGTERM)  # the downstream is down from the start
        processes.append(start_collector(agent))
        node = start_node(
            gateway,
            tmp_path / "node",
            NODE,
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": agent.ports.otlp_http_endpoint},
        )
        load = FixedRateLoad(node.url + PATH, RATE).start()
        time.sleep(DURATION)
        outcomes = load.stop()
        assert failures(outcomes) == []
        sent = len(outcomes)
        # The node exits (its exit flush hands the agent its last spans and counts).
        stop_gracefully(node)

        # Everything the node sent is accepted by the agent and waits in its disk queue.
        eventually(
            lambda: self_metric(agent, "otelcol_receiver_accepted_spans") == sent,
            timeout=30,
            what=f"the agent to accept {sent} spans",
        )
        queued = eventually(
            lambda: self_metric(agent, "otelcol_exporter_queue_size"),
            timeout=10,
            what="the agent's queue to hold the data",
        )
        assert self_metric(agent, "otelcol_exporter_sent_spans") == 0

        processes[0].kill()  # SIGKILL, with the queue on disk
        processes[0] = start_collector(agent)  # restarted while the gateway is still down
        time.sleep(2.0)
        gateway.restart_collector()
        restarted = time.monotonic()

        def spans() -> list[tuple[str, str, float]] | None:
            got = received_spans([gateway.collector.traces_file], NODE)
            return got if len({s for _, s, _ in got}) == sent else None

        arrived = eventually(spans, timeout=60, what=f"{sent} distinct spans at the gateway")
        delay = time.monotonic() - restarted
        settle(gateway, requests_query(NODE), sent, timeout=30)
        dropped = counter(gateway, f"fleetscope_export_spans_dropped_total{selector(NODE)}")
        unique = {s for _, s, _ in arrived}
        record(
            "persistent queue",
            requests=sent,
            queue_size_before_kill=queued,
            spans_arrived=len(arrived),
            spans_unique=len(unique),
            duplicates=len(arrived) - len(unique),
            delivered_s_after_gateway_restart=delay,
            node_spans_dropped=dropped,
        )
        assert dropped == 0
    finally:
        if node is not None:
            node.process.stop()
        for process in processes:
            process.stop()
        gateway.stop()


pytestmark = pytest.mark.integration
