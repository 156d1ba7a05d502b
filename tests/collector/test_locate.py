"""Locating the collector: FLEETSCOPE_OTELCOL first, then the build, then PATH."""

from pathlib import Path

import pytest

from fleetscope.collector.locate import locate_collector, locate_prometheus
from fleetscope.errors import FleetscopeError


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_explicit_binary_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = _executable(tmp_path / "otelcol-contrib")
    monkeypatch.setenv("FLEETSCOPE_OTELCOL", str(binary))
    assert locate_collector() == binary


def test_explicit_binary_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEETSCOPE_OTELCOL", str(tmp_path / "nope"))
    with pytest.raises(FleetscopeError, match="FLEETSCOPE_OTELCOL"):
        locate_collector()


def test_official_binary_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FLEETSCOPE_OTELCOL", raising=False)
    monkeypatch.setenv("FLEETSCOPE_CACHE_DIR", str(tmp_path / "empty-cache"))
    binary = _executable(tmp_path / "otelcol-contrib")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert locate_collector() == binary


def test_nothing_found_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FLEETSCOPE_OTELCOL", raising=False)
    monkeypatch.setenv("FLEETSCOPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FleetscopeError, match="fleetscope collector build"):
        locate_collector()


def test_prometheus_missing_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLEETSCOPE_PROMETHEUS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FleetscopeError, match="apt-get install prometheus"):
        locate_prometheus()
