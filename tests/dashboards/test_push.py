"""`push` against a local server enforcing Grafana's HTTP API contract (not a live Grafana):
idempotent folder and dashboard saves, and one-line errors a user can act on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleetscope.collector.process import free_port
from fleetscope.dashboards.build import dashboard_models
from fleetscope.dashboards.cli import app
from fleetscope.dashboards.push import PushError, folder_uid_for, push_dashboards
from tests.dashboards.fake_grafana import FakeGrafana

TOKEN = "fleetscope-test-token"
UIDS = {
    "fleetscope-fleet",
    "fleetscope-db",
    "fleetscope-cache",
    "fleetscope-node",
    "fleetscope-slo",
    "fleetscope-capacity",
    "fleetscope-tasks",
}


def test_push_creates_the_folder_and_every_dashboard_in_it(grafana: FakeGrafana) -> None:
    results = push_dashboards(grafana.url, TOKEN, "Fleetscope")
    assert grafana.folders == {"fleetscope": "Fleetscope"}
    assert set(grafana.dashboards) == UIDS
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"fleetscope"}
    assert {r.uid for r in results} == UIDS
    assert all(r.version == 1 and r.url.startswith(f"{grafana.url}/d/") for r in results)
    stored = grafana.dashboards["fleetscope-fleet"]["dashboard"]
    model = next(m for m in dashboard_models() if m["uid"] == "fleetscope-fleet")
    assert stored == model


def test_second_push_updates_the_same_dashboards_without_a_new_folder(
    grafana: FakeGrafana,
) -> None:
    push_dashboards(grafana.url, TOKEN)
    results = push_dashboards(grafana.url, TOKEN)
    assert list(grafana.folders.values()) == ["Fleetscope"]
    assert set(grafana.dashboards) == UIDS
    assert {r.version for r in results} == {2}
    folder_creations = [
        r for r in grafana.requests if (r.method, r.path) == ("POST", "/api/folders")
    ]
    assert len(folder_creations) == 1


def test_push_reuses_a_folder_someone_created_by_hand(grafana: FakeGrafana) -> None:
    grafana.folders["abc123"] = "Fleetscope"
    push_dashboards(grafana.url, TOKEN)
    assert grafana.folders == {"abc123": "Fleetscope"}
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"abc123"}


def test_push_sends_the_documented_request_shape(grafana: FakeGrafana) -> None:
    push_dashboards(grafana.url, TOKEN, "Ops / Fleet")
    saves = [r for r in grafana.requests if r.path == "/api/dashboards/db"]
    assert len(saves) == len(UIDS)
    for request in grafana.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    for save in saves:
        assert save.headers["Content-Type"] == "application/json"
        assert save.body["overwrite"] is True
        assert save.body["folderUid"] == folder_uid_for("Ops / Fleet") == "ops-fleet"
        assert "id" not in save.body["dashboard"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "Grafana rejected the token (401 Unauthorized)"),
        (403, "not allowed to do this (403 Forbidden)"),
        (404, "does not exist (404 Not Found)"),
    ],
)
def test_push_explains_grafana_refusals(grafana: FakeGrafana, status: int, expected: str) -> None:
    grafana.fail_with = status
    with pytest.raises(PushError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        push_dashboards(grafana.url, TOKEN)
    assert grafana.dashboards == {}


def test_wrong_token_is_refused_by_the_contract(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match="--token"):
        push_dashboards(grafana.url, "not-the-token")


def test_url_with_a_wrong_sub_path_is_a_404_naming_the_url(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match=f"{grafana.url}/grafana/api/folders does not exist"):
        push_dashboards(f"{grafana.url}/grafana", TOKEN)


def test_refused_connection_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        PushError, match=f"Cannot connect to Grafana at {url} \\(connection refused\\)"
    ):
        push_dashboards(url, TOKEN)


def test_push_command_prints_one_line_errors_without_traceback(grafana: FakeGrafana) -> None:
    grafana.fail_with = 403
    result = CliRunner().invoke(app, ["push", "--url", grafana.url, "--token", TOKEN])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "403" in lines[0]
    assert "Traceback" not in result.output


def test_push_command_reads_the_token_from_the_environment(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(app, ["push", "--url", grafana.url], env={"GRAFANA_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert set(grafana.dashboards) == UIDS
    assert "Fleetscope / Fleet overview: version 1" in result.output


def test_push_rejects_a_url_without_scheme() -> None:
    with pytest.raises(PushError, match="must start with http"):
        push_dashboards("grafana:3000", TOKEN)
