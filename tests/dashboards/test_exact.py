"""Counts on the dashboards and in the report equal the source counters over the window, also
for series born inside it, series that live for one export interval and restarted workers.

Each test evaluates a real panel's expression with `promtool test rules` (the Prometheus
engine of the installed prometheus package) on synthetic series one minute apart. With
Prometheus' plain `increase()` a series' first sample counts for nothing, so the patterns
below vanish or shrink (docs/dashboards.md, "Exact counts").
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries, substitute
from fleetscope.dashboards.queries import Selector, exact_increase, exact_rate
from tests.dashboards.conftest import promtool

WINDOW = "5m"
EVAL_AT = "10m"  # the window is 5m..10m
N_PLUS_ONE = "django_db_n_plus_one_total"
CACHE = "django_cache_operations_total"
WORKER = 'job="shop",host_name="node-1",http_route="/books/"'


def _panel_expr(uid: str, title: str, ref_id: str = "A") -> str:
    for query in iter_queries(dashboard_models()):
        if (query.dashboard_uid, query.panel_title, query.ref_id) == (uid, title, ref_id):
            return substitute(query.expr, rate_interval=WINDOW, range_=WINDOW)
    raise AssertionError(f"no panel {title!r} on {uid}")


def _evaluate(
    tmp_path: Path, expr: str, series: dict[str, str], expected: list[dict[str, Any]]
) -> None:
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [{"expr": expr, "eval_time": EVAL_AT, "exp_samples": expected}],
            }
        ],
    }
    path = tmp_path / "exact-test.yml"
    path.write_text(yaml.safe_dump(spec, width=100_000))
    done = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _n_plus_one(fingerprint: str, instance: str = "node-1/1") -> str:
    return f'{N_PLUS_ONE}{{{WORKER},instance="{instance}",django_db_fingerprint="{fingerprint}"}}'


def test_n_plus_one_table_counts_bursts_born_inside_the_window(tmp_path: Path) -> None:
    expr = _panel_expr("fleetscope-db", "N+1 detections by route and query")
    _evaluate(
        tmp_path,
        expr,
        {
            # Counting before the window began: 10 per minute, 50 of them inside it.
            _n_plus_one("steady"): "0+10x10",
            # First detected at minute 7 (4 detections), exported on until the end.
            _n_plus_one("born"): "_x7 4 4 4 4",
            # A worker that detected 10, exported once and exited (the series goes stale).
            _n_plus_one("burst"): "_x6 10 stale",
        },
        [
            {"labels": f'{{http_route="/books/",django_db_fingerprint="{fp}"}}', "value": value}
            for fp, value in (("steady", 50), ("born", 4), ("burst", 10))
        ],
    )


def test_a_restarted_worker_is_counted_once_and_never_negative(tmp_path: Path) -> None:
    # The old worker counted 10 more inside the window before it exited; its successor (a
    # new pid, so a new instance label) started from zero and counted 20.
    expr = _panel_expr("fleetscope-db", "N+1 detections (range)")
    _evaluate(
        tmp_path,
        expr,
        {
            _n_plus_one("a", "node-1/100"): "0+10x6 stale",
            _n_plus_one("a", "node-1/200"): "_x7 5 10 15 20",
        },
        [{"labels": "{}", "value": 30}],
    )


def test_a_counter_reset_under_the_same_labels_is_neither_negative_nor_doubled(
    tmp_path: Path,
) -> None:
    expr = exact_increase(N_PLUS_ONE, Selector(), ("django_db_fingerprint",), WINDOW)
    _evaluate(
        tmp_path,
        expr,
        {
            # 50 at the window's start, 60 at minute 6, then a process restarts under the
            # same labels and counts 30: 10 + 30 happened inside the window. The count is
            # the new process' 30: the old one's last 10 are lost, nothing is negative.
            _n_plus_one("inside"): "0+10x6 0+10x3",
            # Restarted between the window's start (50) and its first sample: 40, exact.
            _n_plus_one("at_start"): "0+10x5 0+10x4",
            # Restarted, then counted past the window's start value: 80 - 50 = 30 of the
            # 10 + 80 that happened; an undercount, as for `inside`.
            _n_plus_one("overtook"): "0+10x6 0+35x2 80",
        },
        [
            {"labels": '{django_db_fingerprint="inside"}', "value": 30},
            {"labels": '{django_db_fingerprint="at_start"}', "value": 40},
            {"labels": '{django_db_fingerprint="overtook"}', "value": 30},
        ],
    )


def test_hit_ratio_uses_exact_counts_of_an_alias_first_used_mid_window(tmp_path: Path) -> None:
    def ops(result: str) -> str:
        return (
            f'{CACHE}{{job="shop",host_name="node-1",instance="node-1/1",'
            f'django_cache_alias="sessions",django_cache_operation="get",'
            f'django_cache_result="{result}"}}'
        )

    # The alias is first used at minute 8: 1 miss, then 7 hits in all.
    _evaluate(
        tmp_path,
        _panel_expr("fleetscope-cache", "Hit ratio by alias"),
        {ops("miss"): "_x8 1 1 1", ops("hit"): "_x8 3 5 7"},
        [{"labels": '{django_cache_alias="sessions"}', "value": 7 / 8}],
    )


def test_exact_rate_is_the_exact_count_per_second_of_the_window(tmp_path: Path) -> None:
    expr = exact_rate(N_PLUS_ONE, Selector(), (), WINDOW)
    _evaluate(
        tmp_path, expr, {_n_plus_one("born"): "_x7 6 6 6 6"}, [{"labels": "{}", "value": 0.02}]
    )
