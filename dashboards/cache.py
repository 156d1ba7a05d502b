"""Cache dashboard: hit ratio per alias and node, operation mix, miss spikes, cache latency."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import dashboard as dash_models

from . import metrics as m
from .panels import (
    CACHE_UID,
    assemble,
    cell,
    new_dashboard,
    node_detail_link,
    node_variable,
    section,
    series_query,
    service_variable,
    stat_panel,
    timeseries_panel,
)
from .queries import RATE_WINDOW, Selector, exact_rate, exact_ratio, quantile

CACHE = Selector().using("service", "node")
HITS = CACHE.where(**{m.CACHE_RESULT: "hit"})
MISSES = CACHE.where(**{m.CACHE_RESULT: "miss"})
# `none` results (set, delete, ...) are neither hits nor misses.
LOOKUPS = CACHE.matching(**{m.CACHE_RESULT: "hit|miss"})
# Miss spikes are read against this longer baseline.
BASELINE_WINDOW = "1h"


def hit_ratio(by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
    """hits / (hits + misses) of django_cache_operations_total, from exact counts."""
    return exact_ratio(m.CACHE_OPERATIONS, HITS, LOOKUPS, by, window)


def hit_ratio_stat() -> stat.Panel:
    return stat_panel(
        "Hit ratio",
        "hits / (hits + misses) over every alias of the selected nodes.",
        "percentunit",
        series_query(hit_ratio()),
        thresholds=((None, "red"), (0.5, "orange"), (0.8, "green")),
    )


def operations_rate_stat() -> stat.Panel:
    return stat_panel(
        "Cache operations/s",
        "All cache calls per second (get, set, delete, ...).",
        "ops",
        series_query(exact_rate(m.CACHE_OPERATIONS, CACHE)),
    )


def miss_rate_stat() -> stat.Panel:
    return stat_panel(
        "Misses/s",
        "Lookups that found nothing; each one usually costs a database round trip.",
        "ops",
        series_query(exact_rate(m.CACHE_OPERATIONS, MISSES)),
    )


def p95_latency_stat() -> stat.Panel:
    return stat_panel(
        "p95 cache latency",
        "95th percentile duration of one cache call.",
        "s",
        series_query(quantile(0.95, m.CACHE_DURATION, CACHE)),
        thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")),
    )


def hit_ratio_by_alias_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Hit ratio by alias",
        "A falling line after a deploy or a flush shows the cache being refilled.",
        "percentunit",
        [series_query(hit_ratio((m.CACHE_ALIAS,)), "{{django_cache_alias}}")],
    )


def hit_ratio_by_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Hit ratio by node",
        "One node below the others often has a local cache that was just restarted.",
        "percentunit",
        [series_query(hit_ratio((m.NODE,)), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def operations_by_operation_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Operations/s by operation",
        "The mix of cache calls (get, set, get_many, delete, ...).",
        "ops",
        [
            series_query(
                exact_rate(m.CACHE_OPERATIONS, CACHE, (m.CACHE_OPERATION,)),
                "{{django_cache_operation}}",
            )
        ],
        stacked=True,
    )


def misses_by_alias_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Miss spikes by alias",
        f"Misses per second against the {BASELINE_WINDOW} average (dashed): a spike well above "
        "its baseline is a cold or evicted cache.",
        "ops",
        [
            series_query(
                exact_rate(m.CACHE_OPERATIONS, MISSES, (m.CACHE_ALIAS,)), "{{django_cache_alias}}"
            ),
            series_query(
                exact_rate(m.CACHE_OPERATIONS, MISSES, (m.CACHE_ALIAS,), BASELINE_WINDOW),
                f"{{{{django_cache_alias}}}} {BASELINE_WINDOW} baseline",
            ),
        ],
    ).override_by_regexp(
        f".* {BASELINE_WINDOW} baseline",
        [_dashed_line()],
    )


def _dashed_line() -> dash_models.DynamicConfigValue:
    return dash_models.DynamicConfigValue(
        id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
    )


def latency_by_alias_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Cache latency p95 by alias and operation",
        "A slow cache is worse than none: compare with the query latency on the DB dashboard.",
        "s",
        [
            series_query(
                quantile(0.95, m.CACHE_DURATION, CACHE, (m.CACHE_ALIAS, m.CACHE_OPERATION)),
                "{{django_cache_alias}} {{django_cache_operation}}",
                exemplar=True,
            )
        ],
    )


def cache_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            CACHE_UID,
            "Fleetscope / Cache",
            "Django cache effectiveness across the fleet: hit ratio, misses, latency.",
            [service_variable(), node_variable()],
        ),
        section(
            "Overview",
            cell(hit_ratio_stat(), w=6, h=5),
            cell(operations_rate_stat(), w=6, h=5),
            cell(miss_rate_stat(), w=6, h=5),
            cell(p95_latency_stat(), w=6, h=5),
        ),
        section(
            "Hit ratio",
            cell(hit_ratio_by_alias_timeseries()),
            cell(hit_ratio_by_node_timeseries()),
        ),
        section(
            "Traffic",
            cell(operations_by_operation_timeseries()),
            cell(misses_by_alias_timeseries()),
        ),
        section("Latency", cell(latency_by_alias_timeseries(), w=24)),
    )
