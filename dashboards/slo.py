"""SLO dashboard: error budget left and burn rates of every objective in the SLO file, read
from the recording rules `dashboards/objectives.py` generates (load them into Prometheus)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries

from . import metrics as m
from .objectives import BURN_ALERTS, BURN_RATE, OBJECTIVE, PERIOD, REQUESTS_IN, SLO_LABEL
from .panels import (
    SLO_UID,
    Column,
    KeyColumn,
    assemble,
    cell,
    new_dashboard,
    section,
    series_query,
    service_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import Selector, aggregate

SLOS = Selector().using("service")
LEGEND = "{{job}} {{http_route}} {{slo}}"
FAST, MEDIUM, SLOW = BURN_ALERTS


def _burn(window: str) -> str:
    return SLOS(BURN_RATE.format(window=window))


def budget_remaining() -> str:
    """1 - the share of the period's error budget spent (negative once overspent)."""
    return f"1 - {_burn(PERIOD)}"


def lowest_budget_stat() -> stat.Panel:
    return stat_panel(
        "Error budget left (lowest)",
        "The objective closest to missing its target over the SLO period (30 days unless the "
        "SLO file says otherwise): 100 % untouched, 0 % spent, below 0 missed.",
        "percentunit",
        series_query(aggregate(budget_remaining(), op="min")),
        thresholds=((None, "red"), (0.25, "orange"), (0.5, "green")),
    )


def fastest_burn_stat() -> stat.Panel:
    return stat_panel(
        "Fastest burn (1 h)",
        f"The highest burn rate over the last hour: 1 spends the budget exactly over the "
        f"period; {FAST.factor('30d'):g} over {FAST.long} and {FAST.short} pages.",
        "none",
        series_query(aggregate(_burn(FAST.long), op="max")),
        thresholds=((None, "green"), (1, "orange"), (FAST.factor("30d"), "red")),
    )


def objectives_table() -> table.Panel:
    return table_panel(
        "Objectives",
        "Every objective of the SLO file with traffic: its target, the error budget left "
        "over the period and the burn rate over each alert window.",
        [
            KeyColumn(m.SERVICE, "Service"),
            KeyColumn(m.ROUTE, "Route"),
            KeyColumn(SLO_LABEL, "SLI"),
        ],
        [
            Column("Target", SLOS(OBJECTIVE), "percentunit", 3),
            Column("Budget left", budget_remaining(), "percentunit", 1),
            Column(f"Burn {FAST.short}", _burn(FAST.short), "short", 2),
            Column(f"Burn {FAST.long}", _burn(FAST.long), "short", 2),
            Column(f"Burn {MEDIUM.long}", _burn(MEDIUM.long), "short", 2),
            Column(f"Burn {SLOW.long}", _burn(SLOW.long), "short", 2),
            Column(f"Requests {FAST.long}", SLOS(REQUESTS_IN.format(window=FAST.long)), "short", 0),
        ],
        sort_by="Budget left",
    )


def budget_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Error budget left over the period",
        "How much of each objective's error budget is left; a steady slope down is a slow "
        "burn, a cliff an incident.",
        "percentunit",
        [series_query(budget_remaining(), LEGEND)],
    )


def burn_rate_timeseries(alert_index: int) -> timeseries.Panel:
    alert = BURN_ALERTS[alert_index]
    factor = alert.factor("30d")
    severity = "pages" if alert.severity == "critical" else "opens a ticket"
    return timeseries_panel(
        f"Burn rate, {alert.long} window",
        f"Bad requests over the last {alert.long} relative to the error budget (1 = on "
        f"budget). Above {factor:g} here and over {alert.short} {severity} (30-day period).",
        "short",
        [series_query(_burn(alert.long), LEGEND)],
    )


def slo_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            SLO_UID,
            "Fleetscope / SLOs",
            "Availability and latency objectives: error budget left and how fast it burns.",
            [service_variable()],
        ),
        section(
            "Error budget",
            cell(lowest_budget_stat(), w=6, h=5),
            cell(fastest_burn_stat(), w=6, h=5),
            cell(objectives_table(), w=24, h=9),
        ),
        section(
            "Burn rate",
            cell(budget_timeseries(), w=24),
            cell(burn_rate_timeseries(0), w=8),
            cell(burn_rate_timeseries(1), w=8),
            cell(burn_rate_timeseries(2), w=8),
        ),
    )
