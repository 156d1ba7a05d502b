"""Runs the nox sessions of the version matrix side by side (`make test-matrix`).

Each session writes its output to .nox/logs/<session>.log; a line is printed as each one
ends (its time and pytest's summary), the failing ones' tails at the end. The integration
sessions, the longest, start first and run one after the other: each starts a collector,
Prometheus, PostgreSQL, Redis and a demo fleet, and two at once on two cores time out.
Exits non-zero when any session failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".nox" / "logs"
NOX = [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py")]
SUMMARY = re.compile(r"^=+ (.*\d+ (?:passed|failed|error|errors).*) =+$")


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    summary: str
    log: Path


def sessions(tags: list[str], skip_covered: bool) -> list[str]:
    listed = subprocess.run(
        [*NOX, "--list", "--json", *(["--tags", *tags] if tags else [])],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    found = []
    for entry in json.loads(listed.stdout):
        if skip_covered and covered_by_make_test(entry):
            print(f"skipped {entry['session']}: `make test` runs the same tests on this pair")
            continue
        found.append(entry["session"])
    return found


def covered_by_make_test(entry: dict[str, Any]) -> bool:
    """A unit session on the Python and Django of the dev virtualenv (this interpreter),
    whose whole suite `make test` runs."""
    import django

    here = (
        f"{sys.version_info[0]}.{sys.version_info[1]}",
        f"{django.VERSION[0]}.{django.VERSION[1]}",
    )
    return "unit" in entry["tags"] and (entry["python"], entry["call_spec"]["django"]) == here


def log_name(session: str) -> str:
    return re.sub(r"[^\w.-]+", "-", session).strip("-") + ".log"


def run(session: str, pytest_args: list[str]) -> Outcome:
    log = LOGS / log_name(session)
    started = time.monotonic()
    command = [*NOX, "-s", session, "--no-color"]
    if pytest_args:
        command += ["--", *pytest_args]
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.monotonic() - started
    summary = ""
    for line in log.read_text(errors="replace").splitlines():
        match = SUMMARY.match(line)
        if match:
            summary = match.group(1)
    return Outcome(session, result.returncode == 0, seconds, summary, log)


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("MATRIX_JOBS", "3")),
        help="sessions at once (MATRIX_JOBS, default 3)",
    )
    parser.add_argument("--tags", nargs="*", default=[], help="only sessions with these tags")
    parser.add_argument(
        "--skip-covered",
        action="store_true",
        help="leave out the unit session that `make test` already runs (CI)",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    options = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    names = sessions(options.tags, options.skip_covered)
    print(f"{len(names)} sessions, {options.jobs} at a time; logs in {LOGS.relative_to(ROOT)}/")
    started = time.monotonic()
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def run_in_turn(chain: list[str]) -> None:
        for name in chain:
            outcome = run(name, options.pytest_args)
            verdict = "ok  " if outcome.ok else "FAIL"
            summary = outcome.summary or f"see {outcome.log.relative_to(ROOT)}"
            with lock:
                outcomes.append(outcome)
                print(f"{verdict}  {outcome.name:<30} {minutes(outcome.seconds):>7}  {summary}")
                sys.stdout.flush()

    integration = [name for name in names if name.startswith("integration")]
    chains = [integration] if integration else []
    chains += [[name] for name in names if name not in integration]
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        for future in [pool.submit(run_in_turn, chain) for chain in chains]:
            future.result()
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in failed:
        tail = outcome.log.read_text(errors="replace").splitlines()[-40:]
        print(f"\n--- {outcome.name} (last lines of {outcome.log.relative_to(ROOT)})")
        print("\n".join(tail))
    print(f"\nmatrix took {minutes(time.monotonic() - started)} with {options.jobs} jobs")
    print(f"matrix: {len(outcomes) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
