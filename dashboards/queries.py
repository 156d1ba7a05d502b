"""PromQL building blocks: the one label-selector helper and the few query shapes we use.

Every label matcher in every dashboard and alert rule is rendered here, by `Selector`;
the dashboard modules only say which template variables scope a query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import metrics as m

# Template variable -> the label it filters. A variable set to All is `.*` (see
# panels.query_variable), which also matches series that lack the label.
VARIABLE_LABELS: dict[str, str] = {
    "service": m.SERVICE,
    "node": m.NODE,
    "instance": m.WORKER,
    "route": m.ROUTE,
    "task": m.TASK,
    "queue": m.QUEUE,
}

RATE_WINDOW = "$__rate_interval"
RANGE_WINDOW = "$__range"
# The same windows in seconds, as Grafana interpolates them (numbers, usable in arithmetic).
WINDOW_SECONDS: dict[str, str] = {
    RATE_WINDOW: "($__rate_interval_ms / 1000)",
    RANGE_WINDOW: "$__range_s",
}

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class Selector:
    """The label matchers of one scope, e.g. `{job=~"$service", host_name=~"$node"}`."""

    variables: tuple[str, ...] = ()
    matchers: tuple[tuple[str, str, str], ...] = ()
    # Variable -> label for series that name the same thing differently (the load
    # balancer's `proxy`/`server` for `job`/`host_name`); see `relabeled`.
    labels: tuple[tuple[str, str], ...] = ()

    def using(self, *variables: str) -> Selector:
        unknown = [v for v in variables if v not in VARIABLE_LABELS]
        if unknown:
            raise ValueError(f"no label is known for template variable(s) {unknown}")
        added = tuple(v for v in variables if v not in self.variables)
        return Selector(self.variables + added, self.matchers, self.labels)

    def without(self, *variables: str) -> Selector:
        kept = tuple(v for v in self.variables if v not in variables)
        return Selector(kept, self.matchers, self.labels)

    def relabeled(self, **labels: str) -> Selector:
        """The same variables matched against other labels:
        `.relabeled(service="proxy")` renders `proxy=~"$service"`."""
        unknown = [v for v in labels if v not in VARIABLE_LABELS]
        if unknown:
            raise ValueError(f"no label is known for template variable(s) {unknown}")
        merged = {**dict(self.labels), **labels}
        return Selector(self.variables, self.matchers, tuple(sorted(merged.items())))

    def where(self, **labels: str) -> Selector:
        """Exact matches: `.where(django_cache_result="hit")`."""
        return self._with("=", labels)

    def matching(self, **labels: str) -> Selector:
        """Regex matches: `.matching(http_response_status_code="5..")`."""
        return self._with("=~", labels)

    def excluding(self, **labels: str) -> Selector:
        """Exact negative matches: `.excluding(http_route="unmatched")`."""
        return self._with("!=", labels)

    def not_matching(self, **labels: str) -> Selector:
        """Regex negative matches: `.not_matching(job="shop|cart")`."""
        return self._with("!~", labels)

    def _with(self, op: str, labels: dict[str, str]) -> Selector:
        added = tuple((name, op, value) for name, value in sorted(labels.items()))
        return Selector(self.variables, self.matchers + added, self.labels)

    def render(self) -> str:
        names = {**VARIABLE_LABELS, **dict(self.labels)}
        parts = [f'{names[v]}=~"${v}"' for v in self.variables]
        parts += [f'{name}{op}"{_escape(value)}"' for name, op, value in self.matchers]
        return "{" + ", ".join(parts) + "}" if parts else ""

    def __call__(self, series: str) -> str:
        return f"{series}{self.render()}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def aggregate(expr: str, by: Sequence[str] = (), op: str = "sum") -> str:
    """`op by (labels) (expr)`, or `op(expr)` over everything."""
    return f"{op} by ({', '.join(by)}) ({expr})" if by else f"{op}({expr})"


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1h` or `1h30m`; ValueError otherwise."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"{duration!r} is not a duration; use e.g. 30m, 1h or 6h.")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def window_seconds(window: str) -> str:
    """`window` as a number of seconds PromQL can divide by (Grafana's `_ms`/`_s` forms)."""
    if window in WINDOW_SECONDS:
        return WINDOW_SECONDS[window]
    return f"{duration_seconds(window):g}"


def rate(series: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW) -> str:
    """`sum by (...) (rate(series{...}[window]))`: Prometheus' extrapolated estimate. Counts and
    ratios use `exact_rate`/`exact_increase`; this is for histogram buckets (`quantile`)."""
    return aggregate(f"rate({sel(series)}[{window}])", by)


def exact_increase(
    series: str, sel: Selector, by: Sequence[str] = (), window: str = RANGE_WINDOW
) -> str:
    """How much a counter grew over `window`, exactly as the source counted it.

    Prometheus' `increase()` gives a series nothing for its first sample and extrapolates
    the rest, so a pattern that appears inside the window (an N+1 burst held for one
    export interval, a cache alias first used mid-window) vanishes or shrinks. Per series,
    with `end` its last value inside the window and `start` its value when the window
    began (`offset`), nothing extrapolated:

    - it existed when the window began: `end - start`;
    - it was born inside the window: `end` (a counter starts at 0, so all of it was
      counted inside the window). A worker that restarts is a new series (`instance`
      holds the pid), so restarts are counted exactly;
    - it went backwards (a reset under the same labels, i.e. a reused pid): `end`, what
      the new process counted; never negative, never doubled.

    Two vector matches per series (`-`, `or`): docs/dashboards.md ("Exact counts") has the
    measurements against `increase()` and the alternatives.
    """
    counter = sel(series)
    end = f"last_over_time({counter}[{window}])"
    start = f"{counter} offset {window}"
    return aggregate(f"(({end} - {start}) >= 0) or {end}", by)


def exact_rate(
    series: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW
) -> str:
    """Per second over `window`: `exact_increase` divided by the window's length."""
    return f"{exact_increase(series, sel, by, window)} / {window_seconds(window)}"


def gauge(series: str, sel: Selector, by: Sequence[str] = (), op: str = "sum") -> str:
    return aggregate(sel(series), by, op)


def quantile(
    q: float, histogram: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW
) -> str:
    """`histogram_quantile(q, sum by (le, ...) (rate(histogram_bucket{...}[window])))`."""
    return f"histogram_quantile({q}, {rate(f'{histogram}_bucket', sel, ('le', *by), window)})"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, 0 where the numerator has no series, absent where the
    denominator is 0 (no traffic is not a 0 % or 100 % ratio)."""
    return f"({numerator} or {denominator} * 0) / ({denominator} > 0)"


def exact_ratio(
    series: str, part: Selector, whole: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW
) -> str:
    """The share of a counter's growth selected by `part` within what `whole` selects, from
    exact counts (hit ratio, error ratio)."""
    return ratio(
        exact_increase(series, part, by, window), exact_increase(series, whole, by, window)
    )


def mean(histogram: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW) -> str:
    """Mean observation of a histogram: exact growth of _sum over exact growth of _count."""
    return ratio(
        exact_increase(f"{histogram}_sum", sel, by, window),
        exact_increase(f"{histogram}_count", sel, by, window),
    )


def with_default(expr: str, label: str, value: str) -> str:
    """`expr` with `label` set to `value` on series that lack it (e.g. no service.version)."""
    return f'label_replace({expr}, "{label}", "{_escape(value)}", "{label}", "")'


def topk(k: int, expr: str) -> str:
    return f"topk({k}, {expr})"


def share(part: str, whole: str) -> str:
    """Each series of `part` as a fraction of the single-valued `whole`."""
    return f"{part} / scalar({whole})"


def count_distinct(series: str, sel: Selector, label: str, window: str | None = None) -> str:
    """How many values of `label` have samples now (or within `window`)."""
    selected = f"last_over_time({sel(series)}[{window}])" if window else sel(series)
    return f"count(count by ({label}) ({selected}))"


def stopped(series: str, sel: Selector, by: Sequence[str], window: str) -> str:
    """The `by` label sets that had samples within `window` but have none now."""
    seen = aggregate(f"last_over_time({sel(series)}[{window}])", by, "count")
    return f"{seen} unless {aggregate(sel(series), by, 'count')}"


def missing(series: str, sel: Selector, label: str, window: str) -> str:
    """How many values of `label` had samples within `window` but have none now; 0 when none."""
    return f"count({stopped(series, sel, (label,), window)}) or vector(0)"


def with_statement_text(expr: str, sel: Selector, window: str = RANGE_WINDOW) -> str:
    """Adds the statement summary and normalized text labels to a per-fingerprint `expr`.

    Fingerprints without a statement_info series (e.g. the `other` overflow bucket) are
    kept without text instead of disappearing from the table.
    """
    info = aggregate(
        f"last_over_time({sel(m.DB_STATEMENT_INFO)}[{window}])",
        (m.FINGERPRINT, m.QUERY_SUMMARY, m.QUERY_TEXT),
        "max",
    )
    # One info series per fingerprint keeps group_left many-to-one even if two nodes
    # ever report different texts for the same hash.
    one_info = f"topk by ({m.FINGERPRINT}) (1, {info})"
    return (
        f"({expr}) * on ({m.FINGERPRINT}) group_left ({m.QUERY_SUMMARY}, {m.QUERY_TEXT}) "
        f"{one_info} or on ({m.FINGERPRINT}) ({expr})"
    )


def renamed_label(expr: str, target: str, source: str) -> str:
    """`expr` with the value of label `source` copied to `target` (e.g. the balancer's
    `server` as `host_name`), so its rows join those of the nodes' own series."""
    return f'label_replace({expr}, "{target}", "$1", "{source}", "(.*)")'


def label_values(series: str, label: str, sel: Selector) -> str:
    """A Grafana variable query: `label_values(series{...}, label)`."""
    return f"label_values({sel(series)}, {label})"
