"""`python -m benchmarks.ab --before PATH`: the in-process benchmark on two source trees.

What a change costs on the hot path: each configuration of `benchmarks.overhead` runs in
the tree before the change and in this one (or `--after`), alternating trees and
configurations round by round (A B, B A, ...), and the best batch of each is kept, as in
the full benchmark. A tree is another checkout of this repository (`git worktree add
/tmp/before <commit>`); its code is put first on `PYTHONPATH`, and a run that imported
any `telemetry` or `fleetscope` module from outside its tree fails, so the figures are
never a mix of both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .overhead import LABELS, QUERIES_PER_VIEW

HERE = Path(__file__).resolve().parent.parent
# Runs the benchmark worker, then reports modules of ours loaded from outside the tree.
_RUNNER = """
import atexit, os, runpy, sys
tree = os.environ["FLEETSCOPE_AB_TREE"]
def _check():
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("telemetry", "fleetscope"):
            path = getattr(module, "__file__", None) or ""
            if path and not os.path.realpath(path).startswith(tree):
                sys.stderr.write(f"FOREIGN MODULE {name} {path}\\n")
atexit.register(_check)
runpy.run_module("benchmarks.worker", run_name="__main__")
"""


def run_in_tree(tree: Path, config: str, requests: int, batches: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        FLEETSCOPE_BENCH_CONFIG=config,
        FLEETSCOPE_BENCH_REQUESTS=str(requests),
        FLEETSCOPE_BENCH_BATCHES=str(batches),
        FLEETSCOPE_AB_TREE=str(tree),
        PYTHONPATH=str(tree),
    )
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0 or "FOREIGN MODULE" in result.stderr:
        raise SystemExit(f"{config} in {tree} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1])["us_per_request"])


def _overhead(times: dict[str, float], bare: dict[str, float]) -> tuple[float, float, float]:
    """(µs per request, µs per query, µs on the mixed view) over bare Django."""
    request = times["/hello/"] - bare["/hello/"]
    query = (times["/sql/"] - bare["/sql/"] - request) / QUERIES_PER_VIEW
    return request, query, times["/mixed/"] - bare["/mixed/"]


def main(
    before: Annotated[Path, typer.Option(help="The tree before the change.")],
    after: Annotated[Path, typer.Option(help="The tree after the change.")] = HERE,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="benchmarks.overhead configs.")
    ] = None,
    after_only: Annotated[
        list[str] | None,
        typer.Option(help="Configurations only the tree after the change has (run there only)."),
    ] = None,
    rounds: Annotated[int, typer.Option(help="Alternating rounds.")] = 4,
    requests: Annotated[int, typer.Option(help="Requests per timed batch.")] = 1000,
    batches: Annotated[int, typer.Option(help="Timed batches per view and round.")] = 5,
) -> None:
    """Per-request and per-query overhead of configurations in two trees, alternating."""
    trees = {"before": before.resolve(), "after": after.resolve()}
    configs = ["bare", *(config or ["fleetscope"])]
    runs = [(label, c) for label in trees for c in configs]
    runs += [("after", c) for c in after_only or []]
    best: dict[tuple[str, str], dict[str, float]] = {}
    for index in range(rounds):
        order = runs if index % 2 == 0 else list(reversed(runs))
        for label, name in order:
            print(f"round {index + 1}/{rounds}: {name} ({label})", file=sys.stderr, flush=True)
            for view, us in run_in_tree(trees[label], name, requests, batches).items():
                slot = best.setdefault((label, name), {})
                slot[view] = min(us, slot.get(view, float("inf")))
    print(f"before: {trees['before']}\nafter: {trees['after']}\n")
    print(
        "| configuration | tree | hello µs/req | overhead µs/request | overhead µs/query "
        "| overhead on mixed view µs |"
    )
    print("|---|---|---|---|---|---|")
    for (label, name), times in best.items():
        if name == "bare":
            continue
        request, query, mixed = _overhead(times, best[(label, "bare")])
        print(
            f"| {LABELS.get(name, name)} | {label} | {times['/hello/']:.1f} | {request:.1f} "
            f"| {query:.2f} | {mixed:.1f} |"
        )


if __name__ == "__main__":
    typer.run(main)
