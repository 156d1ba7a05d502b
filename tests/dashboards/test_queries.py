"""The selector helper renders every label matcher, and the dashboards use nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fleetscope.dashboards
from fleetscope.dashboards import metrics as m
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries
from fleetscope.dashboards.objectives import load_objectives, slo_rule_groups
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


# `rate(x[w])` / `increase(x[w])` with the selector and window they read.
COUNTER_FUNCTION = re.compile(r"(?<![\w])(rate|increase)\(([^\[()]+)\[([^\]]+)\]\)")


def _inexact_counter_reads(expr: str) -> list[str]:
    """`rate`/`increase` calls other than a histogram quantile's bucket rates."""
    found = []
    for match in COUNTER_FUNCTION.finditer(expr):
        function, selector, _ = match.groups()
        name = selector.split("{")[0].strip()
        if function == "rate" and name.endswith("_bucket"):
            continue
        found.append(match.group(0))
    return found


def test_every_count_and_ratio_reads_counters_through_the_exact_helpers() -> None:
    exprs = [(q.dashboard_uid, q.panel_title, q.expr) for q in iter_queries(dashboard_models())]
    exprs += [("rules", a.name, a.expr) for a in alerts()]
    slo_groups = slo_rule_groups(load_objectives())["groups"]
    exprs += [
        ("slo rules", r.get("record", r.get("alert")), r["expr"])
        for g in slo_groups
        for r in g["rules"]
    ]
    offenders = [
        f"{where} / {title}: {call}"
        for where, title, expr in exprs
        for call in _inexact_counter_reads(expr)
    ]
    assert not offenders, (
        "counts must use queries.exact_increase / exact_rate / exact_ratio:\n"
        + "\n".join(offenders)
    )


def test_quantiles_keep_prometheus_rate_of_buckets() -> None:
    assert _inexact_counter_reads(quantile(0.5, "h", Selector())) == []
    assert _inexact_counter_reads(rate("c_total", Selector())) == [
        "rate(c_total[$__rate_interval])"
    ]


# Functions removed or renamed in Prometheus 3, and exact matchers on `le`/`quantile` values,
# which Prometheus 3 normalises to floats ("1" becomes "1.0") so exact strings stop matching.
PROMETHEUS_3_DENYLIST = (
    re.compile(r"\bholt_winters\s*\("),
    re.compile(r"\ble\s*(=|!=|!~)\s*\""),
    re.compile(r"\bquantile\s*(=|!=|=~|!~)\s*\""),
)
LE_REGEX = re.compile(r'\ble\s*=~\s*"((?:[^"\\]|\\.)*)"')


def _all_exprs() -> list[str]:
    exprs = [q.expr for q in iter_queries(dashboard_models())] + [a.expr for a in alerts()]
    groups = slo_rule_groups(load_objectives())["groups"]
    return exprs + [rule["expr"] for group in groups for rule in group["rules"]]


def test_no_expression_uses_syntax_prometheus_3_removed() -> None:
    for expr in _all_exprs():
        for pattern in PROMETHEUS_3_DENYLIST:
            assert not pattern.search(expr), f"{pattern.pattern} in {expr}"


def test_bucket_regexes_match_both_prometheus_2_and_3_spellings() -> None:
    checked = 0
    for expr in _all_exprs():
        for match in LE_REGEX.finditer(expr):
            regex = match.group(1).replace("\\\\", "\\")  # the PromQL string's content
            number = float(re.sub(r"[^0-9.]", "", regex.split("(")[0].replace("\\", "")))
            spellings = {f"{number:g}", repr(number)}  # "1" and "1.0"
            assert all(re.fullmatch(regex, s) for s in spellings), (regex, spellings)
            checked += 1
    assert checked > 0


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
