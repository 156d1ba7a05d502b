"""The provisioning files Grafana reads agree with the dashboards: same datasource uids,
exemplars link to the trace store, and the file provider loads the generated JSON."""

from __future__ import annotations

from typing import Any

import yaml

from fleetscope.dashboards.build import GENERATED_DIR, PROVISIONING_DIR, dashboard_models
from fleetscope.dashboards.panels import PROMETHEUS_UID, SILK_PATH, TRACES_UID


def _load(relative: str) -> dict[str, Any]:
    loaded = yaml.safe_load((PROVISIONING_DIR / relative).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_datasources_have_the_uids_the_dashboards_use() -> None:
    datasources = {d["uid"]: d for d in _load("datasources/fleetscope.yaml")["datasources"]}
    prometheus, traces = datasources[PROMETHEUS_UID], datasources[TRACES_UID]
    assert (prometheus["type"], prometheus["url"]) == ("prometheus", "http://prometheus:9090")
    assert (traces["type"], traces["url"]) == ("tempo", "http://tempo:3200")
    used = {
        target["datasource"]["uid"]
        for model in dashboard_models()
        for panel in model["panels"]
        for target in panel.get("targets", [])
    }
    assert used == {PROMETHEUS_UID}


def test_exemplars_open_the_trace_and_the_silk_profile() -> None:
    datasources = {d["uid"]: d for d in _load("datasources/fleetscope.yaml")["datasources"]}
    destinations = datasources[PROMETHEUS_UID]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": TRACES_UID} in destinations
    silk = [d for d in destinations if "url" in d]
    assert silk and silk[0]["name"] == "trace_id"
    # $$ is Grafana's escape so provisioning does not expand ${__value.raw} as an env var.
    assert silk[0]["url"].endswith(f"{SILK_PATH}/trace/$${{__value.raw:percentencode}}")


def test_dashboard_provider_loads_the_generated_json() -> None:
    [provider] = _load("dashboards/fleetscope.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    generated = sorted(p.name for p in GENERATED_DIR.glob("*.json"))
    assert generated == sorted(f"{m['uid']}.json" for m in dashboard_models())
