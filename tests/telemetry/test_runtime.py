"""Per-process runtime: node identity, sampler choice, and a clean slate after fork."""

from __future__ import annotations

import os

import pytest
from opentelemetry.sdk.trace.sampling import ParentBased

from telemetry.conf import build_config
from telemetry.runtime import ConfigurationError, Runtime, build_sampler


def test_resource_carries_node_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments")
    runtime = Runtime(
        build_config(
            {"EXPORT": False, "NODE": "node-2", "SERVICE_NAME": "shop", "ENVIRONMENT": "demo"}
        )
    )
    attributes = runtime.resource.attributes
    assert attributes["service.name"] == "shop"
    assert attributes["host.name"] == "node-2"
    assert attributes["service.instance.id"] == f"node-2/{os.getpid()}"
    assert attributes["deployment.environment.name"] == "demo"
    assert attributes["team"] == "payments"


def test_default_sampler_is_parent_based_ratio() -> None:
    sampler = build_sampler(build_config({"TRACES_SAMPLE_RATE": 0.25}))
    assert isinstance(sampler, ParentBased)
    assert "0.25" in sampler.get_description()


def test_unknown_sampler_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_SAMPLER"):
        build_sampler(build_config({}))


def test_after_fork_the_child_starts_from_nothing() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    runtime.instruments.cache_operations.add(("default", "get", "hit"))
    runtime.ensure_started()
    parent_tracer_provider = runtime.tracer_provider
    runtime.after_fork_in_child()
    assert not runtime.started
    assert runtime.aggregator.collect() == []
    assert runtime.tracer_provider is not parent_tracer_provider


def test_a_forked_worker_exports_under_its_own_instance_id() -> None:
    runtime = Runtime(build_config({"EXPORT": False, "NODE": "n"}))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn --preload worker goes through
        runtime.after_fork_in_child()
        os.write(write, str(runtime.resource.attributes["service.instance.id"]).encode())
        os._exit(0)
    os.close(write)
    child_instance = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    assert child_instance == f"n/{pid}"
    assert runtime.resource.attributes["service.instance.id"] == f"n/{os.getpid()}"
