"""The `fleetscope` subcommands (the [cli] extra): each package's CLI wired in, no logic."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fleetscope.collector.cli import app as collector_app
from fleetscope.collector.cli import prometheus_app
from fleetscope.errors import FleetscopeError

app = typer.Typer(
    help="Fleetscope: observability for fleets of Django servers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(collector_app, name="collector")
app.add_typer(prometheus_app, name="prometheus")


def _add_optional(module: str, name: str) -> None:
    """Sub-apps whose dependencies live in extras are added only when importable."""
    try:
        sub = __import__(module, fromlist=["app"])
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        missing = exc.name or module

        @app.command(name, help=f"(unavailable: {missing} is not installed)")
        def unavailable() -> None:
            raise FleetscopeError(
                f"`fleetscope {name}` needs {missing}; install it with "
                f"`pip install 'fleetscope[{'cli' if name == 'dashboards' else 'demo'}]'`."
            )

        return
    app.add_typer(sub.app, name=name)


_add_optional("fleetscope.dashboards.cli", "dashboards")
_add_optional("fleetscope.demo.cli", "demo")
_add_optional("fleetscope.demo.capacity", "capacity")


def main() -> None:
    try:
        app()
    except FleetscopeError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
