"""py-spy samples are grouped by thread role and by what the stack does there."""

from __future__ import annotations

from benchmarks import profiling

SITE = "/venv/lib/python3.11/site-packages"
SRC = profiling._SOURCE
RAW = "\n".join(
    [
        # request thread: Fleetscope's DB wrapper calling into the driver, then its own code
        f"thread (1): MainThread;handle ({SITE}/gunicorn/workers/sync.py:1);"
        f"execute ({SRC}/telemetry/db.py:10);execute ({SITE}/django/db/backends/utils.py:5) 6",
        f"thread (1): MainThread;handle ({SITE}/gunicorn/workers/sync.py:1);"
        f"record ({SRC}/telemetry/db.py:20);sub (/usr/lib/python3.11/re/__init__.py:1) 3",
        f"thread (1): MainThread;handle ({SITE}/gunicorn/workers/sync.py:1);"
        f"start_span ({SITE}/opentelemetry/sdk/trace/__init__.py:1) 2",
        # span export thread: materialize, then encode, then send
        f"thread (2): OtelBatchSpanRecordProcessor;export ({SRC}/telemetry/spans.py:1);"
        f"__init__ ({SITE}/opentelemetry/sdk/trace/__init__.py:9) 4",
        f"thread (2): OtelBatchSpanRecordProcessor;export ({SRC}/telemetry/spans.py:1);"
        f"export ({SITE}/opentelemetry/exporter/otlp/proto/http/trace_exporter/__init__.py:1);"
        f"encode ({SITE}/opentelemetry/exporter/otlp/proto/common/_internal/x.py:1) 5",
        f"thread (2): OtelBatchSpanRecordProcessor;export ({SRC}/telemetry/spans.py:1);"
        f"post ({SITE}/requests/api.py:1);send (/usr/lib/python3.11/socket.py:1) 1",
        f"thread (3): OtelPeriodicExportingMetricReader;collect ({SRC}/telemetry/aggregate.py:1) 2",
    ]
)


def test_categories_follow_the_thread_and_the_deepest_library() -> None:
    by = profiling.Profile.parse(RAW).by_category()
    assert by[("request", "database driver")] == 6
    assert by[("request", "Fleetscope")] == 3  # stdlib frames count for their caller
    assert by[("request", "OTel SDK/API")] == 2
    assert by[("span export", "span materialization")] == 4
    assert by[("span export", "OTLP encoding")] == 5
    assert by[("span export", "sending (HTTP)")] == 1
    assert by[("metric export", "metric collection (Fleetscope)")] == 2


def test_top_self_folds_stdlib_leaves_into_their_caller() -> None:
    top = dict(profiling.Profile.parse(RAW).top_self())
    assert top["record (telemetry/db.py:20) [request]"] == 3


IDLE = "\n".join(
    [
        f"thread (1): MainThread;run ({SITE}/gunicorn/workers/sync.py:1);"
        "select (/usr/lib/python3.11/selectors.py:1) 89",
        f"thread (2): OtelBatchSpanRecordProcessor;worker ({SITE}/opentelemetry/sdk/x.py:1);"
        "wait (/usr/lib/python3.11/threading.py:1) 90",
        f"thread (3): OtelPeriodicExportingMetricReader;_ticker ({SITE}/opentelemetry/sdk/x.py:1);"
        "wait (/usr/lib/python3.11/threading.py:1) 98",
    ]
)


def test_threads_waiting_for_work_are_not_busy() -> None:
    every = profiling.Profile.parse(RAW + "\n" + IDLE)
    assert every.by_role(busy_only=True) == {"request": 11, "span export": 10, "metric export": 2}
    assert set(every.by_role().values()) == {100}  # every thread once per tick


def test_summary_gives_thread_shares_of_wall_time() -> None:
    gil = profiling.Profile.parse(RAW)
    every = profiling.Profile.parse(RAW + "\n" + IDLE)
    text = profiling.summary(
        profiling.BY_NAME["fleetscope-100"], ["mixed"], 1, gil, every, "wrk: 1 req/s"
    )
    assert "| request | 11.0 | 11.0 | 0.0 |" in text  # 11 of 100 ticks
    assert "| span export | 10.0 | 10.0 | 0.0 |" in text
    assert "| span export | OTLP encoding |" in text
