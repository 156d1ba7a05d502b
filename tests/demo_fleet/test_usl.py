"""The scalability fit: it recovers known parameters from noisy points, passes through them,
and says so when the points cannot pin the curve down."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fleetscope.demo import usl

LAM, SIGMA, KAPPA = 120.0, 0.06, 0.002  # peak at N* = √(0.94 / 0.002) ≈ 21.7
STEPS = [1, 2, 4, 8, 16, 24, 32, 48, 64]


def _noisy(n: list[float], noise: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return usl.throughput(n, LAM, SIGMA, KAPPA) * (1 + rng.normal(0, noise, len(n)))


def test_the_fit_recovers_known_parameters_from_noisy_points() -> None:
    n = [float(s) for s in STEPS for _ in range(3)]  # three measurements per step
    result = usl.fit(n, _noisy(n, noise=0.02))

    assert result.lam == pytest.approx(LAM, rel=0.05)
    assert result.sigma == pytest.approx(SIGMA, abs=0.02)
    assert result.kappa == pytest.approx(KAPPA, rel=0.3)
    assert result.peak_concurrency == pytest.approx(math.sqrt((1 - SIGMA) / KAPPA), rel=0.15)
    assert result.r_squared > 0.97
    assert usl.assess(result).conclusive


def test_the_fitted_curve_passes_through_noise_free_points() -> None:
    n = [float(s) for s in STEPS]
    result = usl.fit(n, usl.throughput(n, LAM, SIGMA, KAPPA))

    assert result.r_squared == pytest.approx(1.0, abs=1e-6)
    assert result.predict(n) == pytest.approx(usl.throughput(n, LAM, SIGMA, KAPPA), rel=1e-4)
    assert result.peak_throughput == pytest.approx(
        float(usl.throughput(math.sqrt((1 - SIGMA) / KAPPA), LAM, SIGMA, KAPPA)), rel=1e-4
    )


def test_points_that_span_too_little_of_the_curve_are_called_inconclusive() -> None:
    n = [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]  # the linear start only
    result = usl.fit(n, _noisy(n, noise=0.01))
    verdict = usl.assess(result)

    assert not verdict.conclusive
    assert any("spans too little of the curve" in note for note in verdict.notes)


def test_a_peak_far_beyond_the_data_is_called_an_extrapolation() -> None:
    n = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    x = usl.throughput(n, 100.0, 0.01, 0.0001)  # peak near N = 99
    verdict = usl.assess(usl.fit(n, x))

    assert not verdict.conclusive
    assert any("extrapolation" in note or "does not show where" in note for note in verdict.notes)


def test_fewer_than_four_concurrency_levels_cannot_be_fitted() -> None:
    with pytest.raises(usl.NotEnoughData, match="4 or more different concurrency levels"):
        usl.fit([2.0, 2.0, 4.0, 8.0, 0.0], [10.0, 11.0, 19.0, 30.0, 0.0])


def test_headroom_is_the_unused_share_of_the_peak() -> None:
    result = usl.fit([float(s) for s in STEPS], usl.throughput(STEPS, LAM, SIGMA, KAPPA))

    assert result.headroom(result.peak_throughput / 4) == pytest.approx(0.75, abs=1e-6)
    assert result.headroom(result.peak_throughput) == pytest.approx(0.0, abs=1e-6)


def test_the_plot_is_written_as_png(tmp_path: Path) -> None:
    n = [float(s) for s in STEPS]
    x = _noisy(n, noise=0.02)
    path = usl.plot(usl.fit(n, x), n, x, tmp_path / "usl.png", title="synthetic")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
