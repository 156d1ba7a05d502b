"""Fixtures for the dashboard tests: a real Prometheus holding a synthetic fleet's metrics,
and a local server that enforces Grafana's HTTP API contract."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fleetscope.collector.locate import locate_prometheus
from fleetscope.collector.process import ManagedProcess, free_port, http_ok
from fleetscope.dashboards.objectives import render_slo_rules
from tests.dashboards.fake_grafana import FakeGrafana
from tests.dashboards.fleet_data import openmetrics


def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).is_file():
        raise RuntimeError("promtool is needed by these tests: apt-get install prometheus")
    return path


@pytest.fixture(scope="session")
def fleet_end() -> int:
    """When the synthetic fleet's samples end (a Unix second, the time of its last sample).
    Tests whose figures depend on where a rate window falls query at this time: on a slow,
    shared machine they may run minutes after the data was written."""
    return int(time.time())


@pytest.fixture(scope="session")
def fleet_prometheus(tmp_path_factory: pytest.TempPathFactory, fleet_end: int) -> Iterator[str]:
    """URL of a real Prometheus whose TSDB was backfilled with the synthetic fleet, ending at
    `fleet_end`."""
    workdir = tmp_path_factory.mktemp("prometheus")
    data = workdir / "data"
    metrics = workdir / "fleet.om"
    metrics.write_text(openmetrics(fleet_end))
    subprocess.run(
        [promtool(), "tsdb", "create-blocks-from", "openmetrics", str(metrics), str(data)],
        check=True,
        capture_output=True,
    )
    # The SLO rules, evaluated every few seconds, so the SLO dashboard has recorded series.
    slo_rules = workdir / "slo-rules.yml"
    slo_rules.write_text(render_slo_rules(interval="2s", period_interval="2s"))
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"
        f"rule_files:\n  - {slo_rules}\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "prometheus",
        [
            str(locate_prometheus()),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir / "prometheus.log",
    ).start()
    try:
        process.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)
        process.wait_ready(_has_series(url, "fleetscope:slo_burn_rate:period"), timeout=60)
        yield url
    finally:
        process.stop()


def _has_series(url: str, expr: str) -> Callable[[], bool]:
    def probe() -> bool:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
        return bool(answer.get("data", {}).get("result"))

    return probe


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana(token="fleetscope-test-token")
    server.start()
    try:
        yield server
    finally:
        server.stop()
