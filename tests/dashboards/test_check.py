"""Every dashboard query against a real Prometheus holding a synthetic fleet: each parses,
each returns series, and the numbers on the key panels are the right ones."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import check_all, duration_seconds, iter_queries, substitute
from fleetscope.dashboards.cli import app
from fleetscope.dashboards.rules import alerts
from tests.dashboards import fleet_data

pytestmark = pytest.mark.integration

# The synthetic fleet's samples end when the fixture starts: rate windows this long still
# hold them while this module runs on a slow, shared machine (instant selectors see them
# for Prometheus' 5 minute lookback anyway).
RATE_INTERVAL = "4m"


def _query(url: str, expr: str, at: float | None = None) -> dict[str, Any]:
    params: dict[str, str | float] = {"query": expr}
    if at is not None:
        params["time"] = at
    answer = httpx.get(f"{url}/api/v1/query", params=params, timeout=30).json()
    assert isinstance(answer, dict)
    return answer


def _panel_expr(uid: str, title: str, ref_id: str = "A") -> str:
    for query in iter_queries(dashboard_models()):
        if (query.dashboard_uid, query.panel_title, query.ref_id) == (uid, title, ref_id):
            return substitute(query.expr, rate_interval=RATE_INTERVAL)
    raise AssertionError(f"no panel {title!r} in {uid}")


def _values(answer: dict[str, Any]) -> list[float]:
    assert answer["status"] == "success", answer
    return [float(sample["value"][1]) for sample in answer["data"]["result"]]


def test_every_panel_and_rule_expression_parses(fleet_prometheus: str) -> None:
    exprs = [
        substitute(q.expr, rate_interval=RATE_INTERVAL)
        for q in iter_queries(dashboard_models())
        if not q.is_variable
    ]
    exprs += [alert.expr for alert in alerts()]
    for expr in exprs:
        answer = _query(fleet_prometheus, expr)
        assert answer.get("errorType") != "bad_data", f"{answer.get('error')}\n{expr}"
        assert answer["status"] == "success", answer


def test_every_panel_and_variable_returns_series_for_a_healthy_fleet(fleet_prometheus: str) -> None:
    results = check_all(fleet_prometheus, rate_interval=RATE_INTERVAL)
    assert len(results) == len(list(iter_queries(dashboard_models())))
    failing = [
        f"{r.dashboard_uid} / {r.panel_title} {r.ref_id}: {r.status} {r.error}"
        for r in results
        if not r.ok
    ]
    assert not failing, "\n".join(failing)


def test_node_variable_lists_every_node_that_reported(fleet_prometheus: str) -> None:
    results = check_all(fleet_prometheus, rate_interval=RATE_INTERVAL)
    node = next(
        r for r in results if r.dashboard_uid == "fleetscope-fleet" and r.panel_title == "$node"
    )
    assert node.series == len(fleet_data.NODES)


def test_fleet_overview_shows_the_node_that_stopped_reporting(fleet_prometheus: str) -> None:
    reporting = _values(
        _query(fleet_prometheus, _panel_expr("fleetscope-fleet", "Nodes reporting"))
    )
    stopped = _values(
        _query(fleet_prometheus, _panel_expr("fleetscope-fleet", "Nodes stopped reporting"))
    )
    assert reporting == [len(fleet_data.ALIVE_NODES)]
    assert stopped == [1]


def test_cache_hit_ratio_is_hits_over_hits_and_misses(fleet_prometheus: str) -> None:
    [ratio] = _values(_query(fleet_prometheus, _panel_expr("fleetscope-cache", "Hit ratio")))
    hits, misses = fleet_data.CACHE_HITS_PER_SECOND, fleet_data.CACHE_MISSES_PER_SECOND
    assert ratio == pytest.approx(hits / (hits + misses), rel=0.01)


def test_version_panels_compare_the_releases_that_serve(fleet_prometheus: str) -> None:
    answer = _query(fleet_prometheus, _panel_expr("fleetscope-fleet", "Requests/s by version"))
    rates = {s["metric"]["service_version"]: float(s["value"][1]) for s in answer["data"]["result"]}
    # node-1 runs 1.4.1, node-2 1.4.2 with the same load; node-3 (1.4.1) has stopped. (The
    # synthetic data ends when the fixture starts, so absolute rates fall as tests run.)
    assert set(rates) == {"1.4.1", "1.4.2"}
    assert rates["1.4.1"] == pytest.approx(rates["1.4.2"], rel=0.01)
    assert rates["1.4.1"] > 0
    errors = _query(fleet_prometheus, _panel_expr("fleetscope-fleet", "5xx ratio by version"))
    ratios = [float(s["value"][1]) for s in errors["data"]["result"]]
    assert ratios == pytest.approx([0.1 / 3.3] * 2, rel=0.01)


def test_slow_query_table_carries_the_statement_text(fleet_prometheus: str) -> None:
    answer = _query(
        fleet_prometheus, _panel_expr("fleetscope-db", "Slow queries across the fleet", "A")
    )
    rows = {s["metric"]["django_db_fingerprint"]: s for s in answer["data"]["result"]}
    assert set(rows) == set(fleet_data.STATEMENTS)
    for fingerprint, (summary, text) in fleet_data.STATEMENTS.items():
        assert rows[fingerprint]["metric"]["db_query_text"] == text
        assert rows[fingerprint]["metric"]["db_query_summary"] == summary
    shares = {fp: float(s["value"][1]) for fp, s in rows.items()}
    assert sum(shares.values()) == pytest.approx(1.0, rel=0.01)
    assert max(shares, key=lambda fp: shares[fp]) == fleet_data.SLOW_FINGERPRINT


def test_node_dashboard_scopes_to_one_node(fleet_prometheus: str) -> None:
    results = check_all(fleet_prometheus, {"node": "node-1"}, rate_interval=RATE_INTERVAL)
    workers = next(
        r
        for r in results
        if r.dashboard_uid == "fleetscope-node" and r.panel_title == "Workers reporting"
    )
    assert workers.ok
    [count] = _values(_query(fleet_prometheus, workers.expr))
    assert count == fleet_data.WORKERS_PER_NODE


def test_check_command_exits_non_zero_when_panels_are_empty(fleet_prometheus: str) -> None:
    result = CliRunner().invoke(
        app, ["check", "--prometheus", fleet_prometheus, "--var", "service=no-such-service"]
    )
    assert result.exit_code == 1
    assert "empty" in result.output
    assert "returned no series or failed" in result.output


def test_check_command_passes_on_a_healthy_fleet(fleet_prometheus: str) -> None:
    result = CliRunner().invoke(
        app, ["check", "--prometheus", fleet_prometheus, "--rate-interval", RATE_INTERVAL]
    )
    assert result.exit_code == 0, result.output
    assert "queries returned series" in result.output


def test_check_reports_a_broken_expression_as_an_error(fleet_prometheus: str) -> None:
    broken = {
        "uid": "broken",
        "templating": {"list": []},
        "panels": [
            {
                "title": "Typo",
                "type": "timeseries",
                "targets": [{"refId": "A", "expr": "sum(rate(x[$__rate_interval])"}],
            }
        ],
    }
    [result] = check_all(fleet_prometheus, dashboards=[broken])
    assert result.status == "error"
    assert "bad_data" in result.error


def _by_label(answer: dict[str, Any], label: str) -> dict[str, float]:
    assert answer["status"] == "success", answer
    return {s["metric"][label]: float(s["value"][1]) for s in answer["data"]["result"]}


def test_capacity_panels_read_utilization_share_and_balancer_queue(
    fleet_prometheus: str, fleet_end: int
) -> None:
    def panel(title: str) -> dict[str, Any]:
        # Asked at the time of the last sample: minutes later (a loaded CI machine) the window
        # would hold less growth and the exact figure below would drift.
        return _query(fleet_prometheus, _panel_expr("fleetscope-capacity", title), at=fleet_end)

    utilization = _by_label(panel("Worker utilization per node"), "host_name")
    share = _by_label(panel("Share of traffic per server"), "server")
    [queue] = _values(panel("Balancer backend queue"))

    # exact_rate extrapolates nothing: asked at the last sample, the window holds between
    # (window - step) and window seconds of growth, whatever the step's phase.
    window = duration_seconds(RATE_INTERVAL)
    low = fleet_data.WORKER_UTILIZATION * (window - fleet_data.STEP_SECONDS) / window
    assert set(utilization) == set(fleet_data.ALIVE_NODES)
    for node, value in utilization.items():
        assert low * 0.99 <= value <= fleet_data.WORKER_UTILIZATION * 1.01, (node, value)
    sent = {node: fleet_data.BALANCER_RESPONSES_PER_SECOND[node] for node in fleet_data.ALIVE_NODES}
    assert share == pytest.approx({n: v / sum(sent.values()) for n, v in sent.items()}, rel=0.01)
    assert queue == fleet_data.BALANCER_QUEUE


def test_the_nodes_table_joins_the_balancer_share_onto_the_nodes(fleet_prometheus: str) -> None:
    expr = _panel_expr("fleetscope-capacity", "Nodes: traffic, queue time and utilization", "A")
    share = _by_label(_query(fleet_prometheus, expr), "host_name")

    # Over the hour node-3 still served for 50 minutes: every node has its share.
    assert set(share) == set(fleet_data.NODES)
    assert sum(share.values()) == pytest.approx(1.0, rel=0.01)
    assert share["node-1"] > share["node-2"]
