"""Building is skipped when fresh and explains itself when Go is missing."""

import os
from pathlib import Path

import pytest

from fleetscope.collector import build
from fleetscope.collector.manifest import MANIFEST_PATH
from fleetscope.errors import FleetscopeError


def test_binary_newer_than_manifest_is_fresh(tmp_path: Path) -> None:
    binary = tmp_path / "otelcol"
    binary.write_text("")
    newer = MANIFEST_PATH.stat().st_mtime + 10
    os.utime(binary, (newer, newer))
    assert build.is_fresh(binary)


def test_binary_older_than_manifest_is_rebuilt(tmp_path: Path) -> None:
    binary = tmp_path / "otelcol"
    binary.write_text("")
    older = MANIFEST_PATH.stat().st_mtime - 10
    os.utime(binary, (older, older))
    assert not build.is_fresh(binary)
    assert not build.is_fresh(tmp_path / "missing")


def test_missing_go_explains_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLEETSCOPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FleetscopeError) as excinfo:
        build.build(progress=lambda line: None)
    message = str(excinfo.value)
    assert "Go toolchain" in message
    assert "FLEETSCOPE_OTELCOL" in message


def test_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEETSCOPE_CACHE_DIR", str(tmp_path))
    assert build.cache_dir() == tmp_path
    assert build.built_binary().is_relative_to(tmp_path)
