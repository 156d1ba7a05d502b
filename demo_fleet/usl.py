"""The Universal Scalability Law (Neil Gunther) fitted to measured throughput.

    X(N) = λN / (1 + σ(N - 1) + κN(N - 1))

N is concurrency (requests in the system), X throughput (requests/s). λ is the throughput
of one request in flight with nothing to contend with, σ the share of work that serializes
(contention: queueing for a lock, a core, a connection pool) and κ the cost of keeping
concurrent work coherent (crosstalk: every request waiting on every other, cache-line and
lock ping-pong). With κ > 0 throughput peaks at N* = √((1 - σ)/κ) and falls beyond it.

The fit is ordinary least squares on X (scipy's trust-region reflective solver, with
σ ∈ [0, 1], κ ≥ 0, λ > 0). Whether the measured points pin the curve down is a separate
question, answered by `assess`: a fit through points that span too little of the curve is
reported as such, never as a peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fleetscope.errors import FleetscopeError

MIN_POINTS = 4
# The measured concurrency must span at least this factor (e.g. 2 to 8) for σ and κ to mean
# anything; the peak is an extrapolation when it lies more than EXTRAPOLATION times beyond
# the largest measured concurrency.
MIN_SPAN = 3.0
EXTRAPOLATION = 2.0
# κ whose term changes X(N) by less than this share even at the largest measured N is no
# measured coherency cost: the peak it would imply is pure extrapolation of noise.
NEGLIGIBLE_COHERENCY = 1e-3

Values = Sequence[float] | NDArray[np.float64]


def throughput(n: ArrayLike, lam: float, sigma: float, kappa: float) -> NDArray[np.float64]:
    """X(N) of the law."""
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


class NotEnoughData(FleetscopeError):
    """The points cannot be fitted at all; the message says why."""


@dataclass(frozen=True)
class Fit:
    """Fitted parameters, how well the curve passes through the points, and what follows."""

    lam: float
    sigma: float
    kappa: float
    r_squared: float
    points: int
    n_min: float
    n_max: float
    stderr: dict[str, float] = field(default_factory=dict)  # standard errors of lam/sigma/kappa

    @property
    def coherency_measured(self) -> bool:
        """Whether κ weighs anything within the measured range of concurrency."""
        n = self.n_max
        return self.kappa * n * (n - 1.0) > NEGLIGIBLE_COHERENCY * (1.0 + self.sigma * (n - 1.0))

    @property
    def peak_concurrency(self) -> float | None:
        """N* = √((1 - σ)/κ); None when no coherency cost was measured (throughput then only
        approaches λ/σ)."""
        if not self.coherency_measured:
            return None
        return math.sqrt(max(0.0, 1.0 - self.sigma) / self.kappa)

    @property
    def peak_throughput(self) -> float:
        """X(N*), or the asymptote λ/σ without coherency cost (∞ for linear scaling)."""
        peak = self.peak_concurrency
        if peak is not None:
            return float(throughput(peak, self.lam, self.sigma, self.kappa))
        return self.lam / self.sigma if self.sigma > 0 else math.inf

    def predict(self, n: ArrayLike) -> NDArray[np.float64]:
        return throughput(n, self.lam, self.sigma, self.kappa)

    def headroom(self, current: float) -> float | None:
        """Share of the peak throughput still unused at `current` requests/s."""
        peak = self.peak_throughput
        if not math.isfinite(peak) or peak <= 0:
            return None
        return 1.0 - current / peak

    def to_dict(self) -> dict[str, Any]:
        return {
            "lambda": self.lam,
            "sigma": self.sigma,
            "kappa": self.kappa,
            "r_squared": self.r_squared,
            "points": self.points,
            "concurrency_range": [self.n_min, self.n_max],
            "stderr": dict(self.stderr),
            "peak_concurrency": self.peak_concurrency,
            "peak_throughput": _finite(self.peak_throughput),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def fit(n: Values, x: Values) -> Fit:
    """Least-squares fit of λ, σ, κ to measured (concurrency, throughput) points."""
    from scipy.optimize import curve_fit

    points = [
        (float(a), float(b))
        for a, b in zip(n, x, strict=True)
        if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0
    ]
    distinct = len({round(a, 2) for a, _ in points})
    if distinct < MIN_POINTS:
        raise NotEnoughData(
            f"The scalability fit needs throughput at {MIN_POINTS} or more different "
            f"concurrency levels; the data has {distinct}."
        )
    n_arr = np.array([a for a, _ in points])
    x_arr = np.array([b for _, b in points])
    # λ: the best throughput per request in flight, which the lightest load comes closest to.
    lam0 = float(np.max(x_arr / n_arr))
    best = None
    for sigma0, kappa0 in ((0.05, 1e-3), (0.3, 1e-2), (0.01, 1e-5)):
        try:
            params, covariance = curve_fit(
                throughput,
                n_arr,
                x_arr,
                p0=(lam0, sigma0, kappa0),
                bounds=((1e-12, 0.0, 0.0), (np.inf, 1.0, np.inf)),
                method="trf",
                maxfev=20_000,
            )
        except RuntimeError:  # no convergence from this start
            continue
        residual = float(np.sum((x_arr - throughput(n_arr, *params)) ** 2))
        if best is None or residual < best[0]:
            best = (residual, params, covariance)
    if best is None:
        raise NotEnoughData("The scalability fit did not converge on these points.")
    residual, params, covariance = best
    total = float(np.sum((x_arr - x_arr.mean()) ** 2))
    r_squared = 1.0 - residual / total if total > 0 else 0.0
    errors = np.sqrt(np.abs(np.diag(covariance))) if np.all(np.isfinite(covariance)) else None
    stderr = (
        {name: float(e) for name, e in zip(("lambda", "sigma", "kappa"), errors, strict=True)}
        if errors is not None
        else {}
    )
    lam, sigma, kappa = (float(v) for v in params)
    return Fit(
        lam=lam,
        sigma=sigma,
        kappa=kappa,
        r_squared=r_squared,
        points=len(points),
        n_min=float(n_arr.min()),
        n_max=float(n_arr.max()),
        stderr=stderr,
    )


@dataclass(frozen=True)
class Assessment:
    """Whether a fit can be read as the fleet's scalability curve, and why not."""

    conclusive: bool
    notes: list[str]


def assess(result: Fit) -> Assessment:
    notes = []
    span = result.n_max / result.n_min if result.n_min > 0 else math.inf
    if span < MIN_SPAN:
        notes.append(
            f"The data spans too little of the curve: concurrency only went from "
            f"{result.n_min:.2g} to {result.n_max:.2g} (x{span:.1f}; at least x{MIN_SPAN:g} is "
            "needed to tell contention from coherency). Load the fleet harder, or over a "
            "longer window that includes busy periods (`fleetscope demo scale-test` does)."
        )
    peak = result.peak_concurrency
    if peak is None:
        notes.append(
            f"No coherency cost was measured (κ = {result.kappa:.2g}): throughput levels off "
            f"towards λ/σ = {result.peak_throughput:.3g}/s within the measured range; the "
            "data does not show whether or where it would turn down."
        )
    elif peak < result.n_min:
        notes.append(
            f"The fleet was at its peak already at the lightest load measured (N* = {peak:.2g}, "
            f"below {result.n_min:.2g}): start the measurement with less concurrency."
        )
    elif peak > EXTRAPOLATION * result.n_max:
        notes.append(
            f"The predicted peak (N* = {peak:.3g}) lies far beyond the largest concurrency "
            f"measured ({result.n_max:.3g}): it is an extrapolation, not a measurement."
        )
    kappa_error = result.stderr.get("kappa")
    if peak is not None and kappa_error is not None and kappa_error > result.kappa:
        notes.append(
            f"κ is not determined by the data (κ = {result.kappa:.2g} ± {kappa_error:.2g})."
        )
    if result.r_squared < 0.8:
        notes.append(
            f"The curve fits the points poorly (R² = {result.r_squared:.2f}): the load "
            "changed in kind during the window, or something other than concurrency limited it."
        )
    return Assessment(conclusive=not notes, notes=notes)


def plot(
    result: Fit,
    n: Values,
    x: Values,
    path: Path,
    *,
    title: str,
    x_label: str = "concurrency per node (requests in the system)",
    y_label: str = "throughput per node (requests/s)",
) -> Path:
    """Measured points, the fitted curve, linear scaling for reference, and the peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = result.peak_concurrency
    right = max(result.n_max * 1.3, (peak or 0) * 1.2)
    grid = np.linspace(0, right, 400)[1:]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    axes.plot(
        grid, result.lam * grid, ":", color="grey", label=f"linear scaling (λ = {result.lam:.3g}/s)"
    )
    axes.plot(
        grid,
        result.predict(grid),
        "-",
        color="tab:blue",
        label=(
            f"USL fit: σ = {result.sigma:.3g}, κ = {result.kappa:.3g}, R² = {result.r_squared:.3f}"
        ),
    )
    axes.scatter(n, x, color="tab:orange", zorder=3, label="measured (Prometheus)")
    if peak is not None:
        axes.axvline(peak, color="tab:red", linestyle="--", linewidth=1)
        axes.scatter(
            [peak],
            [result.peak_throughput],
            marker="*",
            s=160,
            color="tab:red",
            zorder=4,
            label=f"peak: N* = {peak:.3g}, X = {result.peak_throughput:.3g}/s",
        )
    top = max(
        float(np.max(x)), result.peak_throughput if math.isfinite(result.peak_throughput) else 0
    )
    axes.set_xlim(0, right)
    axes.set_ylim(0, top * 1.25)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
