"""`benchmarks.ab` and `benchmarks.sql_seam`: each measures what it says, on the right code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import ab

ROOT = Path(__file__).resolve().parents[2]


def test_overhead_subtracts_the_same_trees_bare_run() -> None:
    bare = {"/hello/": 50.0, "/sql/": 1500.0, "/mixed/": 1510.0}
    times = {"/hello/": 60.0, "/sql/": 1560.0, "/mixed/": 1590.0}
    assert ab._overhead(times, bare) == (10.0, 5.0, 80.0)


def test_a_run_that_loads_our_code_from_outside_its_tree_fails(tmp_path: Path) -> None:
    # A tree holding only the benchmark worker: `telemetry` comes from elsewhere.
    tree = tmp_path / "tree"
    (tree / "benchmarks").mkdir(parents=True)
    (tree / "benchmarks" / "__init__.py").write_text("")
    (tree / "benchmarks" / "worker.py").write_text(
        "import json, telemetry\nprint(json.dumps({'us_per_request': {}}))\n"
    )
    with pytest.raises(SystemExit, match="FOREIGN MODULE telemetry"):
        ab.run_in_tree(tree, "bare", 1, 1)


def test_a_run_in_a_tree_reports_its_workers_figures(tmp_path: Path) -> None:
    # The committed tree, as `git worktree add` would give it (an archive takes no lock, so
    # the matrix's sessions can run this side by side).
    tree = tmp_path / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    figures = ab.run_in_tree(tree, "bare", 20, 1)
    assert set(figures) == {"/hello/", "/sql/", "/mixed/"}
    assert all(us > 0 for us in figures.values())


def test_sql_seam_benchmark_measures_the_three_ways() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.sql_seam"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 3
    per_query = [float(row.split("|")[2]) for row in rows]
    assert all(us > 0 for us in per_query)
