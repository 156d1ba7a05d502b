"""How `fleetscope demo scale-test` and `fleetscope capacity` print a scalability fit."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from . import usl
from .report import MISSING, format_ratio, format_seconds
from .scaletest import ScaleResult


def format_number(value: float | None, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.3g}{suffix}" if abs(value) < 1000 else f"{value:,.0f}{suffix}"


def fit_summary(fit: usl.Fit, assessment: usl.Assessment, scope: str = "per node") -> list[str]:
    """The fitted law and what it predicts, in words."""
    lines = [
        f"USL fit {scope}: λ = {fit.lam:.3g} req/s, σ = {fit.sigma:.3g} (contention), "
        f"κ = {fit.kappa:.3g} (coherency); R² = {fit.r_squared:.3f} over {fit.points} points, "
        f"concurrency {fit.n_min:.3g} to {fit.n_max:.3g}.",
    ]
    peak = fit.peak_concurrency
    if peak is not None:
        lines.append(
            f"Predicted peak {scope}: {fit.peak_throughput:.3g} req/s at a concurrency of "
            f"N* = {peak:.3g}; beyond it throughput falls."
        )
    else:
        lines.append(
            f"No peak: throughput approaches λ/σ = {format_number(fit.peak_throughput)} req/s."
        )
    if assessment.conclusive:
        lines.append("The measured points span the curve: the fit can be read as it stands.")
    else:
        lines += [f"Caution: {note}" for note in assessment.notes]
    return lines


def render_scale_test(result: ScaleResult, console: Console, command_s: float) -> None:
    table = Table(
        title=f"Scale test: {result.nodes} nodes behind HAProxy, figures per node from Prometheus",
        title_justify="left",
    )
    for column in (
        "Users/node",
        "Concurrency",
        "Throughput",
        "USL fit",
        "p95 latency",
        "p95 queue",
        "Utilization",
    ):
        table.add_column(column, justify="right")
    for step in result.steps:
        n = result.per_node(step.concurrency)
        fitted = float(result.fit.predict(n)) if result.fit is not None and n else None
        table.add_row(
            str(step.users_per_node),
            format_number(n),
            format_number(result.per_node(step.throughput), "/s"),
            format_number(fitted, "/s"),
            format_seconds(step.p95_latency_s),
            format_seconds(step.p95_queue_s),
            format_ratio(step.utilization),
        )
    console.print(table)
    if result.fit is None or result.assessment is None:
        console.print(f"[red]No fit:[/] {result.error}", highlight=False)
        return
    for line in fit_summary(result.fit, result.assessment):
        console.print(line, highlight=False)
    headroom = result.headroom()
    if headroom.get("headroom") is not None:
        console.print(
            f"Headroom at {headroom['current_rps']:.3g} req/s ({headroom['current_source']}): "
            f"{headroom['headroom']:.0%} of the fleet's predicted peak of "
            f"{headroom['fleet_peak_rps']:.3g} req/s is unused "
            f"({headroom['headroom_rps']:.3g} req/s more).",
            highlight=False,
        )
    console.print(
        f"Plot {result.plot}; result {result.plot and result.plot.replace('.png', '.json')}. "
        f"Took {command_s:.0f} s ({result.duration_s:.0f} s to the fit).",
        highlight=False,
    )
