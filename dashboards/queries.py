"""PromQL building blocks: the one label-selector helper and the few query shapes we use.

Every label matcher in every dashboard and alert rule is rendered here, by `Selector`;
the dashboard modules only say which template variables scope a query.
"""

from __future__ import annotations

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


def rate(series: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW) -> str:
    """`sum by (...) (rate(series{...}[window]))`."""
    return aggregate(f"rate({sel(series)}[{window}])", by)


def increase(series: str, sel: Selector, by: Sequence[str] = (), window: str = RANGE_WINDOW) -> str:
    """`sum by (...) (increase(series{...}[window]))`: totals over the dashboard range."""
    return aggregate(f"increase({sel(series)}[{window}])", by)


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


def mean(histogram: str, sel: Selector, by: Sequence[str] = (), window: str = RATE_WINDOW) -> str:
    """Mean observation of a histogram: rate of _sum over rate of _count."""
    return ratio(
        rate(f"{histogram}_sum", sel, by, window), rate(f"{histogram}_count", sel, by, window)
    )


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
