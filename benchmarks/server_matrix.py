"""What the real-server benchmark compares: configurations (library, sampling, server) and views."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Configuration:
    name: str
    label: str
    setup: str  # FLEETSCOPE_BENCH_SETUP, see benchmarks/server_settings.py
    sample_rate: float | None = None  # traces; None when the setup has no tracing
    server: str = "sync"  # gunicorn sync worker, gunicorn gthread, or uvicorn (ASGI)

    @property
    def baseline(self) -> str:
        """Bare Django on the same server: what this configuration's ratio divides by."""
        return "bare" if self.server == "sync" else f"bare-{self.server}"

    @property
    def exports_otlp(self) -> bool:
        return self.setup.startswith("fleetscope") or self.setup == "otel"

    @property
    def service_name(self) -> str:
        """service.name of what it exports: tells configurations apart at the collector."""
        return f"bench-{self.name}"


CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration("bare", "bare Django", "bare"),
    Configuration("fleetscope-0", "Fleetscope, traces 0%", "fleetscope", 0.0),
    Configuration("fleetscope-10", "Fleetscope, traces 10%", "fleetscope", 0.1),
    Configuration("fleetscope-100", "Fleetscope, traces 100%", "fleetscope", 1.0),
    Configuration(
        "fleetscope-silk", "Fleetscope 10% + Silk (default rate)", "fleetscope-silk", 0.1
    ),
    Configuration(
        "fleetscope-contrib", "Fleetscope 10%, contrib request mode", "fleetscope-contrib", 0.1
    ),
    Configuration("otel-10", "stock OTel, traces 10%", "otel", 0.1),
    Configuration("otel-100", "stock OTel, traces 100%", "otel", 1.0),
    Configuration("django-prometheus", "django-prometheus", "django-prometheus"),
    Configuration("silk", "django-silk, every request", "silk"),
    Configuration("bare-gthread", "bare Django (gthread)", "bare", server="gthread"),
    Configuration(
        "fleetscope-10-gthread", "Fleetscope 10% (gthread)", "fleetscope", 0.1, "gthread"
    ),
    Configuration("bare-uvicorn", "bare Django (uvicorn)", "bare", server="uvicorn"),
    Configuration(
        "fleetscope-10-uvicorn", "Fleetscope 10% (uvicorn)", "fleetscope", 0.1, "uvicorn"
    ),
)
BY_NAME = {config.name: config for config in CONFIGURATIONS}

# name -> (path, what it is)
VIEWS: dict[str, tuple[str, str]] = {
    "hello": ("/hello/", "hello, no query"),
    "mixed": ("/mixed/", "10 SQL queries + 2 cache calls"),
    "shop-home": ("/shop/", "demo shop home: template, 2 queries"),
    "shop-n-plus-one": ("/shop/products/n-plus-one/", "demo shop N+1 list: template, 62 queries"),
}
QUICK_CONFIGURATIONS = ("bare", "fleetscope-10", "fleetscope-100", "otel-10", "django-prometheus")


def select(names: list[str] | None) -> list[Configuration]:
    """The named configurations in table order, plus the bare baselines their ratios need."""
    if not names:
        return list(CONFIGURATIONS)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown configuration {unknown[0]!r}; choose from {', '.join(BY_NAME)}")
    wanted = set(names) | {BY_NAME[name].baseline for name in names}
    return [config for config in CONFIGURATIONS if config.name in wanted]


def select_views(names: list[str] | None) -> list[str]:
    if not names:
        return list(VIEWS)
    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        raise ValueError(f"unknown view {unknown[0]!r}; choose from {', '.join(VIEWS)}")
    return [name for name in VIEWS if name in names]
