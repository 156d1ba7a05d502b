"""Row 10, access: who can read what Fleetscope serves, and where everything it starts listens.

Promises: anonymous and signed-in non-staff users reach neither Silk's pages, nor the
telemetry app's Silk links, nor anything else the app serves (a real gunicorn node, real
sessions); every config Fleetscope ships or generates listens on 127.0.0.1 unless told
otherwise (collector pipelines, the Prometheus config, the demo's servers, docker compose,
HAProxy when there is one), checked in the files and on the sockets of running processes;
the collector's pprof and zpages pages are off unless asked for.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from fleetscope.collector.manifest import CONFIGS_DIR
from fleetscope.collector.process import ManagedProcess, free_port, port_in_use
from fleetscope.collector.prometheus import PrometheusSettings, render_config
from fleetscope.collector.run import DEBUG_OVERLAY, CollectorPorts, config_path
from fleetscope.demo import balancer, datastores, launcher, loadgen, ports

from .input_stack import InputStack, Node, create_user, running_stack, signed_in, start_node

pytestmark = pytest.mark.integration  # real servers on loopback

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_ENV_DEFAULT = re.compile(r"\$\{env:\w+(?::-([^}]*))?\}")


# -- configs, read ---------------------------------------------------------------------------


def _resolved(value: Any) -> str:
    """A config value with each `${env:NAME:-default}` replaced by its default."""
    return _ENV_DEFAULT.sub(lambda m: m.group(1) or "", str(value))


def _host(endpoint: str) -> str:
    endpoint = _resolved(endpoint).split("://")[-1]
    host, _, _ = endpoint.rpartition(":")
    return host.strip("[]")


def collector_listeners(config: dict[str, Any]) -> dict[str, str]:
    """Every address a collector config makes the collector listen on: receivers, extensions,
    the Prometheus exporter, the collector's own metrics. Client endpoints (exporters that
    send) are not listeners."""
    found: dict[str, str] = {}
    for name, receiver in (config.get("receivers") or {}).items():
        for protocol, settings in ((receiver or {}).get("protocols") or {}).items():
            found[f"receivers.{name}.{protocol}"] = _host((settings or {}).get("endpoint", ""))
    for name, extension in (config.get("extensions") or {}).items():
        if extension and "endpoint" in extension:
            found[f"extensions.{name}"] = _host(extension["endpoint"])
    for name, exporter in (config.get("exporters") or {}).items():
        if name.split("/")[0] == "prometheus":
            found[f"exporters.{name}"] = _host(exporter["endpoint"])
    readers = (((config.get("service") or {}).get("telemetry") or {}).get("metrics") or {}).get(
        "readers"
    ) or []
    for index, reader in enumerate(readers):
        prometheus = ((reader.get("pull") or {}).get("exporter") or {}).get("prometheus")
        if prometheus:
            found[f"service.telemetry.readers[{index}]"] = _resolved(prometheus["host"])
    return found


COLLECTOR_CONFIGS = sorted(CONFIGS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_collector_configs_listen_on_loopback_by_default(path: Path) -> None:
    listeners = collector_listeners(yaml.safe_load(path.read_text()))
    outside = {where: host for where, host in listeners.items() if host not in LOOPBACK}
    assert outside == {}, f"{path.name} listens beyond loopback by default: {outside}"


def test_every_pipeline_role_has_listeners_checked() -> None:
    # The walk above finds what it should: a receiver and a health check in every role.
    for role in ("local", "agent", "gateway"):
        listeners = collector_listeners(yaml.safe_load(config_path(role).read_text()))
        assert any(k.startswith("receivers.otlp") for k in listeners), role
        assert "extensions.health_check" in listeners, role


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_pprof_and_zpages_are_off_unless_asked(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    enabled = set(((config.get("service") or {}).get("extensions")) or [])
    if path == DEBUG_OVERLAY:
        assert {"pprof", "zpages"} <= enabled  # the one place that asks for them
    else:
        assert not enabled & {"pprof", "zpages"}, path.name


def test_the_prometheus_config_and_server_stay_on_loopback() -> None:
    settings = PrometheusSettings()
    assert settings.host in LOOPBACK
    config = yaml.safe_load(render_config(settings))
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets and {_host(t) for t in targets} <= LOOPBACK


def test_the_demos_servers_bind_loopback() -> None:
    assert ports.HOST in LOOPBACK and CollectorPorts().host in LOOPBACK
    command = launcher.gunicorn_command(8001, 2)
    assert _host(command[command.index("--bind") + 1]) in LOOPBACK
    assert "listen_addresses=127.0.0.1" in datastores.POSTGRES_SETTINGS
    assert "unix_socket_directories=" in datastores.POSTGRES_SETTINGS
    locust = loadgen.locust_command("http://127.0.0.1:8001", 1, Path("stats"), 10)
    assert "--headless" in locust  # no web UI to bind at all


def test_docker_compose_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "demo_fleet" / "docker-compose.yml").read_text())
    published = [
        str(port) for service in compose["services"].values() for port in service.get("ports", [])
    ]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published
    collector_env = compose["services"]["collector"]["environment"]
    assert not {"FLEETSCOPE_PPROF_ENDPOINT", "FLEETSCOPE_ZPAGES_ENDPOINT"} & set(collector_env)


COMPOSE_DIR = "demo_fleet/compose/"


def _haproxy_binds() -> dict[str, list[str]]:
    configs = [
        path
        for path in REPO.rglob("*")
        if path.is_file()
        # The repository's own files: not virtualenvs, nox sessions' temporary trees, caches.
        and not any(part.startswith(".") for part in path.relative_to(REPO).parts)
        and "build" not in path.relative_to(REPO).parts
        and "haproxy" in path.name.lower()
        and path.suffix in (".cfg", ".conf", "")
    ]
    return {
        str(path.relative_to(REPO)): re.findall(r"^\s*bind\s+(\S+)", path.read_text(), re.M)
        for path in configs
    }


def test_every_listener_fleetscope_generates_is_on_loopback() -> None:
    """One list of every generated listening address, HAProxy's binds included when the
    repository has an HAProxy config."""
    addresses: dict[str, str] = {}
    for path in COLLECTOR_CONFIGS:
        for where, host in collector_listeners(yaml.safe_load(path.read_text())).items():
            addresses[f"{path.name}: {where}"] = host
    for haproxy, binds in _haproxy_binds().items():
        if haproxy.startswith(COMPOSE_DIR):
            # Inside its container HAProxy binds every interface, so the other containers
            # reach it; the host sees only what compose publishes, on 127.0.0.1
            # (test_docker_compose_publishes_on_loopback_only).
            assert binds, haproxy
            continue
        for bind in binds:
            addresses[f"{haproxy}: bind {bind}"] = _host(bind)
    # The demo's balancer, as the launcher writes its config.
    demo_balancer = balancer.render_config(
        balancer.BalancerSettings(8000, 8404, "demo-shop", [balancer.Server("node-1", 8001)])
    )
    for bind in re.findall(r"^\s*bind\s+(\S+)", demo_balancer, re.M):
        addresses[f"demo balancer: bind {bind}"] = _host(bind)
    addresses["prometheus --web.listen-address"] = PrometheusSettings().host
    addresses["demo nodes --bind"] = ports.HOST
    assert len(addresses) >= 10
    assert {k: v for k, v in addresses.items() if v not in LOOPBACK} == {}


# -- running processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputStack]:
    with running_stack(tmp_path_factory.mktemp("stack-access")) as running:
        yield running


STAFF = ("ops", "ops-" + secrets.token_hex(6))
CUSTOMER = ("customer", "customer-" + secrets.token_hex(6))


@dataclass
class Site:
    node: Node
    trace_id: str
    silk_request_id: str
    fingerprint: str


@pytest.fixture(scope="module")
def site(stack: InputStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    node = start_node(tmp_path_factory, "access-node", stack.otlp_endpoint)
    try:
        create_user(node, *STAFF, staff=True)
        create_user(node, *CUSTOMER, staff=False)
        trace_id = secrets.token_hex(16)
        with signed_in(node.url, *STAFF) as staff:  # a staff user asks for a profile
            response = staff.get(
                "/users/lookup/?name=nobody",
                headers={
                    "X-Fleetscope-Profile": "1",
                    "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-00",
                },
            )
            assert response.status_code == 200
        with sqlite3.connect(node.database) as db:
            [(silk_id, fingerprints)] = db.execute(
                "SELECT silk_request_id, fingerprints FROM telemetry_profilelink "
                "WHERE trace_id = ?",
                (trace_id,),
            ).fetchall()
        yield Site(node, trace_id, silk_id, fingerprints.split()[0])
    finally:
        node.stop()


def _private_urls(site: Site) -> list[str]:
    return [
        "/silk/",
        "/silk/requests/",
        f"/silk/request/{site.silk_request_id}/",
        f"/silk/request/{site.silk_request_id}/sql/",
        f"/telemetry/silk/trace/{site.trace_id}",
        "/telemetry/silk/route/?route=/users/lookup/",
        f"/telemetry/silk/query/{site.fingerprint}",
    ]


def _reveals(site: Site, body: str) -> bool:
    return any(secret in body for secret in (site.silk_request_id, "users/lookup", "auth_user"))


def test_anonymous_users_are_sent_to_the_login_page(site: Site) -> None:
    with httpx.Client(base_url=site.node.url, timeout=30) as anonymous:
        for url in _private_urls(site):
            response = anonymous.get(url)
            assert response.status_code == 302, url
            assert response.headers["location"].startswith("/admin/login/?next="), url
            assert not _reveals(site, response.text), url


def test_signed_in_users_who_are_not_staff_are_refused(site: Site) -> None:
    with signed_in(site.node.url, *CUSTOMER) as customer:
        for url in _private_urls(site):
            response = customer.get(url)
            assert response.status_code in (302, 403), (url, response.status_code)
            assert not _reveals(site, response.text), url


def test_staff_reach_every_one_of_them(site: Site) -> None:
    # The positive control: the same URLs answer staff, so the refusals above mean something.
    with signed_in(site.node.url, *STAFF) as staff:
        for url in _private_urls(site):
            response = staff.get(url, follow_redirects=True)
            assert response.status_code == 200, url
        page = staff.get(f"/telemetry/silk/trace/{site.trace_id}", follow_redirects=True)
        assert "/users/lookup/" in page.text


def test_the_app_serves_nothing_else_under_its_prefix(site: Site) -> None:
    with httpx.Client(base_url=site.node.url, timeout=30) as anonymous:
        for url in ("/telemetry/", "/telemetry/silk/", "/telemetry/metrics", "/metrics"):
            assert anonymous.get(url).status_code == 404, url


def _listening(pid: int) -> set[str]:
    """Addresses the process and its children listen on (TCP)."""
    process = psutil.Process(pid)
    hosts = set()
    for member in (process, *process.children(recursive=True)):
        for connection in member.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN:
                hosts.add(connection.laddr.ip)
    return hosts


def test_running_collector_prometheus_and_node_listen_on_loopback_only(
    stack: InputStack, site: Site
) -> None:
    listening = {
        "collector": _listening(stack.processes[0].pid),
        "prometheus": _listening(stack.processes[1].pid),
        "node": _listening(site.node.process.pid),
    }
    assert all(listening.values()), listening
    assert {name: hosts - LOOPBACK for name, hosts in listening.items()} == {
        name: set() for name in listening
    }
    ports_of_stack = stack.collector.ports
    assert not port_in_use(ports_of_stack.pprof) and not port_in_use(ports_of_stack.zpages)


def test_the_demos_postgres_and_redis_listen_on_loopback_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("demo-datastores")
    data_dir, outside = datastores.postgres_data_dir(workdir)
    started: list[ManagedProcess] = []
    try:
        cluster = datastores.start_postgres(
            workdir, free_port(), workdir / "pg.log", data_dir, outside
        )
        started.append(cluster.process)
        redis = datastores.start_redis(workdir, free_port(), workdir / "redis.log")
        started.append(redis.process)
        for process in started:
            hosts = _listening(process.pid)
            assert hosts and hosts <= LOOPBACK, (process.name, hosts)
    finally:
        for process in started:
            process.stop()
        if outside:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
