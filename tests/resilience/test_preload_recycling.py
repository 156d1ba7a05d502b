"""Row "--preload -w 4 --max-requests 50": under load, with a master that itself exports
before forking, no request hangs, every worker (recycled ones included) exports under its
own instance id, and once the last worker has exited the counts add up to exactly what the
load sent: recycled workers flush at exit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.stack import start_stack

from .figures import record
from .load import FixedRateLoad, failures, latencies, percentile, steady
from .node import (
    PATH,
    ROUTE_COUNT,
    booted_workers,
    exited_workers,
    killed_workers,
    requests_query,
    selector,
    settle,
    start_node,
    stop_gracefully,
)

RATE = 40.0
DURATION = 25.0
WORKERS = 4
MAX_REQUESTS = 50
NODE = "preload"


def test_preload_with_recycled_workers_counts_every_request(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack")
    node = None
    try:
        node = start_node(
            stack,
            tmp_path / "node",
            NODE,
            workers=WORKERS,
            server_args=("--max-requests", str(MAX_REQUESTS)),
            wsgi="tests.resilience.busy_master_wsgi:application",
        )
        load = FixedRateLoad(node.url + PATH, RATE).start()
        time.sleep(DURATION)
        outcomes = load.stop()
        assert failures(outcomes) == []  # every request answered: no worker hung
        stop_gracefully(node)
        booted = booted_workers(node)
        assert killed_workers(node) == []
        assert sorted(exited_workers(node)) == sorted(booted)

        sent = len(outcomes)
        settle(stack, requests_query(NODE), sent, timeout=30)
        route = f'http_route="{PATH}"'
        per_instance = {
            row["metric"]["instance"]: float(row["value"][1])
            for row in stack.query(f"sum by (instance) ({ROUTE_COUNT}{selector(NODE, route)})")
        }
        # Each worker under its own id; none served more than --max-requests.
        assert set(per_instance) <= {f"{NODE}/{pid}" for pid in booted}
        assert max(per_instance.values()) <= MAX_REQUESTS
        recycled = len(booted) - WORKERS
        assert len(per_instance) >= recycled >= sent // MAX_REQUESTS - WORKERS
        # The master exported its own query under its own id, before and between forks.
        master = stack.query(f"db_client_operation_duration_seconds_count{selector(NODE)}")
        master_ids = {row["metric"]["instance"] for row in master}
        assert f"{NODE}/{node.process.pid}" in master_ids
        record(
            "preload recycling",
            requests=sent,
            workers_booted=len(booted),
            instances_reporting=len(per_instance),
            full_workers=sum(1 for v in per_instance.values() if v == MAX_REQUESTS),
            p99_ms=percentile(latencies(outcomes, steady(outcomes), float("inf")), 99) * 1000,
        )
    finally:
        if node is not None:
            node.process.stop()
        stack.stop()


pytestmark = pytest.mark.integration
