"""Row 11, hostile text: markup, quotes and rich-console tags in a route template, in SQL names,
in a node's name, in query strings and paths, sent through a real node and the real pipeline.

Promise: every page and report Fleetscope renders shows such text as text. The Silk link pages
(telemetry/silk/views.py) escape it; `fleetscope demo report` prints it verbatim (rich markup
is never interpreted, nor does it crash the report); the dashboards' data links built from
label values are URL-encoded, and their table cells render no HTML.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
import yaml

from telemetry.routes import render_pattern

from .input_stack import (
    InputStack,
    Node,
    create_user,
    running_stack,
    signed_in,
    start_node,
    wait_for,
)

pytestmark = pytest.mark.integration  # real servers on loopback

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert(1)</script>"
# Node names are labels too: markup, a closing rich tag, quotes (no "/": it is the worker id's
# separator, and no space: a host name has none).
NODE = "node-[/]<b>'\"&x"
# The route label, as Fleetscope renders that URL pattern (its brackets read as a regex class).
ROUTE = render_pattern("hostile/<script>/'\"[/]&amp;/")
STAFF = ("ops", "ops-" + secrets.token_hex(6))


def _hostile_path(value: str) -> str:
    """A path that resolves to the hostile route, with `value` as its first parameter."""
    rest = quote("'\"[/]&amp;", safe="/")
    return f"/hostile/{quote(value, safe='')}/{rest}/"


def _promql_string(value: str) -> str:
    return json.dumps(value)  # JSON's escapes are PromQL's for quotes and backslashes


@dataclass
class Hostile:
    node: Node
    trace_id: str  # one trace with two profiles of the hostile route


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputStack]:
    with running_stack(tmp_path_factory.mktemp("stack-hostile")) as running:
        yield running


@pytest.fixture(scope="module")
def hostile(stack: InputStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    node = start_node(
        tmp_path_factory,
        "hostile-node",
        stack.otlp_endpoint,
        telemetry={"SLOW_QUERY_MS": 0},  # every statement is a slow one: a row in the report
        env={
            "FLEETSCOPE_NODE": NODE,
            "OTEL_TRACES_SAMPLER": "always_on",
            "FLEETSCOPE_SILK_RATE": "1",
        },
    )
    try:
        create_user(node, *STAFF, staff=True)
        trace_id = secrets.token_hex(16)
        with httpx.Client(base_url=node.url, timeout=60) as client:
            for _ in range(2):  # one trace, two profiled requests: Silk's list page
                headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
                assert client.get(_hostile_path("<i>x"), headers=headers).status_code == 200
        yield Hostile(node, trace_id)
    finally:
        node.stop()


# -- the telemetry app's pages ---------------------------------------------------------------


class _Markup(HTMLParser):
    """The elements and the text of a page, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Markup:
    page = _Markup()
    page.feed(html)
    return page


PAGE_TAGS = {"html", "head", "meta", "title", "body", "h1", "p", "ul", "li", "a"}


QUOTES = "'\""
NOT_A_TRACE = "<script>alert(1)<script>"  # a path segment: no "/"
NOT_A_FINGERPRINT = '"><img src=x onerror=alert(1)>'


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"/telemetry/silk/route/?route={quote(SCRIPT + QUOTES)}", SCRIPT + QUOTES),
        (f"/telemetry/silk/trace/{quote(NOT_A_TRACE, safe='')}", NOT_A_TRACE),
        (f"/telemetry/silk/query/{quote(NOT_A_FINGERPRINT, safe='')}", NOT_A_FINGERPRINT),
    ],
)
def test_silk_link_pages_show_hostile_text_as_text(hostile: Hostile, url: str, shown: str) -> None:
    with signed_in(hostile.node.url, *STAFF) as staff:
        response = staff.get(url)
    assert response.status_code == 404  # "nothing found" pages, with the text in them
    page = _parse(response.text)
    assert set(page.tags) <= PAGE_TAGS, page.tags  # no element came from the input
    assert shown in "".join(page.text)  # and the input is shown as it was


def test_the_list_of_profiles_of_a_trace_escapes_route_and_node(hostile: Hostile) -> None:
    with signed_in(hostile.node.url, *STAFF) as staff:
        response = staff.get(f"/telemetry/silk/trace/{hostile.trace_id}")
    assert response.status_code == 200
    page = _parse(response.text)
    assert set(page.tags) <= PAGE_TAGS, page.tags
    text = "".join(page.text)
    assert text.count(f"{ROUTE} on {NODE}/") == 2, text


# -- the CLI report ------------------------------------------------------------------------------


def _report(stack: InputStack, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "fleetscope", "demo", "report"),
            *("--prometheus", stack.prometheus_url, "--service", "resilience"),
            *("--window", "5m", "--workdir", str(workdir), *args),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"},
    )


def test_the_cli_report_prints_hostile_labels_verbatim(
    stack: InputStack, hostile: Hostile, tmp_path: Path
) -> None:
    # Counters count from their second sample: the hostile route runs again once the first
    # counts are in Prometheus, so that the report's increase() sees it.
    selector = f'job="resilience", http_route={_promql_string(ROUTE)}'
    wait_for(lambda: stack.query(f"django_db_n_plus_one_total{{{selector}}}"), "N+1 counts")
    with httpx.Client(base_url=hostile.node.url, timeout=60) as client:
        for _ in range(3):
            assert client.get(_hostile_path("again")).status_code == 200

    def complete() -> dict[str, Any] | None:
        done = _report(stack, tmp_path, "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data if data["n_plus_one"] and data["slow_queries"] and data["nodes"] else None

    data = wait_for(complete, "N+1 and slow-query rows in the report")
    assert data["n_plus_one"][0]["route"] == ROUTE and data["nodes"][0]["node"] == NODE

    done = _report(stack, tmp_path)
    assert done.returncode == 0, done.stderr  # a closing "[/]" in a label does not crash it
    printed = done.stdout
    statement = data["n_plus_one"][0]["statement"]  # HOSTILE_SQL, normalized
    assert statement.startswith("SELECT ? AS") and "[/]" in statement
    for verbatim in (NODE, ROUTE, '"[bold red]x[/bold red]"', f'"{SCRIPT}"', '"[/]"'):
        assert verbatim in printed, verbatim


# -- the dashboards --------------------------------------------------------------------------------

DASHBOARDS = sorted((REPO / "dashboards" / "generated").glob("*.json"))
DATASOURCES = REPO / "dashboards" / "provisioning" / "datasources" / "fleetscope.yaml"
_INTERPOLATION = re.compile(r"\$\{([^}:]+)(?::([^}]+))?\}")
# Values that come from the data (labels, cells, series), as opposed to dashboard settings.
_DATA = re.compile(r"^__(value|field|series|data)\b")
# Grafana formats that make a value safe inside a URL.
_URL_SAFE = {"percentencode", "queryparam"}


def _link_urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "url" and isinstance(value, str):
                yield value
            else:
                yield from _link_urls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _link_urls(item)


def _all_link_urls() -> dict[str, list[str]]:
    urls = {path.name: list(_link_urls(json.loads(path.read_text()))) for path in DASHBOARDS}
    provisioning = yaml.safe_load(DATASOURCES.read_text())
    urls[DATASOURCES.name] = [u.replace("$${", "${") for u in _link_urls(provisioning)]
    return urls


def test_every_data_link_encodes_the_values_it_interpolates() -> None:
    checked = 0
    for source, urls in _all_link_urls().items():
        for url in urls:
            for name, fmt in _INTERPOLATION.findall(url):
                if _DATA.match(name) or (fmt and name != "silk_base_url"):
                    assert fmt in _URL_SAFE, f"{source}: ${{{name}}} in {url} is not URL-encoded"
                    checked += 1
    assert checked >= 8  # the walk found the links it should


def _grafana_interpolate(url: str, value: str) -> str:
    """Grafana's data link interpolation of one clicked value (percentencode is JavaScript's
    encodeURIComponent, with !'()* encoded too)."""

    def replace(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2)
        if name == "silk_base_url":
            return "http://node-1:8001"
        if name.startswith("__url_time_range"):
            return "from=now-1h&to=now"
        raw = value if _DATA.match(name) else "All"
        if fmt == "percentencode":
            return quote(raw, safe="")
        if fmt == "queryparam":
            return f"var-{name}={quote(raw, safe='')}"
        return raw

    return _INTERPOLATION.sub(replace, url)


HOSTILE_VALUES = [f"{SCRIPT}\"'&x=1#frag/../?q=[/]", "node 1/2&var-service=evil"]


def _is_explore(url: str) -> bool:
    """A Grafana Explore link: the value sits in a JSON pane inside the `panes` parameter."""
    return url.startswith("/explore?")


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_clicked_hostile_values_reach_their_target_intact(value: str) -> None:
    for source, urls in _all_link_urls().items():
        for url in urls:
            if not any(_DATA.match(n) for n, _ in _INTERPOLATION.findall(url)):
                continue
            if _is_explore(url):  # test_explore_links_carry_the_value_into_their_query
                continue
            link = urlsplit(_grafana_interpolate(url, value))
            assert link.fragment == "", (source, url)  # no "#" escaped its encoding
            params = parse_qs(link.query)
            in_query = [v for values in params.values() for v in values if v == value]
            in_path = unquote(link.path).endswith("/" + value) or value in unquote(link.path)
            assert in_query or in_path, (source, url, link)
            # The value never added parameters of its own.
            assert "var-service" not in params or params["var-service"] == ["All"], link


# Explore links put the value into a JSON pane (the Tasks dashboard's task names into a
# TraceQL string). Grafana has no format that both JSON-escapes and URL-encodes, so a value
# holding `"` or `\\` cannot reach a JSON string intact; task names come from the app's code
# (docs/tasks.md says so). Everything else arrives as sent.
EXPLORE_VALUES = [f"{SCRIPT}'&x=1#frag/../?q=[/]", "node 1/2&var-service=evil"]


@pytest.mark.parametrize("value", EXPLORE_VALUES)
def test_explore_links_carry_the_value_into_their_query(value: str) -> None:
    checked = 0
    for source, urls in _all_link_urls().items():
        for url in [u for u in urls if _is_explore(u)]:
            link = urlsplit(_grafana_interpolate(url, value))
            assert link.fragment == "", (source, url)
            params = parse_qs(link.query)
            assert set(params) == {"schemaVersion", "panes"}, (source, link)
            [panes] = params["panes"]
            queries = [q["query"] for pane in json.loads(panes).values() for q in pane["queries"]]
            assert any(f'"{value}"' in query for query in queries), (source, queries)
            checked += 1
    assert checked >= 1


def test_table_cells_render_no_html_from_labels() -> None:
    for path in DASHBOARDS:
        text = path.read_text()
        dashboard = json.loads(text)
        for panel in dashboard["panels"]:
            # (xychart plots numbers; its legend and tooltip show series names as text.)
            assert panel["type"] in {"row", "timeseries", "stat", "table", "xychart"}, panel["type"]
        # No cell type that renders markup or fetches a URL from a value.
        for cell_type in ("image", "html", "markdown", "json-view"):
            assert f'"type": "{cell_type}"' not in text.replace('"type":"', '"type": "'), path
