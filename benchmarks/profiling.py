"""`--profile`: where a configuration's time goes under the real server, recorded with py-spy.

Two py-spy recordings of the serving process run side by side while wrk drives it: one of
the thread that holds the GIL (`--gil`: what the process spends its Python time on), one
of every thread at every tick (`--idle`: whether each thread is busy or waiting for work).
Busy time without the GIL is time spent waiting for it (or for the CPU), or in native
code that released it. Samples are grouped by thread role (request, span export, metric
export) and by what the stack is doing there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from . import wrk
from .server_collector import start_bench_collector
from .server_db import build_template, copy_for_run
from .server_matrix import BY_NAME, VIEWS, Configuration
from .server_process import Cores, start_server

RATE_HZ = 100
console = Console(stderr=True)

# Export threads: the most specific phase present anywhere in the stack.
EXPORT_PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sending (HTTP)", ("/requests/", "/urllib3/", "/http/client", "/socket.py", "/ssl.py")),
    ("OTLP encoding", ("/otlp/proto/common/", "/google/protobuf/", "/telemetry/otlp.py")),
    ("span materialization", ("/telemetry/spans.py",)),
    ("process metrics", ("/system_metrics/", "/psutil/")),
    ("metric collection (Fleetscope)", ("/telemetry/",)),
    ("metric collection (SDK)", ("/opentelemetry/sdk/metrics/",)),
    ("SDK batching and queue", ("/opentelemetry/",)),
)
# Request threads: the deepest library on the stack (stdlib frames count for their caller).
REQUEST_LIBRARIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Fleetscope", ("/telemetry/",)),
    ("OTel SDK/API", ("/opentelemetry/",)),
    ("Silk", ("/silk/",)),
    ("django-prometheus", ("/django_prometheus/", "/prometheus_client/")),
    ("database driver", ("/django/db/backends/",)),
    ("Django ORM", ("/django/db/",)),
    ("Django templates", ("/django/template/",)),
    ("Django + app", ("/django/", "/benchmarks/", "/demo_fleet/", "/fleetscope/demo/")),
    ("server (gunicorn/uvicorn)", ("/gunicorn/", "/uvicorn/", "/asgiref/", "/asyncio/")),
)


@dataclass
class Profile:
    """Samples of one py-spy raw recording: (thread role, frames root→leaf) → count."""

    samples: Counter[tuple[str, tuple[str, ...]]] = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str) -> Profile:
        profile = cls()
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            thread, *frames = stack.split(";")
            profile.samples[(role(thread), tuple(frames))] += int(count)
        return profile

    def by_role(self, busy_only: bool = False) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (thread_role, frames), count in self.samples.items():
            if not busy_only or not idle(frames):
                totals[thread_role] += count
        return totals

    def by_category(self) -> Counter[tuple[str, str]]:
        totals: Counter[tuple[str, str]] = Counter()
        for (thread_role, frames), count in self.samples.items():
            totals[(thread_role, category(thread_role, frames))] += count
        return totals

    def top_self(self, limit: int = 15) -> list[tuple[str, int]]:
        """Functions where samples end, stdlib leaves folded into their first non-stdlib caller."""
        totals: Counter[str] = Counter()
        for (thread_role, frames), count in self.samples.items():
            totals[f"{short(_own_frame(frames))} [{thread_role}]"] += count
        return totals.most_common(limit)


def role(thread: str) -> str:
    name = thread.split(": ", 1)[-1]
    if name.startswith("OtelBatchSpan") or name.startswith("fleetscope-export"):
        # Fleetscope's one export thread sends spans and metrics: counted here.
        return "span export"
    if name.startswith("OtelPeriodicExportingMetricReader"):
        return "metric export"
    return "request"


# Where a thread with nothing to do sits: the server waiting for a connection, an exporter
# waiting for its next batch or tick.
IDLE_FUNCTIONS = frozenset(("wait", "select", "poll", "accept", "sleep", "_wait_for_tstate_lock"))


def idle(frames: tuple[str, ...]) -> bool:
    if not frames:
        return True
    function = frames[-1].rpartition(" (")[0].rsplit(".", 1)[-1]
    return function in IDLE_FUNCTIONS


def category(thread_role: str, frames: tuple[str, ...]) -> str:
    if thread_role != "request":
        joined = ";".join(frames)
        for name, markers in EXPORT_PHASES:
            if any(m in joined for m in markers):
                return name
        return "other"
    for frame in reversed(frames):
        for name, markers in REQUEST_LIBRARIES:
            if any(m in frame for m in markers):
                return name
    return "other"


def _is_stdlib(frame: str) -> bool:
    location = frame.rsplit("(", 1)[-1]
    return "site-packages" not in location and _SOURCE not in location


_SOURCE = str(Path(__file__).resolve().parent.parent)


def short(frame: str) -> str:
    """`func (path:line)` with the path from its package on (site-packages or this checkout)."""
    if " (" not in frame:
        return frame
    name, _, location = frame.rpartition(" (")
    for anchor in ("site-packages/", _SOURCE + "/"):
        if anchor in location:
            location = location.split(anchor, 1)[1]
    return f"{name} ({location}"


def _own_frame(frames: tuple[str, ...]) -> str:
    for frame in reversed(frames):
        if not _is_stdlib(frame):
            return frame
    return frames[-1] if frames else "(no Python frame)"


def summary(
    config: Configuration, views: list[str], seconds: int, gil: Profile, every: Profile, load: str
) -> str:
    # py-spy skips ticks when it falls behind; the every-thread recording counts the ticks
    # it took (each thread once per tick), and the concurrent GIL recording took as many.
    wall = max(max(every.by_role().values(), default=0), 1)
    lines = [
        f"Profile of **{config.label}** on {', '.join(f'`{VIEWS[v][0]}`' for v in views)}: "
        f"py-spy at {RATE_HZ} Hz for {seconds} s of the serving process ({wall} ticks "
        f"taken); {load}.",
        "",
        "| thread | busy (% of wall time) | holding the GIL | busy without the GIL |",
        "|---|---|---|---|",
    ]
    gil_roles, busy_roles = gil.by_role(), every.by_role(busy_only=True)
    for thread_role in ("request", "span export", "metric export"):
        busy, held_by = busy_roles[thread_role] / wall, gil_roles[thread_role] / wall
        lines.append(
            f"| {thread_role} | {100 * busy:.1f} | {100 * held_by:.1f} | "
            f"{100 * max(busy - held_by, 0.0):.1f} |"
        )
    held = sum(gil_roles.values())
    exporting = (gil_roles["span export"] + gil_roles["metric export"]) / wall
    lines += [
        "",
        f"The GIL is held {100 * held / wall:.0f}% of the wall time, by the export threads "
        f"{100 * exporting:.1f}%: with the server on one core and requests always queued, that "
        "is time the request thread waits. Busy time without the GIL is waiting for the GIL or "
        "the CPU (other processes on the core), or native code that released it (SQLite, "
        "sockets). The two recordings are separate samples of the same load, so shares can "
        "differ by a few points.",
        "",
        "Where the GIL time goes (share of all GIL-holding samples):",
        "",
        "| thread | doing | share |",
        "|---|---|---|",
    ]
    for (thread_role, name), count in gil.by_category().most_common():
        if count / max(held, 1) >= 0.005:
            lines.append(f"| {thread_role} | {name} | {100 * count / held:.1f}% |")
    lines += [
        "",
        "Top functions holding the GIL (self time):",
        "",
        "| function | share |",
        "|---|---|",
    ]
    for frame, count in gil.top_self():
        lines.append(f"| `{frame}` | {100 * count / max(held, 1):.1f}% |")
    return "\n".join(lines)


def locate_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install 'fleetscope[bench]'.")
    return found


def record(
    py_spy: str, pid: int, seconds: int, output: Path, extra: list[str], cpus: set[int] | None
) -> subprocess.Popen[str]:
    pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    return subprocess.Popen(
        [
            *pin,
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(RATE_HZ),
            "--format",
            "raw",
            "--threads",
            "--full-filenames",
            "--nonblocking",
            "--output",
            str(output),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def profile_server(
    config: Configuration | None, views: list[str], seconds: int, workdir: Path
) -> str:
    """Serve `config` (default Fleetscope at 100%), load it with wrk, record it with py-spy."""
    config = config or BY_NAME["fleetscope-100"]
    py_spy = locate_py_spy()
    cores = Cores.split()
    load_cpus = cores.load if cores else None
    template = build_template(workdir / "template.sqlite3")
    script = wrk.write_script(workdir)
    paths = [VIEWS[v][0] for v in views]
    collector = start_bench_collector(workdir / "collector", load_cpus)
    try:
        database = copy_for_run(template, workdir / f"{config.name}-profile.sqlite3")
        server = start_server(config, database, collector.otlp_endpoint, workdir, cores)
        try:
            wrk.run(server.url, paths, 2, script, cpus=load_cpus)
            pid = server.worker_pid()
            outcome: list[wrk.WrkResult] = []
            load = threading.Thread(
                target=lambda: outcome.append(
                    wrk.run(server.url, paths, seconds + 2, script, cpus=load_cpus)
                )
            )
            load.start()
            time.sleep(1)
            console.print(f"recording {config.name} (pid {pid}) for {seconds} s…")
            outputs = {"gil": workdir / "profile-gil.txt", "every": workdir / "profile-every.txt"}
            recorders = [
                record(py_spy, pid, seconds, outputs["gil"], ["--gil"], load_cpus),
                record(py_spy, pid, seconds, outputs["every"], ["--idle"], load_cpus),
            ]
            for recorder in recorders:
                _, stderr = recorder.communicate(timeout=seconds + 60)
                if recorder.returncode != 0:
                    raise SystemExit(f"py-spy failed ({recorder.returncode}):\n{stderr[-2000:]}")
            load.join()
        finally:
            server.stop()
    finally:
        collector.stop()
    result = outcome[0]
    load_text = (
        f"wrk: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
    )
    text = summary(
        config,
        views,
        seconds,
        Profile.parse(outputs["gil"].read_text()),
        Profile.parse(outputs["every"].read_text()),
        load_text,
    )
    print(text)
    kept = Path(".fleetscope") / f"profile-{config.name}"
    kept.mkdir(parents=True, exist_ok=True)
    for name, path in outputs.items():
        shutil.copyfile(path, kept / f"{name}.txt")
    (kept / "summary.md").write_text(text + "\n")
    console.print(f"raw py-spy stacks and the summary are in {kept}")
    return text
