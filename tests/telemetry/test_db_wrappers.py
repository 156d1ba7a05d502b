"""The SQL observer survives Django's execute_wrapper() in threaded servers (regression).

Django's `connection.execute_wrapper()` pops the LAST wrapper on exit. When a connection is
first made inside a user's request-scoped wrapper, an observer appended last was popped in
its place: with persistent connections the thread stopped recording SQL, with
CONN_MAX_AGE=0 the list grew by one stale user wrapper per request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_probe(tmp_path: Path, conn_max_age: int, user_wrapper: bool) -> dict[str, Any]:
    env = {
        **os.environ,
        "PROBE_DIR": str(tmp_path),
        "PROBE_CONN_MAX_AGE": str(conn_max_age),
        "PROBE_USER_WRAPPER": "1" if user_wrapper else "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.telemetry.probes.wrappers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("conn_max_age", [0, 60])
@pytest.mark.parametrize("user_wrapper", [False, True], ids=["alone", "user-wrapper"])
def test_every_query_is_counted_and_the_wrapper_list_stays_bounded(
    tmp_path: Path, conn_max_age: int, user_wrapper: bool
) -> None:
    probe = run_probe(tmp_path, conn_max_age, user_wrapper)
    assert probe["statuses"] == [200]
    assert probe["counted"] == probe["expected"]
    # Between requests the list is empty: Fleetscope keeps nothing in it, and the user's
    # wrapper is gone with its request.
    assert probe["longest_wrapper_list"] == {"default": 0, "other": 0}


# -- the app's execute_wrappers are the app's ---------------------------------------------
# Fleetscope observes SQL without an entry in `connection.execute_wrappers`: a test suite that
# asserts on the list (Django's own ExecuteWrapperTests does: `== [wrapper]`, `== []`), or
# code that clears or replaces it, sees and changes only what the app put there.


def _total_queries(rt: Any) -> int:
    total = 0
    for key in rt.instruments.query_duration.attribute_sets():
        snapshot = rt.instruments.query_duration.snapshot(key)
        total += snapshot[0] if snapshot is not None else 0
    return total


@pytest.mark.django_db
def test_execute_wrappers_hold_only_what_the_app_put_there(rt: Any) -> None:
    from django.db import connection, connections

    seen: list[str] = []

    def commenter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(f"/* app=shop */ {sql}", params, many, context)

    connection.ensure_connection()
    connections["other"].ensure_connection()
    assert connection.execute_wrappers == []
    with connection.execute_wrapper(commenter):
        assert connection.execute_wrappers == [commenter]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert connections["other"].execute_wrappers == []
    assert connection.execute_wrappers == []
    assert connections["other"].execute_wrappers == []
    # Both saw the query: the app's wrapper, and Fleetscope, outside it (the SQL as written).
    assert seen == ["SELECT 1"]
    assert _total_queries(rt) == 1
    assert [s.text for s in rt.catalog.statements()] == ["SELECT ?"]


@pytest.mark.django_db
def test_sql_is_observed_after_the_app_clears_or_replaces_its_wrapper_list(rt: Any) -> None:
    from django.db import connection

    connection.ensure_connection()
    connection.execute_wrappers.clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.execute_wrappers = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
    assert _total_queries(rt) == 2
