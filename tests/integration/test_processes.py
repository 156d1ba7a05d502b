"""Processes that serve no request export too: a management command through the real pipeline.

Regression: management commands, cron jobs and workers recorded SQL and cache metrics and
dropped them at exit, because export only started on the first request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .stack import LocalStack, eventually

ROOT = Path(__file__).resolve().parents[2]
TIMES = 7


def test_a_management_commands_queries_reach_prometheus(stack: LocalStack, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.node_settings",
        "FLEETSCOPE_TEST_NODE_DIR": str(tmp_path),
        "FLEETSCOPE_NODE": "cron-node",
        "OTEL_SERVICE_NAME": "cron-job",  # its own job: other tests count the node's series
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_endpoint,
        # Longer than the command runs: only the exit flush can deliver its metrics.
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
    }
    django = [sys.executable, "-m", "django"]
    subprocess.run(
        [*django, "migrate", "--run-syncdb", "-v", "0"],
        env={**env, "OTEL_SDK_DISABLED": "true"},  # only the command under test exports
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    result = subprocess.run(
        [*django, "run_queries", str(TIMES)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    promql = (
        'sum(db_client_operation_duration_seconds_count{host_name="cron-node"} '
        "* on (django_db_fingerprint) group_left(db_query_text) "
        "max by (django_db_fingerprint, db_query_text) "
        '(django_db_statement_info{db_query_text=~".*WHERE id > \\\\?.*"}))'
    )

    def counted() -> float | None:
        rows = stack.query(promql)
        return float(rows[0]["value"][1]) if rows else None

    assert eventually(counted, timeout=30, what="the command's queries") == TIMES


pytestmark = pytest.mark.integration
