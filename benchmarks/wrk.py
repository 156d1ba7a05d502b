"""Drives a server with wrk and reads its figures from a Lua `done()` hook (exact, in µs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MARKER = "FLEETSCOPE_WRK "
# Paths come as script arguments; every request takes the next one (one path: always it).
SCRIPT = """
local paths = {"/"}
local next_path = 0

function init(args)
  if #args > 0 then paths = args end
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d}\\n',
    "MARKER", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99)))
end
""".replace("MARKER", MARKER)


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx answers, timeouts, read/write failures
    connect_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def locate_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(
            "wrk is not installed: run scripts/install-system-deps.sh (Debian package wrk)."
        )
    return path


def write_script(directory: Path) -> Path:
    path = directory / "fleetscope-bench.lua"
    path.write_text(SCRIPT)
    return path


def parse(stdout: str) -> WrkResult:
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise WrkError(f"wrk printed no result line:\n{stdout[-2000:]}")
    data = json.loads(lines[-1][len(MARKER) :])
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=int(
            data["status_errors"] + data["timeouts"] + data["read_errors"] + data["write_errors"]
        ),
        connect_errors=int(data["connect_errors"]),
    )


def run(
    base_url: str,
    paths: list[str],
    duration_s: float,
    script: Path,
    connections: int = 4,
    cpus: set[int] | None = None,
    timeout_s: float = 10.0,
) -> WrkResult:
    """One wrk run (one thread, `connections` connections) over `paths` in turn."""
    args = [
        locate_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        base_url,
        "--",
        *paths,
    ]
    if cpus:
        args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *args]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=False
    )
    if result.returncode != 0:
        raise WrkError(f"wrk failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return parse(result.stdout)
