"""Row 12, bad configuration: unknown TELEMETRY keys, values of the wrong type, a malformed
OTLP endpoint, a sampler argument out of range, Silk without authentication, and a collector
that is not there when the app starts, each given to a real gunicorn node.

Promises: `manage.py check` names every bad setting (an error or a warning with a stable id,
never a traceback); the node starts anyway and serves every request as it would without
Fleetscope (no 500, no traceback in a request); an unreachable collector is one clear log line
naming the URL, and `manage.py telemetry_check` says so; the telemetry app's Silk links stay
staff-only even when Silk's own pages are left open.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fleetscope.collector.process import free_port
from telemetry.registry import DEFAULT_INSTRUMENTS

from .input_stack import Node, NodeSpec, node_env, start_nodes, wait_for

pytestmark = pytest.mark.integration  # real servers on loopback

# Everything wrong at once, each naming itself.
MISCONFIGURED = {
    "SLOW_QUERY_MSS": 50,  # a typo
    "MAX_FINGERPRINTS": "many",  # not a number
    "N_PLUS_ONE_THRESHOLD": None,
    "SPAN_QUEUE_SIZE": -1,  # out of range
    "TRACES_SAMPLE_RATE": 1.5,  # a sampler argument out of [0, 1]
    "SILK_RATE": "often",
    "CACHE_ALIASES": 5,
    "INSTRUMENTS": [*DEFAULT_INSTRUMENTS, "telemetry.nope.Nope"],  # one that does not exist
}
BAD_ENDPOINT = "http://127.0.0.1:99999"  # a port that cannot exist
# What `manage.py check` must say: an id, and the setting it is about.
EXPECTED = {
    "telemetry.W003": "SLOW_QUERY_MSS",
    "telemetry.E006": "MAX_FINGERPRINTS",
    "telemetry.E002": "TRACES_SAMPLE_RATE",
    "telemetry.E007": "SILK_RATE",
    "telemetry.E011": "CACHE_ALIASES",
    "telemetry.E009": "telemetry.nope.Nope",
    "telemetry.E001": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "telemetry.W010": "SILKY_AUTHENTICATION",
}
REQUESTS = [
    ("/healthz", 200),
    ("/users/lookup/?name=x", 200),  # SQL and the session
    ("/cached/?key=k", 200),  # the cache
    ("/users/literal/?name=x", 200),  # raw SQL
    ("/no/such/page/", 404),
    ("/sql/shapes/?count=20", 200),
]


@dataclass
class Nodes:
    misconfigured: Node
    collector_away: Node
    away_url: str
    started: float  # time.monotonic() when both nodes were up


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    misconfigured, collector_away = start_nodes(
        tmp_path_factory,
        NodeSpec(
            "misconfigured",
            BAD_ENDPOINT,
            telemetry=MISCONFIGURED,
            env={"FLEETSCOPE_TEST_SILK_AUTH": "0", "OTEL_TRACES_SAMPLER": "always_on"},
            workers=2,
        ),
        NodeSpec("collector-away", away, env={"OTEL_TRACES_SAMPLER": "always_on"}, workers=2),
    )
    try:
        yield Nodes(misconfigured, collector_away, away, time.monotonic())
    finally:
        misconfigured.stop()
        collector_away.stop()


def _manage(node: Node, endpoint: str, telemetry: dict[str, Any], *args: str) -> Any:
    env = node_env(
        node.workdir, node.name, endpoint, telemetry, extra={"FLEETSCOPE_TEST_SILK_AUTH": "0"}
    )
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_check_names_every_bad_setting(nodes: Nodes) -> None:
    done = _manage(nodes.misconfigured, BAD_ENDPOINT, MISCONFIGURED, "check")
    output = done.stdout + done.stderr
    assert done.returncode == 1  # errors: the deploy pipeline stops here, with reasons
    assert "Traceback" not in output, output
    found = set(re.findall(r"\(telemetry\.[EW]\d+\)", output))
    for check_id, setting in EXPECTED.items():
        assert f"({check_id})" in found, (check_id, output)
        line = next(line for line in output.splitlines() if f"({check_id})" in line)
        assert setting in line, (check_id, line)
    print("row 12 check ids:", sorted(found))


def _serve(node: Node, times: int = 5) -> list[tuple[str, int]]:
    answers = []
    with httpx.Client(base_url=node.url, timeout=60) as client:
        for _ in range(times):
            for path, _status in REQUESTS:
                answers.append((path, client.get(path).status_code))
    return answers


@pytest.mark.parametrize("which", ["misconfigured", "collector_away"])
def test_the_node_serves_every_request_as_it_should(nodes: Nodes, which: str) -> None:
    node: Node = getattr(nodes, which)
    expected = dict(REQUESTS)
    answers = _serve(node)
    assert [status for path, status in answers] == [expected[path] for path, _ in answers]
    log = node.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "could not start measuring" not in log and "could not finish measuring" not in log


def test_silk_links_stay_staff_only_with_silk_left_open(nodes: Nodes) -> None:
    with httpx.Client(base_url=nodes.misconfigured.url, timeout=60) as anonymous:
        assert anonymous.get("/silk/").status_code == 200  # Silk's choice: W010 warned
        for url in (
            "/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c",
            "/telemetry/silk/route/?route=/",
            "/telemetry/silk/query/0123456789abcdef",
        ):
            response = anonymous.get(url)
            assert response.status_code == 302, url
            assert response.headers["location"].startswith("/admin/login/"), url


def test_a_malformed_endpoint_is_one_clear_log_line(nodes: Nodes) -> None:
    _serve(nodes.misconfigured, 1)
    log = wait_for(
        lambda: (text := nodes.misconfigured.log_text()) and BAD_ENDPOINT in text and text,
        "a log line naming the malformed endpoint",
    )
    lines = [line for line in log.splitlines() if BAD_ENDPOINT in line]
    assert lines and all("Fleetscope" in line for line in lines), lines
    assert any("OTEL_EXPORTER_OTLP_ENDPOINT" in line for line in lines), lines
    print("row 12 malformed endpoint:", lines[0])


def test_an_unreachable_collector_is_one_clear_log_line(nodes: Nodes) -> None:
    _serve(nodes.collector_away, 1)
    url = f"{nodes.away_url}/v1/metrics"
    log = wait_for(
        lambda: (text := nodes.collector_away.log_text()) and url in text and text,
        "the export failure in the node's log",
    )
    lines = [line for line in log.splitlines() if nodes.away_url in line]
    assert all("Requests are not affected" in line for line in lines), lines
    # At most once per signal and minute in each worker (2 x 2), with the count of failed
    # attempts it stands for: not once per request or per attempt.
    minutes = (time.monotonic() - nodes.started) / 60
    assert len(lines) <= 4 * (1 + int(minutes) + 1), lines
    print(f"row 12 collector away: {len(lines)} lines in {minutes:.1f} min:", lines[0])


def test_telemetry_check_says_the_collector_is_unreachable(nodes: Nodes) -> None:
    done = _manage(nodes.collector_away, nodes.away_url, {}, "telemetry_check")
    assert done.returncode != 0
    assert "unreachable" in done.stdout and nodes.away_url in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
