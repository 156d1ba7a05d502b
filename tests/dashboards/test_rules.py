"""The generated alert rules pass promtool and fire (only) when the fleet misbehaves, checked
with `promtool test rules` on synthetic series."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from fleetscope.dashboards.build import GENERATED_DIR
from fleetscope.dashboards.rules import RULES_FILE_NAME, alerts, render_rules
from tests.dashboards.conftest import promtool

RULES = GENERATED_DIR / RULES_FILE_NAME
REQUESTS = "http_server_request_duration_seconds"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)


def _run_unit_tests(tmp_path: Path, rules: Path, tests: list[dict[str, Any]]) -> None:
    spec = tmp_path / "rules-test.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests})
    )
    done = _promtool("test", "rules", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr


def _without_annotations(tmp_path: Path) -> Path:
    """The generated rules minus annotations, so tests can focus on when alerts fire."""
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "rules-bare.yml"
    path.write_text(yaml.safe_dump(groups))
    return path


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": labels_} for labels_ in labels],
    }


def test_promtool_accepts_the_rule_file() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_rule_file_is_the_committed_one_and_has_every_alert() -> None:
    assert RULES.read_text() == render_rules()
    names = [r["alert"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]]
    assert names == [
        "FleetscopeRouteLatencyHigh",
        "FleetscopeErrorRatioHigh",
        "FleetscopeCacheHitRatioDrop",
        "FleetscopeNodeStoppedReporting",
        "FleetscopeSlowQueries",
        "FleetscopeRequestsQueueing",
        "FleetscopeWorkersSaturated",
        "FleetscopeTaskQueueGrowing",
        "FleetscopeTaskQueueWaitRising",
        "FleetscopeTaskFailureRatioHigh",
    ]


def test_node_stopped_reporting_names_the_silent_node(tmp_path: Path) -> None:
    heartbeat = f"{REQUESTS}_count"
    expected = {
        "exp_labels": {"severity": "critical", "job": "shop", "host_name": "node-2"},
        "exp_annotations": {
            "summary": "Node node-2 stopped reporting",
            "description": (
                "node-2 exported metrics for shop within the last 1h but exports nothing now: "
                "the node, its workers or its path to the collector is down."
            ),
        },
    }
    series = [
        {
            "series": f'{heartbeat}{{job="shop",host_name="{node}",instance="{node}/1"}}',
            "values": values,
        }
        for node, values in (("node-1", "0+60x120"), ("node-2", "0+60x30 _x90"))
    ]
    _run_unit_tests(
        tmp_path,
        RULES,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    _alert("FleetscopeNodeStoppedReporting", "20m"),
                    {
                        "eval_time": "45m",
                        "alertname": "FleetscopeNodeStoppedReporting",
                        "exp_alerts": [expected],
                    },
                ],
            }
        ],
    )


def test_error_ratio_fires_for_the_failing_service_only(tmp_path: Path) -> None:
    count = f"{REQUESTS}_count"
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'{count}{{job="shop",http_response_status_code="200"}}',
                        "values": "0+90x30",
                    },
                    {
                        "series": f'{count}{{job="shop",http_response_status_code="503"}}',
                        "values": "0+10x30",
                    },
                    {
                        "series": f'{count}{{job="calm",http_response_status_code="200"}}',
                        "values": "0+100x30",
                    },
                ],
                "alert_rule_test": [
                    _alert("FleetscopeErrorRatioHigh", "3m"),
                    _alert(
                        "FleetscopeErrorRatioHigh", "20m", {"severity": "critical", "job": "shop"}
                    ),
                ],
            }
        ],
    )


def test_route_latency_fires_for_slow_routes_but_not_unmatched(tmp_path: Path) -> None:
    def route(name: str) -> list[dict[str, str]]:
        labels = f'job="shop",http_route="{name}"'
        return [
            {"series": f'{REQUESTS}_bucket{{{labels},le="0.5"}}', "values": "0+0x40"},
            {"series": f'{REQUESTS}_bucket{{{labels},le="2.5"}}', "values": "0+60x40"},
            {"series": f'{REQUESTS}_bucket{{{labels},le="+Inf"}}', "values": "0+60x40"},
            {"series": f"{REQUESTS}_count{{{labels}}}", "values": "0+60x40"},
        ]

    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": route("/products/<int:pk>/") + route("unmatched"),
                "alert_rule_test": [
                    _alert("FleetscopeRouteLatencyHigh", "8m"),
                    _alert(
                        "FleetscopeRouteLatencyHigh",
                        "30m",
                        {"severity": "warning", "job": "shop", "http_route": "/products/<int:pk>/"},
                    ),
                ],
            }
        ],
    )


def test_cache_hit_ratio_drop_fires_after_the_ratio_falls(tmp_path: Path) -> None:
    ops = 'django_cache_operations_total{job="shop",django_cache_alias="default"'
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    # 90 hits and 10 misses a minute for 5 h, then 10 hits a minute.
                    {
                        "series": f'{ops},django_cache_result="hit"}}',
                        "values": "0+90x300 27010+10x60",
                    },
                    {"series": f'{ops},django_cache_result="miss"}}', "values": "0+10x360"},
                    {"series": f'{ops},django_cache_result="none"}}', "values": "0+500x360"},
                ],
                "alert_rule_test": [
                    _alert("FleetscopeCacheHitRatioDrop", "290m"),
                    _alert(
                        "FleetscopeCacheHitRatioDrop",
                        "340m",
                        {"severity": "warning", "job": "shop", "django_cache_alias": "default"},
                    ),
                ],
            }
        ],
    )


def test_slow_query_alert_names_the_fingerprint(tmp_path: Path) -> None:
    slow = 'django_db_slow_queries_total{job="shop",http_route="/r/",django_db_fingerprint'
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{slow}="a1b2c3d4"}}', "values": "0+30x40"},
                    {"series": f'{slow}="e5f6a7b8"}}', "values": "0+1x40"},
                ],
                "alert_rule_test": [
                    _alert("FleetscopeSlowQueries", "5m"),
                    _alert(
                        "FleetscopeSlowQueries",
                        "30m",
                        {
                            "severity": "warning",
                            "job": "shop",
                            "django_db_fingerprint": "a1b2c3d4",
                        },
                    ),
                ],
            }
        ],
    )


def test_queueing_alert_names_the_node_whose_requests_wait(tmp_path: Path) -> None:
    queue = "http_server_request_queue_time_seconds"

    def node(name: str, slow: bool) -> list[dict[str, str]]:
        labels = f'job="shop",host_name="{name}",instance="{name}/1",http_route="/r/"'
        # 60 stamped requests a minute; the queued node's wait between 0.25 s and 1 s.
        fast = "0+60x40" if not slow else "0+0x40"
        return [
            {"series": f'{queue}_bucket{{{labels},le="0.01"}}', "values": fast},
            {"series": f'{queue}_bucket{{{labels},le="0.25"}}', "values": fast},
            {"series": f'{queue}_bucket{{{labels},le="1"}}', "values": "0+60x40"},
            {"series": f'{queue}_bucket{{{labels},le="+Inf"}}', "values": "0+60x40"},
            {"series": f"{queue}_count{{{labels}}}", "values": "0+60x40"},
        ]

    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": node("node-1", slow=True) + node("node-2", slow=False),
                "alert_rule_test": [
                    _alert("FleetscopeRequestsQueueing", "8m"),
                    _alert(
                        "FleetscopeRequestsQueueing",
                        "30m",
                        {"severity": "warning", "job": "shop", "host_name": "node-1"},
                    ),
                ],
            }
        ],
    )


def test_saturation_alert_fires_for_the_node_whose_workers_are_busy(tmp_path: Path) -> None:
    busy = "fleetscope_worker_busy_time_seconds_total"

    def worker(node: str, pid: int, seconds_per_minute: int) -> dict[str, str]:
        labels = f'job="shop",host_name="{node}",instance="{node}/{pid}"'
        return {"series": f"{busy}{{{labels}}}", "values": f"0+{seconds_per_minute}x40"}

    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    # node-1: both workers busy 57 s a minute (95 %); node-2: 30 s (50 %).
                    worker("node-1", 1, 57),
                    worker("node-1", 2, 57),
                    worker("node-2", 1, 30),
                    worker("node-2", 2, 30),
                ],
                "alert_rule_test": [
                    _alert("FleetscopeWorkersSaturated", "8m"),
                    _alert(
                        "FleetscopeWorkersSaturated",
                        "30m",
                        {"severity": "warning", "job": "shop", "host_name": "node-1"},
                    ),
                ],
            }
        ],
    )


# -- Celery tasks --------------------------------------------------------------------------


def test_growing_queue_alerts_on_the_queue_that_keeps_growing(tmp_path: Path) -> None:
    depth = 'celery_queue_depth{job="shop",messaging_destination_name'
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    # Read by two nodes: the same number twice.
                    {"series": f'{depth}="celery",host_name="n1"}}', "values": "50+10x60"},
                    {"series": f'{depth}="celery",host_name="n2"}}', "values": "50+10x60"},
                    # Deep but draining, and growing but shallow: neither alerts.
                    {"series": f'{depth}="reports",host_name="n1"}}', "values": "900-5x60"},
                    {"series": f'{depth}="mail",host_name="n1"}}', "values": "0+1x60"},
                ],
                "alert_rule_test": [
                    _alert("FleetscopeTaskQueueGrowing", "10m"),
                    _alert(
                        "FleetscopeTaskQueueGrowing",
                        "40m",
                        {
                            "severity": "warning",
                            "job": "shop",
                            "messaging_destination_name": "celery",
                        },
                    ),
                ],
            }
        ],
    )


def _wait_buckets(queue: str, per_minute: str, slow_from: int | None) -> list[dict[str, str]]:
    """Queue-wait histogram series: every wait under 1 s, or from minute `slow_from` on,
    every new wait between 60 s and 300 s."""
    labels = f'job="shop",celery_task_name="t",messaging_destination_name="{queue}"'
    base = f"celery_task_queue_wait_seconds_bucket{{{labels}"
    fast = f"0+{per_minute}x400"
    if slow_from is None:
        under, over = fast, fast
    else:
        under = f"0+{per_minute}x{slow_from} {int(per_minute) * slow_from}+0x{400 - slow_from}"
        over = fast
    return [
        {"series": f'{base},le="1"}}', "values": under},
        {"series": f'{base},le="60"}}', "values": under},
        {"series": f'{base},le="300"}}', "values": over},
        {"series": f'{base},le="+Inf"}}', "values": over},
    ]


def test_rising_queue_wait_alerts_only_above_its_usual_level(tmp_path: Path) -> None:
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": _wait_buckets("celery", "60", slow_from=370)
                + _wait_buckets("reports", "60", slow_from=None),
                "alert_rule_test": [
                    _alert("FleetscopeTaskQueueWaitRising", "365m"),
                    _alert(
                        "FleetscopeTaskQueueWaitRising",
                        "395m",
                        {
                            "severity": "warning",
                            "job": "shop",
                            "messaging_destination_name": "celery",
                        },
                    ),
                ],
            }
        ],
    )


def test_task_failure_ratio_names_the_failing_task(tmp_path: Path) -> None:
    runs = 'celery_task_duration_seconds_count{job="shop",celery_task_name'
    _run_unit_tests(
        tmp_path,
        _without_annotations(tmp_path),
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{runs}="a",celery_task_outcome="success"}}', "values": "0+60x40"},
                    {"series": f'{runs}="a",celery_task_outcome="failure"}}', "values": "0+20x40"},
                    {"series": f'{runs}="b",celery_task_outcome="success"}}', "values": "0+60x40"},
                    {"series": f'{runs}="b",celery_task_outcome="retry"}}', "values": "0+60x40"},
                ],
                "alert_rule_test": [
                    _alert("FleetscopeTaskFailureRatioHigh", "5m"),
                    _alert(
                        "FleetscopeTaskFailureRatioHigh",
                        "30m",
                        {"severity": "warning", "job": "shop", "celery_task_name": "a"},
                    ),
                ],
            }
        ],
    )
