"""Compares the two runs: per test id, the required cache backends, the probes, the exit delays.

Pure functions over the drivers' JSON results, so the rules can be unit-tested
(tests/transparency/test_compare.py) without running Django's suite.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ABSENT = "absent"  # the test id did not run at all in that run
OUTCOMES = (
    ("passed", "pass"),
    ("failed", "fail"),
    ("errors", "error"),
    ("skipped", "skip"),
    ("expected failures", "expected-failure"),
    ("unexpected successes", "unexpected-success"),
)

Outcomes = Mapping[str, Mapping[str, str]]  # test id -> {"outcome": ..., "detail": ...}


@dataclass(frozen=True)
class KnownException:
    """A test allowed to differ, for a documented reason, and only in the documented way."""

    reason: str
    evidence: str  # must appear in the instrumented run's failure text, else it is a difference


@dataclass(frozen=True)
class Difference:
    test_id: str
    baseline: str
    instrumented: str
    detail: str  # the instrumented run's traceback or skip reason


@dataclass
class Run:
    """One driver run as the parent process saw it."""

    mode: str
    outcomes: Outcomes
    probes: Sequence[Mapping[str, Any]]
    wall_seconds: float
    exit_delay: float | None  # last test's end to process exit; None if it had to be killed
    first_request_status: int | None
    cpu_seconds: float = 0.0  # the run's processes, workers included


def outcome_of(outcomes: Outcomes, test_id: str) -> str:
    entry = outcomes.get(test_id)
    return ABSENT if entry is None else entry["outcome"]


def tally(outcomes: Outcomes) -> Counter[str]:
    return Counter(entry["outcome"] for entry in outcomes.values())


def differences(baseline: Outcomes, instrumented: Outcomes) -> list[Difference]:
    """Every test id whose outcome is not the same in both runs (absent counts as an outcome)."""
    found = []
    for test_id in sorted(set(baseline) | set(instrumented)):
        before, after = outcome_of(baseline, test_id), outcome_of(instrumented, test_id)
        if before != after:
            detail = instrumented[test_id]["detail"] if test_id in instrumented else ""
            found.append(Difference(test_id, before, after, detail))
    return found


def split_known(
    found: Iterable[Difference], known: Mapping[str, KnownException]
) -> tuple[list[Difference], list[Difference]]:
    """(differences that fail the job, known exceptions that differ exactly as documented)."""
    unexpected, allowed = [], []
    for difference in found:
        exception = known.get(difference.test_id)
        if exception is not None and exception.evidence in difference.detail:
            allowed.append(difference)
        else:
            unexpected.append(difference)
    return unexpected, allowed


def required_class_problems(mode: str, outcomes: Outcomes, classes: Iterable[str]) -> list[str]:
    """The memcached and Redis test classes must run, not be skipped as 'not configured'."""
    problems = []
    for cls in classes:
        entries = [e for test_id, e in outcomes.items() if test_id.startswith(cls + ".")]
        ran = [e for e in entries if e["outcome"] != "skip"]
        unconfigured = [e for e in entries if "not configured" in e.get("detail", "")]
        if not ran or unconfigured:
            reason = unconfigured[0]["detail"] if unconfigured else "no test of it ran"
            problems.append(f"{mode} run: {cls} did not run ({reason})")
    return problems


def _probe_messages(probe: Mapping[str, Any], middleware: str) -> list[str]:
    messages = []
    if not probe["runtime_active"]:
        return ["no telemetry runtime is active"]
    if not probe["app_installed"]:
        messages.append("'telemetry' is not in INSTALLED_APPS")
    if probe["middleware"] != [middleware]:
        messages.append(f"the first middleware is {probe['middleware']}, not {middleware}")
    if not probe["export_started"]:
        messages.append("export has not started")
    if probe["sampler"] != "always_on":
        messages.append(f"the sampler is {probe['sampler']}, not always_on")
    if not probe["current_span_recording"]:
        messages.append("no sampled span is current (the traced paths do not run)")
    if not probe["cache_handler_instrumented"]:
        messages.append("the cache handler is not instrumented")
    for alias, backend in sorted(probe["caches"].items()):
        if not backend["instrumented"]:
            messages.append(f"cache {alias!r} ({backend['class']}) is not instrumented")
    for backend in probe.get("caches_in_use", ()):
        if not backend["instrumented"]:
            messages.append(f"a cache in use ({backend['class']}) is not instrumented")
    for alias, database in sorted(probe["databases"].items()):
        if database["connected"] and not database["observer_of_active_runtime"]:
            messages.append(
                f"database {alias!r} is connected without the active runtime's QueryObserver "
                f"({database['observers']} observer(s); execute_wrappers: "
                f"{database['other_wrappers']})"
            )
        elif database.get("observer_in_wrappers"):
            messages.append(
                f"database {alias!r} has a QueryObserver in execute_wrappers, the app's list"
            )
        elif database["other_wrappers"]:
            messages.append(
                f"database {alias!r} keeps execute_wrappers left over by a test: "
                f"{database['other_wrappers']}"
            )
    return messages


def instrumentation_problems(probes: Sequence[Mapping[str, Any]], middleware: str) -> list[str]:
    """Why the probes do not show Fleetscope's instrumentation in place and recording."""
    if not probes:
        return ["no process of the instrumented run reported a probe"]
    where: dict[str, list[str]] = defaultdict(list)
    for probe in probes:
        for message in _probe_messages(probe, middleware):
            where[message].append(f"{probe['where']} (pid {probe['pid']})")
    problems = [
        f"{message}: in {len(places)} of {len(probes)} probes, e.g. {'; '.join(places[:3])}"
        for message, places in where.items()
    ]
    totals = recorded_totals(probes)
    for name, total in totals.items():
        if total == 0:
            problems.append(f"nothing recorded: {name} = 0 in every process")
    never = unexercised_operations(probes)
    if never:
        problems.append(
            f"wrapped cache operations that no test called: {', '.join(never)} (add a Django "
            "test module that calls them)"
        )
    return problems


def unexercised_operations(probes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Cache operations Fleetscope wraps that no probed process recorded."""
    wrapped = {op for probe in probes for op in probe.get("cache_operations_wrapped", ())}
    seen = {op for probe in probes for op in probe.get("cache_operations_seen", ())}
    return sorted(wrapped - seen)


def recorded_totals(probes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """What the runtimes recorded, summed over processes (each process's counts only grow)."""
    names = ("statements_recorded", "cache_operations_recorded", "spans_ended")
    latest: dict[int, dict[str, int]] = defaultdict(dict)
    for probe in probes:
        for name in names:
            current = latest[probe["pid"]].get(name, 0)
            latest[probe["pid"]][name] = max(current, int(probe[name]))
    return {name: sum(counts.get(name, 0) for counts in latest.values()) for name in names}


def exit_delay_problem(baseline: Run, instrumented: Run, allowance: float) -> str | None:
    if baseline.exit_delay is None:
        return "the baseline run did not exit after its tests (killed)"
    if instrumented.exit_delay is None:
        return "the instrumented run did not exit after its tests (killed)"
    extra = instrumented.exit_delay - baseline.exit_delay
    if extra > allowance:
        return (
            f"the instrumented run took {instrumented.exit_delay:.1f} s from its last test to "
            f"exit, the baseline {baseline.exit_delay:.1f} s: {extra:.1f} s longer (allowed: "
            f"{allowance:.0f} s); a process whose collector is unreachable must exit promptly"
        )
    return None


# -- showing causes ---------------------------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-f]+")
_MACHINERY = ("/unittest/", "/contextlib.py", "/django/test/")


def _exception_start(lines: Sequence[str]) -> int:
    last_frame = max((i for i, line in enumerate(lines) if line.startswith('  File "')), default=-1)
    start = last_frame + 1
    while start < len(lines) and lines[start].startswith("    "):
        start += 1  # the frame's code line and its ^^^ markers
    return start


def cause_key(detail: str) -> str:
    """The exception line that names the cause (addresses folded), for grouping."""
    lines = [line for line in detail.rstrip().splitlines() if line.strip()]
    if not lines:
        return "(no traceback)"
    start = _exception_start(lines)
    summary = lines[start] if start < len(lines) else lines[-1]
    return _ADDRESS.sub("0x…", summary)[:200]


def cause_lines(detail: str, limit: int = 300) -> list[str]:
    """The lines that show the cause: the test's frame, the deepest Fleetscope frame, the error."""
    lines = detail.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    shown: list[str] = []
    ours = [i for i in frames if "/telemetry/" in lines[i]]
    # The deepest frame of the test itself (not unittest's machinery, not Fleetscope).
    tests = [i for i in frames if i not in ours and not any(m in lines[i] for m in _MACHINERY)]
    picks = sorted(set(ours[-1:] + tests[-1:])) or frames[-1:]
    for i in picks:
        shown.append(lines[i])
        if i + 1 < len(lines) and lines[i + 1].startswith("    "):
            shown.append(lines[i + 1])
    start = _exception_start(lines)
    shown += lines[start : start + 6]
    return [line if len(line) <= limit else line[:limit] + " …" for line in shown]


def group_by_cause(found: Iterable[Difference]) -> dict[str, list[Difference]]:
    groups: dict[str, list[Difference]] = defaultdict(list)
    for difference in found:
        key = difference.detail and cause_key(difference.detail)
        groups[key or f"{difference.baseline} -> {difference.instrumented}"].append(difference)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))
