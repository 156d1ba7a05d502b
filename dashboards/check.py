"""Runs every panel query and variable query of the dashboards against a live Prometheus
(`fleetscope dashboards check`), so a renamed metric or a broken expression shows up before
anyone opens Grafana."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from fleetscope.errors import FleetscopeError

from . import queries
from .build import dashboard_models

Status = Literal["ok", "empty", "error"]

# Grafana's own interpolations inside expressions; user variables are handled apart.
_BUILTIN = re.compile(
    r"\$\{?(__rate_interval_ms|__rate_interval|__interval_ms|__interval|__range_s|__range_ms"
    r"|__range)\}?"
)
# $var, ${var}, ${var:format}, [[var]]; not `$1`, a capture group in label_replace, which
# Grafana leaves alone as no variable is called that.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$([A-Za-z_]\w*)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


@dataclass(frozen=True)
class PanelResult:
    """One query of one panel (or one variable) and what Prometheus answered."""

    dashboard_uid: str
    panel_title: str
    expr: str
    series: int
    status: Status
    error: str = ""
    ref_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Query:
    dashboard_uid: str
    panel_title: str
    ref_id: str
    expr: str
    is_variable: bool = False


class CheckError(FleetscopeError):
    """Prometheus could not be asked at all (wrong URL, not running)."""


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1h` or `1h30m`."""
    try:
        return queries.duration_seconds(duration)
    except ValueError as exc:
        raise CheckError(str(exc)) from None


def iter_queries(dashboards: Iterable[Mapping[str, Any]]) -> Iterator[Query]:
    """Every Prometheus target of every panel (rows included) and every query variable."""
    for model in dashboards:
        uid = str(model.get("uid", ""))
        for variable in model.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable.get("query")
                text = query.get("query", "") if isinstance(query, dict) else str(query or "")
                yield Query(uid, f"${variable['name']}", "", text, is_variable=True)
        for panel in _panels(model.get("panels", [])):
            for target in panel.get("targets", []):
                if "expr" in target:
                    yield Query(
                        uid, str(panel.get("title", "")), target.get("refId", ""), target["expr"]
                    )


def _panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def substitute(
    expr: str,
    variables: Mapping[str, str] | None = None,
    *,
    rate_interval: str = "1m",
    range_: str = "1h",
) -> str:
    """Replaces Grafana interpolations the way a dashboard with every variable at All
    (`.*`, unless given in `variables`) would send them to Prometheus."""
    variables = variables or {}
    range_seconds = duration_seconds(range_)
    builtins = {
        "__rate_interval": rate_interval,
        "__rate_interval_ms": str(int(duration_seconds(rate_interval) * 1000)),
        "__interval": rate_interval,
        "__interval_ms": str(int(duration_seconds(rate_interval) * 1000)),
        "__range": range_,
        "__range_s": str(int(range_seconds)),
        "__range_ms": str(int(range_seconds * 1000)),
    }
    expr = _BUILTIN.sub(lambda match: builtins[match.group(1)], expr)

    def variable(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return variables.get(name, ".*")

    return _VARIABLE.sub(variable, expr)


def check_all(
    prometheus_url: str,
    variables: dict[str, str] | None = None,
    *,
    dashboards: Iterable[Mapping[str, Any]] | None = None,
    rate_interval: str = "1m",
    range_: str = "1h",
    timeout: float = 30.0,
) -> list[PanelResult]:
    """Runs every query against Prometheus; one result per panel target or variable."""
    models = list(dashboards) if dashboards is not None else dashboard_models()
    base = prometheus_url.rstrip("/")
    range_seconds = duration_seconds(range_)
    results = []
    with httpx.Client(base_url=base, timeout=timeout) as client:
        for query in iter_queries(models):
            expr = substitute(query.expr, variables, rate_interval=rate_interval, range_=range_)
            try:
                if query.is_variable:
                    result = _variable_values(client, query, expr, range_seconds)
                else:
                    result = _instant(client, query, expr)
            except httpx.TransportError as exc:
                raise CheckError(
                    f"Cannot reach Prometheus at {base} ({exc}); check --prometheus and that "
                    "Prometheus is running."
                ) from exc
            results.append(result)
    return results


def _instant(client: httpx.Client, query: Query, expr: str) -> PanelResult:
    payload = _get(client, "/api/v1/query", {"query": expr})
    error = _error_of(payload)
    if error:
        return _result(query, expr, 0, error)
    data = payload.get("data", {})
    kind, value = data.get("resultType"), data.get("result")
    count = 1 if kind in ("scalar", "string") else len(value or [])
    return _result(query, expr, count)


def _variable_values(
    client: httpx.Client, query: Query, expr: str, range_seconds: float
) -> PanelResult:
    match = _LABEL_VALUES.match(expr)
    if match is None:
        return _result(query, expr, 0, "only label_values(...) variable queries can be checked")
    label, selector = match.group("label"), match.group("selector")
    end = time.time()
    window = {"start": f"{end - range_seconds:.3f}", "end": f"{end:.3f}"}
    if selector is None:
        payload = _get(client, f"/api/v1/label/{label}/values", window)
        values = set(payload.get("data") or [])
    else:
        payload = _get(client, "/api/v1/series", {"match[]": selector, **window})
        values = {series[label] for series in payload.get("data") or [] if label in series}
    error = _error_of(payload)
    return _result(query, expr, 0 if error else len(values), error)


def _get(client: httpx.Client, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(path, params=params)
    try:
        payload = response.json()
    except ValueError:
        return {
            "status": "error",
            "error": f"HTTP {response.status_code} from {response.url} is not Prometheus JSON; "
            "does --prometheus point at Prometheus?",
        }
    if not isinstance(payload, dict):
        return {"status": "error", "error": f"unexpected answer from {response.url}"}
    return payload


def _error_of(payload: Mapping[str, Any]) -> str:
    if payload.get("status") == "success":
        return ""
    kind = payload.get("errorType")
    message = str(payload.get("error") or "unknown error")
    return f"{kind}: {message}" if kind else message


def _result(query: Query, expr: str, count: int, error: str = "") -> PanelResult:
    status: Status = "error" if error else ("ok" if count else "empty")
    return PanelResult(
        query.dashboard_uid, query.panel_title, expr, count, status, error, query.ref_id
    )
