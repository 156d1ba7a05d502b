"""SQL instrumentation for every alias and thread, without a place in the app's wrapper list.

Each database connection gets one `QueryObserver` when it connects (the `connection_created`
signal), so queries are seen inside and outside requests, in management commands and
background threads, without swapping the database ENGINE. Per query the untraced path
costs a perf_counter pair, one dict hit for the precomputed attribute key, and a few
in-process increments.

The observer has the shape of an execute wrapper, but it is not put into
`connection.execute_wrappers`: that list belongs to the app. Django's own
`connection.execute_wrapper()` context manager pops the LAST entry on exit (an observer
appended last would be popped in place of the user's wrapper when a connection is first
made inside such a block), test suites assert on the list (Django's own does:
`execute_wrappers == []`), and apps clear or replace it. Instead, `CursorWrapper.
_execute_with_wrappers` (Django's one method through which every `execute` and
`executemany` of every backend passes, in Django 4.2 to 6.1) is wrapped once: for a
connection that carries an observer, the observer runs outside all of the app's wrappers
(it sees the SQL as the app wrote it, and times the wrappers with the query); for any
other connection the method is Django's, plus one dict lookup. A user's wrapper that
blocks a query (raises instead of executing) is seen as a failed query.
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
from django.db.backends.utils import CursorWrapper
from opentelemetry import trace

from .aggregate import TraceRef
from .fingerprint import Statement
from .instruments import NO_ROUTE
from .registry import Instrument
from .runtime import Runtime, active_runtime
from .spans import DeferredSpan, SpanTemplate, new_span_id
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
        # raw SQL -> (histogram key, statement): the only per-query lookup.
        self._keys: dict[str, tuple[tuple[str, ...], Statement, bool]] = {}
        self._templates: dict[str, SpanTemplate] = {}  # fingerprint -> span template

    def __call__(
        self, execute: Execute, sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        runtime = self.runtime
        if not runtime.db_enabled:  # DatabaseInstrument uninstalled; other threads' observers
            return execute(sql, params, many, context)
        if not runtime._started:  # the first signal of a process starts its export
            runtime.ensure_started()
        state = current_request.get()
        if state is not None:
            if state.silk is not None:  # Silk profiles this request (rare)
                return self._profiled(execute, sql, params, many, context, state)
            recording = state.span is not None
        else:
            recording = trace.get_current_span().is_recording()
        if recording:
            return self._traced(execute, sql, params, many, context, state)
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self._record(sql, perf_counter() - start, state, None)

    def _profiled(
        self,
        execute: Execute,
        sql: Any,
        params: Any,
        many: bool,
        context: dict[str, Any],
        state: RequestState,
    ) -> Any:
        """A query of a request Silk profiles: recorded as usual, and the text Silk will store
        for it (parameters rendered in) mapped to the normalized text that replaces it."""
        try:
            if state.span is not None:
                return self._traced(execute, sql, params, many, context, state)
            start = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                self._record(sql, perf_counter() - start, state, None)
        finally:
            if state.silk is not None and not many and type(sql) is str:
                from .silk.masking import note_statement

                note_statement(state.silk, sql, params, self._entry(sql)[1])

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
        slow = self.runtime.slow_query_seconds
        if state is None:
            if duration >= slow:
                self._slow_queries.add((fingerprint, NO_ROUTE))
            return
        state.queries += 1
        if statement.repeatable:
            # Transaction control and the shared overflow/oversize statements are never an N+1.
            repeats = state.repeats
            repeats[fingerprint] = repeats.get(fingerprint, 0) + 1
        if duration >= slow:
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
        """A sampled query: its span is kept as plain data, encoded by the exporter thread."""
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
            span_id = new_span_id()
            slow = duration >= self.runtime.slow_query_seconds
            self.runtime.emit(
                DeferredSpan(
                    self._template(statement),
                    parent.trace_id,
                    span_id,
                    parent.span_id,
                    parent.trace_state,
                    start_ns,
                    start_ns + int(duration * 1e9),
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
            self._record(sql, duration, state, TraceRef(parent.trace_id, span_id))

    def _template(self, statement: Statement) -> SpanTemplate:
        template = self._templates.get(statement.fingerprint)
        if template is None:
            if len(self._templates) >= MAX_CACHED_KEYS:
                self._templates = {}
            template = self._templates[statement.fingerprint] = SpanTemplate(
                statement.summary,
                {
                    "db.system.name": self.system,
                    "db.operation.name": statement.operation,
                    "db.query.summary": statement.summary,
                    "db.query.text": statement.text,  # normalized: no literal, no parameter
                    "django.db.alias": self.alias,
                    "django.db.fingerprint": statement.fingerprint,
                },
            )
        return template


# The connection attribute holding its observer (in the instance's __dict__).
OBSERVER_ATTR = "_fleetscope_observer"
# Django's method that runs `execute_wrappers` around every execute/executemany.
SEAM = "_execute_with_wrappers"
_django_execute_with_wrappers: Callable[..., Any] = CursorWrapper.__dict__[SEAM]
_NO_CONTEXT: dict[str, Any] = {}  # the observer passes it on; Django builds its own inside


def _execute_observed(
    self: CursorWrapper, sql: Any, params: Any, many: bool, executor: Callable[..., Any]
) -> Any:
    """`CursorWrapper._execute_with_wrappers`, with the connection's observer around it."""
    observer = self.db.__dict__.get(OBSERVER_ATTR)
    if observer is None:
        return _django_execute_with_wrappers(self, sql, params, many, executor)

    def execute(sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
        return _django_execute_with_wrappers(self, sql, params, many, executor)

    return observer(execute, sql, params, many, _NO_CONTEXT)


def seam_installed() -> bool:
    """Whether CursorWrapper runs connections' observers (Fleetscope's method is in place)."""
    return CursorWrapper.__dict__.get(SEAM) is _execute_observed


def observer_of(connection: BaseDatabaseWrapper) -> QueryObserver | None:
    """The connection's observer (`django.db.connection`, a proxy, works too)."""
    observer = getattr(connection, OBSERVER_ATTR, None)
    return observer if isinstance(observer, QueryObserver) else None


def observe(connection: BaseDatabaseWrapper, runtime: Runtime) -> None:
    """Give a connection this runtime's observer, once (replacing another runtime's)."""
    current = observer_of(connection)
    if current is None or current.runtime is not runtime:
        setattr(
            connection, OBSERVER_ATTR, QueryObserver(runtime, connection.alias, connection.vendor)
        )


def _on_connection_created(sender: object, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    runtime = active_runtime()
    if runtime is not None:
        observe(connection, runtime)


def instrument_databases() -> None:
    if not seam_installed():
        setattr(CursorWrapper, SEAM, _execute_observed)
    connection_created.connect(_on_connection_created, dispatch_uid="fleetscope-telemetry-db")
    runtime = active_runtime()
    if runtime is not None:
        for connection in connections.all(initialized_only=True):
            observe(connection, runtime)


def uninstrument_databases() -> None:
    """Django's method back (unless someone wrapped it after us), no observer on new
    connections, and this thread's connections give theirs back."""
    connection_created.disconnect(dispatch_uid="fleetscope-telemetry-db")
    if seam_installed():
        setattr(CursorWrapper, SEAM, _django_execute_with_wrappers)
    for connection in connections.all(initialized_only=True):
        connection.__dict__.pop(OBSERVER_ATTR, None)


class DatabaseInstrument(Instrument):
    """SQL of every alias: durations per fingerprint, statement texts, N+1, slow queries."""

    name = "db"

    def install(self) -> None:
        self.runtime.db_enabled = True
        instrument_databases()

    def uninstall(self) -> None:
        self.runtime.db_enabled = False
        uninstrument_databases()
