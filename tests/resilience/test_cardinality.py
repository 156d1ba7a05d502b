"""Row 8, a cardinality attack: 100k requests with distinct URLs (404s, token paths, bytes that
are not UTF-8, hostile text), distinct query strings and unusual methods, through Django's
WSGI handler in one process that exports to the real collector.

Promises: the HTTP series in Prometheus stay within routes x methods x status codes, and the
process's memory stays bounded (what Fleetscope's code holds does not grow with URLs seen).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .input_stack import InputStack, migrated_database, node_env, running_stack, wait_for

pytestmark = pytest.mark.integration  # real servers on loopback

# 100k by default: about a minute of CPU on the 2-core build machine (docs/reliability.md).
REQUESTS = int(os.environ.get("FLEETSCOPE_TEST_CARDINALITY_REQUESTS", "100000"))
SERVICE = "cardinality"
SEL = f'job="{SERVICE}", host_name="attacked"'
# Semantic conventions' bounded method label: the nine known methods, everything else _OTHER.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputStack]:
    with running_stack(tmp_path_factory.mktemp("stack-cardinality")) as running:
        yield running


@pytest.fixture(scope="module")
def attack(stack: InputStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("attacked")
    migrated_database(tmp_path_factory, workdir / "db.sqlite3")
    env = node_env(workdir, "attacked", stack.otlp_endpoint, telemetry={"SERVICE_NAME": SERVICE})
    done = subprocess.run(
        [sys.executable, "-m", "tests.resilience.probes.cardinality", str(REQUESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print("row 8:", json.dumps({k: v for k, v in result.items() if k != "routes"}))
    return result


def _http_series(stack: InputStack, expected_requests: int) -> list[dict[str, str]]:
    """Every request-duration series of the attacked process, once all requests are in."""

    def complete() -> list[dict[str, str]] | None:
        total = stack.value(f"sum(http_server_request_duration_seconds_count{{{SEL}}})")
        if total is None or total < expected_requests:
            return None
        return [
            row["metric"]
            for row in stack.query(f"http_server_request_duration_seconds_count{{{SEL}}}")
        ]

    return list(wait_for(complete, "every attack request counted in Prometheus"))


def test_http_series_are_bounded_by_routes_methods_and_statuses(
    stack: InputStack, attack: dict[str, Any]
) -> None:
    series = _http_series(stack, REQUESTS)
    routes = {row["http_route"] for row in series}
    methods = {row["http_request_method"] for row in series}
    statuses = {row["http_response_status_code"] for row in series}
    assert routes <= {*attack["routes"], "unmatched"}, routes - set(attack["routes"])
    assert methods <= KNOWN_METHODS | {"_OTHER"}
    assert "_OTHER" in methods  # the unusual methods arrived, folded
    assert statuses <= {str(status) for status in attack["statuses"]}
    bound = (len(attack["routes"]) + 1) * (len(KNOWN_METHODS) + 1) * len(attack["statuses"])
    assert len(series) <= bound
    # Far fewer than what was sent: the attack did not reach the label sets.
    assert attack["distinct_methods_sent"] > len(methods)
    print(f"row 8: {len(series)} request series (bound {bound}) for {REQUESTS:,} distinct URLs")


def test_every_series_of_the_attacked_process_is_bounded(
    stack: InputStack, attack: dict[str, Any]
) -> None:
    _http_series(stack, REQUESTS)
    rows = stack.query(f"count by (__name__) ({{{SEL}}})")
    counts = {row["metric"]["__name__"]: float(row["value"][1]) for row in rows}
    assert counts
    active = counts.get("http_server_active_requests", 0)
    assert active <= len(KNOWN_METHODS) + 1  # one series per method label, at most
    total = sum(counts.values())
    print(f"row 8: {total:.0f} series in all for the attacked process")
    # Nothing scales with the attack: a few thousand at most (histogram buckets included).
    assert total < REQUESTS / 20, counts


def test_memory_held_by_fleetscope_does_not_grow_with_urls(attack: dict[str, Any]) -> None:
    # Allocations made by Fleetscope's own code during the last 10k requests and still alive
    # at the end: counts and exemplars are updated in place, so this is tens of kilobytes;
    # anything kept per URL would be megabytes.
    assert attack["telemetry_bytes_held"] < 256 * 1024, attack["telemetry_bytes_held"]
    # Resident memory of the whole process (Django included): generous, and a leak of even
    # 100 bytes per URL would pass 9 MB.
    growth = attack["rss_at_end"] - attack["rss_after_warm_up"]
    assert growth < 16 * 1024 * 1024, growth
    assert all(keys < 2_000 for keys in attack["histogram_keys"].values()), attack
