"""Serves requests on new threads (as gthread workers and runserver do) and reports whether
every query was observed and how long each connection's execute_wrappers list grew.

Environment: PROBE_DIR (a temporary directory), PROBE_CONN_MAX_AGE, PROBE_USER_WRAPPER.
Prints one JSON line for tests/telemetry/test_db_wrappers.py.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

THREADS = 4
REQUESTS_PER_THREAD = 5
QUERIES = {"default": 2, "other": 1}  # what the /two-aliases/ view runs


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.telemetry.probes.wrappers_settings"
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connections
    from django.test import RequestFactory

    for alias in QUERIES:
        call_command("migrate", run_syncdb=True, verbosity=0, database=alias)
    connections.close_all()
    from telemetry.runtime import get_runtime

    runtime = get_runtime()
    runtime.aggregator.reset()
    longest: dict[str, int] = dict.fromkeys(QUERIES, 0)
    statuses: list[int] = []

    # The real WSGI handler (not the test Client, which keeps connections open): it sends
    # request_started/request_finished, so CONN_MAX_AGE=0 closes connections per request.
    handler = WSGIHandler()
    environ = RequestFactory().get("/two-aliases/").environ

    def get() -> int:
        status: list[str] = []

        def start_response(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return None

        body: Any = handler(dict(environ), start_response)
        b"".join(body)
        body.close()
        return int(status[0].split()[0])

    def serve() -> None:
        for _ in range(REQUESTS_PER_THREAD):
            statuses.append(get())
            for alias in QUERIES:
                size = len(connections[alias].execute_wrappers)
                longest[alias] = max(longest[alias], size)
        connections.close_all()

    for _ in range(THREADS):
        thread = threading.Thread(target=serve)
        thread.start()
        thread.join()
    counted = dict.fromkeys(QUERIES, 0)
    for key in runtime.instruments.query_duration.attribute_sets():
        snapshot = runtime.instruments.query_duration.snapshot(key)
        assert snapshot is not None
        counted[str(key[2])] += snapshot[0]
    requests = THREADS * REQUESTS_PER_THREAD
    print(
        json.dumps(
            {
                "statuses": sorted(set(statuses)),
                "expected": {alias: n * requests for alias, n in QUERIES.items()},
                "counted": counted,
                "longest_wrapper_list": longest,
            }
        )
    )


if __name__ == "__main__":
    main()
