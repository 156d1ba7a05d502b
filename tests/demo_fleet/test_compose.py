"""demo_fleet/docker-compose.yml agrees with the repository it mounts and the services it wires.

No Docker engine runs here, so the file is checked structurally: every mounted file exists,
every URL in the Grafana provisioning reaches a compose service on the port it listens on,
the collector listens beyond loopback, and the nodes export where the collector receives.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from fleetscope.collector.manifest import load_manifest
from fleetscope.dashboards.panels import GRAFANA_BUILTIN
from fleetscope.demo.env import database_from_url

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "demo_fleet" / "docker-compose.yml"
COMPOSE_DIR = COMPOSE_FILE.parent
DATASOURCES = REPO / "dashboards" / "provisioning" / "datasources" / "fleetscope.yaml"
DASHBOARD_PROVIDERS = REPO / "dashboards" / "provisioning" / "dashboards" / "fleetscope.yaml"
GENERATED = REPO / "dashboards" / "generated"
NODES = ("node-1", "node-2", "node-3")
# A path inside the shop image -> the repository file it was copied from (see the Dockerfile).
IMAGE_APP_DIR = "/app/"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host source, container target) of every bind mount of a service."""
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                yield source, target
        elif volume.get("type") == "bind":
            yield volume["source"], volume["target"]


def mount_target(service: dict[str, Any], repo_path: Path) -> str:
    for source, target in bind_mounts(service):
        if (COMPOSE_DIR / source).resolve() == repo_path.resolve():
            return target
    raise AssertionError(f"{repo_path} is not mounted")


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def collector_env(services: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in services["collector"]["environment"].items()}


def tempo_config() -> dict[str, Any]:
    return _yaml(COMPOSE_DIR / "compose" / "tempo.yaml")


def listen_port(services: dict[str, Any], name: str) -> int:
    """The port a compose service's server listens on inside its container."""
    if name == "prometheus":
        flags = [a for a in services[name]["command"] if a.startswith("--web.listen-address")]
        return port_of(flags[0]) if flags else 9090
    if name == "tempo":
        return int(tempo_config()["server"]["http_listen_port"])
    raise AssertionError(f"no listen port known for {name}")


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    expected = {
        "collector",
        "prometheus",
        "tempo",
        "grafana",
        "postgres",
        "redis",
        "balancer",
        "locust",
    }

    assert expected | set(NODES) <= set(services)


def test_every_mounted_host_path_exists(services: dict[str, Any]) -> None:
    mounts = [(name, source) for name, s in services.items() for source, _ in bind_mounts(s)]

    assert mounts
    missing = [(name, source) for name, source in mounts if not (COMPOSE_DIR / source).exists()]
    assert missing == []


def test_the_shop_image_builds_from_files_that_exist(services: dict[str, Any]) -> None:
    build = services["node-1"]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]

    assert context == REPO
    copies = re.findall(r"^COPY\s+(.+?)\s+\S+\s*$", dockerfile.read_text(), re.MULTILINE)
    sources = [source for line in copies for source in line.split()]
    assert "pyproject.toml" in sources
    assert [s for s in sources if not (context / s).exists()] == []
    assert '".[demo]"' in dockerfile.read_text()


def test_commands_run_files_the_image_contains(services: dict[str, Any]) -> None:
    paths = [
        arg
        for service in services.values()
        for arg in (service.get("command") or [])
        if isinstance(arg, str) and arg.startswith(IMAGE_APP_DIR)
    ]

    assert paths
    assert [p for p in paths if not (REPO / p.removeprefix(IMAGE_APP_DIR)).is_file()] == []


def test_datasource_urls_reach_compose_services_on_their_ports(services: dict[str, Any]) -> None:
    for datasource in _yaml(DATASOURCES)["datasources"]:
        url = urlsplit(datasource["url"])
        assert url.hostname in services, datasource["name"]
        assert url.port == listen_port(services, url.hostname), datasource["name"]


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict) and "uid" in value:
                yield str(value["uid"])
            elif key == "datasourceUid":
                yield str(value)
            else:
                yield from _datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_uids(item)


def test_every_datasource_uid_the_dashboards_use_is_provisioned() -> None:
    provisioned = {d["uid"] for d in _yaml(DATASOURCES)["datasources"]}
    used = {
        uid
        for path in GENERATED.glob("*.json")
        for uid in _datasource_uids(yaml.safe_load(path.read_text()))
        # Grafana's built-in datasource (deploy annotations) exists in every Grafana.
        if not uid.startswith("$") and uid != GRAFANA_BUILTIN.uid
    }

    assert {"fleetscope-prometheus", "fleetscope-traces"} <= provisioned
    assert used
    assert used <= provisioned


def test_grafana_loads_the_generated_dashboards_and_the_provisioning(
    services: dict[str, Any],
) -> None:
    grafana = services["grafana"]
    (provider,) = _yaml(DASHBOARD_PROVIDERS)["providers"]

    assert mount_target(grafana, GENERATED) == provider["options"]["path"]
    assert mount_target(grafana, DATASOURCES.parent) == "/etc/grafana/provisioning/datasources"
    assert (
        mount_target(grafana, DASHBOARD_PROVIDERS.parent) == "/etc/grafana/provisioning/dashboards"
    )
    assert any(port.endswith(":3000") for port in grafana["ports"])


def _loopback_defaults(config: str) -> set[str]:
    """Variables of a collector config whose default binds 127.0.0.1."""
    return set(re.findall(r"\$\{env:(\w+):-127\.0\.0\.1[^}]*\}", config))


def test_the_collector_listens_beyond_loopback(services: dict[str, Any]) -> None:
    local = (REPO / "collector" / "configs" / "local.yaml").read_text()
    loopback = _loopback_defaults(local)
    env = collector_env(services)

    assert {"FLEETSCOPE_OTLP_HTTP_ENDPOINT", "FLEETSCOPE_PROM_EXPORTER_ENDPOINT"} <= loopback
    hosts = {name: env.get(name, "").split(":")[0] for name in loopback}
    assert hosts == dict.fromkeys(loopback, "0.0.0.0")


def test_the_collector_runs_the_repos_configs_with_tempo_as_trace_store(
    services: dict[str, Any],
) -> None:
    collector = services["collector"]
    configs = [arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config")]
    env = collector_env(services)
    tempo_otlp = tempo_config()["distributor"]["receivers"]["otlp"]["protocols"]["http"]

    assert configs == [
        mount_target(collector, REPO / "collector" / "configs" / "local.yaml"),
        mount_target(collector, REPO / "collector" / "configs" / "tracestore.yaml"),
    ]
    trace_store = urlsplit(env["FLEETSCOPE_TRACE_STORE"])
    assert trace_store.hostname == "tempo"
    assert trace_store.port == port_of(tempo_otlp["endpoint"])


def test_the_collector_image_is_the_manifests_version(services: dict[str, Any]) -> None:
    image, tag = services["collector"]["image"].rsplit(":", 1)

    assert image == "otel/opentelemetry-collector-contrib"
    assert tag == load_manifest().version.lstrip("v")


def test_grafana_is_the_version_the_dashboards_are_built_for(services: dict[str, Any]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (pin,) = [d for d in pyproject["project"]["optional-dependencies"]["cli"] if "grafana" in d]

    assert services["grafana"]["image"].rsplit(":", 1)[1] == pin.rsplit("!", 1)[1]


def test_nodes_export_to_the_collectors_otlp_http_receiver(services: dict[str, Any]) -> None:
    otlp_http = port_of(collector_env(services)["FLEETSCOPE_OTLP_HTTP_ENDPOINT"])

    for node in NODES:
        env = services[node]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://collector:{otlp_http}"
    assert [services[node]["environment"]["FLEETSCOPE_NODE"] for node in NODES] == list(NODES)


def test_nodes_are_published_on_the_design_ports_the_silk_link_uses(
    services: dict[str, Any],
) -> None:
    published = [services[node]["ports"][0].rsplit(":", 2) for node in NODES]
    silk_links = [
        d["url"]
        for ds in _yaml(DATASOURCES)["datasources"]
        for d in ds.get("jsonData", {}).get("exemplarTraceIdDestinations", [])
        if "url" in d
    ]

    assert [int(host_port) for _, host_port, _ in published] == [8001, 8002, 8003]
    assert silk_links
    assert all(urlsplit(url).port == 8001 for url in silk_links)


def test_prometheus_scrapes_the_collector_keeping_node_labels(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    config = _yaml(REPO / "demo_fleet" / "compose" / "prometheus.yml")
    env = collector_env(services)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    exporter = jobs["fleetscope-collector"]

    assert exporter["honor_labels"] is True
    assert exporter["static_configs"][0]["targets"] == [
        f"collector:{port_of(env['FLEETSCOPE_PROM_EXPORTER_ENDPOINT'])}"
    ]
    assert jobs["otelcol"]["static_configs"][0]["targets"] == [
        f"collector:{env['FLEETSCOPE_SELF_METRICS_PORT']}"
    ]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    assert (
        mount_target(prometheus, REPO / "demo_fleet" / "compose" / "prometheus.yml")
        in (
            next(a for a in prometheus["command"] if a.startswith("--config.file")).split("=", 1)[1]
        )
    )
    rules = [
        mount_target(prometheus, GENERATED / name)
        for name in ("fleetscope-rules.yml", "fleetscope-slo-rules.yml")
    ]
    assert config["rule_files"] == rules


def test_nodes_use_the_compose_postgres_and_redis(services: dict[str, Any]) -> None:
    postgres = services["postgres"]["environment"]

    for name in (*NODES, "setup"):
        env = services[name]["environment"]
        database = database_from_url(env["DATABASE_URL"])
        assert (database["HOST"], database["PORT"]) == ("postgres", "5432")
        assert database["USER"] == postgres["POSTGRES_USER"]
        assert database["PASSWORD"] == postgres["POSTGRES_PASSWORD"]
        assert database["NAME"] == postgres["POSTGRES_DB"]
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"


HAPROXY_CFG = COMPOSE_DIR / "compose" / "haproxy.cfg"


def _node_command(services: dict[str, Any], node: str) -> list[str]:
    return [str(arg) for arg in services[node]["command"]]


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match[1]


def _haproxy_servers() -> dict[str, str]:
    """server name -> host:port in the compose balancer's backend."""
    return dict(re.findall(r"^\s*server (\S+) (\S+)", HAPROXY_CFG.read_text(), re.MULTILINE))


def test_locust_loads_the_balancer_which_spreads_over_every_node(
    services: dict[str, Any],
) -> None:
    targets = dict(
        entry.split("=") for entry in services["locust"]["environment"]["LOCUST_TARGETS"].split()
    )
    balancer = services["balancer"]
    front = int(_found(r"frontend fleet\n\s*bind :(\d+)", HAPROXY_CFG.read_text()))

    assert list(targets) == [f"balancer:{front}"]
    assert services["locust"]["depends_on"] == ["balancer"]
    assert set(balancer["depends_on"]) == set(NODES)
    node_ports = {
        node: port_of(
            _node_command(services, node)[_node_command(services, node).index("--bind") + 1]
        )
        for node in NODES
    }
    assert _haproxy_servers() == {node: f"{node}:{port}" for node, port in node_ports.items()}


def test_the_balancer_follows_fleetscopes_naming_and_stamps_requests(
    services: dict[str, Any],
) -> None:
    config = HAPROXY_CFG.read_text()
    settings = (REPO / "demo_fleet" / "settings.py").read_text()
    service_name = _found(r'"SERVICE_NAME": "([^"]+)"', settings)

    assert f"backend {service_name}" in config
    assert set(_haproxy_servers()) == {
        services[node]["environment"]["FLEETSCOPE_NODE"] for node in NODES
    }
    assert "http-request set-header X-Request-Start t=%[date(0,us)]" in config
    assert mount_target(services["balancer"], HAPROXY_CFG) == (
        "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image reads it
    )


def test_haproxy_accepts_the_compose_balancer_config() -> None:
    import subprocess

    from fleetscope.demo.balancer import locate_haproxy

    result = subprocess.run(
        [str(locate_haproxy()), "-c", "-f", str(HAPROXY_CFG)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_prometheus_scrapes_the_balancers_exporter() -> None:
    config = _yaml(REPO / "demo_fleet" / "compose" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    exporter = int(_found(r"frontend prometheus\n\s*bind :(\d+)", HAPROXY_CFG.read_text()))

    assert jobs["haproxy"]["static_configs"][0]["targets"] == [f"balancer:{exporter}"]
    assert "honor_labels" not in jobs["haproxy"]


def test_the_nodes_differ_by_workers_so_one_saturates_first(services: dict[str, Any]) -> None:
    workers = [
        int(_node_command(services, node)[_node_command(services, node).index("--workers") + 1])
        for node in NODES
    ]

    assert workers == [3, 2, 1]


def test_every_published_port_binds_loopback_only(services: dict[str, Any]) -> None:
    published = [port for s in services.values() for port in s.get("ports", [])]

    assert published
    assert all(str(port).startswith("127.0.0.1:") for port in published)
