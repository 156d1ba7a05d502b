"""Service level objectives: one small YAML file in, Prometheus recording rules and
multi-window, multi-burn-rate alerts out (`fleetscope dashboards build --slo slo.yaml`).

The alerting scheme is the Google SRE workbook's ("Alerting on SLOs", method 6): page when
the error budget burns fast over a long *and* a short window (2 % of a 30-day budget in
1 h: 14.4x over 1 h and 5 m; 5 % in 6 h: 6x over 6 h and 30 m), open a ticket when it burns
steadily (10 % in 3 d: 1x over 3 d and 6 h). Like Sloth and Pyrra, every objective gets one
recorded series per window and the alerts compare recorded series; unlike them, the counts
are exact (`queries.exact_increase`), the rules carry no per-objective thresholds (the burn
rate is recorded already divided by the error budget, so three alert rules serve every
objective), and a minimum-traffic guard keeps quiet routes from paging.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fleetscope.errors import FleetscopeError

from . import metrics as m
from .queries import Selector, duration_seconds, exact_increase

Rule = dict[str, Any]

DEFAULT_OBJECTIVES = Path(__file__).resolve().parent / "slo.yaml"
SLO_RULES_FILE_NAME = "fleetscope-slo-rules.yml"

REQUESTS = f"{m.REQUEST_DURATION}_count"
BUCKETS = f"{m.REQUEST_DURATION}_bucket"

# Recorded series (labels: job, slo, and http_route for a per-route objective). The whole
# SLO period is recorded under the window name `period`, so dashboards need not know it.
PERIOD = "period"
REQUESTS_IN = "fleetscope:slo_requests:{window}"  # requests in the window
BAD_IN = "fleetscope:slo_bad_requests:{window}"  # of which missed the objective
BURN_RATE = "fleetscope:slo_burn_rate:{window}"  # bad ratio / error budget (1 = on budget)
OBJECTIVE = "fleetscope:slo_objective:ratio"  # the target, e.g. 0.999
SLO_LABEL = "slo"
AVAILABILITY = "availability"
LATENCY = "latency"


@dataclass(frozen=True)
class BurnAlert:
    """One window pair: fire when both windows burn faster than `factor`."""

    long: str
    short: str
    budget_share: float  # the share of the period's budget that `long` at `factor` spends
    severity: str
    duration: str  # `for:`

    def factor(self, period: str) -> float:
        return round(self.budget_share * duration_seconds(period) / duration_seconds(self.long), 4)


# Google SRE workbook, table 5-8 (30 days: 14.4, 6 and 1).
BURN_ALERTS = (
    BurnAlert("1h", "5m", 0.02, "critical", "2m"),
    BurnAlert("6h", "30m", 0.05, "critical", "15m"),
    BurnAlert("3d", "6h", 0.10, "warning", "1h"),
)
WINDOWS = ("5m", "30m", "1h", "6h", "3d")
ALERT_NAME = "FleetscopeErrorBudgetBurn"
WHO = "{{ $labels.job }}{{ with $labels.http_route }} {{ . }}{{ end }}"


@dataclass(frozen=True)
class SLI:
    """One indicator of one objective: what counts as a bad request, and the target."""

    kind: str  # availability | latency
    target: float  # ratio of good requests, e.g. 0.999
    threshold: float | None = None  # seconds, latency only

    @property
    def budget(self) -> float:
        return 1.0 - self.target


@dataclass(frozen=True)
class Objective:
    """Objectives for one service (or every service) and optionally one route."""

    service: str | None
    route: str | None
    slis: tuple[SLI, ...]
    # For an objective of every service: the services with their own objective on the same
    # route (or service-wide), which it leaves to them.
    others: tuple[str, ...] = ()

    @property
    def selector(self) -> Selector:
        sel = Selector()
        if self.service:
            sel = sel.where(**{m.SERVICE: self.service})
        elif self.others:
            sel = sel.not_matching(**{m.SERVICE: "|".join(_regex_escape(o) for o in self.others)})
        if self.route:
            sel = sel.where(**{m.ROUTE: self.route})
        return sel

    @property
    def grouping(self) -> tuple[str, ...]:
        return (m.SERVICE, m.ROUTE) if self.route else (m.SERVICE,)

    @property
    def title(self) -> str:
        return f"{self.service or 'every service'}{f' {self.route}' if self.route else ''}"


@dataclass(frozen=True)
class Objectives:
    period: str = "30d"
    min_request_rate: float = 0.1  # requests/s over the long window before an alert may fire
    objectives: tuple[Objective, ...] = field(default_factory=tuple)


# -- the config file ----------------------------------------------------------------------


class ObjectivesError(FleetscopeError):
    """The SLO file cannot be used; the message names the entry and what to change."""


def load_objectives(path: Path = DEFAULT_OBJECTIVES) -> Objectives:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ObjectivesError(f"Cannot read the SLO file {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise ObjectivesError(f"{path} is not valid YAML: {exc}") from None
    return parse_objectives(raw, str(path))


def parse_objectives(raw: Any, source: str = "the SLO file") -> Objectives:
    if not isinstance(raw, dict):
        raise ObjectivesError(f"{source} must be a mapping with an `objectives:` list.")
    unknown = sorted(set(raw) - {"period", "min_request_rate", "objectives"})
    if unknown:
        raise ObjectivesError(
            f"{source}: unknown key(s) {', '.join(unknown)}; "
            "known: period, min_request_rate, objectives."
        )
    period = str(raw.get("period", "30d"))
    try:
        period_seconds = duration_seconds(period)
    except ValueError as exc:
        raise ObjectivesError(f"{source}: period: {exc}") from None
    if period_seconds < duration_seconds("3d"):
        raise ObjectivesError(f"{source}: period {period} is shorter than the 3d alert window.")
    min_rate = raw.get("min_request_rate", 0.1)
    if not isinstance(min_rate, int | float) or min_rate < 0:
        raise ObjectivesError(f"{source}: min_request_rate must be a number of requests/s >= 0.")
    entries = raw.get("objectives")
    if not isinstance(entries, list) or not entries:
        raise ObjectivesError(f"{source}: `objectives:` must be a non-empty list.")
    objectives = tuple(_objective(e, f"{source}: objectives[{i}]") for i, e in enumerate(entries))
    seen: set[tuple[str | None, str | None]] = set()
    for objective in objectives:
        key = (objective.service, objective.route)
        if key in seen:
            raise ObjectivesError(f"{source}: two objectives for {objective.title}; merge them.")
        seen.add(key)
    objectives = tuple(
        replace(o, others=_specific_services(o, objectives)) if o.service is None else o
        for o in objectives
    )
    return Objectives(period, float(min_rate), objectives)


def _specific_services(general: Objective, objectives: tuple[Objective, ...]) -> tuple[str, ...]:
    return tuple(sorted({o.service for o in objectives if o.service and o.route == general.route}))


def _regex_escape(value: str) -> str:
    """`value` as a literal inside a PromQL (RE2) regex."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def _percent(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or not 0 < value < 100:
        raise ObjectivesError(f"{where} must be a percentage between 0 and 100, e.g. 99.9.")
    return round(float(value) / 100, 10)


def _objective(entry: Any, where: str) -> Objective:
    if not isinstance(entry, dict):
        raise ObjectivesError(f"{where} must be a mapping (service, route, availability, latency).")
    unknown = sorted(set(entry) - {"service", "route", "availability", "latency"})
    if unknown:
        raise ObjectivesError(f"{where}: unknown key(s) {', '.join(unknown)}.")
    service, route = entry.get("service"), entry.get("route")
    for name, value in (("service", service), ("route", route)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ObjectivesError(f"{where}: {name} must be a non-empty string.")
    slis = []
    if "availability" in entry:
        slis.append(SLI(AVAILABILITY, _percent(entry["availability"], f"{where}: availability")))
    if "latency" in entry:
        latency = entry["latency"]
        if not isinstance(latency, dict) or set(latency) != {"threshold", "target"}:
            raise ObjectivesError(
                f"{where}: latency must be {{threshold: <seconds>, target: <percent>}}."
            )
        threshold = latency["threshold"]
        if threshold not in m.REQUEST_DURATION_BOUNDS:
            bounds = ", ".join(f"{b:g}" for b in m.REQUEST_DURATION_BOUNDS)
            raise ObjectivesError(
                f"{where}: latency threshold {threshold!r} s is not a bucket bound of "
                f"{m.REQUEST_DURATION}; use one of {bounds}."
            )
        slis.append(
            SLI(LATENCY, _percent(latency["target"], f"{where}: latency target"), float(threshold))
        )
    if not slis:
        raise ObjectivesError(f"{where}: give an availability and/or a latency objective.")
    return Objective(service, route, tuple(slis))


# -- rules ----------------------------------------------------------------------------------


def le_pattern(bound: float) -> str:
    """A regex for one bucket bound that matches Prometheus 2's `1` and Prometheus 3's `1.0`
    (Prometheus 3 normalises `le` values to floats; Pyrra's migration does the same)."""
    text = f"{bound:g}"
    if "e" in text:
        raise ValueError(f"bucket bound {bound!r} has no plain decimal form")
    escaped = text.replace(".", "\\.")
    return f"{escaped}(\\.0)?" if math.isclose(bound, round(bound)) else escaped


def bad_requests(objective: Objective, sli: SLI, window: str) -> str:
    """How many of the objective's requests in `window` missed the SLI, from exact counts;
    0 (not absent) while it has requests and none missed."""
    sel, by = objective.selector, objective.grouping
    total = exact_increase(REQUESTS, sel, by, window)
    if sli.kind == AVAILABILITY:
        errors = exact_increase(REQUESTS, sel.matching(**{m.STATUS: "5.."}), by, window)
        return f"{errors} or {total} * 0"
    assert sli.threshold is not None
    fast = exact_increase(BUCKETS, sel.matching(le=le_pattern(sli.threshold)), by, window)
    return f"{total} - ({fast} or {total} * 0)"


def objective_rules(
    objective: Objective, sli: SLI, windows: tuple[str, ...], name: str | None = None
) -> list[Rule]:
    """Requests and bad requests of one objective's SLI over each window (recorded under the
    window's own name, or `name`)."""
    rules: list[Rule] = []
    for window in windows:
        total = exact_increase(REQUESTS, objective.selector, objective.grouping, window)
        recorded = name or window
        rules.append(
            {"record": REQUESTS_IN.format(window=recorded), "expr": total, "labels": _labels(sli)}
        )
        rules.append(
            {
                "record": BAD_IN.format(window=recorded),
                "expr": bad_requests(objective, sli, window),
                "labels": _labels(sli),
            }
        )
    return rules


def _labels(sli: SLI) -> dict[str, str]:
    return {SLO_LABEL: sli.kind}


def target_rule(objective: Objective, sli: SLI) -> Rule:
    """The target as a series with the objective's labels (while it has traffic)."""
    present = f"max by ({', '.join(objective.grouping)}) ({objective.selector(REQUESTS)})"
    return {
        "record": OBJECTIVE,
        "expr": f"{present} * 0 + {sli.target:.10g}",
        "labels": _labels(sli),
    }


def burn_rate_rule(window: str) -> Rule:
    """One rule for every objective: labels match one to one (job, slo, http_route)."""
    ratio = f"{BAD_IN.format(window=window)} / ({REQUESTS_IN.format(window=window)} > 0)"
    return {"record": BURN_RATE.format(window=window), "expr": f"{ratio} / (1 - {OBJECTIVE})"}


def burn_alert(alert: BurnAlert, objectives: Objectives) -> dict[str, Any]:
    factor = alert.factor(objectives.period)
    min_requests = objectives.min_request_rate * duration_seconds(alert.long)
    long_burn = BURN_RATE.format(window=alert.long)
    short_burn = BURN_RATE.format(window=alert.short)
    expr = (
        f"({long_burn} > {factor:g} and {short_burn} > {factor:g})"
        f" and {REQUESTS_IN.format(window=alert.long)} >= {min_requests:g}"
    )
    return {
        "alert": ALERT_NAME,
        "expr": expr,
        "for": alert.duration,
        "labels": {"severity": alert.severity, "long": alert.long, "short": alert.short},
        "annotations": {
            "summary": f"{WHO} burns its {{{{ $labels.slo }}}} error budget "
            f"{{{{ $value | humanize }}}}x too fast ({alert.long} and {alert.short})",
            "description": f"Over the last {alert.long} and {alert.short}, {WHO} missed its "
            f"{{{{ $labels.slo }}}} objective more than {factor:g} times as often as its error "
            f"budget allows: at this pace {alert.budget_share:.0%} of the {objectives.period} "
            f"budget is gone in {alert.long}.",
        },
    }


def slo_rule_groups(
    objectives: Objectives, interval: str = "1m", period_interval: str = "5m"
) -> dict[str, Any]:
    slis = [(o, sli) for o in objectives.objectives for sli in o.slis]
    targets = [target_rule(o, sli) for o, sli in slis]
    counts = [rule for o, sli in slis for rule in objective_rules(o, sli, WINDOWS)]
    period = [
        rule
        for o, sli in slis
        for rule in objective_rules(o, sli, (objectives.period,), name=PERIOD)
    ]
    # Rules of a group run in order at one evaluation time: burn rates read the counts
    # recorded just before them.
    fast = [*targets, *counts, *(burn_rate_rule(w) for w in WINDOWS)]
    fast += [burn_alert(alert, objectives) for alert in BURN_ALERTS]
    return {
        "groups": [
            {"name": "fleetscope-slo", "interval": interval, "rules": fast},
            # The whole period is a long read, and the budget left moves slowly.
            {
                "name": "fleetscope-slo-period",
                "interval": period_interval,
                "rules": [*period, burn_rate_rule(PERIOD)],
            },
        ]
    }


def render_slo_rules(
    objectives: Objectives | None = None, interval: str = "1m", period_interval: str = "5m"
) -> str:
    """The SLO rule file, byte-for-byte stable across runs (the intervals are for tests)."""
    objectives = objectives or load_objectives()
    header = (
        "# Generated by `fleetscope dashboards build` from the SLO file (dashboards/slo.yaml "
        "unless --slo);\n# do not edit. docs/dashboards.md explains the rules.\n"
    )
    body = yaml.safe_dump(
        slo_rule_groups(objectives, interval, period_interval),
        sort_keys=False,
        width=100_000,
        allow_unicode=True,
    )
    return header + body
