"""Shared pieces of every Fleetscope dashboard: datasources, panel factories, variables,
links, and the layout helper that turns sections of sized panels into grid positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries, xychart
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models import prometheus as prometheus_models
from grafana_foundation_sdk.models import xychart as xychart_models

from . import metrics as m
from .queries import Selector, label_values

PROMETHEUS_UID = "fleetscope-prometheus"
TRACES_UID = "fleetscope-traces"
PROMETHEUS = dash_models.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

FLEET_UID = "fleetscope-fleet"
DATABASE_UID = "fleetscope-db"
CACHE_UID = "fleetscope-cache"
NODE_UID = "fleetscope-node"
SLO_UID = "fleetscope-slo"
CAPACITY_UID = "fleetscope-capacity"
TASKS_UID = "fleetscope-tasks"

TAG = "fleetscope"
# Deploy annotations (`fleetscope dashboards annotate`) carry this tag; every dashboard shows
# them through Grafana's built-in annotation datasource.
DEPLOY_TAG = "fleetscope-deploy"
GRAFANA_BUILTIN = dash_models.DataSourceRef(type_val="grafana", uid="-- Grafana --")
SILK_BASE_URL = "http://127.0.0.1:8001"
# Where the telemetry app serves Silk profiles; `${silk_base_url}` is a dashboard
# variable, `${__value.raw}` the clicked cell. One place to change when the views move.
# Every value a link takes from the data is URL-encoded explicitly (`:percentencode`): Grafana
# before 10 interpolates data links raw, and a label value is whatever a node reported.
SILK_PATH = "/telemetry/silk"
SILK_TRACE_URL = f"${{silk_base_url}}{SILK_PATH}/trace/${{__value.raw:percentencode}}"
SILK_QUERY_URL = f"${{silk_base_url}}{SILK_PATH}/query/${{__value.raw:percentencode}}"
SILK_ROUTE_URL = f"${{silk_base_url}}{SILK_PATH}/route/?route=${{__value.raw:percentencode}}"

PanelBuilder: TypeAlias = cogbuilder.Builder[dash_models.Panel]
Thresholds: TypeAlias = Sequence[tuple[float | None, str]]

GREEN_ONLY: Thresholds = ((None, "green"),)


# --- queries -----------------------------------------------------------------------


def series_query(expr: str, legend: str = "", *, exemplar: bool = False) -> prometheus.Dataquery:
    """A range query for time series panels; exemplars carry trace_id for latency."""
    query = prometheus.Dataquery().expr(expr).range().datasource(PROMETHEUS)
    if legend:
        query = query.legend_format(legend)
    return query.exemplar(exemplar)


def table_query(expr: str) -> prometheus.Dataquery:
    """An instant query over the dashboard range, shaped as a table."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .instant()
        .format(prometheus_models.PromQueryFormat.TABLE)
        .datasource(PROMETHEUS)
    )


def _ref_ids(queries: Sequence[prometheus.Dataquery]) -> list[prometheus.Dataquery]:
    if len(queries) > 26:
        raise ValueError("a panel takes at most 26 queries (refIds A..Z)")
    return [q.ref_id(chr(ord("A") + i)) for i, q in enumerate(queries)]


def _thresholds(steps: Thresholds) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(dash_models.ThresholdsMode.ABSOLUTE)
        .steps([dash_models.Threshold(value=value, color=color) for value, color in steps])
    )


# --- panels ------------------------------------------------------------------------


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    stacked: bool = False,
    links: Sequence[dash.DashboardLink] = (),
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(list(_ref_ids(queries)))
        .unit(unit)
        .min(0)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
            .sort_by("Mean")
            .sort_desc(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if links:
        panel = panel.data_links(list(links))
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    query: prometheus.Dataquery,
    *,
    thresholds: Thresholds = GREEN_ONLY,
    links: Sequence[dash.DashboardLink] = (),
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(list(_ref_ids([query])))
        .unit(unit)
        .thresholds(_thresholds(thresholds))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if links:
        panel = panel.links(list(links))
    return panel


def xy_panel(
    title: str,
    description: str,
    x: prometheus.Dataquery,
    y: prometheus.Dataquery,
    *,
    x_unit: str,
    y_unit: str,
) -> xychart.Panel:
    """A scatter of one query against another at the same timestamps: both are joined on
    time into one frame whose first number field is X (Grafana's automatic mapping)."""
    x_name = x.build().legend_format or "x"
    y_name = y.build().legend_format or "y"
    return (
        xychart.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(list(_ref_ids([x, y])))
        .with_transformation(
            dash_models.DataTransformerConfig(
                id_val="joinByField", options={"byField": "Time", "mode": "outer"}
            )
        )
        .with_transformation(
            dash_models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {x_name: 0, y_name: 1},
                },
            )
        )
        .mapping(xychart_models.SeriesMapping.AUTO)
        .show(xychart_models.XYShowMode.POINTS)
        .point_size(xychart.XychartFieldConfigPointSize().fixed(5))
        .min(0)
        .override_by_name(x_name, [dash_models.DynamicConfigValue(id_val="unit", value=x_unit)])
        .override_by_name(y_name, [dash_models.DynamicConfigValue(id_val="unit", value=y_unit)])
    )


@dataclass(frozen=True)
class Column:
    """One value column of a table panel: its header, query and unit."""

    header: str
    expr: str
    unit: str = "short"
    decimals: int | None = None


@dataclass(frozen=True)
class KeyColumn:
    """A label column of a table panel, optionally with data links on its cells."""

    label: str
    header: str
    links: Sequence[dash.DashboardLink] = ()


def table_panel(
    title: str,
    description: str,
    keys: Sequence[KeyColumn],
    columns: Sequence[Column],
    *,
    sort_by: str,
) -> table.Panel:
    """Instant queries merged into one row per key, e.g. one row per fingerprint."""
    queries = _ref_ids([table_query(c.expr) for c in columns])
    renames = {
        f"Value #{q.build().ref_id}": c.header for q, c in zip(queries, columns, strict=True)
    }
    renames.update({k.label: k.header for k in keys})
    order = [k.label for k in keys] + [f"Value #{q.build().ref_id}" for q in queries]
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(list(queries))
        .with_transformation(dash_models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dash_models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {name: i for i, name in enumerate(order)},
                    "renameByName": renames,
                },
            )
        )
        .sort_by([common_builders.TableSortByFieldState().display_name(sort_by).desc(True)])
        .filterable(True)
    )
    for column in columns:
        properties = [dash_models.DynamicConfigValue(id_val="unit", value=column.unit)]
        if column.decimals is not None:
            properties.append(dash_models.DynamicConfigValue("decimals", column.decimals))
        panel = panel.override_by_name(column.header, properties)
    for key in keys:
        if key.links:
            links = [link.build().to_json() for link in key.links]
            panel = panel.override_by_name(
                key.header, [dash_models.DynamicConfigValue(id_val="links", value=links)]
            )
    return panel


# --- links -------------------------------------------------------------------------


def data_link(title: str, url: str, *, new_tab: bool = False) -> dash.DashboardLink:
    return dash.DashboardLink(title).url(url).target_blank(new_tab)


def dashboard_url(uid: str, keep: Sequence[str] = (), **set_vars: str) -> str:
    """A link to another Fleetscope dashboard keeping the time range and `keep` variables,
    setting `set_vars` (values may be Grafana interpolations such as ${__value.raw})."""
    params = [f"${{{var}:queryparam}}" for var in keep]
    params += [f"var-{name}={value}" for name, value in set_vars.items()]
    params.append("${__url_time_range}")
    return f"/d/{uid}/?{'&'.join(params)}"


def node_detail_link(node_value: str) -> dash.DashboardLink:
    return data_link("Node detail", dashboard_url(NODE_UID, ["service"], node=node_value))


def dashboard_link(title: str, uid: str, tooltip: str) -> dash.DashboardLink:
    """A link in a dashboard's header to another Fleetscope dashboard, keeping time and
    variables."""
    return (
        dash.DashboardLink(title)
        .type(dash_models.DashboardLinkType.LINK)
        .url(f"/d/{uid}/")
        .tooltip(tooltip)
        .include_vars(True)
        .keep_time(True)
    )


def fleetscope_dashboards_link() -> dash.DashboardLink:
    return (
        dash.DashboardLink("Fleetscope")
        .type(dash_models.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )


# --- variables ---------------------------------------------------------------------


def query_variable(
    name: str, label: str, query: str, *, include_all: bool = True
) -> dash.QueryVariable:
    variable = (
        dash.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(PROMETHEUS)
        .refresh(dash_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_models.VariableSort.NATURAL_ASC)
        .multi(include_all)
        .include_all(include_all)
    )
    if include_all:
        # `.*` rather than a list of every value: short queries, and nodes that join
        # after the variable was loaded are included.
        variable = variable.all_value(".*").current(
            dash_models.VariableOption(selected=True, text="All", value="$__all")
        )
    return variable


def service_variable() -> dash.QueryVariable:
    return query_variable("service", "Service", label_values(m.HEARTBEAT, m.SERVICE, Selector()))


def node_variable(*, include_all: bool = True) -> dash.QueryVariable:
    query = label_values(m.HEARTBEAT, m.NODE, Selector().using("service"))
    return query_variable("node", "Node", query, include_all=include_all)


def instance_variable() -> dash.QueryVariable:
    query = label_values(m.HEARTBEAT, m.WORKER, Selector().using("service", "node"))
    return query_variable("instance", "Worker", query)


def route_variable() -> dash.QueryVariable:
    query = label_values(m.HEARTBEAT, m.ROUTE, Selector().using("service", "node"))
    return query_variable("route", "Route", query)


def silk_base_url_variable() -> dash.TextBoxVariable:
    return (
        dash.TextBoxVariable("silk_base_url")
        .label("Silk base URL")
        .description("Where a node serves the telemetry app's Silk views (for profile links).")
        .default_value(SILK_BASE_URL)
        .current(dash_models.VariableOption(selected=True, text=SILK_BASE_URL, value=SILK_BASE_URL))
    )


# --- dashboard and layout ----------------------------------------------------------


def new_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: Sequence[cogbuilder.Builder[dash_models.VariableModel]],
    links: Sequence[dash.DashboardLink] = (),
) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, "generated"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dash_models.DashboardCursorSync.CROSSHAIR)
        .links([fleetscope_dashboards_link(), *links])
        .variables(list(variables))
        .annotation(deploy_annotation())
    )


def deploy_annotation() -> dash.AnnotationQuery:
    """Deploys posted by `fleetscope dashboards annotate`, as vertical markers on every panel."""
    return (
        dash.AnnotationQuery()
        .name("Deploys")
        .datasource(GRAFANA_BUILTIN)
        .enable(True)
        .icon_color("purple")
        .target(dash.AnnotationTarget().type("tags").tags([DEPLOY_TAG]).match_any(False).limit(100))
    )


@dataclass(frozen=True)
class Cell:
    panel: PanelBuilder
    width: int
    height: int


@dataclass(frozen=True)
class Section:
    title: str
    cells: tuple[Cell, ...]


def cell(panel: PanelBuilder, w: int = 12, h: int = 8) -> Cell:
    return Cell(panel, w, h)


def section(title: str, *cells: Cell) -> Section:
    return Section(title, cells)


GRID_WIDTH = 24


def assemble(dashboard: dash.Dashboard, *sections: Section) -> dash.Dashboard:
    """Places each section as a row followed by its panels, left to right, wrapping at the
    grid width; panel ids follow reading order so they are stable across builds."""
    y = 0
    panel_id = 1
    for sec in sections:
        grid = dash_models.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)
        dashboard = dashboard.with_row(dash.Row(sec.title).id(panel_id).grid_pos(grid))
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for c in sec.cells:
            if x + c.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            grid = dash_models.GridPos(h=c.height, w=c.width, x=x, y=y)
            panel = c.panel.build()
            panel.id_val = panel_id
            panel.grid_pos = grid
            dashboard = dashboard.with_panel(_Built(panel))
            panel_id += 1
            x += c.width
            line_height = max(line_height, c.height)
        y += line_height
    return dashboard


class _Built(cogbuilder.Builder[dash_models.Panel]):
    """Hands an already positioned panel to Dashboard.with_panel."""

    def __init__(self, panel: dash_models.Panel) -> None:
        self._panel = panel

    def build(self) -> dash_models.Panel:
        return self._panel
