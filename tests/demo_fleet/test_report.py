"""The demo report: same queries as the dashboards, and what a reader sees in the terminal/JSON.

Formatting is checked on canned Prometheus API answers; tests/integration/test_demo.py checks
the numbers against a real fleet.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rich.console import Console

from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries
from fleetscope.demo import report
from fleetscope.demo.report import (
    CACHE_QUERY,
    CAPACITY_QUERIES,
    N_PLUS_ONE_QUERY,
    NODE_QUERIES,
    QUEUE_QUERIES,
    SLOW_QUERY_QUERIES,
    TASK_QUERIES,
    PrometheusAPI,
    build_report,
    render_report,
    resolve,
)
from fleetscope.errors import FleetscopeError

SLOW_FP = "0b935e54557d4982"
N1_FP = "3ff479879e087f9f"
SLOW_TEXT = (
    'SELECT "shop_review"."product_id", COUNT("shop_review"."id") FROM "shop_review" '
    'WHERE "shop_review"."created" >= ? GROUP BY "shop_review"."product_id"'
)
CONFIRM = "fleetscope.demo.shop.tasks.send_order_confirmation"
REPORT = "fleetscope.demo.shop.tasks.build_sales_report"
N1_TEXT = 'SELECT COUNT(*) AS "__count" FROM "shop_review" WHERE "shop_review"."product_id" = ?'


def series(value: float | str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1700000000.0, str(value)]}


def canned_results() -> dict[str, list[dict[str, Any]]]:
    """What /api/v1/query answers for each report query of a two-node demo."""
    text = {"db_query_summary": "SELECT shop_review", "db_query_text": SLOW_TEXT}
    return {
        "nodes.requests_per_s": [
            series(12.34, host_name="node-1"),
            series(6.5, host_name="node-2"),
        ],
        "nodes.p95_latency_s": [
            series(0.085, host_name="node-1"),
            series("NaN", host_name="node-2"),
        ],
        "nodes.cpu_cores": [series(0.42, host_name="node-1"), series(0.2, host_name="node-2")],
        "nodes.rss_bytes": [
            series(150 * 2**20, host_name="node-1"),
            series(2.5 * 2**30, host_name="node-2"),
        ],
        "nodes.requests": [series(741, host_name="node-1"), series(390, host_name="node-2")],
        "slow_queries.share_of_db_time": [
            series(0.9371, django_db_fingerprint=SLOW_FP, **text),
            series(0.02, django_db_fingerprint="aaaaaaaaaaaaaaaa"),
        ],
        "slow_queries.calls_per_s": [series(0.62, django_db_fingerprint=SLOW_FP)],
        "slow_queries.mean_s": [series(0.2883, django_db_fingerprint=SLOW_FP)],
        "slow_queries.p95_s": [series(1.5, django_db_fingerprint=SLOW_FP)],
        "slow_queries.slow_runs": [
            series(13.2, django_db_fingerprint=SLOW_FP),
            series(0, django_db_fingerprint="aaaaaaaaaaaaaaaa"),
        ],
        "n_plus_one": [
            series(
                41,
                http_route="/products/n-plus-one/",
                django_db_fingerprint=N1_FP,
                db_query_summary="SELECT shop_review",
                db_query_text=N1_TEXT,
            )
        ],
        "cache": [
            series(0.931, django_cache_alias="default", host_name="node-1"),
            series(0.5556, django_cache_alias="default", host_name="node-2"),
        ],
        "capacity.share_of_traffic": [
            series(0.5012, host_name="node-1"),
            series(0.4988, host_name="node-2"),
        ],
        "capacity.queue_p50_s": [
            series(0.0004, host_name="node-1"),
            series(0.180, host_name="node-2"),
        ],
        "capacity.queue_p95_s": [
            series(0.0021, host_name="node-1"),
            series(0.940, host_name="node-2"),
        ],
        "capacity.utilization": [
            series(0.312, host_name="node-1"),
            series(0.97, host_name="node-2"),
        ],
        "capacity.workers": [series(2, host_name="node-1"), series(1, host_name="node-2")],
        "tasks.runs": [series(120, celery_task_name=CONFIRM), series(9, celery_task_name=REPORT)],
        "tasks.runs_per_s": [
            series(2.0, celery_task_name=CONFIRM),
            series(0.15, celery_task_name=REPORT),
        ],
        "tasks.p95_duration_s": [
            series(0.042, celery_task_name=CONFIRM),
            series(1.8, celery_task_name=REPORT),
        ],
        "tasks.p95_queue_wait_s": [
            series(0.0123, celery_task_name=CONFIRM),
            series("NaN", celery_task_name=REPORT),
        ],
        "tasks.failures": [series(3, celery_task_name=CONFIRM)],
        "tasks.retries": [series(7, celery_task_name=CONFIRM)],
        "queues.waiting": [series(4, messaging_destination_name="celery")],
        "queues.peak": [
            series(31, messaging_destination_name="celery"),
            series(2, messaging_destination_name="reports"),
        ],
    }


def rendered(width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None)
    render_report(
        build_report(canned_results(), "http://127.0.0.1:9090", "60s", 1700000000.0), console
    )
    return console.export_text()


# -- the queries ------------------------------------------------------------------------------


def _dashboard_exprs() -> set[str]:
    return {query.expr for query in iter_queries(dashboard_models())}


@pytest.mark.parametrize(
    "key",
    ["requests_per_s", "p95_latency_s", "cpu_cores", "rss_bytes"],
)
def test_node_columns_are_the_fleet_dashboards_queries(key: str) -> None:
    assert NODE_QUERIES[key] in _dashboard_exprs()


@pytest.mark.parametrize("key", sorted(SLOW_QUERY_QUERIES))
def test_slow_query_columns_are_the_slow_query_tables_queries(key: str) -> None:
    assert SLOW_QUERY_QUERIES[key] in _dashboard_exprs()


@pytest.mark.parametrize("key", sorted(CAPACITY_QUERIES))
def test_capacity_columns_are_the_capacity_nodes_tables_queries(key: str) -> None:
    assert CAPACITY_QUERIES[key] in _dashboard_exprs()


def test_n_plus_one_rows_are_the_n_plus_one_tables_query() -> None:
    assert N_PLUS_ONE_QUERY in _dashboard_exprs()


@pytest.mark.parametrize("key", ["runs_per_s", "p95_duration_s", "p95_queue_wait_s"])
def test_task_columns_are_the_tasks_tables_queries(key: str) -> None:
    assert TASK_QUERIES[key] in _dashboard_exprs()


def test_waiting_messages_are_the_queue_depth_panels_query() -> None:
    assert QUEUE_QUERIES["waiting"] in _dashboard_exprs()


def test_cache_ratio_is_the_dashboards_hit_ratio_split_by_alias_too() -> None:
    by_node = CACHE_QUERY.replace("(django_cache_alias, host_name)", "(host_name)")

    assert by_node != CACHE_QUERY
    assert by_node in _dashboard_exprs()


def test_queries_are_sent_with_every_variable_at_all_and_the_window() -> None:
    for key, expr in report.all_queries().items():
        sent = resolve(expr, "90s")
        # No Grafana variable is left (`"$1"` is label_replace's capture group).
        assert not re.search(r"\$(?!1\")", sent), sent
        # Memory, the worker count and queue depth are gauges read at the report's time;
        # everything else spans the window.
        gauges = ("nodes.rss_bytes", "capacity.workers", "queues.waiting")
        assert ("[90s]" in sent) == (key not in gauges)

    assert 'job=~"demo-shop"' in resolve(NODE_QUERIES["requests_per_s"], "5m", "demo-shop")


def test_a_bad_window_is_refused_before_any_query() -> None:
    api = PrometheusAPI("http://127.0.0.1:1")
    try:
        with pytest.raises(FleetscopeError, match="not a duration"):
            report.fetch(api, "five minutes")
    finally:
        api.close()


def test_unreachable_prometheus_names_the_option_to_fix() -> None:
    from fleetscope.collector.process import free_port

    api = PrometheusAPI(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(FleetscopeError, match=r"Cannot reach Prometheus.*--prometheus"):
            api.query("up")
    finally:
        api.close()


# -- what the reader sees ----------------------------------------------------------------------


def _line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_nodes_table_shows_load_latency_cpu_and_memory_per_node() -> None:
    text = rendered()

    node_1 = _line_with(text, "node-1 ")
    assert re.search(r"741\b", node_1)
    assert "12.3/s" in node_1
    assert "85.0 ms" in node_1
    assert "0.42" in node_1
    assert "150.0 MiB" in node_1
    node_2 = _line_with(text, "node-2 ")
    assert "6.5/s" in node_2
    assert "2.5 GiB" in node_2
    # No samples for a quantile is "no value", never "nan".
    assert "nan" not in node_2.lower()


def test_slow_queries_show_the_fingerprint_its_numbers_and_normalized_statement() -> None:
    text = rendered()

    row = _line_with(text, f"{SLOW_FP} ")
    assert "SELECT shop_review" in row
    assert "93.7 %" in row
    assert "288.3 ms" in row
    assert "1.50 s" in row
    assert re.search(r"\b13\b", row)
    assert 'FROM "shop_review"' in text
    # A fingerprint that never crossed the slow threshold is not a slow query.
    assert "aaaaaaaaaaaaaaaa" not in text


def test_n_plus_one_rows_show_route_fingerprint_count_and_statement() -> None:
    text = rendered()

    row = _line_with(text, "/products/n-plus-one/")
    assert N1_FP in row
    assert "41" in row
    assert '"shop_review"."product_id" = ?' in text


def test_cache_hit_ratio_per_alias_and_node() -> None:
    text = rendered()

    cache_lines = [line for line in text.splitlines() if "default" in line]
    assert any("node-1" in line and "93.1 %" in line for line in cache_lines)
    assert any("node-2" in line and "55.6 %" in line for line in cache_lines)


def test_tasks_section_shows_throughput_latency_failures_and_queues() -> None:
    text = rendered()

    confirm = _line_with(text, "send_order_confirmation")
    for expected in ("120", "2.0/s", "42.0 ms", "12.3 ms"):
        assert expected in confirm
    assert re.search(r"\b3\b.*\b7\b", confirm)  # failures, then retries
    report_row = _line_with(text, "build_sales_report")
    assert "1.80 s" in report_row and "nan" not in report_row.lower()
    celery = _line_with(text, "celery ")
    assert re.search(r"\b4\b.*\b31\b", celery)  # waiting now, then the window's peak
    assert re.search(r"reports\W+-\W+2\b", text)  # nothing waiting in it now
    data = build_report(canned_results(), "http://p:9090", "60s", 1.0).to_dict()
    assert data["tasks"][0]["task"] == CONFIRM and data["tasks"][0]["failures"] == 3
    assert {q["queue"]: q["peak"] for q in data["queues"]} == {"celery": 31, "reports": 2}


def test_empty_sections_say_what_is_missing() -> None:
    console = Console(record=True, width=120, color_system=None)
    render_report(build_report({}, "http://p:9090", "5m", 0.0), console)

    text = console.export_text()

    assert "No node reported requests in this window." in text
    assert "No statement crossed the slow-query threshold" in text
    assert "No N+1 pattern detected" in text
    assert "No cache lookups" in text
    assert "No task ran in this window." in text


def test_labels_are_printed_as_they_are_never_as_rich_markup() -> None:
    # Label values are whatever nodes reported: quoted SQL names, route templates, node names.
    hostile = {
        "db_query_summary": "SELECT [bold]t[/bold]",
        "db_query_text": 'SELECT "[/]", "[link=http://evil]x[/link]" FROM [t]',
    }
    results = {
        "nodes.requests": [series(3, host_name="node-[/]<b>")],
        "n_plus_one": [
            series(5, http_route="/x/[red]<y>[/red]/", django_db_fingerprint=N1_FP, **hostile)
        ],
        "cache": [series(0.5, django_cache_alias="[i]default", host_name="node-[/]<b>")],
    }
    console = Console(record=True, width=200, color_system=None)
    render_report(build_report(results, "http://p:9090/[x]", "5m", 0.0, "[/]"), console)

    text = console.export_text()  # before: MarkupError, "closing tag '[/]' ... nothing to close"
    for verbatim in (
        "node-[/]<b>",
        "/x/[red]<y>[/red]/",
        "SELECT [bold]t[/bold]",
        '"[link=http://evil]x[/link]" FROM [t]',
        "[i]default",
        "http://p:9090/[x]",
    ):
        assert verbatim in text, verbatim


def test_statements_stay_readable_in_an_80_column_terminal() -> None:
    text = rendered(width=80)

    assert "SELECT shop_review" in text
    assert SLOW_FP in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_json_carries_the_same_numbers() -> None:
    data = json.loads(
        json.dumps(build_report(canned_results(), "http://127.0.0.1:9090", "60s", 1.0).to_dict())
    )

    assert data["window"] == "60s"
    nodes = {row["node"]: row for row in data["nodes"]}
    assert nodes["node-1"]["requests"] == 741
    assert nodes["node-1"]["requests_per_s"] == pytest.approx(12.34)
    assert nodes["node-2"]["p95_latency_s"] is None
    (slow,) = data["slow_queries"]
    assert slow["fingerprint"] == SLOW_FP
    assert slow["statement"] == SLOW_TEXT
    assert slow["slow_runs"] == pytest.approx(13.2)
    (n1,) = data["n_plus_one"]
    assert (n1["route"], n1["fingerprint"], n1["statement"]) == (
        "/products/n-plus-one/",
        N1_FP,
        N1_TEXT,
    )
    assert {(c["alias"], c["node"]): c["hit_ratio"] for c in data["cache"]} == {
        ("default", "node-1"): pytest.approx(0.931),
        ("default", "node-2"): pytest.approx(0.5556),
    }


def _capacity_line(text: str, node: str) -> str:
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Capacity")))
    return next(line for line in lines[start:] if f"{node} " in line)


def test_capacity_shows_the_balancers_split_queue_time_and_utilization_per_node() -> None:
    text = rendered()

    node_1, node_2 = _capacity_line(text, "node-1"), _capacity_line(text, "node-2")
    assert "50.1 %" in node_1 and "31.2 %" in node_1 and "2.1 ms" in node_1
    assert "49.9 %" in node_2 and "940.0 ms" in node_2 and "97.0 %" in node_2
    assert node_1.rstrip().endswith(" 2 │") and node_2.rstrip().endswith(" 1 │")  # workers


def test_without_a_balancer_capacity_says_where_share_and_queue_time_come_from() -> None:
    results = {
        k: v
        for k, v in canned_results().items()
        if not k.startswith(("capacity.share", "capacity.queue"))
    }
    console = Console(record=True, width=140, color_system=None)
    render_report(build_report(results, "http://127.0.0.1:9090", "60s", 1.7e9), console)
    text = console.export_text()

    node_2 = _capacity_line(text, "node-2")
    assert "97.0 %" in node_2
    assert "nan" not in node_2.lower()
    assert "No load balancer in front" in text


def test_json_has_the_capacity_rows() -> None:
    data = build_report(canned_results(), "http://p", "60s", 1.7e9).to_dict()

    assert data["capacity"][1] == {
        "node": "node-2",
        "share_of_traffic": 0.4988,
        "queue_p50_s": 0.18,
        "queue_p95_s": 0.94,
        "utilization": 0.97,
        "workers": 1,
    }
