"""The selector helper renders every label matcher, and the dashboards use nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fleetscope.dashboards
from fleetscope.dashboards import metrics as m
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries
from fleetscope.dashboards.queries import Selector, quantile, rate, ratio
from fleetscope.dashboards.rules import alerts

PACKAGE = Path(fleetscope.dashboards.__file__).parent
# A PromQL label matcher written by hand: `{label="...` / `{label=~"...` etc.
HAND_WRITTEN_MATCHER = re.compile(r'\{\s*\w+\s*(=~|!~|!=|=)\s*\\?"')
CONTRACT_SERIES = frozenset(m.SERIES)


def test_selector_renders_variables_then_fixed_matchers() -> None:
    sel = Selector().using("service", "node").matching(http_response_status_code="5..")
    assert sel("up") == 'up{job=~"$service", host_name=~"$node", http_response_status_code=~"5.."}'
    assert Selector()("up") == "up"
    assert Selector().excluding(http_route="unmatched")("x") == 'x{http_route!="unmatched"}'
    assert Selector().using("service", "route").without("route")("x") == 'x{job=~"$service"}'


def test_selector_escapes_quotes_in_values() -> None:
    assert (
        Selector().where(db_query_summary='say "hi"')("x") == 'x{db_query_summary="say \\"hi\\""}'
    )


def test_selector_rejects_unknown_variables() -> None:
    with pytest.raises(ValueError, match="colour"):
        Selector().using("colour")


def test_query_helpers_shape() -> None:
    sel = Selector().using("service")
    assert rate("c_total", sel, ("host_name",)) == (
        'sum by (host_name) (rate(c_total{job=~"$service"}[$__rate_interval]))'
    )
    assert quantile(0.95, "h", sel).startswith(
        "histogram_quantile(0.95, sum by (le) (rate(h_bucket{"
    )
    assert ratio("a", "b") == "(a or b * 0) / (b > 0)"


def test_dashboard_modules_never_write_label_matchers_themselves() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "queries.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if HAND_WRITTEN_MATCHER.search(line) or '=~"$' in line:
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, "label matchers must come from queries.Selector:\n" + "\n".join(offenders)


def _series_references(expr: str) -> list[tuple[str, str]]:
    """(series name, its matcher block or '') for every contract series in `expr`."""
    found = []
    for match in re.finditer(r"\b([a-z_]+)(\{[^}]*\})?", expr):
        if match.group(1) in CONTRACT_SERIES:
            found.append((match.group(1), match.group(2) or ""))
    return found


def test_every_series_in_every_panel_is_scoped_by_the_service_variable() -> None:
    checked = 0
    for query in iter_queries(dashboard_models()):
        if query.panel_title == "$service":  # the variable that lists the services
            continue
        for name, matchers in _series_references(query.expr):
            checked += 1
            assert 'job=~"$service"' in matchers, f"{query.panel_title}: {name} is not scoped"
            if not query.is_variable:
                where = f"{query.dashboard_uid} / {query.panel_title}: {name}"
                assert 'host_name=~"$node"' in matchers, f"{where} ignores $node"
    assert checked > 50


def test_alert_rules_use_no_dashboard_variables() -> None:
    for alert in alerts():
        assert "$" not in alert.expr, alert.name
        assert _series_references(alert.expr), alert.name


# Functions removed or renamed in Prometheus 3, and matchers on `le`/`quantile` values,
# which Prometheus 3 normalises to floats ("1" becomes "1.0") so exact strings stop matching.
PROMETHEUS_3_DENYLIST = (
    re.compile(r"\bholt_winters\s*\("),
    re.compile(r"\ble\s*(=|!=|=~|!~)\s*\""),
    re.compile(r"\bquantile\s*(=|!=|=~|!~)\s*\""),
)


def test_no_expression_uses_syntax_prometheus_3_removed() -> None:
    exprs = [q.expr for q in iter_queries(dashboard_models())] + [a.expr for a in alerts()]
    for expr in exprs:
        for pattern in PROMETHEUS_3_DENYLIST:
            assert not pattern.search(expr), f"{pattern.pattern} in {expr}"


def test_balancer_series_are_scoped_by_service_and_node_through_proxy_and_server() -> None:
    checked = 0
    for query in iter_queries(dashboard_models()):
        for match in re.finditer(r"\b(haproxy_[a-z_]+)(\{[^}]*\})?", query.expr):
            checked += 1
            matchers = match.group(2) or ""
            assert 'proxy=~"$service"' in matchers, f"{query.panel_title}: {match.group(1)}"
            if match.group(1).startswith("haproxy_server_"):
                assert 'server=~"$node"' in matchers, f"{query.panel_title}: {match.group(1)}"
    assert checked >= 5
