"""The generated dashboards: committed output is current, uids are stable, panels are wired
to the provisioned Prometheus, laid out without overlap and linked to each other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetscope.dashboards.build import GENERATED_DIR, build, dashboard_models, rendered_files
from fleetscope.dashboards.check import iter_queries

EXPECTED_UIDS = {
    "fleetscope-fleet",
    "fleetscope-db",
    "fleetscope-cache",
    "fleetscope-node",
    "fleetscope-slo",
    "fleetscope-capacity",
    "fleetscope-tasks",
}


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


@pytest.fixture(scope="module")
def models() -> list[dict[str, Any]]:
    return dashboard_models()


def _by_uid(models: list[dict[str, Any]], uid: str) -> dict[str, Any]:
    return next(m for m in models if m["uid"] == uid)


def test_committed_generated_files_match_a_fresh_build(tmp_path: Path) -> None:
    build(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in GENERATED_DIR.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "run `fleetscope dashboards build`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, (
        f"dashboards/generated is stale for {stale}: run `fleetscope dashboards build`"
    )


def test_build_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    assert rendered_files() == rendered_files()
    first = {n: t for n, t in rendered_files().items() if n.endswith(".json")}
    for name, text in first.items():
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n", name


def test_build_removes_dashboards_it_no_longer_generates(tmp_path: Path) -> None:
    (tmp_path / "fleetscope-retired.json").write_text("{}")
    (tmp_path / "someone-elses.json").write_text("{}")
    build(tmp_path)
    assert not (tmp_path / "fleetscope-retired.json").exists()
    assert (tmp_path / "someone-elses.json").exists()


def test_every_dashboard_has_its_stable_uid_and_file(models: list[dict[str, Any]]) -> None:
    assert {m["uid"] for m in models} == EXPECTED_UIDS
    assert {f"{uid}.json" for uid in EXPECTED_UIDS} <= set(rendered_files())


def test_every_panel_queries_the_provisioned_prometheus(models: list[dict[str, Any]]) -> None:
    for model in models:
        for panel in _panels(model):
            where = f"{model['uid']} / {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "fleetscope-prometheus"}
            assert panel["targets"], f"{where} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "fleetscope-prometheus", where
                assert target["expr"].strip(), where
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), where


def test_panels_fit_the_grid_without_overlapping(models: list[dict[str, Any]]) -> None:
    for model in models:
        cells: set[tuple[int, int]] = set()
        for panel in model["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & area, f"{model['uid']}: {panel['title']} overlaps another panel"
            cells |= area
        ids = [p["id"] for p in model["panels"]]
        assert len(set(ids)) == len(ids)


def test_variables_offer_all_and_the_node_dashboard_shows_one_node(
    models: list[dict[str, Any]],
) -> None:
    for model in models:
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert "service" in variables, model["uid"]
        # Objectives are per service (and route): the SLO dashboard has no node to choose.
        assert ("node" in variables) == (model["uid"] != "fleetscope-slo"), model["uid"]
        for name in ("service", "route", "instance"):
            if name in variables:
                assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
                assert variables[name]["query"].startswith("label_values(")
    node = {v["name"]: v for v in _by_uid(models, "fleetscope-node")["templating"]["list"]}
    assert node["node"]["includeAll"] is False and node["node"]["multi"] is False
    fleet = {v["name"]: v for v in _by_uid(models, "fleetscope-fleet")["templating"]["list"]}
    assert fleet["node"]["includeAll"] is True
    db = {v["name"] for v in _by_uid(models, "fleetscope-db")["templating"]["list"]}
    assert "route" in db


def test_dashboards_link_to_each_other(models: list[dict[str, Any]]) -> None:
    for model in models:
        assert model["tags"][0] == "fleetscope"
        assert any(
            link["type"] == "dashboards" and link["tags"] == ["fleetscope"] and link["keepTime"]
            for link in model["links"]
        ), model["uid"]
    fleet = json.dumps(_by_uid(models, "fleetscope-fleet"))
    assert "/d/fleetscope-node/" in fleet
    assert "var-node=${__field.labels.host_name:percentencode}" in fleet
    assert "/d/fleetscope-db/" in fleet and "var-route=${__value.raw:percentencode}" in fleet
    capacity = [
        link
        for link in _by_uid(models, "fleetscope-fleet")["links"]
        if link.get("title") == "Capacity"
    ]
    assert [(c["url"], c["keepTime"], c["includeVars"]) for c in capacity] == [
        ("/d/fleetscope-capacity/", True, True)
    ]


def _column_links(panel: dict[str, Any], header: str) -> list[str]:
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": header}:
            for prop in override["properties"]:
                if prop["id"] == "links":
                    return [link["url"] for link in prop["value"]]
    return []


def test_slow_query_and_route_rows_open_silk(models: list[dict[str, Any]]) -> None:
    db = _by_uid(models, "fleetscope-db")
    slow = next(p for p in _panels(db) if p["title"] == "Slow queries across the fleet")
    assert _column_links(slow, "Fingerprint") == [
        "${silk_base_url}/telemetry/silk/query/${__value.raw:percentencode}"
    ]
    fleet = _by_uid(models, "fleetscope-fleet")
    routes = next(p for p in _panels(fleet) if p["title"] == "Top routes by time spent")
    assert any(
        url.startswith("${silk_base_url}/telemetry/silk/route/")
        for url in _column_links(routes, "Route")
    )
    for model in (db, fleet):
        silk = next(v for v in model["templating"]["list"] if v["name"] == "silk_base_url")
        assert silk["type"] == "textbox" and silk["query"] == "http://127.0.0.1:8001"


def test_slow_query_table_has_the_promised_columns(models: list[dict[str, Any]]) -> None:
    db = _by_uid(models, "fleetscope-db")
    slow = next(p for p in _panels(db) if p["title"] == "Slow queries across the fleet")
    organize = next(t for t in slow["transformations"] if t["id"] == "organize")
    headers = set(organize["options"]["renameByName"].values())
    assert headers >= {
        "Fingerprint",
        "Statement",
        "Calls/s",
        "Mean",
        "p95",
        "Share of DB time",
        "Slow runs",
        "Nodes with slow runs",
    }
    statement_joins = [
        t["expr"] for t in slow["targets"] if "django_db_statement_info" in t["expr"]
    ]
    assert statement_joins and "group_left (db_query_summary, db_query_text)" in statement_joins[0]


def test_latency_panels_show_exemplars(models: list[dict[str, Any]]) -> None:
    exemplar_exprs = [
        t["expr"] for m in models for p in _panels(m) for t in p["targets"] if t.get("exemplar")
    ]
    assert any("http_server_request_duration_seconds_bucket" in e for e in exemplar_exprs)
    assert any("db_client_operation_duration_seconds_bucket" in e for e in exemplar_exprs)


def test_every_query_is_listed_for_check(models: list[dict[str, Any]]) -> None:
    targets = sum(len(p["targets"]) for m in models for p in _panels(m))
    variables = sum(1 for m in models for v in m["templating"]["list"] if v["type"] == "query")
    assert len(list(iter_queries(models))) == targets + variables


def test_docs_list_every_panel(models: list[dict[str, Any]]) -> None:
    docs = " ".join((Path(__file__).parents[2] / "docs" / "dashboards.md").read_text().split())
    missing = [
        f"{m['uid']}: {p['title']}" for m in models for p in m["panels"] if p["title"] not in docs
    ]
    assert not missing, "docs/dashboards.md does not mention:\n" + "\n".join(missing)
