"""Validates collector configs with the collector itself and starts it on chosen ports."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fleetscope.errors import FleetscopeError

from .locate import locate_collector
from .manifest import CONFIGS_DIR
from .process import ManagedProcess, free_ports, http_ok

ROLES = ("local", "agent", "gateway")


def config_path(role: str = "local") -> Path:
    if role not in ROLES:
        raise FleetscopeError(f"Unknown collector role {role!r}; choose one of {', '.join(ROLES)}.")
    return CONFIGS_DIR / f"{role}.yaml"


TRACESTORE_OVERLAY = CONFIGS_DIR / "tracestore.yaml"
# pprof and zpages, only when asked (`run --debug-extensions`).
DEBUG_OVERLAY = CONFIGS_DIR / "debug.yaml"


@dataclass(frozen=True)
class CollectorPorts:
    """Loopback ports of one local collector (DESIGN.md defaults, or free ones for tests)."""

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    health: int = 13133
    self_metrics: int = 8888
    prometheus_exporter: int = 8889
    pprof: int = 1777
    zpages: int = 55679
    host: str = "127.0.0.1"

    @classmethod
    def free(cls) -> CollectorPorts:
        grpc, http, health, self_metrics, exporter, pprof, zpages = free_ports(7)
        return cls(
            otlp_grpc=grpc,
            otlp_http=http,
            health=health,
            self_metrics=self_metrics,
            prometheus_exporter=exporter,
            pprof=pprof,
            zpages=zpages,
        )

    def listening(self) -> tuple[int, ...]:
        """Every port the collector listens on."""
        return (
            self.otlp_grpc,
            self.otlp_http,
            self.health,
            self.self_metrics,
            self.prometheus_exporter,
            self.pprof,
            self.zpages,
        )

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{self.host}:{self.otlp_http}"

    @property
    def prometheus_exporter_target(self) -> str:
        return f"{self.host}:{self.prometheus_exporter}"

    @property
    def self_metrics_target(self) -> str:
        return f"{self.host}:{self.self_metrics}"

    def env(self) -> dict[str, str]:
        h = self.host
        return {
            "FLEETSCOPE_OTLP_GRPC_ENDPOINT": f"{h}:{self.otlp_grpc}",
            "FLEETSCOPE_OTLP_HTTP_ENDPOINT": f"{h}:{self.otlp_http}",
            "FLEETSCOPE_HEALTH_ENDPOINT": f"{h}:{self.health}",
            "FLEETSCOPE_SELF_METRICS_HOST": h,
            "FLEETSCOPE_SELF_METRICS_PORT": str(self.self_metrics),
            "FLEETSCOPE_PROM_EXPORTER_ENDPOINT": f"{h}:{self.prometheus_exporter}",
            "FLEETSCOPE_PPROF_ENDPOINT": f"{h}:{self.pprof}",
            "FLEETSCOPE_ZPAGES_ENDPOINT": f"{h}:{self.zpages}",
        }


@dataclass
class CollectorSettings:
    ports: CollectorPorts = field(default_factory=CollectorPorts)
    workdir: Path = field(default_factory=lambda: Path(".fleetscope"))
    configs: tuple[Path, ...] = (config_path("local"),)
    trace_store: str | None = None
    debug_extensions: bool = False
    # More FLEETSCOPE_* variables for the configs (a gateway endpoint, a queue directory).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def traces_file(self) -> Path:
        return self.workdir / "traces.jsonl"

    @property
    def log_file(self) -> Path:
        return self.workdir / "collector.log"

    def all_configs(self) -> tuple[Path, ...]:
        configs = (*self.configs, TRACESTORE_OVERLAY) if self.trace_store else self.configs
        return (*configs, DEBUG_OVERLAY) if self.debug_extensions else configs

    def env(self) -> dict[str, str]:
        env = dict(os.environ, **self.ports.env())
        env["FLEETSCOPE_TRACES_FILE"] = str(self.traces_file.resolve())
        if self.trace_store:
            env["FLEETSCOPE_TRACE_STORE"] = self.trace_store
        env.update(self.extra_env)
        return env


def _config_args(configs: tuple[Path, ...]) -> list[str]:
    for path in configs:
        if not path.is_file():
            raise FleetscopeError(f"Collector config {path} does not exist.")
    return [f"--config={path}" for path in configs]


def validate(configs: tuple[Path, ...], env: dict[str, str] | None = None) -> str:
    """Run the collector's own `validate`; raise with its message when the config is bad."""
    binary = locate_collector()
    result = subprocess.run(
        [str(binary), "validate", *_config_args(configs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise FleetscopeError(f"The collector rejected the config:\n{output}")
    return output


def start_collector(settings: CollectorSettings, timeout: float = 30.0) -> ManagedProcess:
    """Start the collector and return once its health check answers."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    binary = locate_collector()
    process = ManagedProcess(
        "collector",
        [str(binary), *_config_args(settings.all_configs())],
        settings.log_file,
        env=settings.env(),
    ).start()
    try:
        process.wait_ready(
            http_ok(f"http://{settings.ports.host}:{settings.ports.health}/"), timeout
        )
    except BaseException:
        process.stop()
        raise
    return process
