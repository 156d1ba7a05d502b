"""Under uvicorn (ASGI), Silk's SQL compiler wrapper is undone once profiled requests end.

Regression: on Django 5.x request_finished fires outside the request's context under ASGI,
so the in-flight count of profiled requests never dropped and every later query of the
process paid Silk's double SQL compilation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from fleetscope.collector.process import ManagedProcess, free_port

from .stack import LocalStack, port_open

ROOT = Path(__file__).resolve().parents[2]


def test_profiled_requests_under_uvicorn_leave_the_compiler_alone(
    stack: LocalStack, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.integration.silk_probe",
        FLEETSCOPE_DEMO_DIR=str(tmp_path),
        FLEETSCOPE_DEMO_DB=str(tmp_path / "demo.sqlite3"),
        FLEETSCOPE_SILK="1",
        FLEETSCOPE_SILK_RATE="1",
        FLEETSCOPE_NODE="asgi-node",
        # Parent-based, so the probe request can opt out with an unsampled traceparent.
        OTEL_TRACES_SAMPLER="parentbased_always_on",
        OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_endpoint,
    )
    django = [sys.executable, "-m", "django"]
    subprocess.run([*django, "migrate", "-v", "0"], env=env, cwd=ROOT, check=True, timeout=180)
    subprocess.run(
        [*django, "seed_shop", "--categories", "2", "--products", "10", "--customers", "2",
         "--reviews", "10", "-v", "0"],
        env=env, cwd=ROOT, check=True, timeout=180,
    )  # fmt: skip
    port = free_port()
    app = "tests.integration.silk_probe_asgi:application"
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log"]  # fmt: skip
    process = ManagedProcess("uvicorn silk", args, tmp_path / "uvicorn.log", env=env).start()
    try:
        process.wait_ready(port_open(port), timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(3):
                assert client.get("/products/fixed/").status_code == 200
            # Unsampled (traceparent flags 00), so the probe itself is not profiled.
            unsampled = {"traceparent": f"00-{'1' * 32}-{'2' * 16}-00"}
            state = client.get("/_probe/silk/", headers=unsampled).json()
        count = (
            "from silk.models import Request; "
            "print(Request.objects.filter(path='/products/fixed/').count())"
        )
        rows = subprocess.run(
            [*django, "shell", "-c", count],
            env=env, cwd=ROOT, check=True, timeout=120, capture_output=True, text=True,
        ).stdout.split()[-1]  # fmt: skip
    finally:
        process.stop()
    assert rows == "3"  # each request was profiled
    assert state == {"in_flight": 0, "compiler_wrapped": False}
