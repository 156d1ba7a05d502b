"""The transparency job: proof from Django's own test suites that Fleetscope changes nothing.

Runs Django's own tests for caches and database execution twice with runtests.py on SQLite
(plus real memcached and Redis servers): once without Fleetscope, once with the `telemetry`
app and its middleware installed, every trace sampled and export pointed at a loopback port
nobody listens on. Every test that passes without Fleetscope must pass with it; the
instrumentation must be seen active; the instrumented process must exit as promptly as the
baseline. Exit status 0 only if all of that holds. See docs/transparency.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from fleetscope.collector.process import free_port, port_in_use, stop_process_group
from fleetscope.errors import FleetscopeError
from tests.transparency.compare import (
    OUTCOMES,
    Difference,
    KnownException,
    Run,
    cause_lines,
    differences,
    exit_delay_problem,
    group_by_cause,
    instrumentation_problems,
    outcome_of,
    recorded_totals,
    required_class_problems,
    split_known,
    tally,
)
from tests.transparency.config import (
    BASELINE,
    INSTRUMENTED,
    MEMCACHED_ENV,
    MODE_ENV,
    REDIS_ENV,
    REQUIRED_CLASSES,
    TELEMETRY_MIDDLEWARE,
)
from tests.transparency.sdist import DEFAULT_CACHE_DIR, django_tests_dir
from tests.transparency.services import CacheServers, cache_servers

# Django's own test modules (docs/transparency.md says what each covers). Caches and database
# execution: every cache method Fleetscope wraps, sync and async, on locmem, file, database,
# memcached and Redis; SQL through execute, executemany and execute_wrapper, in and out of
# transactions, on two aliases, with assertNumQueries / CaptureQueriesContext.
CACHE_AND_DATABASE_MODULES = (
    "cache", "backends", "queries", "transactions", "basic",
    "db_utils", "multiple_database", "test_utils", "sessions_tests",
)  # fmt: skip
# Requests through the middleware stack (TelemetryMiddleware first), WSGI and ASGI, sync and
# async, with exceptions raised through it.
REQUEST_MODULES = (
    "handlers", "asgi", "async", "test_client", "test_client_regress", "middleware_exceptions",
)  # fmt: skip
MODULES = CACHE_AND_DATABASE_MODULES + REQUEST_MODULES
# Most of the run is spent in the cache tests' sleeps (expiry), not on the CPU: four workers
# finish in about 60% of the time two take, on 2 cores.
PARALLEL = 4
DRIVER = Path(__file__).resolve().with_name("driver.py")
WORKDIR = Path(".fleetscope") / "transparency"

# The instrumented run may exit at most this much later than the baseline after its last test.
EXIT_DELAY_ALLOWANCE_S = 5.0
# After its results are written, a run that has not exited within this is killed.
EXIT_GRACE_S = 120.0
RUN_TIMEOUT_S = 900.0

# The one documented place for tests allowed to differ (docs/transparency.md lists them
# with the same reasons). The job prints each of them; `evidence` must appear in the
# instrumented failure, so a known test failing for any other reason is still a difference.
KNOWN_EXCEPTIONS: dict[str, KnownException] = {}


def _children_cpu() -> float:
    """User + system CPU of every finished child process (test workers included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_env(mode: str, servers: CacheServers, collector_port: int) -> dict[str, str]:
    # Nothing from the caller's shell may redirect export or change sampling.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLEETSCOPE_", "DJANGO_"))
    }
    env[MODE_ENV] = mode
    env[MEMCACHED_ENV] = f"127.0.0.1:{servers.memcached_port}"
    env[REDIS_ENV] = f"redis://127.0.0.1:{servers.redis_port}"
    if mode == INSTRUMENTED:
        env["OTEL_TRACES_SAMPLER"] = "always_on"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{collector_port}"
    return env


def run_once(
    mode: str,
    tests_dir: Path,
    workdir: Path,
    labels: Sequence[str],
    parallel: int,
    env: dict[str, str],
) -> Run:
    result_path = workdir / f"{mode}.json"
    log_path = workdir / f"{mode}.log"
    result_path.unlink(missing_ok=True)
    args = [sys.executable, str(DRIVER), "--mode", mode, "--tests-dir", str(tests_dir)]
    args += ["--result", str(result_path.resolve()), "--parallel", str(parallel), *labels]
    print(f"[{mode}] running Django's tests (log: {log_path})", flush=True)
    cpu_before = _children_cpu()
    started = time.time()
    with log_path.open("wb") as log:
        # A session of its own: the test workers it forks are stopped with it if need be.
        process = subprocess.Popen(
            args, cwd=tests_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    exited: float | None = None
    written: float | None = None
    try:
        while exited is None:
            try:
                process.wait(timeout=0.05)
                exited = time.time()
            except subprocess.TimeoutExpired:
                now = time.time()
                if written is None and result_path.exists():
                    written = now
                if written is not None and now - written > EXIT_GRACE_S:
                    print(f"[{mode}] still running {EXIT_GRACE_S:.0f} s after its tests: killed")
                    break
                if now - started > RUN_TIMEOUT_S:
                    raise FleetscopeError(
                        f"The {mode} run did not finish within {RUN_TIMEOUT_S:.0f} s "
                        f"(log: {log_path})"
                    ) from None
    finally:
        if process.poll() is None:
            stop_process_group(process.pid)
    if not result_path.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise FleetscopeError(f"The {mode} run wrote no results (log: {log_path}):\n{tail}")
    data: dict[str, Any] = json.loads(result_path.read_text())
    last_test_end = data["last_test_end"] or data["finished"]
    run = Run(
        mode=mode,
        outcomes=data["outcomes"],
        probes=data["probes"],
        wall_seconds=(exited or time.time()) - started,
        cpu_seconds=_children_cpu() - cpu_before,
        exit_delay=None if exited is None else exited - last_test_end,
        first_request_status=data["first_request_status"],
    )
    delay = "killed" if run.exit_delay is None else f"{run.exit_delay:.1f} s"
    print(f"[{mode}] {len(run.outcomes)} tests in {run.wall_seconds:.1f} s, exit delay {delay}")
    return run


def _table(baseline: Run, instrumented: Run) -> list[str]:
    def row(name: str, left: object, right: object) -> str:
        return f"  {name:<22}{left!s:>12}{right!s:>14}"

    before, after = tally(baseline.outcomes), tally(instrumented.outcomes)
    lines = [row("", BASELINE, INSTRUMENTED)]
    lines += [row(name, before[key], after[key]) for name, key in OUTCOMES]
    lines.append(row("total", len(baseline.outcomes), len(instrumented.outcomes)))
    lines.append(
        row("wall time (s)", f"{baseline.wall_seconds:.1f}", f"{instrumented.wall_seconds:.1f}")
    )

    def delay(run: Run) -> str:
        return "killed" if run.exit_delay is None else f"{run.exit_delay:.1f}"

    lines.append(row("exit delay (s)", delay(baseline), delay(instrumented)))
    lines.append(
        row("cpu time (s)", f"{baseline.cpu_seconds:.1f}", f"{instrumented.cpu_seconds:.1f}")
    )
    lines.append(
        row("first request", baseline.first_request_status, instrumented.first_request_status)
    )
    return lines


def _show_differences(title: str, found: list[Difference]) -> list[str]:
    lines = [f"{title} ({len(found)}), grouped by the error they end in:"]
    for key, members in group_by_cause(found).items():
        lines.append(f"\n  [{len(members)}] {key}")
        for difference in members:
            lines.append(
                f"    {difference.test_id}: {difference.baseline} -> {difference.instrumented}"
            )
        for line in cause_lines(members[0].detail):
            lines.append(f"      | {line}")
    return lines


def report(baseline: Run, instrumented: Run) -> tuple[list[str], bool]:
    """The job's printed verdict and whether it passed."""
    lines = ["", *_table(baseline, instrumented), ""]
    problems: list[str] = []

    for run in (baseline, instrumented):
        problems += required_class_problems(run.mode, run.outcomes, REQUIRED_CLASSES)
    broken = [
        test_id
        for test_id, entry in baseline.outcomes.items()
        if entry["outcome"] in ("fail", "error", "unexpected-success")
    ]
    if broken:
        problems.append(
            f"the baseline run itself is not clean ({len(broken)} failing, e.g. {broken[0]}): "
            "without a clean baseline the comparison proves nothing"
        )
    if baseline.first_request_status != instrumented.first_request_status:
        problems.append(
            f"the first request answered {instrumented.first_request_status} with Fleetscope, "
            f"{baseline.first_request_status} without"
        )

    inst_problems = instrumentation_problems(instrumented.probes, TELEMETRY_MIDDLEWARE)
    totals = recorded_totals(instrumented.probes)
    pids = {probe["pid"] for probe in instrumented.probes}
    lines.append(
        f"Instrumentation seen in {len(pids)} processes of the instrumented run: "
        + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in totals.items())
    )
    problems += [f"instrumentation: {problem}" for problem in inst_problems]

    unexpected, allowed = split_known(
        differences(baseline.outcomes, instrumented.outcomes), KNOWN_EXCEPTIONS
    )
    lines.append("")
    lines.append(f"Known exceptions ({len(KNOWN_EXCEPTIONS)}, docs/transparency.md):")
    allowed_ids = {d.test_id for d in allowed}
    for test_id, exception in KNOWN_EXCEPTIONS.items():
        state = (
            "differs as documented"
            if test_id in allowed_ids
            else f"{outcome_of(instrumented.outcomes, test_id)} (no documented difference)"
        )
        lines.append(f"  {test_id}: {state}; {exception.reason}")
    if unexpected:
        lines.append("")
        lines += _show_differences("Tests that differ with Fleetscope installed", unexpected)

    delay_problem = exit_delay_problem(baseline, instrumented, EXIT_DELAY_ALLOWANCE_S)
    if delay_problem:
        problems.append(f"exit delay: {delay_problem}")

    lines.append("")
    if unexpected or problems:
        lines.append("FAILED:")
        if unexpected:
            lines.append(f"  - {len(unexpected)} test(s) differ with Fleetscope installed")
        lines += [f"  - {problem}" for problem in problems]
    else:
        lines.append("OK: every test that passes without Fleetscope passes with it.")
    both_passed = sum(
        1
        for test_id, entry in baseline.outcomes.items()
        if entry["outcome"] == "pass" and outcome_of(instrumented.outcomes, test_id) == "pass"
    )
    skipped = tally(instrumented.outcomes)["skip"]
    # The closing line CI reads: each differing test and each other problem is one failure.
    failed = len(unexpected) + len(problems)
    lines.append(f"transparency: {both_passed} passed, {failed} failed, {skipped} skipped")
    return lines, not (unexpected or problems)


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.transparency", description=__doc__)
    parser.add_argument("labels", nargs="*", help=f"Django test labels (default: {MODULES})")
    parser.add_argument("--parallel", type=int, default=PARALLEL)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    args = parser.parse_args(argv)
    labels = list(args.labels or MODULES)
    _stop_on_sigterm()
    try:
        if args.parallel > 1 and importlib.util.find_spec("tblib") is None:
            raise FleetscopeError(
                "Django's parallel test runner needs tblib to report failures: install the dev "
                "extra (pip install -e '.[dev]') or run with --parallel 1."
            )
        django_version, tests_dir = django_tests_dir(args.cache_dir)
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir.resolve()
        collector_port = free_port()
        if port_in_use(collector_port):
            raise FleetscopeError(f"Port {collector_port} was to be closed, but it answers")
        print(
            f"Transparency job: Django {django_version}'s own tests ({' '.join(labels)}) on "
            f"SQLite, --parallel {args.parallel}, from {tests_dir}"
        )
        with cache_servers(workdir) as servers:
            print(
                f"memcached on 127.0.0.1:{servers.memcached_port}, redis-server on "
                f"127.0.0.1:{servers.redis_port}; export to http://127.0.0.1:{collector_port} "
                "(nothing listens there)",
                flush=True,
            )
            started = time.monotonic()
            runs = {
                mode: run_once(
                    mode,
                    tests_dir,
                    workdir,
                    labels,
                    args.parallel,
                    _run_env(mode, servers, collector_port),
                )
                for mode in (BASELINE, INSTRUMENTED)
            }
            total = time.monotonic() - started
    except FleetscopeError as error:
        print(f"transparency job could not run: {error}", file=sys.stderr)
        return 2
    lines, passed = report(runs[BASELINE], runs[INSTRUMENTED])
    print("\n".join(lines))
    print(f"Both runs together: {total:.1f} s. Results: {workdir}/{{baseline,instrumented}}.json")
    return 0 if passed else 1
