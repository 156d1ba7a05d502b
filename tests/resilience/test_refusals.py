"""Row "Refusals": the collector refuses data. A real collector whose memory_limiter is
below its own heap refuses everything with 503 (retryable); a local endpoint answers 429,
then 400, then 200 for traces. Requests keep being served; retryable answers keep the batch
and retry it, other 4xx drop it; every refused attempt and every dropped span is counted,
and once the collector takes data again every request is counted exactly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fleetscope.collector.run import config_path
from tests.integration.stack import LocalStack, Node, start_stack

from .faults import StatusServer
from .figures import record
from .load import FixedRateLoad, failures
from .node import (
    PATH,
    SERVICE,
    counter,
    requests_query,
    selector,
    settle,
    start_node,
    stop_gracefully,
)

RATE = 20.0
PHASE_429 = 5.0  # seconds the local endpoint answers 429, then 400 for as long, then 200
PHASE_400 = 5.0
AFTER = 8.0  # load after the collector takes data again


def refusing_config(workdir: Path) -> Path:
    """local.yaml with a memory_limiter far below the collector's own heap: every request
    is refused (the OTLP receiver answers 503), whatever the machine."""
    config = yaml.safe_load(config_path("local").read_text())
    config["processors"]["memory_limiter"] = {
        "check_interval": "1s",
        "limit_mib": 2,
        "spike_limit_mib": 1,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "refusing.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def span_count(server: StatusServer, status: int) -> int:
    """Spans in the trace requests the endpoint answered with `status`."""
    return sum(
        len(scope.spans)
        for answered in server.answered
        if answered.status == status and answered.path == "/v1/traces"
        for resource in ExportTraceServiceRequest.FromString(answered.body).resource_spans
        for scope in resource.scope_spans
    )


def failed(stack: LocalStack, node: str, signal_name: str, error_type: str) -> float:
    labels = f'signal="{signal_name}", error_type="{error_type}"'
    return counter(stack, "fleetscope_export_failures_total" + selector(node, labels))


def dropped(stack: LocalStack, node: str, reason: str) -> float:
    return counter(
        stack, "fleetscope_export_spans_dropped_total" + selector(node, f'reason="{reason}"')
    )


def exported(stack: LocalStack, node: str) -> float:
    return counter(stack, f"fleetscope_export_spans_exported_total{selector(node)}")


def test_refusals_are_retried_or_dropped_and_always_counted(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack", configs=(refusing_config(tmp_path / "configs"),))
    endpoint: StatusServer | None = None
    nodes: list[Node] = []
    try:
        endpoint = StatusServer(429)
        # "limited": everything to the refusing collector. "local": traces to the local
        # endpoint, metrics to the same refusing collector.
        nodes.append(start_node(stack, tmp_path / "limited", "limited"))
        nodes.append(
            start_node(
                stack,
                tmp_path / "local",
                "local",
                env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint.url}/v1/traces"},
            )
        )
        loads = [FixedRateLoad(n.url + PATH, RATE).start() for n in nodes]
        time.sleep(PHASE_429)
        endpoint.status = 400
        time.sleep(PHASE_400)
        endpoint.status = 200
        # The collector takes data again: the same ports, the shipped config.
        stack.kill_collector(signal.SIGTERM)
        stack.collector.configs = (config_path("local"),)
        stack.restart_collector()
        time.sleep(AFTER)
        limited_outcomes, local_outcomes = (load.stop() for load in loads)
        assert failures(limited_outcomes) == []
        assert failures(local_outcomes) == []
        for node in nodes:
            stop_gracefully(node)

        # Metrics refused with 503 lost nothing: every request is counted, exactly.
        sent = {"limited": len(limited_outcomes), "local": len(local_outcomes)}
        for name, count in sent.items():
            settle(stack, requests_query(name), count, timeout=30)

        # The collector's refusals, seen by the app as retryable 503s, counted per signal.
        seen = {
            (r["metric"]["host_name"], r["metric"]["signal"], r["metric"]["error_type"]): float(
                r["value"][1]
            )
            for r in stack.query(
                "sum by (host_name, signal, error_type) "
                f'(fleetscope_export_failures_total{{job="{SERVICE}"}})'
            )
        }
        assert failed(stack, "limited", "traces", "http_503") > 0, seen
        assert failed(stack, "limited", "metrics", "http_503") > 0, seen
        assert failed(stack, "local", "metrics", "http_503") > 0, seen
        # The collector's own count, from its first run (the restart reset it).
        refused_by_collector = counter(
            stack, 'max_over_time(otelcol_receiver_refused_spans{job="otelcol"}[5m])'
        )
        assert refused_by_collector > 0
        limited_exported = exported(stack, "limited")
        limited_dropped = {r: dropped(stack, "limited", r) for r in ("queue_full", "exit")}
        assert dropped(stack, "limited", "rejected") == 0  # 503 never drops a batch
        assert limited_exported + sum(limited_dropped.values()) == sent["limited"]

        # 429: the batch is kept and sent again; every 429 is one failure counted.
        answered = [a for a in endpoint.answered if a.path == "/v1/traces"]
        refused_429 = [a for a in answered if a.status == 429]
        assert refused_429
        assert failed(stack, "local", "traces", "http_429") == len(refused_429)
        for attempt in refused_429:
            assert any(
                later.body_hash == attempt.body_hash and later.at > attempt.at for later in answered
            ), "a batch refused with 429 was not sent again"
        # 400: the batch is dropped for good, counted as rejected, never sent again.
        rejected = [a for a in answered if a.status == 400]
        assert rejected
        assert failed(stack, "local", "traces", "http_400") == len(rejected)
        assert dropped(stack, "local", "rejected") == span_count(endpoint, 400)
        for attempt in rejected:
            assert not [
                later
                for later in answered
                if later.body_hash == attempt.body_hash and later.at > attempt.at
            ], "a batch rejected with 400 was sent again"
        # What the endpoint accepted is what the app counts as exported; nothing unaccounted.
        local_exported = exported(stack, "local")
        assert local_exported == span_count(endpoint, 200)
        local_dropped = sum(dropped(stack, "local", r) for r in ("queue_full", "exit", "rejected"))
        assert local_exported + local_dropped == sent["local"]
        record(
            "refusals",
            requests=sent,
            collector_refused_spans=refused_by_collector,
            limited_503={
                "traces": failed(stack, "limited", "traces", "http_503"),
                "metrics": failed(stack, "limited", "metrics", "http_503"),
            },
            limited_spans={"exported": limited_exported, **limited_dropped},
            local_answers={
                str(code): len([a for a in answered if a.status == code])
                for code in (429, 400, 200)
            },
            local_spans_rejected=span_count(endpoint, 400),
            local_spans_exported=local_exported,
        )
    finally:
        for node in nodes:
            node.process.stop()
        if endpoint is not None:
            endpoint.close()
        stack.stop()


pytestmark = pytest.mark.integration
