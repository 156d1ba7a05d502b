"""`fleetscope capacity` on a real Prometheus holding a node's history: it recovers the curve
the history was generated from, and says plainly when the history cannot show one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from fleetscope.collector.locate import locate_prometheus
from fleetscope.collector.process import ManagedProcess, free_port, http_ok
from fleetscope.demo import capacity, usl
from tests.dashboards.conftest import promtool

pytestmark = pytest.mark.integration

LAM, SIGMA, KAPPA = 40.0, 0.1, 0.004  # peak near N* = 15
LEVELS = [1, 2, 4, 8, 12, 16, 24, 32]  # concurrency held in turn, 5 minutes each
HOLD_S = 300
STEP_S = 15
STEADY = 6.0  # the second node: one level of load all along
LEAD_S = 600  # samples past "now", so a slow test run still finds full rate windows


def _history(now: float) -> str:
    """OpenMetrics for two nodes: node-1 walks up the curve, node-2 never changes load."""
    start = int(now) - HOLD_S * len(LEVELS)
    lines = ["# TYPE http_server_request_duration_seconds histogram"]
    for node in ("node-1", "node-2"):
        count = seconds = 0.0
        labels = f'job="shop",host_name="{node}",instance="{node}/1",http_route="/p/"'
        for t in range(start, int(now) + LEAD_S + 1, STEP_S):
            level: float
            if node == "node-1":
                level = LEVELS[min((t - start) // HOLD_S, len(LEVELS) - 1)]
            else:
                level = STEADY
            rate = float(usl.throughput(level, LAM, SIGMA, KAPPA))
            count += rate * STEP_S
            seconds += level * STEP_S  # Little's law: request-seconds per second = concurrency
            for name, value in (
                (f'_bucket{{{labels},le="+Inf"}}', count),
                (f"_count{{{labels}}}", count),
                (f"_sum{{{labels}}}", seconds),
            ):
                lines.append(f"http_server_request_duration_seconds{name} {value:.6f} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    workdir = tmp_path_factory.mktemp("capacity-prometheus")
    now = time.time()
    (workdir / "history.om").write_text(_history(now))
    subprocess.run(
        [promtool(), "tsdb", "create-blocks-from", "openmetrics", "history.om", "data"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    (workdir / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "prometheus",
        [
            str(locate_prometheus()),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir / "prometheus.log",
    ).start()
    try:
        process.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)
        yield url, now
    finally:
        process.stop()


def _collect(history: tuple[str, float]) -> capacity.FleetCapacity:
    url, now = history
    return capacity.collect(url, window=f"{HOLD_S * len(LEVELS) // 60}m", step="1m", at=now)


def test_the_fit_recovers_the_curve_the_history_walked_up(history: tuple[str, float]) -> None:
    node = next(n for n in _collect(history).nodes if n.node == "node-1")

    assert node.fit is not None and node.assessment is not None
    assert node.fit.lam == pytest.approx(LAM, rel=0.1)
    assert node.fit.sigma == pytest.approx(SIGMA, abs=0.05)
    assert node.fit.kappa == pytest.approx(KAPPA, rel=0.4)
    assert node.fit.r_squared > 0.95
    assert node.assessment.conclusive, node.assessment.notes
    # "Now" is the last level, 32 in flight: past the peak, so little headroom is left.
    assert node.current_rps == pytest.approx(float(usl.throughput(32, LAM, SIGMA, KAPPA)), rel=0.02)


def test_one_level_of_load_is_reported_as_too_little_to_fit(history: tuple[str, float]) -> None:
    result = _collect(history)
    steady = next(n for n in result.nodes if n.node == "node-2")
    console = Console(record=True, width=120, color_system=None)
    capacity.render(result, console)
    text = console.export_text()

    assert steady.fit is None
    assert steady.error is not None and "different concurrency levels" in steady.error
    assert "No fit: The scalability fit needs throughput at 4 or more" in text
    assert result.to_dict()["fleet_headroom"] is None
    assert "Fleet: no headroom figure" in text


def test_the_command_prints_json_and_writes_a_plot_per_fitted_node(
    history: tuple[str, float], tmp_path: Path
) -> None:
    url, _ = history
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetscope",
            "capacity",
            "--prometheus",
            url,
            "--window",
            "45m",
            "--json",
            "--plot-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    import json

    data = json.loads(done.stdout)
    assert [n["node"] for n in data["nodes"]] == ["node-1", "node-2"]
    assert (tmp_path / "capacity-node-1.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "capacity-node-2.png").exists()
