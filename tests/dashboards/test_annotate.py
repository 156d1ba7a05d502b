"""`annotate` against the local server enforcing Grafana's HTTP API contract (the same one
`push` is tested against): one deploy annotation, tagged so every dashboard shows it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleetscope.dashboards.annotate import annotate_deploy
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.cli import app
from fleetscope.dashboards.panels import DEPLOY_TAG
from fleetscope.dashboards.push import PushError
from tests.dashboards.fake_grafana import FakeGrafana

TOKEN = "fleetscope-test-token"


def test_annotate_posts_one_tagged_deploy_annotation(grafana: FakeGrafana) -> None:
    result = annotate_deploy(grafana.url, TOKEN, "1.4.2", service="shop", at=1_700_000_000.5)
    assert len(grafana.annotations) == 1
    stored = grafana.annotations[0]
    assert stored["tags"] == [DEPLOY_TAG, "version:1.4.2", "service:shop"]
    assert stored["time"] == 1_700_000_000_500
    assert stored["text"] == "Deployed shop 1.4.2"
    assert "dashboardUID" not in stored  # organization-wide: every dashboard can show it
    assert result.id == stored["id"]
    request = next(r for r in grafana.requests if r.path == "/api/annotations")
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_every_dashboard_shows_the_deploy_annotations() -> None:
    for model in dashboard_models():
        queries = model["annotations"]["list"]
        deploys = [q for q in queries if q.get("name") == "Deploys"]
        assert len(deploys) == 1, model["uid"]
        assert deploys[0]["target"]["tags"] == [DEPLOY_TAG]
        assert deploys[0]["datasource"]["type"] == "grafana"


def test_annotate_command_reads_the_token_from_the_environment(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(
        app,
        ["annotate", "--url", grafana.url, "--version", "2.0.0", "--text", "Release 2.0"],
        env={"GRAFANA_TOKEN": TOKEN},
    )
    assert result.exit_code == 0, result.output
    assert grafana.annotations[0]["text"] == "Release 2.0"
    assert grafana.annotations[0]["tags"] == [DEPLOY_TAG, "version:2.0.0"]
    assert "annotation 1" in result.output


def test_annotate_explains_a_missing_permission_in_one_line(grafana: FakeGrafana) -> None:
    grafana.fail_with = 403
    result = CliRunner().invoke(
        app, ["annotate", "--url", grafana.url, "--token", TOKEN, "--version", "1"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "403" in lines[0] and "annotations:create" in lines[0]
    assert grafana.annotations == []


def test_annotate_refuses_an_empty_version(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match="--version is empty"):
        annotate_deploy(grafana.url, TOKEN, "  ")
    assert grafana.requests == []
