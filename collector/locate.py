"""Finds the collector binary: $FLEETSCOPE_OTELCOL, then the built distribution, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fleetscope.errors import FleetscopeError

from .build import built_binary

OFFICIAL_NAMES = ("otelcol-contrib", "otelcol")


def locate_collector() -> Path:
    explicit = os.environ.get("FLEETSCOPE_OTELCOL")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FleetscopeError(
                f"FLEETSCOPE_OTELCOL={explicit} is not an executable file. Point it at an "
                "otelcol-contrib (or Fleetscope-built) collector binary, or unset it to use "
                "the distribution built by `fleetscope collector build`."
            )
        return path
    built = built_binary()
    if built.exists():
        return built
    for name in OFFICIAL_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise FleetscopeError(
        f"No collector found: {built} does not exist, FLEETSCOPE_OTELCOL is not set and no "
        f"{' or '.join(OFFICIAL_NAMES)} is on PATH. Run `fleetscope collector build` (needs Go) "
        "or set FLEETSCOPE_OTELCOL to an official otelcol-contrib binary."
    )


def locate_prometheus() -> Path:
    explicit = os.environ.get("FLEETSCOPE_PROMETHEUS")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise FleetscopeError(f"FLEETSCOPE_PROMETHEUS={explicit} is not an executable file.")
        return Path(explicit)
    found = shutil.which("prometheus")
    if found is None:
        raise FleetscopeError(
            "Prometheus is not installed. On Debian/Ubuntu run `apt-get install prometheus` "
            "(as root; `make test` does it for you), or put a prometheus binary on PATH, or set "
            "FLEETSCOPE_PROMETHEUS to its path."
        )
    return Path(found)
