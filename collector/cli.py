"""`fleetscope collector ...` and `fleetscope prometheus ...`: build, locate, validate, run."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import build as build_module
from .locate import locate_collector, locate_prometheus
from .manifest import load_manifest
from .process import ManagedProcess
from .prometheus import PrometheusSettings, render_config, start_prometheus
from .run import CollectorPorts, CollectorSettings, config_path, start_collector, validate

console = Console(stderr=True)
app = typer.Typer(
    help="Build, locate, validate and run Fleetscope's OpenTelemetry Collector.",
    no_args_is_help=True,
)
prometheus_app = typer.Typer(
    help="Locate, configure and run Prometheus for local use.", no_args_is_help=True
)

ConfigOption = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="Config file(s); default: the local pipeline."),
]
WorkdirOption = Annotated[Path, typer.Option(help="Where logs, traces and data are written.")]


def _configs(config: list[Path] | None) -> tuple[Path, ...]:
    return tuple(config) if config else (config_path("local"),)


@app.command()
def build(force: Annotated[bool, typer.Option(help="Rebuild even if up to date.")] = False) -> None:
    """Build the distribution from collector/manifest.yaml with the official builder."""
    build_module.build(force=force, progress=lambda line: console.print(f"[cyan]{line}"))


@app.command()
def locate() -> None:
    """Print the collector binary that would run ($FLEETSCOPE_OTELCOL, built, or PATH)."""
    print(locate_collector())


@app.command("validate")
def validate_command(config: ConfigOption = None) -> None:
    """Check configs with the collector's own `validate` command."""
    configs = _configs(config)
    validate(configs)
    console.print(f"[green]valid:[/] {', '.join(map(str, configs))}")


@app.command()
def config(role: Annotated[str, typer.Argument(help="local, agent or gateway")] = "local") -> None:
    """Print the path of a pipeline config shipped with Fleetscope."""
    print(config_path(role))


@app.command()
def versions() -> None:
    """Print the pinned collector version and its components."""
    manifest = load_manifest()
    print(f"{manifest.dist_name} {manifest.version}")
    for component in manifest.components:
        print(f"  {component.kind:<11} {component.module}")


def _serve(processes: list[ManagedProcess]) -> None:
    """Keep the foreground until Ctrl-C or SIGTERM, then stop what was started."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop and all(p.running() for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.stop()
    for process in processes:
        if process.popen is not None and process.popen.returncode not in (0, -15, None):
            console.print(f"[red]{process.name} exited:[/]\n{process.log_tail()}")


@app.command()
def run(
    config: ConfigOption = None,
    workdir: WorkdirOption = Path(".fleetscope"),
    otlp_http_port: int = 4318,
    otlp_grpc_port: int = 4317,
    health_port: int = 13133,
    prometheus_exporter_port: int = 8889,
    self_metrics_port: int = 8888,
    trace_store: Annotated[str | None, typer.Option(help="OTLP/HTTP URL of Tempo/Jaeger.")] = None,
    debug_extensions: Annotated[
        bool, typer.Option(help="Also serve pprof (1777) and zpages (55679) on loopback.")
    ] = False,
) -> None:
    """Start the collector in the foreground and wait for its health check."""
    ports = CollectorPorts(
        otlp_grpc_port, otlp_http_port, health_port, self_metrics_port, prometheus_exporter_port
    )
    settings = CollectorSettings(
        ports=ports,
        workdir=workdir,
        configs=_configs(config),
        trace_store=trace_store,
        debug_extensions=debug_extensions,
    )
    process = start_collector(settings)
    console.print(
        f"[green]collector ready[/] (pid {process.pid}): OTLP/HTTP "
        f"{ports.otlp_http_endpoint}, metrics for Prometheus on "
        f"{ports.prometheus_exporter_target}, log {settings.log_file}"
    )
    _serve([process])


@prometheus_app.command("locate")
def prometheus_locate() -> None:
    """Print the Prometheus binary that would run."""
    print(locate_prometheus())


@prometheus_app.command("config")
def prometheus_config(
    exporter_target: str = "127.0.0.1:8889", self_metrics_target: str = "127.0.0.1:8888"
) -> None:
    """Print the Prometheus config Fleetscope generates (scrapes the collector)."""
    print(
        render_config(
            PrometheusSettings(
                exporter_targets=(exporter_target,), self_metrics_targets=(self_metrics_target,)
            )
        )
    )


@prometheus_app.command("run")
def prometheus_run(
    port: int = 9090,
    workdir: WorkdirOption = Path(".fleetscope"),
    exporter_target: str = "127.0.0.1:8889",
    self_metrics_target: str = "127.0.0.1:8888",
) -> None:
    """Start Prometheus in the foreground, scraping the collector."""
    settings = PrometheusSettings(
        port=port,
        workdir=workdir,
        exporter_targets=(exporter_target,),
        self_metrics_targets=(self_metrics_target,),
    )
    process = start_prometheus(settings)
    console.print(f"[green]prometheus ready[/] (pid {process.pid}) at {settings.url}")
    _serve([process])
