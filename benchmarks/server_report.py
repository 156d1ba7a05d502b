"""Summaries of the real-server benchmark: medians over repetitions, ratios, tables, plot, docs."""

from __future__ import annotations

import platform
import re
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .server_matrix import BY_NAME, VIEWS

BEGIN = "<!-- bench-server:begin (written by `make bench-server`; edits here are replaced) -->"
END = "<!-- bench-server:end -->"
PEERS = (
    "Django",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-django",
    "django-prometheus",
    "django-silk",
    "gunicorn",
    "uvicorn",
)


@dataclass(frozen=True)
class Run:
    """One wrk run of one view of one configuration in one repetition."""

    config: str
    view: str
    repetition: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Lifetime:
    """One server start: what the collector received while it ran (warm-up included)."""

    config: str
    repetition: int
    requests: int
    spans: int
    metric_points: int


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    config: str
    view: str
    rps: Spread
    p50_ms: Spread
    p99_ms: Spread
    ratio: Spread | None  # req/s over bare Django's in the same repetition


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)
    lifetimes: list[Lifetime] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "runs": [asdict(r) for r in self.runs],
            "lifetimes": [asdict(lt) for lt in self.lifetimes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        return cls(
            [Run(**r) for r in data["runs"]],
            [Lifetime(**lt) for lt in data.get("lifetimes", [])],
            dict(data.get("meta", {})),
        )


def summarize(results: Results) -> list[Summary]:
    by_key: dict[tuple[str, str], dict[int, Run]] = {}
    for run in results.runs:
        by_key.setdefault((run.config, run.view), {})[run.repetition] = run
    summaries = []
    for (config, view), runs in by_key.items():
        baseline = by_key.get((BY_NAME[config].baseline, view), {})
        ratios = [
            run.rps / baseline[rep].rps
            for rep, run in runs.items()
            if rep in baseline and baseline[rep].rps > 0
        ]
        summaries.append(
            Summary(
                config,
                view,
                Spread.of([r.rps for r in runs.values()]),
                Spread.of([r.p50_ms for r in runs.values()]),
                Spread.of([r.p99_ms for r in runs.values()]),
                Spread.of(ratios) if ratios else None,
            )
        )
    order = {name: i for i, name in enumerate(BY_NAME)}
    views = list(VIEWS)
    summaries.sort(key=lambda s: (views.index(s.view), order[s.config]))
    return summaries


def targets(summaries: list[Summary]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the issue's targets that this run measured."""
    by = {(s.config, s.view): s for s in summaries}
    rows: list[tuple[str, str, bool]] = []

    def ratio(config: str, view: str) -> float | None:
        summary = by.get((config, view))
        return summary.ratio.median if summary and summary.ratio else None

    for config, view, floor in (
        ("fleetscope-10", "mixed", 0.95),
        ("fleetscope-10", "hello", 0.90),
        ("fleetscope-100", "mixed", 0.75),
    ):
        measured = ratio(config, view)
        if measured is not None:
            rows.append(
                (
                    f"{config} req/s ≥ {floor:.2f} x bare on {view}",
                    f"{measured:.3f}",
                    measured >= floor,
                )
            )
    for view in ("hello", "mixed"):
        fs, bare, prom = (by.get((c, view)) for c in ("fleetscope-10", "bare", "django-prometheus"))
        if fs and bare:
            limit = bare.p99_ms.median * 1.25
            rows.append(
                (
                    f"fleetscope-10 p99 ≤ bare p99 + 25% on {view}",
                    f"{fs.p99_ms.median:.2f} ms (limit {limit:.2f})",
                    fs.p99_ms.median <= limit,
                )
            )
        if fs and prom:
            rows.append(
                (
                    f"fleetscope-10 p99 < django-prometheus p99 on {view}",
                    f"{fs.p99_ms.median:.2f} vs {prom.p99_ms.median:.2f} ms",
                    fs.p99_ms.median < prom.p99_ms.median,
                )
            )
        silk, alone = ratio("fleetscope-silk", view), ratio("fleetscope-10", view)
        if silk is not None and alone is not None:
            rows.append(
                (
                    f"fleetscope-silk ratio within 0.02 of fleetscope-10 on {view}",
                    f"{silk:.3f} vs {alone:.3f}",
                    abs(silk - alone) <= 0.02,
                )
            )
    return rows


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    versions = {"Python": platform.python_version()}
    for name in PEERS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions,
    }


def _fmt(spread: Spread, digits: int) -> str:
    return f"{spread.median:.{digits}f} ({spread.low:.{digits}f}-{spread.high:.{digits}f})"


def markdown(results: Results, plot_name: str | None = None) -> str:
    meta = results.meta
    summaries = summarize(results)
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    lines = [
        f"{meta.get('date', '?')}: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores "
        f"({meta.get('pinning', 'no pinning')}); {versions}; wrk {meta.get('wrk', '?')}, "
        f"collector {meta.get('collector', '?')}.",
        "",
        f"Matrix: {meta.get('repetitions', '?')} repetitions x {meta.get('configs', '?')} "
        f"configurations (alternating) x their views, {meta.get('warmup_s', '?')} s warm-up per "
        f"server start, {meta.get('duration_s', '?')} s per view, {meta.get('connections', '?')} "
        f"connections; {meta.get('elapsed_s', 0) / 60:.1f} minutes in all. Figures are "
        "median (min-max) across repetitions; the ratio is req/s over bare Django's on the same "
        "server in the same repetition.",
    ]
    if meta.get("note"):
        lines += ["", f"**Conditions:** {meta['note']}"]
    if plot_name:
        lines += ["", f"![Ratio to bare Django and p99 per configuration]({plot_name})"]
    for view, (path, what) in VIEWS.items():
        rows = [s for s in summaries if s.view == view]
        if not rows:
            continue
        lines += [
            "",
            f"**{view}** (`{path}`, {what})",
            "",
            "| configuration | req/s | ratio to bare | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for s in rows:
            ratio = _fmt(s.ratio, 3) if s.ratio and s.config != BY_NAME[s.config].baseline else "1"
            lines.append(
                f"| {BY_NAME[s.config].label} | {_fmt(s.rps, 0)} | {ratio} | "
                f"{_fmt(s.p50_ms, 2)} | {_fmt(s.p99_ms, 2)} |"
            )
    exported = export_rows(results)
    if exported:
        lines += [
            "",
            "What the collector received per request served (warm-up included), median over "
            "server starts: the proof that export ran during the measurement.",
            "",
            "| configuration | spans per request | metric points per server start |",
            "|---|---|---|",
            *(f"| {label} | {spans:.2f} | {points:.0f} |" for label, spans, points in exported),
        ]
    checks = targets(summaries)
    if checks:
        lines += ["", "| target (from the issue) | measured (median) | met |", "|---|---|---|"]
        lines += [
            f"| {name} | {value} | {'yes' if met else '**no**'} |" for name, value, met in checks
        ]
    return "\n".join(lines)


def export_rows(results: Results) -> list[tuple[str, float, float]]:
    rows = []
    for config in BY_NAME.values():
        lifetimes = [lt for lt in results.lifetimes if lt.config == config.name]
        if not lifetimes or not config.exports_otlp:
            continue
        spans = statistics.median(lt.spans / max(lt.requests, 1) for lt in lifetimes)
        points = statistics.median(lt.metric_points for lt in lifetimes)
        rows.append((config.label, spans, points))
    return rows


def write_docs(doc: Path, block: str) -> None:
    """Replace the figures between the markers (append a section when they are missing)."""
    text = doc.read_text() if doc.exists() else ""
    fenced = f"{BEGIN}\n{block}\n{END}"
    pattern = re.compile(re.escape(BEGIN.split(" (", 1)[0]) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: fenced, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n## Real-server figures\n\n" + fenced + "\n"
    doc.write_text(text)


def plot(results: Results, path: Path) -> None:
    """Ratio to bare and p99 per configuration, one bar per view, min-max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = summarize(results)
    configs = [c for c in BY_NAME if any(s.config == c for s in summaries)]
    views = [v for v in VIEWS if any(s.view == v for s in summaries)]
    by = {(s.config, s.view): s for s in summaries}
    height = 0.8 / max(len(views), 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.55 * len(configs) + 2), sharey=True)
    for i, view in enumerate(views):
        ys, ratios, ratio_err, p99s, p99_err = [], [], [], [], []
        for row, config in enumerate(configs):
            s = by.get((config, view))
            if s is None:
                continue
            ys.append(row + (i - (len(views) - 1) / 2) * height)
            r = s.ratio or Spread(1.0, 1.0, 1.0)
            ratios.append(r.median)
            ratio_err.append((r.median - r.low, r.high - r.median))
            p99s.append(s.p99_ms.median)
            p99_err.append((s.p99_ms.median - s.p99_ms.low, s.p99_ms.high - s.p99_ms.median))
        left.barh(
            ys, ratios, height, xerr=list(zip(*ratio_err, strict=True)), label=view, capsize=2
        )
        right.barh(ys, p99s, height, xerr=list(zip(*p99_err, strict=True)), label=view, capsize=2)
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_xlabel("req/s ÷ bare Django (median, min-max)")
    right.set_xscale("log")
    right.set_xlabel("p99 latency, ms (log scale)")
    left.set_yticks(range(len(configs)), [BY_NAME[c].label for c in configs])
    left.invert_yaxis()
    left.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Real-server overhead, {results.meta.get('date', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
