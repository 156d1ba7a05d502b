"""The transparency job's verdict rules: no difference, skip, lost probe or slow exit slips by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.transparency.compare import (
    KnownException,
    Run,
    cause_key,
    cause_lines,
    differences,
    exit_delay_problem,
    group_by_cause,
    instrumentation_problems,
    recorded_totals,
    required_class_problems,
    split_known,
)
from tests.transparency.runner import KNOWN_EXCEPTIONS, report

MIDDLEWARE = "telemetry.middleware.TelemetryMiddleware"

TRACEBACK = """Traceback (most recent call last):
  File "/usr/lib/python3.11/unittest/case.py", line 57, in testPartExecutor
    yield
  File "/tmp/django/tests/cache/tests.py", line 412, in test_get_many
    self.assertEqual(cache.get_many(["a"]), {"a": 1})
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/repo/telemetry/cache.py", line 230, in get_many
    hits = _count_hits(requested, found)
  File "/usr/lib/python3.11/unittest/case.py", line 703, in fail
    raise self.failureException(msg)
TypeError: unhashable type: 'list' at 0x7f00deadbeef
"""


def entry(outcome: str, detail: str = "") -> dict[str, str]:
    return {"outcome": outcome, "detail": detail}


def healthy_probe(**changes: Any) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "where": "after cache.tests.LocMemCacheTests",
        "pid": 11,
        "runtime_active": True,
        "runtime_id": 1,
        "export_started": True,
        "sampler": "always_on",
        "endpoint": "http://127.0.0.1:9",
        "current_span_recording": True,
        "app_installed": True,
        "middleware": [MIDDLEWARE],
        "cache_handler_instrumented": True,
        "databases": {
            "default": {
                "connected": True,
                "observers": 1,
                "observer_of_active_runtime": True,
                "other_wrappers": [],
            }
        },
        "caches": {"redis": {"class": "RedisCache", "instrumented": True}},
        "cache_operations_wrapped": ["get", "set"],
        "cache_operations_seen": ["get", "set"],
        "statements_recorded": 10,
        "cache_operations_recorded": 5,
        "requests_recorded": 1,
        "spans_ended": 15,
    }
    probe.update(changes)
    return probe


def run(mode: str, outcomes: dict[str, dict[str, str]], **changes: Any) -> Run:
    values: dict[str, Any] = {
        "mode": mode,
        "outcomes": outcomes,
        "probes": [],
        "wall_seconds": 40.0,
        "exit_delay": 0.5,
        "first_request_status": 404,
    }
    values.update(changes)
    return Run(**values)


def test_a_test_that_passes_only_without_fleetscope_is_a_difference() -> None:
    baseline = {"a.T.test_x": entry("pass"), "a.T.test_y": entry("pass")}
    instrumented = {"a.T.test_x": entry("fail", TRACEBACK), "a.T.test_y": entry("pass")}

    found = differences(baseline, instrumented)

    assert [(d.test_id, d.baseline, d.instrumented) for d in found] == [
        ("a.T.test_x", "pass", "fail")
    ]
    assert found[0].detail == TRACEBACK


def test_tests_that_vanish_or_appear_are_differences() -> None:
    # A setUpClass error replaces a class's tests by one error holder.
    baseline = {"a.T.test_x": entry("pass")}
    instrumented = {"setUpClass (a.T)": entry("error", TRACEBACK)}

    found = differences(baseline, instrumented)

    assert {(d.test_id, d.baseline, d.instrumented) for d in found} == {
        ("a.T.test_x", "pass", "absent"),
        ("setUpClass (a.T)", "absent", "error"),
    }


def test_a_pass_that_becomes_a_skip_is_a_difference() -> None:
    found = differences({"a.T.test_x": entry("pass")}, {"a.T.test_x": entry("skip", "why")})

    assert [(d.baseline, d.instrumented) for d in found] == [("pass", "skip")]


def test_a_known_exception_is_allowed_only_when_it_fails_in_the_documented_way() -> None:
    known = {"a.T.test_x": KnownException(reason="documented", evidence="QueryObserver")}
    as_documented = differences(
        {"a.T.test_x": entry("pass")},
        {"a.T.test_x": entry("fail", "AssertionError: [<QueryObserver>] != []")},
    )
    otherwise = differences({"a.T.test_x": entry("pass")}, {"a.T.test_x": entry("error", "Boom")})

    assert split_known(as_documented, known) == ([], as_documented)
    assert split_known(otherwise, known) == (otherwise, [])


def test_memcached_or_redis_classes_skipped_as_not_configured_fail_the_job() -> None:
    classes = ("cache.tests.RedisCacheTests", "cache.tests.PyMemcacheCacheTests")
    outcomes = {
        "cache.tests.RedisCacheTests.test_add": entry("skip", "Redis backend not configured"),
        "cache.tests.PyMemcacheCacheTests.test_add": entry("pass"),
    }

    problems = required_class_problems("baseline", outcomes, classes)

    assert problems == [
        "baseline run: cache.tests.RedisCacheTests did not run (Redis backend not configured)"
    ]
    assert required_class_problems("baseline", {}, classes[:1]) == [
        "baseline run: cache.tests.RedisCacheTests did not run (no test of it ran)"
    ]


def test_healthy_probes_show_no_instrumentation_problem() -> None:
    assert instrumentation_problems([healthy_probe()], MIDDLEWARE) == []


def test_a_connection_without_the_active_runtimes_observer_is_a_problem() -> None:
    stale = healthy_probe(
        databases={
            "default": {
                "connected": True,
                "observers": 1,
                "observer_of_active_runtime": False,
                "other_wrappers": [],
            }
        }
    )

    problems = instrumentation_problems([healthy_probe(), stale], MIDDLEWARE)

    assert len(problems) == 1
    message = "database 'default' is connected without the active runtime's QueryObserver"
    assert message in problems[0]
    assert "in 1 of 2 probes" in problems[0]


def test_uninstrumented_caches_missing_probes_and_nothing_recorded_are_problems() -> None:
    plain = healthy_probe(
        caches={"redis": {"class": "RedisCache", "instrumented": False}},
        cache_operations_recorded=0,
    )

    problems = instrumentation_problems([plain], MIDDLEWARE)

    assert any("cache 'redis' (RedisCache) is not instrumented" in p for p in problems)
    assert any("cache_operations_recorded = 0" in p for p in problems)
    assert instrumentation_problems([], MIDDLEWARE) == [
        "no process of the instrumented run reported a probe"
    ]


def test_a_wrapped_cache_operation_that_no_test_called_is_a_problem() -> None:
    probes = [
        healthy_probe(pid=1, cache_operations_seen=["get"]),
        healthy_probe(pid=2, cache_operations_seen=[]),
    ]

    problems = instrumentation_problems(probes, MIDDLEWARE)

    assert problems == [
        "wrapped cache operations that no test called: set (add a Django test module that "
        "calls them)"
    ]


def test_recorded_totals_take_each_processs_latest_counts() -> None:
    probes = [
        healthy_probe(pid=1, statements_recorded=5),
        healthy_probe(pid=1, statements_recorded=9),
        healthy_probe(pid=2, statements_recorded=4),
    ]

    assert recorded_totals(probes)["statements_recorded"] == 13


def test_an_instrumented_exit_much_slower_than_the_baseline_fails() -> None:
    baseline = run("baseline", {}, exit_delay=0.4)

    assert exit_delay_problem(baseline, run("instrumented", {}, exit_delay=3.0), 5.0) is None
    slow = exit_delay_problem(baseline, run("instrumented", {}, exit_delay=12.4), 5.0)
    assert slow is not None and "12.0 s longer" in slow
    killed = exit_delay_problem(baseline, run("instrumented", {}, exit_delay=None), 5.0)
    assert killed == "the instrumented run did not exit after its tests (killed)"


def test_cause_shows_fleetscopes_frame_the_tests_frame_and_the_error() -> None:
    lines = cause_lines(TRACEBACK)

    assert lines == [
        '  File "/tmp/django/tests/cache/tests.py", line 412, in test_get_many',
        '    self.assertEqual(cache.get_many(["a"]), {"a": 1})',
        '  File "/repo/telemetry/cache.py", line 230, in get_many',
        "    hits = _count_hits(requested, found)",
        "TypeError: unhashable type: 'list' at 0x7f00deadbeef",
    ]
    assert cause_key(TRACEBACK) == "TypeError: unhashable type: 'list' at 0x…"


def test_differences_are_grouped_by_the_error_they_end_in() -> None:
    other = TRACEBACK.replace("0x7f00deadbeef", "0x7f00cafe")
    found = differences(
        {"a.T.test_1": entry("pass"), "a.T.test_2": entry("pass"), "a.T.test_3": entry("pass")},
        {
            "a.T.test_1": entry("error", TRACEBACK),
            "a.T.test_2": entry("error", other),
            "a.T.test_3": entry("skip", "no reason"),
        },
    )

    groups = group_by_cause(found)

    assert [(key, [d.test_id for d in members]) for key, members in groups.items()] == [
        ("TypeError: unhashable type: 'list' at 0x…", ["a.T.test_1", "a.T.test_2"]),
        ("no reason", ["a.T.test_3"]),
    ]


def _required_outcomes() -> dict[str, dict[str, str]]:
    return {
        "cache.tests.PyMemcacheCacheTests.test_add": entry("pass"),
        "cache.tests.RedisCacheTests.test_add": entry("pass"),
    }


def test_report_passes_only_when_nothing_differs() -> None:
    outcomes = _required_outcomes()
    clean = run("instrumented", dict(outcomes), probes=[healthy_probe()])

    lines, passed = report(run("baseline", dict(outcomes)), clean)

    assert passed
    assert lines[-1] == "transparency: 2 passed, 0 failed, 0 skipped"


def test_report_fails_and_names_the_differing_test() -> None:
    outcomes = _required_outcomes()
    broken = dict(outcomes, **{"cache.tests.RedisCacheTests.test_add": entry("error", TRACEBACK)})

    lines, passed = report(
        run("baseline", outcomes),
        run("instrumented", broken, probes=[healthy_probe()], exit_delay=30.0),
    )

    assert not passed
    text = "\n".join(lines)
    assert "cache.tests.RedisCacheTests.test_add: pass -> error" in text
    assert "exit delay: the instrumented run took 30.0 s" in text
    assert lines[-1] == "transparency: 1 passed, 2 failed, 0 skipped"


def test_every_known_exception_is_documented_for_users() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "transparency.md").read_text()

    for test_id, exception in KNOWN_EXCEPTIONS.items():
        assert f"`{test_id}`" in docs, f"{test_id} is not listed in docs/transparency.md"
        assert exception.evidence, f"{test_id} has no evidence its failure is the documented one"
