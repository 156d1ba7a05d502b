"""`python -m benchmarks.overhead`: per-request and per-query overhead, side by side, in one run.

Each configuration runs in its own process (Django settings are process-wide); rounds
alternate the configurations so drift on a shared machine hits them all alike, and the
best batch of each is kept. Overhead = configuration minus bare Django on the same view.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

CONFIGS = (
    "bare",
    "bare-auth",
    "fleetscope",
    "fleetscope-stamped",
    "fleetscope-sampled",
    "fleetscope-sampled-otlp",
    "fleetscope-silk",
    "otel",
    "otel-sampled",
    "otel-sampled-otlp",
    "django-prometheus",
)
LABELS = {
    "bare": "bare Django",
    "bare-auth": "bare Django + sessions/auth",
    "fleetscope": "Fleetscope (unsampled)",
    "fleetscope-stamped": "Fleetscope (unsampled, X-Request-Start on every request)",
    "fleetscope-sampled": "Fleetscope (sampled)",
    "fleetscope-sampled-otlp": "Fleetscope (sampled, spans OTLP-encoded)",
    "fleetscope-silk": "Fleetscope + Silk, unprofiled (vs sessions/auth baseline)",
    "otel": "stock OTel (unsampled)",
    "otel-sampled": "stock OTel (sampled)",
    "otel-sampled-otlp": "stock OTel (sampled, spans OTLP-encoded)",
    "django-prometheus": "django-prometheus",
}
QUERIES_PER_VIEW = 10
# Overhead is measured against the bare configuration with the same Django middleware.
BASELINES = {"fleetscope-silk": "bare-auth"}
console = Console(stderr=True)


@dataclass
class Overhead:
    config: str
    request_us: float
    query_us: float
    mixed_us: float


def run_config(config: str, requests: int, batches: int) -> dict[str, float]:
    env = dict(
        os.environ,
        FLEETSCOPE_BENCH_CONFIG=config,
        FLEETSCOPE_BENCH_REQUESTS=str(requests),
        FLEETSCOPE_BENCH_BATCHES=str(batches),
    )
    for name in [n for n in env if n.startswith("OTEL_")]:
        del env[name]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark worker for {config} failed:\n{result.stderr[-3000:]}")
    line = result.stdout.strip().splitlines()[-1]
    return dict(json.loads(line)["us_per_request"])


def measure(rounds: int, requests: int, batches: int) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {}
    for round_index in range(rounds):
        order = CONFIGS[round_index % len(CONFIGS) :] + CONFIGS[: round_index % len(CONFIGS)]
        for config in order:
            console.print(f"[dim]round {round_index + 1}/{rounds}: {LABELS[config]}…")
            for view, us in run_config(config, requests, batches).items():
                slot = best.setdefault(config, {})
                slot[view] = min(us, slot.get(view, float("inf")))
    return best


def overheads(best: dict[str, dict[str, float]]) -> list[Overhead]:
    rows = []
    for config in CONFIGS:
        if config.startswith("bare"):
            continue
        bare = best[BASELINES.get(config, "bare")]
        times = best[config]
        request = times["/hello/"] - bare["/hello/"]
        sql = times["/sql/"] - bare["/sql/"]
        rows.append(
            Overhead(
                config,
                request,
                (sql - request) / QUERIES_PER_VIEW,
                times["/mixed/"] - bare["/mixed/"],
            )
        )
    return rows


def verdicts(rows: list[Overhead]) -> list[tuple[str, float, float, bool]]:
    """(target, measured, limit, met) for the targets of the telemetry issue."""
    by = {row.config: row for row in rows}
    fs, fss, silk, prom, otel_s = (
        by["fleetscope"],
        by["fleetscope-sampled"],
        by["fleetscope-silk"],
        by["django-prometheus"],
        by["otel-sampled"],
    )
    targets = [
        ("unsampled per-request <= 1/3 of django-prometheus", fs.request_us, prom.request_us / 3),
        ("unsampled per-query <= 1/2 of django-prometheus", fs.query_us, prom.query_us / 2),
        ("sampled per-request <= 1/2 of stock OTel sampled", fss.request_us, otel_s.request_us / 2),
        ("sampled per-query <= 1/2 of stock OTel sampled", fss.query_us, otel_s.query_us / 2),
        (
            "with Silk, unprofiled per-request <= 1/3 of django-prometheus",
            silk.request_us,
            prom.request_us / 3,
        ),
        (
            "with Silk, unprofiled per-query <= 1/2 of django-prometheus",
            silk.query_us,
            prom.query_us / 2,
        ),
    ]
    return [(name, measured, limit, measured <= limit) for name, measured, limit in targets]


def markdown(best: dict[str, dict[str, float]], rows: list[Overhead]) -> str:
    lines = [
        "| configuration | hello µs/req | 10 queries µs/req | 10 queries + 2 cache µs/req "
        "| overhead µs/request | overhead µs/query | overhead on mixed view µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for baseline in ("bare", "bare-auth"):
        bare = best[baseline]
        lines.append(
            f"| {LABELS[baseline]} | {bare['/hello/']:.1f} | {bare['/sql/']:.1f} | "
            f"{bare['/mixed/']:.1f} | - | - | - |"
        )
    for row in rows:
        t = best[row.config]
        lines.append(
            f"| {LABELS[row.config]} | {t['/hello/']:.1f} | {t['/sql/']:.1f} | "
            f"{t['/mixed/']:.1f} | {row.request_us:.1f} | {row.query_us:.2f} | "
            f"{row.mixed_us:.1f} |"
        )
    lines += ["", "| target | measured | limit | met |", "|---|---|---|---|"]
    for name, measured, limit, met in verdicts(rows):
        lines.append(
            f"| {name} | {measured:.2f} µs | {limit:.2f} µs | {'yes' if met else '**no**'} |"
        )
    return "\n".join(lines)


def main(
    rounds: Annotated[int, typer.Option(help="Alternating rounds over all configurations.")] = 3,
    requests: Annotated[int, typer.Option(help="Requests per timed batch.")] = 1000,
    batches: Annotated[int, typer.Option(help="Timed batches per view and round.")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="Raw results file.")] = None,
) -> None:
    """Measure Fleetscope's overhead against bare Django, stock OTel and django-prometheus."""
    best = measure(rounds, requests, batches)
    rows = overheads(best)
    table = Table(title="Overhead over bare Django (best of alternating rounds)")
    for column in (
        "configuration",
        "µs/request",
        "µs/query",
        "mixed view µs",
        "x django-prometheus (req / query)",
    ):
        table.add_column(column, justify="right")
    prom = next(r for r in rows if r.config == "django-prometheus")
    for row in rows:
        table.add_row(
            LABELS[row.config],
            f"{row.request_us:.1f}",
            f"{row.query_us:.2f}",
            f"{row.mixed_us:.1f}",
            f"{row.request_us / prom.request_us:.2f} / {row.query_us / prom.query_us:.2f}",
        )
    Console().print(table)
    for name, measured, limit, met in verdicts(rows):
        mark = "[green]met" if met else "[red]NOT met"
        Console().print(f"{mark}[/] {name}: {measured:.2f} µs (limit {limit:.2f} µs)")
    print()
    print(markdown(best, rows))
    if json_out:
        json_out.write_text(
            json.dumps({"best": best, "rows": [r.__dict__ for r in rows]}, indent=2)
        )


if __name__ == "__main__":
    typer.run(main)
