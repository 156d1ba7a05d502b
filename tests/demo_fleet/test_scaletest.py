"""`fleetscope demo scale-test` without a fleet: its options, its step log, the dashboards'
queries it measures with, and what it writes from measured steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.check import iter_queries
from fleetscope.demo import usl
from fleetscope.demo.scaletest import (
    STEP_QUERIES,
    ScaleTestOptions,
    Step,
    analyse,
    read_steps,
    write_result,
)
from fleetscope.errors import FleetscopeError

LAM, SIGMA, KAPPA = 30.0, 0.2, 0.01


@pytest.mark.parametrize("key", sorted(STEP_QUERIES))
def test_every_step_figure_is_a_dashboard_query(key: str) -> None:
    assert STEP_QUERIES[key] in {q.expr for q in iter_queries(dashboard_models())}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ScaleTestOptions(steps=(1, 2, 4)), "at least 4 steps"),
        (ScaleTestOptions(steps=(1, 4, 2, 8)), "increasing"),
        (ScaleTestOptions(warmup_s=2), "--warmup-seconds"),
        (ScaleTestOptions(step_s=14, warmup_s=12), "--step-seconds"),
        (ScaleTestOptions(think_ms=-1), "--think-ms"),
    ],
)
def test_options_that_cannot_give_a_fit_are_refused(
    options: ScaleTestOptions, message: str
) -> None:
    with pytest.raises(FleetscopeError, match=message):
        options.validate()


def test_the_defaults_fit_in_the_time_budget() -> None:
    options = ScaleTestOptions()
    options.validate()

    # Load alone: six steps of 40 s; the fleet's start and stop add about a minute.
    assert len(options.steps) * options.step_s <= 6 * 60
    assert options.demo_options().balancer


def test_steps_run_from_their_logged_start_to_the_next_one(tmp_path: Path) -> None:
    log = tmp_path / "steps.jsonl"
    log.write_text(
        "\n".join(
            json.dumps({"step": i, "users": u * 2, "started": 1000.0 + 41 * i})
            for i, u in enumerate((1, 2, 4, 8))
        )
        + "\n"
    )
    options = ScaleTestOptions(steps=(1, 2, 4, 8), step_s=40)

    steps = read_steps(log, options)

    assert [(s.users_per_node, s.started, s.ended) for s in steps] == [
        (1, 1000.0, 1041.0),
        (2, 1041.0, 1082.0),
        (4, 1082.0, 1123.0),
        (8, 1123.0, 1163.0),
    ]


def _measured(nodes: int) -> list[Step]:
    steps = []
    pairs = zip((1, 2, 4, 8, 16, 32, 64), (0.5, 1, 2, 4, 8, 16, 32), strict=True)
    for i, (users, n) in enumerate(pairs):
        x = float(usl.throughput(n, LAM, SIGMA, KAPPA))
        steps.append(Step(users, 40.0 * i, 40.0 * (i + 1), x * nodes, n * nodes, 0.1, 0.01, 0.5))
    return steps


def test_analysis_fits_per_node_and_writes_json_and_plot(tmp_path: Path) -> None:
    options = ScaleTestOptions(nodes=2, steps=(1, 2, 4, 8, 16, 32, 64), current_rps=30.0)

    result = analyse(_measured(2), options, 300.0, tmp_path)
    data = json.loads(write_result(result, tmp_path).read_text())

    assert data["fit_per_node"]["sigma"] == pytest.approx(SIGMA, abs=1e-3)
    assert data["fit_per_node"]["kappa"] == pytest.approx(KAPPA, rel=1e-2)
    assert data["fit_per_node"]["r_squared"] == pytest.approx(1.0, abs=1e-6)
    peak = float(usl.throughput(((1 - SIGMA) / KAPPA) ** 0.5, LAM, SIGMA, KAPPA))
    assert data["headroom"]["fleet_peak_rps"] == pytest.approx(2 * peak, rel=1e-3)
    assert data["headroom"]["headroom"] == pytest.approx(1 - 30.0 / (2 * peak), rel=1e-3)
    assert data["headroom"]["current_source"] == "--current-rps"
    assert data["steps"][2]["concurrency_per_node"] == pytest.approx(2.0)
    assert data["steps"][2]["fitted_throughput_per_node"] == pytest.approx(
        float(usl.throughput(2.0, LAM, SIGMA, KAPPA)), rel=1e-4
    )
    assert (tmp_path / "scale-test.png").read_bytes()[:4] == b"\x89PNG"


def test_without_enough_measured_steps_it_says_why(tmp_path: Path) -> None:
    steps = [Step(u, 0.0, 40.0) for u in (1, 2, 4, 8)]  # nothing reached Prometheus

    result = analyse(steps, ScaleTestOptions(), 100.0, tmp_path)

    assert result.fit is None
    assert result.error is not None and "4 or more different concurrency levels" in result.error
    assert result.to_dict()["conclusive"] is False
