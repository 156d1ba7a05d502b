"""Row "Prometheus down": SIGKILL Prometheus for a minute under steady load, restart it on
the same port and data directory. The collector (collector/configs/local.yaml) holds one
value per series for Prometheus to pull, so its memory does not grow with the outage; its
memory_limiter is a fixed share of the machine's memory; after the restart the gap in
Prometheus is the downtime and no more, and the counters carry every request."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import start_stack

from .faults import rss_bytes
from .figures import record
from .load import FixedRateLoad, failures
from .node import (
    PATH,
    ROUTE_COUNT,
    counter,
    requests_query,
    selector,
    settle,
    start_node,
)

RATE = 20.0
WARM = 8.0
OUTAGE = 60.0
AFTER = 8.0
SCRAPE_S = 1.0
# Prometheus hands targets to its scrape manager at most every 5 s (its discovery manager's
# update interval, not configurable in 2.x): a restarted Prometheus scrapes ~5 s after ready.
FIRST_SCRAPE_DELAY_S = 5.0
NODE = "scraped"
LIMIT_PERCENTAGE, SPIKE_PERCENTAGE = 75, 20  # collector/configs/local.yaml


def logged(log: Path, message: str) -> dict[str, object]:
    """The structured fields of the collector's first log line with `message`."""
    for line in log.read_text().splitlines():
        if f"\t{message}\t" in line:
            return dict(json.loads(line.rsplit("\t", 1)[1]))
    raise AssertionError(f"the collector did not log {message!r}")


def meminfo_total_mib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def exporter_series(url: str) -> int:
    """How many series the collector's Prometheus exporter serves right now."""
    text = httpx.get(url, timeout=10).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def test_prometheus_down_for_a_minute(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack", scrape_interval=f"{SCRAPE_S:.0f}s")
    node = None
    try:
        # The memory limit is a fixed share of the machine's memory (or of the cgroup limit).
        percentage = logged(stack.collector.log_file, "Using percentage memory limiter")
        limits = logged(stack.collector.log_file, "Memory limiter configured")
        total_mib = int(str(percentage["total_memory_mib"]))
        assert total_mib <= meminfo_total_mib()
        assert abs(int(str(limits["limit_mib"])) - total_mib * LIMIT_PERCENTAGE // 100) <= 1
        assert abs(int(str(limits["spike_limit_mib"])) - total_mib * SPIKE_PERCENTAGE // 100) <= 1

        node = start_node(stack, tmp_path / "node", NODE)
        load = FixedRateLoad(node.url + PATH, RATE).start()
        exporter = f"http://{stack.collector.ports.prometheus_exporter_target}/metrics"
        collector_pid = stack.collector_process.pid
        time.sleep(WARM)
        series_before = exporter_series(exporter)
        rss_before = rss_bytes(collector_pid)

        killed_wall = time.time()
        stack.kill_prometheus()
        rss_during = []
        outage_end = time.monotonic() + OUTAGE
        while time.monotonic() < outage_end:
            rss_during.append(rss_bytes(collector_pid))
            time.sleep(2.0)
        series_during = exporter_series(exporter)
        stack.restart_prometheus()
        ready_wall = time.time()
        time.sleep(AFTER)
        outcomes = load.stop()
        assert failures(outcomes) == []

        # Every request counted, the outage's too (the counters are cumulative).
        settle(stack, requests_query(NODE), len(outcomes), timeout=30)
        # Nothing failed on the way to the collector: Prometheus is not its client's concern.
        assert counter(stack, f"fleetscope_export_failures_total{selector(NODE)}") == 0

        # The gap: the longest stretch without a sample, in each of the node's series.
        route = f'http_route="{PATH}"'
        series = stack.samples(f"{ROUTE_COUNT}{selector(NODE, route)}", "5m")
        assert series
        gaps = [max(b[0] - a[0] for a, b in pairwise(samples)) for samples in series]
        downtime = ready_wall - killed_wall
        excess = (max(gaps) - downtime) / SCRAPE_S
        stamps = [t for samples in series for t, _ in samples]
        last_before = max(t for t in stamps if t < killed_wall) - killed_wall
        first_after = min(t for t in stamps if t > killed_wall) - ready_wall
        record(
            "prometheus down",
            requests=len(outcomes),
            downtime_s=downtime,
            longest_gap_s=max(gaps),
            gap_minus_downtime_in_scrapes=excess,
            last_sample_before_kill_s=last_before,
            first_sample_after_ready_s=first_after,
            collector_rss_mib_before=rss_before / 2**20,
            collector_rss_mib_max_during=max(rss_during) / 2**20,
            exporter_series_before=series_before,
            exporter_series_end_of_outage=series_during,
            memory_limiter={
                "total_memory_mib": total_mib,
                "limit_mib": limits["limit_mib"],
                "spike_limit_mib": limits["spike_limit_mib"],
            },
        )
        # Nothing before the kill is lost (the last sample is the last scrape), and scraping
        # resumes as soon as the restarted Prometheus starts scraping: the gap is the time
        # Prometheus was not scraping, and no more.
        assert -last_before <= 2 * SCRAPE_S
        assert first_after <= FIRST_SCRAPE_DELAY_S + 3 * SCRAPE_S
        # The exporter keeps one value per series: an outage adds none, whatever its length.
        assert series_during == series_before
        assert max(rss_during) <= 2 * rss_before
    finally:
        if node is not None:
            node.process.stop()
        stack.stop()


pytestmark = pytest.mark.integration
