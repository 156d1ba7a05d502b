"""The locust mix runs against the demo shop under a real gunicorn without a single failure."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import TINY_SEED

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).resolve().parents[2] / "demo_fleet" / "locustfile.py"
GUNICORN = [sys.executable, "-m", "gunicorn", "fleetscope.demo.wsgi"]
LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
ROUTES = {
    "/",
    "/catalogue/[category_id]/",
    "/products/n-plus-one/",
    "/products/fixed/",
    "/api/products/[pk]/",
    "/orders/",
    "/flaky/",
    "/reports/slow/",
    "/reports/export/",
    "/healthz",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited early with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fleetscope.demo.settings",
        "FLEETSCOPE_DEMO_DIR": str(tmp_path),
        "FLEETSCOPE_LOAD_CATEGORIES": str(TINY_SEED["categories"]),
        "FLEETSCOPE_LOAD_PRODUCTS": str(TINY_SEED["products"]),
        "FLEETSCOPE_LOAD_CUSTOMERS": str(TINY_SEED["customers"]),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "FLEETSCOPE_DEMO_BROKER_URL"):
        environ.pop(name, None)
    return environ


@pytest.fixture
def shop_server(tmp_path: Path, demo_env: dict[str, str]) -> Iterator[str]:
    django = [sys.executable, "-m", "django"]
    subprocess.run([*django, "migrate", "-v0"], cwd=tmp_path, env=demo_env, check=True)
    sizes = [f"--{name}={value}" for name, value in TINY_SEED.items()]
    subprocess.run([*django, "seed_shop", "-v0", *sizes], cwd=tmp_path, env=demo_env, check=True)
    host = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [*GUNICORN, "-w", "2", "--no-control-socket", "-b", host.removeprefix("http://")],
        cwd=tmp_path,
        env=demo_env,
    )
    try:
        wait_until_ready(f"{host}/healthz", server)
        yield host
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_locust_mix_hits_only_valid_routes(tmp_path: Path, demo_env, shop_server: str):
    stats_prefix = tmp_path / "load"
    locust = subprocess.run(
        [
            *LOCUST,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "6s",
            "--host",
            shop_server,
            "--csv",
            str(stats_prefix),
        ],
        cwd=tmp_path,
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert locust.returncode == 0, locust.stderr[-3000:]
    with open(f"{stats_prefix}_stats.csv", newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    aggregated = rows.pop("Aggregated")
    # Enough requests to have hit the routes below; not a throughput claim (a busy CI
    # machine serves fewer).
    assert int(aggregated["Request Count"]) > 20
    assert int(aggregated["Failure Count"]) == 0
    assert set(rows) <= ROUTES
    assert {"/", "/catalogue/[category_id]/", "/api/products/[pk]/"} <= set(rows)
