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
    # Between requests: the observer alone (the user's wrapper is gone with its request).
    assert probe["longest_wrapper_list"] == {"default": 1, "other": 1}
