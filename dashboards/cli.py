"""`fleetscope dashboards ...`: build, push, check the Grafana dashboards and write alert rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fleetscope.errors import FleetscopeError

from .annotate import annotate_deploy
from .build import GENERATED_DIR
from .build import build as build_files
from .check import PanelResult, check_all
from .push import DEFAULT_FOLDER, push_dashboards
from .rules import RULES_FILE_NAME, render_rules

app = typer.Typer(
    help="Grafana dashboards and Prometheus alert rules for the fleet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _fail(exc: FleetscopeError) -> typer.Exit:
    err_console.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


@app.command()
def build(
    out: Annotated[
        Path, typer.Option(help="Directory for the JSON and rule files.")
    ] = GENERATED_DIR,
    slo: Annotated[
        Path | None,
        typer.Option(help="SLO file (YAML) for the SLO rules; default dashboards/slo.yaml."),
    ] = None,
) -> None:
    """Write every dashboard as JSON (sorted keys, stable uids), the alert rules and the SLO
    recording and burn-rate rules."""
    try:
        written = build_files(out, slo)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    for path in written:
        out_console.print(f"wrote {path}", highlight=False)


@app.command()
def push(
    url: Annotated[str, typer.Option(help="Grafana root URL, e.g. http://127.0.0.1:3000.")],
    token: Annotated[
        str,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or $GRAFANA_TOKEN)."),
    ],
    folder: Annotated[str, typer.Option(help="Folder to put the dashboards in.")] = DEFAULT_FOLDER,
) -> None:
    """Create or update the dashboards in Grafana through its HTTP API (idempotent)."""
    try:
        results = push_dashboards(url, token, folder)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    for result in results:
        out_console.print(
            f"{result.title}: version {result.version} at {result.url}", highlight=False
        )


@app.command()
def annotate(
    url: Annotated[str, typer.Option(help="Grafana root URL, e.g. http://127.0.0.1:3000.")],
    token: Annotated[
        str,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or $GRAFANA_TOKEN)."),
    ],
    version: Annotated[str, typer.Option(help="The service.version just deployed.")],
    service: Annotated[
        str | None, typer.Option(help="The service (service.name) deployed, for the text.")
    ] = None,
    text: Annotated[str | None, typer.Option(help="Annotation text (default: Deployed …).")] = None,
    at: Annotated[float | None, typer.Option(help="When, as Unix seconds (default: now).")] = None,
) -> None:
    """Mark a deploy on every Fleetscope dashboard (a Grafana annotation)."""
    try:
        result = annotate_deploy(url, token, version, service=service, text=text, at=at)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    out_console.print(
        f"annotation {result.id}: {result.text!r} tagged {', '.join(result.tags)}", highlight=False
    )


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise FleetscopeError(f"--var {pair!r} must look like name=value, e.g. node=node-1.")
        variables[name] = value
    return variables


def results_table(results: list[PanelResult]) -> Table:
    table = Table(title="Dashboard queries against Prometheus")
    for column in ("Dashboard", "Panel", "Ref", "Series", "Status"):
        table.add_column(column, justify="right" if column == "Series" else "left")
    colours = {"ok": "green", "empty": "yellow", "error": "red"}
    for r in results:
        status = f"[{colours[r.status]}]{r.status}[/]"
        if r.error:
            status += f" {r.error}"
        table.add_row(r.dashboard_uid, r.panel_title, r.ref_id, str(r.series), status)
    return table


@app.command()
def check(
    prometheus: Annotated[
        str, typer.Option(help="Prometheus base URL, e.g. http://127.0.0.1:9090.")
    ],
    var: Annotated[
        list[str] | None,
        typer.Option(help="Set a dashboard variable, e.g. --var node=node-1 (default: All)."),
    ] = None,
    range_: Annotated[str, typer.Option("--range", help="Dashboard time range ($__range).")] = "1h",
    rate_interval: Annotated[str, typer.Option(help="Value of $__rate_interval.")] = "1m",
) -> None:
    """Run every panel query and variable query; exit 1 if any errors or returns nothing."""
    try:
        results = check_all(
            prometheus, _parse_vars(var or []), rate_interval=rate_interval, range_=range_
        )
    except FleetscopeError as exc:
        raise _fail(exc) from None
    out_console.print(results_table(results))
    bad = [r for r in results if not r.ok]
    if bad:
        err_console.print(
            f"{len(bad)} of {len(results)} queries returned no series or failed.", highlight=False
        )
        raise typer.Exit(1)
    out_console.print(f"all {len(results)} queries returned series.", highlight=False)


@app.command()
def rules(
    out: Annotated[Path, typer.Option(help="Rule file to write.")] = GENERATED_DIR
    / RULES_FILE_NAME,
    promtool: Annotated[
        bool, typer.Option(help="Validate with `promtool check rules` when it is on PATH.")
    ] = True,
) -> None:
    """Write the Prometheus alert rules (also written by `build`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_rules(), encoding="utf-8")
    out_console.print(f"wrote {out}", highlight=False)
    binary = shutil.which("promtool") if promtool else None
    if binary:
        done = subprocess.run([binary, "check", "rules", str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            err_console.print(done.stdout + done.stderr, highlight=False)
            raise typer.Exit(1)
        out_console.print("promtool check rules: ok", highlight=False)
