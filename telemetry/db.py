"""SQL instrumentation through Django's public execute-wrapper seam, for every alias and thread.

Each database connection gets one `QueryObserver` appended to its `execute_wrappers`
when it connects (the `connection_created` signal), so queries are seen inside and
outside requests, in management commands and background threads, without swapping
the database ENGINE. Per query the untraced path costs a perf_counter pair, one dict
hit for the precomputed attribute key, and a few in-process increments.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from time import perf_counter, time_ns
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from opentelemetry import trace

from .aggregate import TraceRef
from .fingerprint import Statement
from .instruments import NO_ROUTE
from .runtime import Runtime, active_runtime
from .spans import DeferredSpan, new_child_context
from .state import RequestState, current_request

# Django vendor -> OTel db.system.name
DB_SYSTEMS = {
    "postgresql": "postgresql",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "oracle": "oracle.db",
}
MAX_CACHED_KEYS = 5000
# Bytes of raw SQL one observer (one connection) keeps as cache keys, with an estimate of
# each entry's tuples; a statement bigger than a sixteenth of it is looked up in the
# catalog each time instead of evicting everything else.
MAX_CACHED_KEY_BYTES = 4 * 1024 * 1024
_KEY_ENTRY_OVERHEAD = 200
SLOW_EVENT = "slow query"
# Statements a profiler issues inside a request (Silk's EXPLAINs and its own bookkeeping
# rows) are real database load but not the view's doing: they are timed, never counted
# in queries-per-request, N+1 or slow-query attribution.
_TOOLING = re.compile(r'^EXPLAIN\b|["`\s]silk_\w+', re.IGNORECASE)


def is_tooling(statement: Statement) -> bool:
    return bool(_TOOLING.search(statement.text))


Execute = Callable[[Any, Any, bool, dict[str, Any]], Any]


class QueryObserver:
    """Times every statement of one connection and records it into the runtime."""

    _key_bytes = 0  # bytes counted into self._keys (see MAX_CACHED_KEY_BYTES)

    def __init__(self, runtime: Runtime, alias: str, vendor: str) -> None:
        self.runtime = runtime
        self.alias = alias
        self.system = DB_SYSTEMS.get(vendor, vendor)
        self._duration = runtime.instruments.query_duration
        self._slow_queries = runtime.instruments.slow_queries
        self._catalog = runtime.catalog
        self._slow = runtime.slow_query_seconds
        # raw SQL -> (histogram key, statement): the only per-query lookup.
        self._keys: dict[str, tuple[tuple[str, ...], Statement, bool]] = {}

    def __call__(
        self, execute: Execute, sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        state = current_request.get()
        recording = (
            (state.span is not None)
            if state is not None
            else trace.get_current_span().is_recording()
        )
        if recording:
            return self._traced(execute, sql, params, many, context, state)
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self._record(sql, perf_counter() - start, state, None)

    def _entry(self, sql: Any) -> tuple[tuple[str, ...], Statement, bool]:
        """(histogram key, statement, whether it counts towards the request's queries)."""
        if type(sql) is not str:
            # e.g. psycopg's sql.Composed: its repr can hold values, so it is never rendered;
            # the catalog files it under the overflow statement.
            return self._new_entry(self._catalog.lookup(sql, self.system))
        entry = self._keys.get(sql)
        if entry is None:
            entry = self._new_entry(self._catalog.lookup(sql, self.system))
            size = sys.getsizeof(sql) + _KEY_ENTRY_OVERHEAD
            if size <= MAX_CACHED_KEY_BYTES // 16:
                if (
                    len(self._keys) >= MAX_CACHED_KEYS
                    or self._key_bytes + size > MAX_CACHED_KEY_BYTES
                ):
                    self._keys = {}
                    self._key_bytes = 0
                self._keys[sql] = entry
                self._key_bytes += size
        return entry

    def _new_entry(self, statement: Statement) -> tuple[tuple[str, ...], Statement, bool]:
        key = (self.system, statement.operation, self.alias, statement.fingerprint)
        return key, statement, not is_tooling(statement)

    def _record(
        self, sql: Any, duration: float, state: RequestState | None, trace: TraceRef | None
    ) -> None:
        key, statement, counted = self._entry(sql)
        self._duration.record(key, duration, trace)
        if not counted:
            return
        fingerprint = statement.fingerprint
        if state is None:
            if duration >= self._slow:
                self._slow_queries.add((fingerprint, NO_ROUTE))
            return
        state.queries += 1
        if statement.repeatable:
            # Transaction control and the shared overflow/oversize statements are never an N+1.
            repeats = state.repeats
            repeats[fingerprint] = repeats.get(fingerprint, 0) + 1
        if duration >= self._slow:
            state.slow.append(fingerprint)

    def _traced(
        self,
        execute: Execute,
        sql: Any,
        params: Any,
        many: bool,
        context: dict[str, Any],
        state: RequestState | None,
    ) -> Any:
        """A sampled query: its span is kept as plain data, built by the exporter thread."""
        statement = self._entry(sql)[1]
        error_type = None
        start_ns = time_ns()
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        except BaseException as exc:
            # Only the type: database error messages can quote parameters.
            error_type = type(exc).__qualname__
            raise
        finally:
            duration = perf_counter() - start
            parent = trace.get_current_span().get_span_context()
            span_context = new_child_context(parent)
            slow = duration >= self._slow
            self.runtime.emit(
                DeferredSpan(
                    statement.summary,
                    span_context,
                    parent,
                    start_ns,
                    start_ns + int(duration * 1e9),
                    self._span_attributes(statement),
                    error_type,
                    (
                        (
                            SLOW_EVENT,
                            {
                                "django.db.fingerprint": statement.fingerprint,
                                "db.client.operation.duration": duration,
                            },
                        ),
                    )
                    if slow
                    else (),
                )
            )
            self._record(
                sql, duration, state, TraceRef(span_context.trace_id, span_context.span_id)
            )

    def _span_attributes(self, statement: Statement) -> dict[str, Any]:
        return {
            "db.system.name": self.system,
            "db.operation.name": statement.operation,
            "db.query.summary": statement.summary,
            "db.query.text": statement.text,  # normalized: no literal, no parameter
            "django.db.alias": self.alias,
            "django.db.fingerprint": statement.fingerprint,
        }


def observe(connection: BaseDatabaseWrapper, runtime: Runtime) -> None:
    """Append this runtime's observer to a connection once (replacing another runtime's)."""
    wrappers = connection.execute_wrappers
    for wrapper in list(wrappers):
        if isinstance(wrapper, QueryObserver):
            if wrapper.runtime is runtime:
                return
            wrappers.remove(wrapper)
    wrappers.append(QueryObserver(runtime, connection.alias, connection.vendor))


def _on_connection_created(sender: object, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    runtime = active_runtime()
    if runtime is not None:
        observe(connection, runtime)


def instrument_databases() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="fleetscope-telemetry-db")
    runtime = active_runtime()
    if runtime is not None:
        for connection in connections.all(initialized_only=True):
            observe(connection, runtime)
