"""Row 8's attacker and victim in one process: `count` requests with distinct URLs, query
strings and unusual methods straight through Django's WSGI handler (no socket: the loop is
fast enough for 100k requests), with Fleetscope exporting to the real collector.

Prints one JSON line: the routes the URLconf declares, the statuses and methods it answered,
the resident memory after the warm-up and at the end, and what Fleetscope's own code still
holds of the memory allocated during the last TRACED requests (tracemalloc, filtered to
telemetry/).

Run as `python -m tests.resilience.probes.cardinality COUNT` with DJANGO_SETTINGS_MODULE and
the node environment of tests/resilience/input_stack.py.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django

METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
WARM_UP = 10_000
TRACED = 10_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hostile_paths(number: int, rng: random.Random) -> tuple[str, str, str]:
    """(method, path, query string) of request `number`: never twice the same URL."""
    token = f"{rng.getrandbits(64):016x}{number}"
    method = METHODS[number % len(METHODS)]
    if number % 7 == 0:
        method = f"X-{token[:8].upper()}"  # a method no one has heard of, each time new
    elif number % 11 == 0:
        method = "PROPFIND"
    kind = number % 6
    if kind == 0:
        path = f"/no/such/{token}/page"
    elif kind == 1:
        path = f"/api/products/{number}/"
    elif kind == 2:
        path = f"/reset/{token[:6]}/{token}/"
    elif kind == 3:
        path = f"/hostile/{token}/'\"[/]&amp;/"
    elif kind == 4:
        path = f"/\xff\xfe{token}/%2e%2e/{number}"  # bytes that are not UTF-8 (latin-1 in WSGI)
    else:
        path = f"/healthz/{token}"
    return method, path, f"q={token}&n={number}"


def environ(method: str, path: str, query: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def declared_routes() -> list[str]:
    """Every route template of the URLconf, as Fleetscope reports it (`http.route`)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from telemetry.routes import render_pattern

    def walk(patterns: Any, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield render_pattern(route)

    return sorted(set(walk(get_resolver().url_patterns, "")))


def main(count: int) -> None:
    django.setup()
    from django.core.wsgi import get_wsgi_application

    from telemetry.runtime import get_runtime

    application = get_wsgi_application()
    rng = random.Random(8)
    statuses: set[int] = set()
    methods: set[str] = set()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.add(int(status.split(" ", 1)[0]))
        return lambda data: None

    def serve(numbers: range) -> None:
        for number in numbers:
            method, path, query = hostile_paths(number, rng)
            methods.add(method)
            response = application(environ(method, path, query), start_response)
            for _ in response:
                pass
            response.close()

    serve(range(WARM_UP))
    runtime = get_runtime()
    assert runtime.worker is not None, "Fleetscope is not exporting"
    rss_warm = rss_bytes()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    traced_from = max(WARM_UP, count - TRACED)
    serve(range(WARM_UP, traced_from))
    # Allocations of the last TRACED requests: whatever Fleetscope kept per URL would still be
    # held at the end (tracemalloc only sees what is allocated after it starts).
    import telemetry

    telemetry_dir = str(Path(str(telemetry.__file__)).parent)
    tracemalloc.start()
    serve(range(traced_from, count))
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = snapshot.filter_traces([tracemalloc.Filter(True, f"{telemetry_dir}/*")])
    rss_end = rss_bytes()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    runtime.flush(budget=10.0)
    keys = {
        instrument.name: len(instrument.attribute_sets())
        for instrument in runtime.aggregator._instruments
        if hasattr(instrument, "attribute_sets")
    }
    print(
        json.dumps(
            {
                "requests": count,
                "after_warm_up_cpu_seconds": round(cpu, 2),
                "after_warm_up_wall_seconds": round(wall, 2),
                "traced_requests": count - traced_from,
                "routes": declared_routes(),
                "statuses": sorted(statuses),
                "distinct_methods_sent": len(methods),
                "rss_after_warm_up": rss_warm,
                "rss_at_end": rss_end,
                "telemetry_bytes_held": sum(stat.size for stat in held.statistics("filename")),
                "histogram_keys": keys,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
