"""Every shipped pipeline config is accepted by the built collector itself."""

from pathlib import Path

import pytest
import yaml

from fleetscope.collector.prometheus import PrometheusSettings, render_config
from fleetscope.collector.run import (
    DEBUG_OVERLAY,
    ROLES,
    TRACESTORE_OVERLAY,
    CollectorSettings,
    config_path,
    validate,
)
from fleetscope.errors import FleetscopeError


@pytest.mark.parametrize("role", ROLES)
def test_shipped_config_validates(role: str) -> None:
    validate((config_path(role),))


def test_trace_store_overlay_validates(tmp_path: Path) -> None:
    settings = CollectorSettings(workdir=tmp_path, trace_store="http://127.0.0.1:4319")
    assert TRACESTORE_OVERLAY in settings.all_configs()
    validate(settings.all_configs(), env=settings.env())


def test_debug_extensions_are_an_overlay_that_validates(tmp_path: Path) -> None:
    # pprof and zpages show what flows through the collector: off unless asked for.
    assert DEBUG_OVERLAY not in CollectorSettings(workdir=tmp_path).all_configs()
    settings = CollectorSettings(workdir=tmp_path, debug_extensions=True)
    assert settings.all_configs()[-1] == DEBUG_OVERLAY
    validate(settings.all_configs(), env=settings.env())
    local = yaml.safe_load(config_path("local").read_text())
    assert not {"pprof", "zpages"} & set(local["service"]["extensions"])


def test_broken_config_is_rejected_with_the_collectors_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "receivers:\n  otlp:\n    protocols:\n      htp: {}\n"
        "service:\n  pipelines:\n    metrics:\n      receivers: [otlp]\n      exporters: [nope]\n"
    )
    with pytest.raises(FleetscopeError) as excinfo:
        validate((broken,))
    assert "htp" in str(excinfo.value)


def test_unknown_role_is_a_clear_error() -> None:
    with pytest.raises(FleetscopeError, match="local, agent, gateway"):
        config_path("edge")


def test_prometheus_config_scrapes_the_collector_honouring_its_labels() -> None:
    settings = PrometheusSettings(
        exporter_targets=("127.0.0.1:18889",), self_metrics_targets=("127.0.0.1:18888",)
    )
    config = yaml.safe_load(render_config(settings))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    exporter = jobs["fleetscope-collector"]
    assert exporter["honor_labels"] is True
    assert exporter["static_configs"][0]["targets"] == ["127.0.0.1:18889"]
    assert jobs["otelcol"]["static_configs"][0]["targets"] == ["127.0.0.1:18888"]
