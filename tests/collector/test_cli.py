"""The CLI turns user mistakes into one clear message and a non-zero exit, never a traceback."""

import subprocess
import sys
from pathlib import Path

from fleetscope.collector.manifest import load_manifest


def _fleetscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetscope", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_validate_broken_config_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("exporters:\n  prometheus:\n    endpoint: [not, a, string]\n")
    result = _fleetscope("collector", "validate", "--config", str(broken))
    assert result.returncode != 0
    assert "rejected the config" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_build_without_go_explains_in_one_paragraph(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "FLEETSCOPE_CACHE_DIR": str(tmp_path),
        "HOME": str(tmp_path),
    }
    result = _fleetscope("collector", "build", env=env)
    assert result.returncode != 0
    assert "Go toolchain" in result.stderr
    assert "FLEETSCOPE_OTELCOL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_versions_lists_the_pinned_components() -> None:
    result = _fleetscope("collector", "versions")
    assert result.returncode == 0
    assert f"fleetscope-otelcol {load_manifest().version}" in result.stdout
    assert "prometheusexporter" in result.stdout
