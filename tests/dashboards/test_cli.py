"""The `dashboards` commands as a user runs them: build into a directory, write rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetscope.collector.process import free_port
from fleetscope.dashboards.check import CheckError, check_all, substitute
from fleetscope.dashboards.cli import app
from fleetscope.dashboards.rules import render_rules


def test_build_writes_dashboards_and_rules_into_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "fleetscope-cache.json",
        "fleetscope-capacity.json",
        "fleetscope-db.json",
        "fleetscope-fleet.json",
        "fleetscope-node.json",
        "fleetscope-rules.yml",
        "fleetscope-slo-rules.yml",
        "fleetscope-slo.json",
        "fleetscope-tasks.json",
    ]
    assert json.loads((tmp_path / "fleetscope-fleet.json").read_text())["uid"] == "fleetscope-fleet"
    assert f"wrote {tmp_path / 'fleetscope-fleet.json'}" in result.output


def test_rules_command_writes_and_validates_with_promtool(tmp_path: Path) -> None:
    out = tmp_path / "alerts" / "rules.yml"
    result = CliRunner().invoke(app, ["rules", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render_rules()
    assert "promtool check rules: ok" in result.output


def test_check_rejects_a_malformed_variable() -> None:
    result = CliRunner().invoke(
        app, ["check", "--prometheus", "http://127.0.0.1:1", "--var", "node"]
    )
    assert result.exit_code == 2
    assert "--var 'node' must look like name=value" in result.output


def test_check_names_the_url_when_prometheus_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CheckError, match=url):
        check_all(url)
    result = CliRunner().invoke(app, ["check", "--prometheus", url])
    assert result.exit_code == 2
    assert "Cannot reach Prometheus" in result.output
    assert "Traceback" not in result.output


def test_substitute_follows_grafana_interpolation() -> None:
    expr = 'rate(x{job=~"$service", host_name=~"${node:regex}"}[$__rate_interval]) [$__range]'
    assert substitute(expr, {"node": "node-2"}, rate_interval="2m", range_="6h") == (
        'rate(x{job=~".*", host_name=~"node-2"}[2m]) [6h]'
    )


def test_substitute_gives_windows_in_numbers_for_per_second_panels() -> None:
    expr = "x / ($__rate_interval_ms / 1000) + y / $__range_s"
    assert substitute(expr, rate_interval="2m", range_="6h") == "x / (120000 / 1000) + y / 21600"


def test_substitute_leaves_label_replace_capture_groups_alone() -> None:
    expr = 'label_replace(x{server=~"$node"}, "host_name", "$1", "server", "(.*)")'
    assert substitute(expr, {"node": "node-2"}) == (
        'label_replace(x{server=~"node-2"}, "host_name", "$1", "server", "(.*)")'
    )
