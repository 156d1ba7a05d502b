"""Capacity dashboard: does the fleet keep up? Queue time, worker utilization, the load
balancer's queue and traffic split, and throughput against concurrency (docs/capacity.md).

High utilization with growing queue time means the nodes are full: add nodes. Low
utilization with slow requests means the time goes elsewhere (database, cache, an API).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries, xychart
from grafana_foundation_sdk.models import dashboard as dash_models

from . import metrics as m
from .panels import (
    CAPACITY_UID,
    Column,
    KeyColumn,
    assemble,
    cell,
    new_dashboard,
    node_detail_link,
    node_variable,
    section,
    series_query,
    service_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
    xy_panel,
)
from .queries import (
    RANGE_WINDOW,
    RATE_WINDOW,
    Selector,
    aggregate,
    exact_rate,
    gauge,
    quantile,
    ratio,
    renamed_label,
    topk,
)

CAPACITY = Selector().using("service", "node")
# HAProxy's series: the backend is named after the service, each server after its node.
BALANCER = CAPACITY.relabeled(service=m.BALANCER_BACKEND, node=m.BALANCER_SERVER)
BACKEND = Selector().using("service").relabeled(service=m.BALANCER_BACKEND)

REQUESTS = f"{m.REQUEST_DURATION}_count"
REQUEST_SECONDS = f"{m.REQUEST_DURATION}_sum"
QUEUE_SECONDS = f"{m.QUEUE_TIME}_sum"
BY_NODE = (m.NODE,)
BY_SERVER = (m.BALANCER_BACKEND, m.BALANCER_SERVER)

UTILIZATION_THRESHOLDS = ((None, "green"), (0.7, "orange"), (0.85, "red"))
QUEUE_THRESHOLDS = ((None, "green"), (0.05, "orange"), (0.25, "red"))


def utilization(by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
    """Busy workers / workers: each worker's busy seconds per second, over the number of
    workers reporting. 1 means no worker was ever idle."""
    return ratio(
        exact_rate(m.WORKER_BUSY, CAPACITY, by, window), gauge(m.WORKER_BUSY, CAPACITY, by, "count")
    )


def concurrency(by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
    """Mean requests in the system, served or queued (Little's law: request-seconds, plus
    queue-seconds where the balancer stamps requests, per second)."""
    served = exact_rate(REQUEST_SECONDS, CAPACITY, by, window)
    queued = exact_rate(QUEUE_SECONDS, CAPACITY, by, window)
    return f"{served} + ({queued} or {served} * 0)"


def traffic_share(window: str = RATE_WINDOW) -> str:
    """Each server's share of its backend's responses, as the balancer distributed them."""
    responses = exact_rate(m.BALANCER_SERVER_RESPONSES, BALANCER, BY_SERVER, window)
    backend = exact_rate(m.BALANCER_SERVER_RESPONSES, BALANCER, (m.BALANCER_BACKEND,), window)
    return f"{responses} / ignoring ({m.BALANCER_SERVER}) group_left () ({backend} > 0)"


def traffic_share_per_node(window: str = RATE_WINDOW) -> str:
    """`traffic_share` keyed by `host_name`, to sit next to the nodes' own series."""
    return aggregate(renamed_label(traffic_share(window), m.NODE, m.BALANCER_SERVER), BY_NODE)


# -- overview -----------------------------------------------------------------------------


def utilization_stat() -> stat.Panel:
    return stat_panel(
        "Worker utilization",
        "Share of worker time spent serving requests across the selected nodes (busy "
        "workers / workers). Above ~85 % requests start to queue.",
        "percentunit",
        series_query(utilization()),
        thresholds=UTILIZATION_THRESHOLDS,
    )


def headroom_stat() -> stat.Panel:
    return stat_panel(
        "Headroom",
        "Idle worker time: 1 - utilization. `fleetscope capacity --prometheus URL` turns the "
        "fleet's history into a scalability curve and the throughput headroom it predicts.",
        "percentunit",
        series_query(f"1 - ({utilization()})"),
        thresholds=((None, "red"), (0.15, "orange"), (0.3, "green")),
    )


def queue_time_stat() -> stat.Panel:
    return stat_panel(
        "Queue time p95",
        "95th percentile of the time requests waited between the load balancer and a "
        "worker (X-Request-Start).",
        "s",
        series_query(quantile(0.95, m.QUEUE_TIME, CAPACITY)),
        thresholds=QUEUE_THRESHOLDS,
    )


def balancer_queue_stat() -> stat.Panel:
    return stat_panel(
        "Balancer queue",
        "Requests waiting in the load balancer's backend queue for a free server slot.",
        "none",
        series_query(gauge(m.BALANCER_BACKEND_QUEUE, BACKEND)),
        thresholds=((None, "green"), (1, "orange"), (10, "red")),
    )


# -- queue time ---------------------------------------------------------------------------


def queue_time_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queue time per node (p50 / p95)",
        "Time between the balancer's stamp and the worker picking the request up. A node "
        "whose queue time climbs while the others stay flat is the one that is full.",
        "s",
        [
            series_query(quantile(0.5, m.QUEUE_TIME, CAPACITY, BY_NODE), "p50 {{host_name}}"),
            series_query(
                quantile(0.95, m.QUEUE_TIME, CAPACITY, BY_NODE),
                "p95 {{host_name}}",
                exemplar=True,
            ),
        ],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def queue_time_by_route_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queue time p95 by route (top 10)",
        "Queueing hits every route of a full node alike; one route far above the others "
        "is routed to a different, busier backend.",
        "s",
        [
            series_query(
                topk(10, quantile(0.95, m.QUEUE_TIME, CAPACITY, (m.ROUTE,))), "{{http_route}}"
            )
        ],
    )


def rejected_stamps_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Rejected queue-time stamps",
        "Stamps dropped instead of recorded: `future` and `too_old` are clocks out of step "
        "between balancer and node (run NTP), `malformed` a header Fleetscope cannot read.",
        "reqps",
        [
            series_query(
                exact_rate(m.QUEUE_TIME_REJECTED, CAPACITY, (m.NODE, m.REJECTED_REASON)),
                "{{host_name}} {{reason}}",
            )
        ],
    )


# -- saturation ---------------------------------------------------------------------------


def utilization_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Worker utilization per node",
        "Busy workers / workers per node, time-weighted. Read it with queue time: high "
        "utilization and rising queue time means add nodes; low utilization and slow "
        "requests means the bottleneck is downstream.",
        "percentunit",
        [series_query(utilization(BY_NODE), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def busy_workers_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Busy workers and workers per node",
        "Workers serving a request, averaged over time (solid), against the workers the node "
        "runs (dashed).",
        "none",
        [
            series_query(exact_rate(m.WORKER_BUSY, CAPACITY, BY_NODE), "busy {{host_name}}"),
            series_query(gauge(m.WORKER_BUSY, CAPACITY, BY_NODE, "count"), "workers {{host_name}}"),
        ],
    ).override_by_regexp(
        "workers .*",
        [_dashed()],
    )


def nodes_table() -> table.Panel:
    return table_panel(
        "Nodes: traffic, queue time and utilization",
        "Over the selected range: each node's share of the balancer's traffic, its "
        "throughput, how long its requests queued and how busy its workers were.",
        [KeyColumn(m.NODE, "Node")],
        [
            Column("Share of traffic", traffic_share_per_node(RANGE_WINDOW), "percentunit"),
            Column("Requests/s", exact_rate(REQUESTS, CAPACITY, BY_NODE, RANGE_WINDOW), "reqps"),
            Column(
                "Queue time p50",
                quantile(0.5, m.QUEUE_TIME, CAPACITY, BY_NODE, RANGE_WINDOW),
                "s",
            ),
            Column(
                "Queue time p95",
                quantile(0.95, m.QUEUE_TIME, CAPACITY, BY_NODE, RANGE_WINDOW),
                "s",
            ),
            Column("Utilization", utilization(BY_NODE, RANGE_WINDOW), "percentunit"),
            Column("Workers", gauge(m.WORKER_BUSY, CAPACITY, BY_NODE, "count"), "none", decimals=0),
        ],
        sort_by="Utilization",
    )


# -- load balancer ------------------------------------------------------------------------


def backend_queue_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Balancer backend queue",
        "Requests the balancer holds because every server is at its connection limit.",
        "none",
        [
            series_query(
                gauge(m.BALANCER_BACKEND_QUEUE, BACKEND, (m.BALANCER_BACKEND,)), "{{proxy}}"
            )
        ],
    )


def traffic_share_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Share of traffic per server",
        "How the balancer split the responses between the nodes; with equal weights a "
        "smaller node gets the same share and queues first.",
        "percentunit",
        [series_query(traffic_share(), "{{server}}")],
        stacked=True,
    )


def server_response_time_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Response time per server (balancer's view)",
        "HAProxy's average over each server's last 1024 responses: what clients wait for, "
        "node queueing included.",
        "s",
        [
            series_query(
                gauge(m.BALANCER_SERVER_RESPONSE_TIME, BALANCER, BY_SERVER, "max"), "{{server}}"
            )
        ],
    )


def server_connections_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Connections per server",
        "Requests the balancer has sent to each server and not yet got an answer for.",
        "none",
        [
            series_query(
                gauge(m.BALANCER_SERVER_SESSIONS, BALANCER, (m.BALANCER_SERVER,)), "{{server}}"
            )
        ],
    )


# -- scalability --------------------------------------------------------------------------


def throughput_vs_concurrency_xy() -> xychart.Panel:
    return xy_panel(
        "Throughput vs concurrency",
        "Each point is one moment of the range: requests in the system (served or queued) "
        "against requests per second. Linear growth is headroom; a flattening curve is "
        "contention, a falling one coherency cost (docs/capacity.md).",
        series_query(concurrency(), "concurrency"),
        series_query(exact_rate(REQUESTS, CAPACITY), "throughput"),
        x_unit="none",
        y_unit="reqps",
    )


def throughput_and_concurrency_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Throughput and concurrency",
        "The two axes of the scatter over time: requests/s and requests in the system.",
        "none",
        [
            series_query(exact_rate(REQUESTS, CAPACITY), "requests/s"),
            series_query(concurrency(), "concurrency"),
        ],
    )


def _dashed() -> dash_models.DynamicConfigValue:
    return dash_models.DynamicConfigValue(
        id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
    )


def capacity_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            CAPACITY_UID,
            "Fleetscope / Capacity",
            "Does the fleet scale? Queue time, worker utilization, the load balancer, and "
            "throughput against concurrency.",
            [service_variable(), node_variable()],
        ),
        section(
            "Overview",
            cell(utilization_stat(), w=6, h=5),
            cell(headroom_stat(), w=6, h=5),
            cell(queue_time_stat(), w=6, h=5),
            cell(balancer_queue_stat(), w=6, h=5),
        ),
        section(
            "Queue time",
            cell(queue_time_per_node_timeseries()),
            cell(queue_time_by_route_timeseries()),
        ),
        section(
            "Saturation",
            cell(utilization_per_node_timeseries()),
            cell(busy_workers_timeseries()),
            cell(nodes_table(), w=24, h=8),
        ),
        section(
            "Load balancer",
            cell(backend_queue_timeseries(), w=6),
            cell(traffic_share_timeseries(), w=6),
            cell(server_response_time_timeseries(), w=6),
            cell(server_connections_timeseries(), w=6),
        ),
        section(
            "Scalability",
            cell(throughput_vs_concurrency_xy()),
            cell(throughput_and_concurrency_timeseries()),
            cell(rejected_stamps_timeseries(), w=24, h=6),
        ),
    )
