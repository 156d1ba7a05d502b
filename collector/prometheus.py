"""Writes a Prometheus config that scrapes the collector, starts Prometheus, waits for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .locate import locate_prometheus
from .process import ManagedProcess, free_port, http_ok


@dataclass
class PrometheusSettings:
    port: int = 9090
    host: str = "127.0.0.1"
    workdir: Path = field(default_factory=lambda: Path(".fleetscope"))
    # host:port targets: the collector's Prometheus exporter and its own telemetry.
    exporter_targets: tuple[str, ...] = ("127.0.0.1:8889",)
    self_metrics_targets: tuple[str, ...] = ("127.0.0.1:8888",)
    scrape_interval: str = "5s"
    rule_files: tuple[Path, ...] = ()
    # host:port targets of HAProxy's Prometheus exporter (the demo's load balancer).
    balancer_targets: tuple[str, ...] = ()

    @classmethod
    def on_free_port(cls, **kwargs: object) -> PrometheusSettings:
        return cls(port=free_port(), **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"


def render_config(settings: PrometheusSettings) -> str:
    config = {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.scrape_interval,
        },
        "rule_files": [str(p.resolve()) for p in settings.rule_files],
        "scrape_configs": [
            {
                # honor_labels keeps the job/instance the exporter derived from each
                # node's service.name / service.instance.id instead of the scrape target's.
                "job_name": "fleetscope-collector",
                "honor_labels": True,
                "static_configs": [{"targets": list(settings.exporter_targets)}],
            },
            {
                "job_name": "otelcol",
                "static_configs": [{"targets": list(settings.self_metrics_targets)}],
            },
        ],
    }
    if settings.balancer_targets:
        config["scrape_configs"].append(  # type: ignore[attr-defined]
            {
                "job_name": "haproxy",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(settings.balancer_targets)}],
            }
        )
    return yaml.safe_dump(config, sort_keys=False)


def write_config(settings: PrometheusSettings) -> Path:
    settings.workdir.mkdir(parents=True, exist_ok=True)
    settings.config_file.write_text(render_config(settings))
    return settings.config_file


def start_prometheus(settings: PrometheusSettings, timeout: float = 30.0) -> ManagedProcess:
    """Start Prometheus with exemplar storage on and return once /-/ready answers."""
    binary = locate_prometheus()
    config = write_config(settings)
    data_dir = settings.workdir / "prometheus-data"
    process = ManagedProcess(
        "prometheus",
        [
            str(binary),
            f"--config.file={config.resolve()}",
            f"--storage.tsdb.path={data_dir.resolve()}",
            f"--web.listen-address={settings.host}:{settings.port}",
            "--enable-feature=exemplar-storage",
            "--web.enable-lifecycle",
        ],
        settings.workdir / "prometheus.log",
    ).start()
    try:
        process.wait_ready(http_ok(f"{settings.url}/-/ready"), timeout)
    except BaseException:
        process.stop()
        raise
    return process
