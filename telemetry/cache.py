"""Cache instrument: hits, misses, durations and spans of every configured Django cache alias.

Hooked through the cache handler (`django.core.cache.caches`): each backend it creates
gets its class swapped for a subclass of that same class whose operations record and
then call the original, so `isinstance`, attribute access, return values, exceptions and
key handling are the backend's own and users never change their cache `BACKEND`.

Only the outermost operation of a user call records. Django implements several operations
with others (`get_many` with `get`, `get_or_set` with `get` + `add`, `incr` with `get` +
`set`, every async form with `sync_to_async` of the sync one); a context variable marks
an instrumented call in progress, and asgiref copies it into the worker thread, so the
nested calls pass straight through. No cache key or value ever leaves the process.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .aggregate import Key, TraceRef
from .instruments import CACHE_OP_ATTRS
from .runtime import Runtime, active_runtime, trace_ref
from .state import current_request

__all__ = [
    "OPERATIONS",
    "instrument_backend",
    "instrument_caches",
    "is_instrumented",
    "uninstrument_backend",
    "uninstrument_caches",
]

logger = logging.getLogger("telemetry")

ALIAS_ATTR, OPERATION_ATTR, RESULT_ATTR = CACHE_OP_ATTRS

# Recorded operation names; each async form (`a` + name) records under the sync name.
OPERATIONS = (
    "get", "get_many", "get_or_set", "set", "set_many", "add", "delete", "delete_many",
    "incr", "decr", "touch", "has_key",
)  # fmt: skip

# Set while an instrumented operation runs: the operations it calls internally are not
# the user's and must not be counted again.
_in_operation: ContextVar[bool] = ContextVar("fleetscope_cache_operation", default=False)

# What the backend is asked for instead of the caller's default, so that a stored value
# equal to the default (None included) still counts as a hit. Never returned to callers.
_MISSING = object()

_KEYS_ATTR = "_fleetscope_cache_keys"  # per backend instance: its alias's metric keys
_ORIGINAL_ATTR = "_fleetscope_original_class"  # on an instrumented class: the original

_NONE = -1  # `hits` of an operation that is neither a hit nor a miss


class _OperationKeys:
    """Metric keys and span name of one operation on one alias, built once per backend."""

    __slots__ = ("alias", "duration", "hit", "miss", "none", "operation", "span_name")

    def __init__(self, alias: str, operation: str) -> None:
        self.alias = alias
        self.operation = operation
        self.hit: Key = (alias, operation, "hit")
        self.miss: Key = (alias, operation, "miss")
        self.none: Key = (alias, operation, "none")
        self.duration: Key = (alias, operation)
        self.span_name = f"cache {operation}"


def _alias_keys(alias: str) -> dict[str, _OperationKeys]:
    return {operation: _OperationKeys(alias, operation) for operation in OPERATIONS}


def _keys_of(backend: Any, operation: str) -> _OperationKeys | None:
    keys: dict[str, _OperationKeys] | None = backend.__dict__.get(_KEYS_ATTR)
    return None if keys is None else keys[operation]


# -- recording ----------------------------------------------------------------------


class _SpanScope:
    """A CLIENT span made current for the duration of one operation."""

    __slots__ = ("span", "token")

    def __init__(self, tracer: Tracer, keys: _OperationKeys) -> None:
        self.span: Span = tracer.start_span(
            keys.span_name,
            kind=SpanKind.CLIENT,
            attributes={ALIAS_ATTR: keys.alias, OPERATION_ATTR: keys.operation},
        )
        # Current, so that work the backend does (SQL of the database cache) nests under it.
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def close(
        self, keys: _OperationKeys, hits: int, misses: int, error: BaseException | None
    ) -> TraceRef | None:
        otel_context.detach(self.token)
        span = self.span
        if hits == _NONE:
            span.set_attribute(RESULT_ATTR, "none")
        else:
            span.set_attribute(RESULT_ATTR, "miss" if misses else "hit")
            if keys.operation == "get_many":
                span.set_attribute("django.cache.hits", hits)
                span.set_attribute("django.cache.misses", misses)
        if error is not None:
            # The type only: exception messages of cache backends quote the key.
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        ref = trace_ref(span)
        span.end()
        return ref


def _open(rt: Runtime, keys: _OperationKeys) -> _SpanScope | None:
    """No span (the hot path) unless the current span is recording."""
    state = current_request.get()
    if state is not None:
        recording = state.span is not None
    else:
        recording = trace.get_current_span().is_recording()
    return _SpanScope(rt.tracer, keys) if recording else None


def _finish(
    rt: Runtime,
    keys: _OperationKeys,
    hits: int,
    misses: int,
    started: float,
    scope: _SpanScope | None,
    error: BaseException | None,
) -> None:
    seconds = perf_counter() - started
    ref = None if scope is None else scope.close(keys, hits, misses, error)
    operations = rt.instruments.cache_operations
    if hits == _NONE:
        operations.add(keys.none)
    else:
        if hits:
            operations.add(keys.hit, hits)
        if misses:
            operations.add(keys.miss, misses)
    rt.instruments.cache_duration.record(keys.duration, seconds, ref)


def _count_hits(keys: Collection[Any], found: Any) -> int:
    if len(found) >= len(keys):  # found is a subset of keys: every key was found
        return len(keys)
    return sum(1 for key in keys if key in found)


class _DefaultProbe:
    """Stands in for get_or_set's default: the backend calls it exactly when the key is missing."""

    __slots__ = ("called", "default")

    def __init__(self, default: Any) -> None:
        self.default = default
        self.called = False

    def __call__(self) -> Any:
        self.called = True
        if not callable(self.default):
            return self.default
        # The default is the user's code: cache calls it makes are theirs and count.
        token = _in_operation.set(False)
        try:
            return self.default()
        finally:
            _in_operation.reset(token)


# -- wrappers, one kind per result rule, each in a sync and an async form --------------

Method = Callable[..., Any]


def _wrap_get(parent: Method) -> Method:
    @functools.wraps(parent)
    def get(
        self: Any, key: Any, default: Any = None, version: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "get")) is None
        ):
            return parent(self, key, default, version, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            value = parent(self, key, _MISSING, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        # The hot path, so _finish inlined.
        seconds = perf_counter() - started
        hit = value is not _MISSING
        ref = None if scope is None else scope.close(keys, int(hit), int(not hit), None)
        rt.instruments.cache_operations.add(keys.hit if hit else keys.miss)
        rt.instruments.cache_duration.record(keys.duration, seconds, ref)
        return value if hit else default

    return get


def _wrap_aget(parent: Method) -> Method:
    @functools.wraps(parent)
    async def aget(
        self: Any, key: Any, default: Any = None, version: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "get")) is None
        ):
            return await parent(self, key, default, version, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            value = await parent(self, key, _MISSING, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        if value is _MISSING:
            _finish(rt, keys, 0, 1, started, scope, None)
            return default
        _finish(rt, keys, 1, 0, started, scope, None)
        return value

    return aget


def _as_collection(keys: Iterable[Any]) -> Collection[Any]:
    # Counting needs the keys twice; a generator can be read once, so read it here.
    return keys if type(keys) is list or type(keys) is tuple else list(keys)


def _wrap_get_many(parent: Method) -> Method:
    @functools.wraps(parent)
    def get_many(
        self: Any, keys: Iterable[Any], version: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (op := _keys_of(self, "get_many")) is None
        ):
            return parent(self, keys, version, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, op)
        started = perf_counter()
        requested: Collection[Any] = ()
        try:
            requested = _as_collection(keys)
            found = parent(self, requested, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, op, 0, len(requested), started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        hits = _count_hits(requested, found)
        _finish(rt, op, hits, len(requested) - hits, started, scope, None)
        return found

    return get_many


def _wrap_aget_many(parent: Method) -> Method:
    @functools.wraps(parent)
    async def aget_many(
        self: Any, keys: Iterable[Any], version: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (op := _keys_of(self, "get_many")) is None
        ):
            return await parent(self, keys, version, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, op)
        started = perf_counter()
        requested: Collection[Any] = ()
        try:
            requested = _as_collection(keys)
            found = await parent(self, requested, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, op, 0, len(requested), started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        hits = _count_hits(requested, found)
        _finish(rt, op, hits, len(requested) - hits, started, scope, None)
        return found

    return aget_many


def _wrap_get_or_set(parent: Method) -> Method:
    @functools.wraps(parent)
    def get_or_set(
        self: Any,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "get_or_set")) is None
        ):
            return parent(self, key, default, timeout, version, *args, **kwargs)
        probe = _DefaultProbe(default)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            value = parent(self, key, probe, timeout, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        missed = probe.called
        _finish(rt, keys, 0 if missed else 1, 1 if missed else 0, started, scope, None)
        return value

    return get_or_set


def _wrap_aget_or_set(parent: Method) -> Method:
    @functools.wraps(parent)
    async def aget_or_set(
        self: Any,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "get_or_set")) is None
        ):
            return await parent(self, key, default, timeout, version, *args, **kwargs)
        probe = _DefaultProbe(default)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            value = await parent(self, key, probe, timeout, version, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        missed = probe.called
        _finish(rt, keys, 0 if missed else 1, 1 if missed else 0, started, scope, None)
        return value

    return aget_or_set


def _wrap_has_key(parent: Method) -> Method:
    @functools.wraps(parent)
    def has_key(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "has_key")) is None
        ):
            return parent(self, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            found = parent(self, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        _finish(rt, keys, 1 if found else 0, 0 if found else 1, started, scope, None)
        return found

    return has_key


def _wrap_ahas_key(parent: Method) -> Method:
    @functools.wraps(parent)
    async def ahas_key(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, "has_key")) is None
        ):
            return await parent(self, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            found = await parent(self, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, 0, 1, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        _finish(rt, keys, 1 if found else 0, 0 if found else 1, started, scope, None)
        return found

    return ahas_key


def _wrap_write(operation: str, parent: Method) -> Method:
    """Writes, deletes, incr/decr and touch: counted with result "none"."""

    @functools.wraps(parent)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, operation)) is None
        ):
            return parent(self, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            result = parent(self, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, _NONE, 0, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        seconds = perf_counter() - started
        ref = None if scope is None else scope.close(keys, _NONE, 0, None)
        rt.instruments.cache_operations.add(keys.none)
        rt.instruments.cache_duration.record(keys.duration, seconds, ref)
        return result

    return write


def _wrap_awrite(operation: str, parent: Method) -> Method:
    @functools.wraps(parent)
    async def awrite(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            _in_operation.get()
            or (rt := active_runtime()) is None
            or (keys := _keys_of(self, operation)) is None
        ):
            return await parent(self, *args, **kwargs)
        token = _in_operation.set(True)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            result = await parent(self, *args, **kwargs)
        except BaseException as error:
            _finish(rt, keys, _NONE, 0, started, scope, error)
            raise
        finally:
            _in_operation.reset(token)
        _finish(rt, keys, _NONE, 0, started, scope, None)
        return result

    return awrite


_READS: dict[str, tuple[Callable[[Method], Method], Callable[[Method], Method]]] = {
    "get": (_wrap_get, _wrap_aget),
    "get_many": (_wrap_get_many, _wrap_aget_many),
    "get_or_set": (_wrap_get_or_set, _wrap_aget_or_set),
    "has_key": (_wrap_has_key, _wrap_ahas_key),
}


def _wrappers(operation: str, parent: Method, is_async: bool) -> Method:
    reads = _READS.get(operation)
    if reads is not None:
        return reads[1 if is_async else 0](parent)
    return (_wrap_awrite if is_async else _wrap_write)(operation, parent)


# -- instrumented classes and backends ----------------------------------------------

_lock = threading.RLock()
_classes: dict[type, type] = {}
_backends: weakref.WeakSet[Any] = weakref.WeakSet()


def _instrumented_class(cls: type) -> type:
    """The subclass of `cls` that records; one per original class, built on first use."""
    with _lock:
        instrumented = _classes.get(cls)
        if instrumented is not None:
            return instrumented
        # Same names as the original, so reprs and log lines look the same.
        namespace: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            _ORIGINAL_ATTR: cls,
        }
        for operation in OPERATIONS:
            for name, is_async in ((operation, False), ("a" + operation, True)):
                parent = getattr(cls, name, None)
                if callable(parent):
                    # Calling the parent function directly (not super()) keeps calls in
                    # flight working while another thread restores the original class.
                    namespace[name] = _wrappers(operation, parent, is_async)
        instrumented = type(cls)(cls.__name__, (cls,), namespace)
        _classes[cls] = instrumented
        return instrumented


def instrument_backend(backend: BaseCache, alias: str) -> None:
    """Record every operation of one cache backend instance under `alias`."""
    with _lock:
        cls = type(backend)
        if _ORIGINAL_ATTR not in cls.__dict__:
            try:
                backend.__class__ = _instrumented_class(cls)
            except TypeError as error:  # e.g. a backend with __slots__ and no __dict__
                logger.warning(
                    "Cache alias %r (%s.%s) cannot be instrumented: %s",
                    alias,
                    cls.__module__,
                    cls.__qualname__,
                    error,
                )
                return
        vars(backend)[_KEYS_ATTR] = _alias_keys(alias)
        _backends.add(backend)


def uninstrument_backend(backend: BaseCache) -> None:
    """Give a backend its original class back; it records nothing from then on."""
    with _lock:
        original = type(backend).__dict__.get(_ORIGINAL_ATTR)
        if original is not None:
            backend.__class__ = original
        vars(backend).pop(_KEYS_ATTR, None)
        _backends.discard(backend)


# -- the cache handler ------------------------------------------------------------

_aliases: frozenset[str] | None = None  # None: every alias in settings.CACHES
_MARK = "_fleetscope_wrapped"  # on our create_connection: what it shadowed


def _wants(alias: str) -> bool:
    return _aliases is None or alias in _aliases


def _installed_wrapper() -> Any:
    wrapper = caches.__dict__.get("create_connection")
    return wrapper if wrapper is not None and hasattr(wrapper, _MARK) else None


def is_instrumented() -> bool:
    """Whether `instrument_caches` is in effect."""
    return _installed_wrapper() is not None


def instrument_caches(aliases: Collection[str] | None = None) -> None:
    """Record every operation of the given cache aliases (None: all of settings.CACHES).

    Backends the handler creates from now on, in any thread, are instrumented as they are
    created; backends this thread already holds are instrumented now. Idempotent: a second
    call only changes which aliases record.
    """
    global _aliases
    if isinstance(aliases, str):  # CACHE_ALIASES = "default" means the one alias
        aliases = (aliases,)
    with _lock:
        _aliases = None if aliases is None else frozenset(aliases)
        if _installed_wrapper() is None:
            shadowed = caches.__dict__.get("create_connection")
            create = caches.create_connection

            def create_connection(alias: str) -> Any:
                backend = create(alias)
                if _wants(alias):
                    instrument_backend(backend, alias)
                return backend

            setattr(create_connection, _MARK, shadowed)
            caches.create_connection = create_connection  # type: ignore[method-assign]
        # What caches.all(initialized_only=True) reads, read here to keep each alias.
        created = vars(caches)["_connections"]
        for alias in caches:
            backend = getattr(created, alias, None)
            if backend is None:
                continue
            if _wants(alias):
                instrument_backend(backend, alias)
            else:
                uninstrument_backend(backend)


def uninstrument_caches() -> None:
    """Undo `instrument_caches`: the handler's own create_connection, original classes."""
    global _aliases
    with _lock:
        wrapper = _installed_wrapper()
        if wrapper is not None:
            shadowed = getattr(wrapper, _MARK)
            if shadowed is None:
                del caches.create_connection
            else:
                caches.create_connection = shadowed  # type: ignore[method-assign]
        for backend in list(_backends):
            uninstrument_backend(backend)
        _aliases = None
