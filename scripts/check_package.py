"""The package check (`make test-package`): build the sdist and the wheel, install the wheel
(not editable) into fresh virtualenvs, and check what a user gets.

Without extras: only `telemetry` and `fleetscope` are new top-level names, none of the
tools' dependencies is installed, a minimal project passes `django-admin check` and
`migrate` (no Silk table), and its requests reach a loopback OTLP receiver as traces and
metrics (the node's whole runtime path: middleware, SQL, cache, process metrics, Fleetscope's
encoder and sender). `fleetscope` says in one line to install the [cli] extra.
With [cli]: `fleetscope --help` works, and the installed package finds its data (collector
configs and manifest, dashboards JSON, demo templates).

Runs with the dev virtualenv's Python (uv and opentelemetry-proto come from there); needs no
network beyond the package index that uv already uses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Must not be installed on a web node: they come with the [cli] extra.
TOOL_DISTRIBUTIONS = ("typer", "rich", "httpx", "pyyaml", "grafana-foundation-sdk")
OWN_TOP_LEVEL = {"telemetry", "fleetscope"}
# What the installed package must find (paths inside the wheel).
PACKAGE_DATA = [
    "fleetscope/collector/manifest.yaml",
    "fleetscope/collector/configs/local.yaml",
    "fleetscope/collector/configs/agent.yaml",
    "fleetscope/collector/configs/gateway.yaml",
    "fleetscope/dashboards/generated/fleetscope-fleet.json",
    "fleetscope/dashboards/generated/fleetscope-db.json",
    "fleetscope/dashboards/generated/fleetscope-cache.json",
    "fleetscope/dashboards/generated/fleetscope-node.json",
    "fleetscope/dashboards/generated/fleetscope-rules.yml",
    "fleetscope/dashboards/provisioning/dashboards/fleetscope.yaml",
    "fleetscope/demo/shop/templates/shop/base.html",
    "fleetscope/demo/docker-compose.yml",
    "telemetry/py.typed",
    "telemetry/migrations/0001_initial.py",
    "telemetry/silk/migrations/0001_initial.py",
]
# Metrics a node must export from one request that runs SQL and a cache lookup.
NODE_METRICS = {
    "http.server.request.duration",
    "db.client.operation.duration",
    "django.cache.operations",
    "process.cpu.time",
    "process.memory.usage",
}

SETTINGS = """
from pathlib import Path

SECRET_KEY = "package-check"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "telemetry"]
MIDDLEWARE = ["telemetry.middleware.TelemetryMiddleware"]
ROOT_URLCONF = "proj.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().parent.parent / "db.sqlite3",
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TELEMETRY = {"SERVICE_NAME": "package-check", "TRACES_SAMPLE_RATE": 1.0}
"""
URLS = """
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path


def item(request, pk):
    users = User.objects.filter(pk=pk).count()
    return HttpResponse(f"{users} {cache.get('item', 0)}")


urlpatterns = [path("items/<int:pk>/", item)]
"""
REQUESTS = """
import django

django.setup()
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
for pk in range(3):
    assert Client().get(f"/items/{pk}/").status_code == 200
"""
TABLES = """
import sqlite3

query = "SELECT name FROM sqlite_master WHERE type = 'table'"
print(*[row[0] for row in sqlite3.connect("db.sqlite3").execute(query)])
"""
TEMPLATES = """
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["fleetscope.demo.shop"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
)
django.setup()
from django.template.loader import get_template

print(get_template("shop/base.html").origin.name)
"""


class Check:
    """Runs the steps, prints one line per check, counts what passed and failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(
                f"  FAIL  {what}"
                + (f"\n{textwrap.indent(detail.strip(), '        ')}" if detail else "")
            )
        return ok


def run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=600, check=False, **kwargs
    )


def uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise SystemExit(
                "uv is not installed: pip install uv (it is in the dev extra)"
            ) from None
        return found
    return find_uv_bin()


def build(uv: str, out: Path, check: Check) -> Path:
    print("build (sdist, then the wheel from the sdist)")
    started = time.monotonic()
    result = run([uv, "build", "--quiet", "--out-dir", out, ROOT])
    if not check(result.returncode == 0, "uv build", result.stderr):
        raise SystemExit(1)
    sdists, wheels = list(out.glob("*.tar.gz")), list(out.glob("*.whl"))
    check(
        len(sdists) == 1 and len(wheels) == 1,
        f"one sdist and one wheel ({time.monotonic() - started:.0f} s)",
    )
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    check(top == OWN_TOP_LEVEL, f"the wheel's top-level names are {sorted(top)}")
    missing = [path for path in PACKAGE_DATA if path not in names]
    check(not missing, "the wheel holds the package data", f"missing: {missing}")
    return wheel


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3*/site-packages")
    return found


def top_level_entries(venv: Path) -> set[str]:
    return {
        entry.name
        for entry in site_packages(venv).iterdir()
        if entry.name != "__pycache__" and not entry.name.endswith((".pth", ".virtualenv"))
    }


def installed(uv: str, venv: Path) -> dict[str, str]:
    result = run([uv, "pip", "list", "--format", "freeze", "-p", venv / "bin" / "python"])
    pairs = (line.split("==", 1) for line in result.stdout.splitlines() if "==" in line)
    return {name.lower().replace("_", "-"): version for name, version in pairs}


class Receiver(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP endpoint that keeps what it is sent."""

    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def exported(received: list[tuple[str, bytes]]) -> tuple[set[str], set[str]]:
    """(metric names, span names) of what a node sent."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    metrics: set[str] = set()
    spans: set[str] = set()
    for path, body in received:
        if path == "/v1/metrics":
            request: Any = ExportMetricsServiceRequest.FromString(body)
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    metrics.update(metric.name for metric in scope.metrics)
        elif path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    spans.update(span.name for span in scope.spans)
    return metrics, spans


def node_without_extras(uv: str, python: str, wheel: Path, work: Path, check: Check) -> None:
    print("a web node: the wheel without extras")
    venv = work / "node"
    run([uv, "venv", "--quiet", "-p", python, venv])
    bin_dir = venv / "bin"
    before = top_level_entries(venv)
    result = run([uv, "pip", "install", "--quiet", "--no-deps", "-p", bin_dir / "python", wheel])
    check(result.returncode == 0, "install the wheel alone", result.stderr)
    new = top_level_entries(venv) - before
    own = {name for name in new if not name.endswith(".dist-info")}
    check(own == OWN_TOP_LEVEL, f"new top-level names: {sorted(new)}")
    started = time.monotonic()
    result = run([uv, "pip", "install", "--quiet", "-p", bin_dir / "python", wheel])
    check(
        result.returncode == 0,
        f"install its dependencies ({time.monotonic() - started:.0f} s)",
        result.stderr,
    )
    distributions = installed(uv, venv)
    print("        installed: " + ", ".join(f"{n} {v}" for n, v in sorted(distributions.items())))
    tools = sorted(set(TOOL_DISTRIBUTIONS) & set(distributions))
    check(not tools, "none of " + ", ".join(TOOL_DISTRIBUTIONS), f"installed: {tools}")

    project = work / "project"
    (project / "proj").mkdir(parents=True)
    (project / "proj" / "__init__.py").write_text("")
    (project / "proj" / "settings.py").write_text(SETTINGS)
    (project / "proj" / "urls.py").write_text(URLS)
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "DJANGO_SETTINGS_MODULE": "proj.settings",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)
    result = run(
        [bin_dir / "python", "-c", "import telemetry, fleetscope; print(telemetry.__file__)"],
        cwd=project,
        env=env,
    )
    check(
        result.returncode == 0 and result.stdout.startswith(str(site_packages(venv))),
        "`import telemetry` from the installed copy",
        result.stderr + result.stdout,
    )
    result = run(
        [bin_dir / "django-admin", "check", "--fail-level", "WARNING"], cwd=project, env=env
    )
    check(
        result.returncode == 0,
        "`django-admin check` passes (INSTALLED_APPS telemetry + middleware)",
        result.stderr + result.stdout,
    )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
        result = run([bin_dir / "python", "-c", REQUESTS], cwd=project, env=env)
    finally:
        server.shutdown()
        server.server_close()
    check(
        result.returncode == 0,
        "`migrate` and three requests through the test client",
        result.stderr,
    )
    tables = run([bin_dir / "python", "-c", TABLES], cwd=project).stdout.split()
    check(
        "django_migrations" in tables
        and not any("silk" in t or "profilelink" in t for t in tables),
        "no Silk table without `telemetry.silk`",
        " ".join(tables),
    )
    metrics, spans = exported(Receiver.received)
    check(
        metrics >= NODE_METRICS,
        "metrics exported over OTLP/HTTP: " + ", ".join(sorted(NODE_METRICS & metrics)),
        f"got {sorted(metrics)}",
    )
    check(
        "GET /items/<int:pk>/" in spans,
        "server spans exported, named by route",
        f"got {sorted(spans)}",
    )

    commands: list[tuple[str, list[str | Path]]] = [
        ("fleetscope --help", [bin_dir / "fleetscope", "--help"]),
        ("python -m fleetscope", [bin_dir / "python", "-m", "fleetscope", "collector", "versions"]),
    ]
    for name, command in commands:
        result = run(command, cwd=project, env=env)
        lines = result.stderr.splitlines()
        check(
            result.returncode == 1
            and len(lines) == 1
            and 'pip install "fleetscope[cli]"' in lines[0],
            f"`{name}` says in one line what to install",
            result.stderr + result.stdout,
        )


def tools_with_cli(uv: str, python: str, wheel: Path, work: Path, check: Check) -> None:
    print("the tools: the wheel with [cli]")
    venv = work / "cli"
    run([uv, "venv", "--quiet", "-p", python, venv])
    bin_dir = venv / "bin"
    started = time.monotonic()
    result = run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "-p",
            bin_dir / "python",
            f"fleetscope[cli] @ {wheel.as_uri()}",
        ]
    )
    check(
        result.returncode == 0,
        f"install fleetscope[cli] ({time.monotonic() - started:.0f} s)",
        result.stderr,
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    installed_dir = site_packages(venv) / "fleetscope"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run([bin_dir / "fleetscope", *args], cwd=work, env=env)

    result = cli("--help")
    check(
        result.returncode == 0 and "collector" in result.stdout and "dashboards" in result.stdout,
        "`fleetscope --help`",
        result.stderr,
    )
    result = cli("collector", "config", "local")
    path = Path(result.stdout.strip())
    check(
        result.returncode == 0
        and path.is_relative_to(installed_dir)
        and path.read_bytes() == (ROOT / "collector/configs/local.yaml").read_bytes(),
        "`fleetscope collector config local` is the installed copy of the config",
        result.stderr + result.stdout,
    )
    result = cli("collector", "versions")
    check(
        result.returncode == 0 and "fleetscope-otelcol v" in result.stdout,
        "`fleetscope collector versions` reads the installed manifest",
        result.stderr,
    )
    out = work / "dashboards"
    result = cli("dashboards", "build", "--out", str(out))
    generated = installed_dir / "dashboards" / "generated"
    same = result.returncode == 0 and all(
        (out / f.name).read_bytes() == f.read_bytes() for f in generated.iterdir()
    )
    check(
        same,
        "`fleetscope dashboards build` reproduces the installed dashboards JSON",
        result.stderr,
    )
    result = run([bin_dir / "python", "-c", TEMPLATES], cwd=work, env=env)
    check(
        result.returncode == 0 and Path(result.stdout.strip()).is_relative_to(installed_dir),
        "Django finds the demo shop's templates in the installed package",
        result.stderr + result.stdout,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the fresh venvs")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    uv = uv_bin()
    check = Check()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fleetscope-package-"))
    try:
        wheel = build(uv, work / "dist", check)
        steps: list[Callable[[str, str, Path, Path, Check], None]] = [
            node_without_extras,
            tools_with_cli,
        ]
        for step in steps:
            step(uv, options.python, wheel, work, check)
    finally:
        if options.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"package check took {time.monotonic() - started:.0f} s")
    for what in check.failed:
        print(f"FAILED {what}")
    print(f"package-check: {check.passed} passed, {len(check.failed)} failed")
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
