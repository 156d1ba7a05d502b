"""`python -m benchmarks.sql_seam`: what the SQL observer's seam costs per query.

The same `QueryObserver` reached three ways, in one process, alternating: not at all
(bare Django), through Fleetscope's seam (Django's `CursorWrapper._execute_with_wrappers`
wrapped to call the connection's observer), and as an entry of `connection.execute_wrappers`
(where it lived in 0.1). Each batch runs `cursor.execute("SELECT 1")` on an in-memory
SQLite database; the best batch of every round is kept. The difference between the last
two is the seam's own cost; the observer's work (timing, statement lookup, counting) is in
both.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import django
from django.conf import settings

QUERIES = 20_000
BATCHES = 5
ROUNDS = 5


def _setup() -> Callable[[str], None]:
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection

    from telemetry import db
    from telemetry.conf import build_config
    from telemetry.runtime import Runtime, activate

    activate(Runtime(build_config({"EXPORT": False, "TRACES_SAMPLE_RATE": 0.0})))
    connection.ensure_connection()
    db.instrument_databases()
    observer = db.observer_of(connection)
    assert observer is not None

    def use(mode: str) -> None:
        connection.execute_wrappers.clear()
        if mode == "seam":
            db.instrument_databases()
        else:
            db.uninstrument_databases()
            if mode == "list":
                connection.execute_wrappers.append(observer)

    return use


def _batch() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        start = time.perf_counter()
        for _ in range(QUERIES):
            cursor.execute("SELECT 1")
        return (time.perf_counter() - start) / QUERIES * 1e6


def main() -> None:
    use = _setup()
    modes = ("bare", "seam", "list")
    best = dict.fromkeys(modes, float("inf"))
    for index in range(ROUNDS):
        for mode in modes[index % 3 :] + modes[: index % 3]:
            use(mode)
            _batch()  # warm-up
            best[mode] = min(best[mode], *(_batch() for _ in range(BATCHES)))
    print("| how the observer is reached | µs per query | over bare Django |")
    print("|---|---|---|")
    labels = {
        "bare": "not at all (bare Django)",
        "seam": "Fleetscope's seam (`_execute_with_wrappers`)",
        "list": "an entry of `execute_wrappers` (0.1)",
    }
    for mode in modes:
        over = "-" if mode == "bare" else f"{best[mode] - best['bare']:.2f}"
        print(f"| {labels[mode]} | {best[mode]:.2f} | {over} |")


if __name__ == "__main__":
    main()
