"""Two demo-shop nodes on one SQLite file: a profile recorded on node-2 opens from node-1.

node-1 samples no trace and has SILK_RATE=0 (Silk must stay out of its requests); node-2
samples every trace with SILK_RATE=1. Both export to the real collector, whose file
exporter shows the span attribute that names the Silk request.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetscope.collector.process import ManagedProcess, free_port

from .stack import LocalStack, eventually, port_open

STAFF_USER, STAFF_PASSWORD = "ops", "ops-password-for-tests"
SILK_PAGE = re.compile(r"^/silk/request/([0-9a-f-]{36})/$")


@dataclass
class Fleet:
    node1: str
    node2: str
    db: Path


def _env(stack: LocalStack, workdir: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="fleetscope.demo.settings",
        FLEETSCOPE_DEMO_DIR=str(workdir),
        FLEETSCOPE_DEMO_DB=str(workdir / "demo.sqlite3"),
        FLEETSCOPE_SILK="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        **extra,
    )


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "django", *args], env=env, check=True, timeout=180)


def _node(stack: LocalStack, workdir: Path, name: str, **extra: str) -> tuple[str, ManagedProcess]:
    port = free_port()
    env = _env(stack, workdir, FLEETSCOPE_NODE=name, **extra)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "fleetscope.demo.wsgi:application",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "2",
        "--preload",
        "--graceful-timeout",
        "5",
    ]
    process = ManagedProcess(f"demo {name}", args, workdir / f"{name}.log", env=env).start()
    try:
        process.wait_ready(port_open(port), timeout=60)
    except BaseException:
        process.stop()
        raise
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def fleet(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("silk-fleet")
    env = _env(stack, workdir, DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD)
    _manage(env, "migrate", "-v", "0")
    _manage(
        env,
        "seed_shop",
        "--categories",
        "2",
        "--products",
        "20",
        "--customers",
        "3",
        "--reviews",
        "40",
        "-v",
        "0",
    )
    _manage(
        env,
        "createsuperuser",
        "--noinput",
        "--username",
        STAFF_USER,
        "--email",
        "ops@example.com",
        "-v",
        "0",
    )
    processes: list[ManagedProcess] = []
    try:
        node1, process = _node(
            stack, workdir, "node-1", OTEL_TRACES_SAMPLER="always_off", FLEETSCOPE_SILK_RATE="0"
        )
        processes.append(process)
        node2, process = _node(
            stack, workdir, "node-2", OTEL_TRACES_SAMPLER="always_on", FLEETSCOPE_SILK_RATE="1"
        )
        processes.append(process)
        yield Fleet(node1, node2, workdir / "demo.sqlite3")
    finally:
        for process in processes:
            process.stop()


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


@contextmanager
def _staff_session(base_url: str) -> Iterator[httpx.Client]:
    """Signed in as the staff user through the admin's login form (a real session)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield _log_in(client)


def _log_in(client: httpx.Client) -> httpx.Client:
    form = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the admin login page"
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": STAFF_USER,
            "password": STAFF_PASSWORD,
            "next": "/admin/",
        },
    )
    assert response.status_code == 302 and "sessionid" in client.cookies, response.text[:500]
    return client


def _span_attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def test_profile_recorded_on_node_2_opens_from_node_1(stack: LocalStack, fleet: Fleet) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.get(
        f"{fleet.node2}/products/fixed/",
        timeout=30,
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
    )
    assert response.status_code == 200

    [(silk_id, node, worker, route)] = _rows(
        fleet.db,
        "SELECT silk_request_id, node, worker, route FROM telemetry_profilelink WHERE trace_id = ?",
        trace_id,
    )
    assert (node, route) == ("node-2", "/products/fixed/") and worker.startswith("node-2/")

    with _staff_session(fleet.node1) as staff:
        link = staff.get(f"/telemetry/silk/trace/{trace_id}")
        assert link.status_code == 302
        assert SILK_PAGE.match(link.headers["location"]), link.headers["location"]
        assert link.headers["location"] == f"/silk/request/{silk_id}/"
        page = staff.get(link.headers["location"])
        assert page.status_code == 200 and "/products/fixed/" in page.text

    span = eventually(
        lambda: next(
            (s for s in stack.spans() if s["traceId"] == trace_id and s.get("kind") == 2), None
        ),
        timeout=60,
        what=f"the server span of trace {trace_id}",
    )
    assert _span_attributes(span)["fleetscope.silk.request_id"] == silk_id


def test_silk_pages_and_links_refuse_anonymous_users(fleet: Fleet) -> None:
    for url in ("/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c", "/silk/"):
        response = httpx.get(f"{fleet.node1}{url}", timeout=30)
        assert response.status_code == 302, url
        assert response.headers["location"].startswith("/admin/login/?next="), url


def test_unsampled_requests_at_silk_rate_0_leave_no_silk_rows(fleet: Fleet) -> None:
    paths = [f"/api/products/{pk}/" for pk in range(1, 6)]
    with httpx.Client(base_url=fleet.node1, timeout=30) as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
    marks = ",".join("?" * len(paths))
    assert _rows(fleet.db, f"SELECT path FROM silk_request WHERE path IN ({marks})", *paths) == []
    assert (
        _rows(
            fleet.db,
            "SELECT * FROM telemetry_profilelink WHERE node = 'node-1' AND "
            "route = '/api/products/<int:pk>/'",
        )
        == []
    )


def test_staff_profile_an_unsampled_request_on_demand(fleet: Fleet) -> None:
    with _staff_session(fleet.node1) as staff:
        response = staff.get("/catalogue/1/", headers={"X-Fleetscope-Profile": "1"})
        assert response.status_code == 200
    [(pyprofile,)] = _rows(
        fleet.db,
        "SELECT r.pyprofile FROM silk_request r JOIN telemetry_profilelink l "
        "ON l.silk_request_id = r.id WHERE l.node = 'node-1' AND l.route = ?",
        "/catalogue/<int:category_id>/",
    )
    assert "function calls" in pyprofile  # cProfile ran: the staff asked for it
