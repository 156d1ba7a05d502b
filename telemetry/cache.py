"""Cache instrument: hits, misses, durations and spans of every configured Django cache alias.

Hooked through the cache handler (`django.core.cache.caches`): each backend it creates
gets its class swapped for a subclass of that same class whose operations record and
then call the original, so `isinstance`, attribute access, return values, exceptions and
key handling are the backend's own and users never change their cache `BACKEND`.

One bracket (start, call, record, re-raise), in a sync and an async form, wraps every
operation; a table of per-operation rules (`_RULES`) says how to ask the backend and how
to read its answer as hits and misses. The method a call runs is looked up on the original
class at call time, so patches and mocks of backend classes reach callers as they would
without Fleetscope; a method that is not the class's own (a mock, a replacement function)
is called with the caller's exact arguments and not recorded.

Only the outermost operation of a user call records. Django implements several operations
with others (`get_many` with `get`, `get_or_set` with `get` + `add`, `incr` with `get` +
`set`, every async form with `sync_to_async` of the sync one); a context variable marks
an instrumented call in progress, and asgiref copies it into the worker thread, so the
nested calls pass straight through. No cache key or value ever leaves the process.
"""

from __future__ import annotations

import copyreg
import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable, Collection, Sized
from contextvars import ContextVar
from time import perf_counter
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.checks import CheckMessage, Warning
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from .aggregate import Key, TraceRef
from .conf import Config
from .instruments import CACHE_OP_ATTRS
from .registry import Instrument
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

_OUTSIDE = object()  # the value of `_operation` when no instrumented operation runs
_ABSENT = object()  # "no such attribute" where None is a possible value

# While an instrumented operation runs: what its rule remembered of the caller's arguments
# (for `get`, the caller's default, which `_MISSING` stands for). The operations it calls
# internally are not the user's and must not be counted again; a patched one is given the
# caller's default back.
_operation: ContextVar[Any] = ContextVar("fleetscope_cache_operation", default=_OUTSIDE)

# What the backend is asked for instead of the caller's default, so that a stored value
# equal to the default (None included) still counts as a hit. Never returned to callers.
_MISSING = object()

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


# -- recording ----------------------------------------------------------------------


class _SpanScope:
    """A CLIENT span made current for the duration of one operation."""

    __slots__ = ("span", "token")

    def __init__(self, rt: Runtime, keys: _OperationKeys) -> None:
        self.span: Span = rt.client_span(
            keys.span_name, {ALIAS_ATTR: keys.alias, OPERATION_ATTR: keys.operation}
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


def _recording() -> bool:
    """Whether the current span records: only then does an operation get a span."""
    state = current_request.get()
    if state is not None:
        return state.span is not None
    return trace.get_current_span().is_recording()


def _open(rt: Runtime, keys: _OperationKeys) -> _SpanScope | None:
    """A span when the current span is recording, else None (the hot path)."""
    if not _recording():
        return None
    return _start_span(rt, keys)


def _start_span(rt: Runtime, keys: _OperationKeys) -> _SpanScope | None:
    try:
        return _SpanScope(rt, keys)
    except Exception:  # tracing must never fail the user's cache call
        logger.debug("Cache span not started", exc_info=True)
        return None


def _record_error(
    rt: Runtime,
    keys: _OperationKeys,
    failed: Failed,
    memo: Any,
    seconds: float,
    scope: _SpanScope | None,
    error: BaseException,
) -> None:
    try:
        hits, misses = failed(memo)
    except Exception:  # arguments no rule foresaw: counted as "none"
        hits, misses = _NONE, 0
    _record(rt, keys, hits, misses, seconds, scope, error)


def _record(
    rt: Runtime,
    keys: _OperationKeys,
    hits: int,
    misses: int,
    seconds: float,
    scope: _SpanScope | None,
    error: BaseException | None,
) -> None:
    try:
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
    except Exception:  # recording must never fail the user's cache call
        logger.debug("Cache operation not recorded", exc_info=True)


# -- per-operation rules -------------------------------------------------------------
#
# `prepare(args, kwargs) -> (args, kwargs, memo)` rewrites the caller's arguments into what
# the backend is asked (None: asked exactly what the caller passed); `outcome(memo, result)
# -> (hits, misses, returned)` reads the backend's answer; `failed(memo) -> (hits, misses)`
# counts a call the backend raised from. Outcomes may raise on results no rule foresaw;
# the bracket then counts the call as "none" and returns the backend's result unchanged.

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Prepare = Callable[[Args, Kwargs], tuple[Args, Kwargs, Any]]
Outcome = Callable[[Any, Any], tuple[int, int, Any]]
Failed = Callable[[Any], tuple[int, int]]


class _Rule(NamedTuple):
    prepare: Prepare | None
    outcome: Outcome
    failed: Failed


def _ask_for_missing(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs, Any]:
    """get(key, default=None, version=None): ask for _MISSING, remember the caller's default."""
    if not kwargs and len(args) == 1:  # get(key), by far the most common call
        return (args[0], _MISSING), kwargs, None
    if len(args) > 1:
        return (args[0], _MISSING, *args[2:]), kwargs, args[1]
    default = kwargs.pop("default", None)
    if args:  # positionally, like Django's own calls: a subclass may name it differently
        return (args[0], _MISSING), kwargs, default
    kwargs["default"] = _MISSING
    return args, kwargs, default


def _found_unless_missing(default: Any, value: Any) -> tuple[int, int, Any]:
    return (0, 1, default) if value is _MISSING else (1, 0, value)


def _readable_once(keys: Any) -> bool:
    """Whether keys (an iterator, a generator) would be used up by the backend reading them."""
    if type(keys) is list or type(keys) is tuple:
        return False
    try:
        return iter(keys) is keys or not isinstance(keys, Sized)
    except Exception:  # not iterable: the backend raises its own error
        return False


def _read_keys_once(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs, Any]:
    """get_many(keys, version=None): counting reads the keys twice, so read them here once.

    An exception the caller's iterator raises propagates, as it would from the backend."""
    if args:
        keys = args[0]
        if _readable_once(keys):
            keys = list(keys)
            args = (keys, *args[1:])
        return args, kwargs, keys
    keys = kwargs.get("keys", ())
    if _readable_once(keys):
        keys = kwargs["keys"] = list(keys)
    return args, kwargs, keys


def _count_found(requested: Collection[Any], found: Any) -> tuple[int, int, Any]:
    total = len(requested)
    if len(found) >= total:  # found is a subset of requested: every key was found
        return total, 0, found
    hits = 0
    for key in requested:
        try:
            hit = key in found
        except Exception:  # a key the backend accepts but cannot be a dict key: not found
            hit = False
        hits += hit
    return hits, total - hits, found


def _every_key_missed(requested: Collection[Any]) -> tuple[int, int]:
    return 0, len(requested)


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
        token = _operation.set(_OUTSIDE)
        try:
            return self.default()
        finally:
            _operation.reset(token)


def _probe_default(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs, Any]:
    """get_or_set(key, default, timeout=..., version=None): a miss is when default is used."""
    if len(args) > 1:
        probe = _DefaultProbe(args[1])
        return (args[0], probe, *args[2:]), kwargs, probe
    if "default" in kwargs:
        probe = kwargs["default"] = _DefaultProbe(kwargs["default"])
        return args, kwargs, probe
    return args, kwargs, None  # no default: the backend raises (or has its own rule)


def _miss_if_probed(probe: _DefaultProbe | None, value: Any) -> tuple[int, int, Any]:
    if probe is None:
        return _NONE, 0, value
    return (0, 1, value) if probe.called else (1, 0, value)


def _hit_if_true(_: Any, found: Any) -> tuple[int, int, Any]:
    return (1, 0, found) if found else (0, 1, found)


def _neither(_: Any, result: Any) -> tuple[int, int, Any]:
    return _NONE, 0, result


def _one_miss(_: Any) -> tuple[int, int]:
    return 0, 1


def _neither_failed(_: Any) -> tuple[int, int]:
    return _NONE, 0


_RULES: dict[str, _Rule] = {
    "get": _Rule(_ask_for_missing, _found_unless_missing, _one_miss),
    "get_many": _Rule(_read_keys_once, _count_found, _every_key_missed),
    "get_or_set": _Rule(_probe_default, _miss_if_probed, _one_miss),
    "has_key": _Rule(None, _hit_if_true, _one_miss),
}
_WRITE = _Rule(None, _neither, _neither_failed)  # writes, deletes, incr/decr, touch


# -- the method a call runs -----------------------------------------------------------


def _defined_in(function: Any, owner: type) -> bool:
    """Whether `function` was written in the body of class `owner` (decorators with
    functools.wraps included); mocks and replacement functions were not."""
    qualname = getattr(function, "__qualname__", None)
    return (
        isinstance(qualname, str)
        and qualname.rpartition(".")[0] == owner.__qualname__
        and getattr(function, "__module__", None) == owner.__module__
    )


def _is_genuine(original: type, name: str, found: Any) -> bool:
    """Whether `found` (what `original.<name>` gives now) is the class's own method, one
    whose arguments and results the rules know how to read."""
    for owner in original.__mro__:
        raw = owner.__dict__.get(name, _ABSENT)
        if raw is not _ABSENT:
            return raw is found and _defined_in(raw, owner)
    return False


def _own_method(original: type, name: str) -> Any:
    """The nearest genuine definition of `name`, for the wrapper's name and signature."""
    for owner in original.__mro__:
        raw = owner.__dict__.get(name)
        if raw is not None and _defined_in(raw, owner):
            return raw
    return None


def _restored(value: Any, stands_for: Any) -> Any:
    if value is _MISSING:
        return stands_for
    return value.default if type(value) is _DefaultProbe else value


def _bound(instrumented: type, name: str, backend: Any, args: Args, kwargs: Kwargs) -> Any:
    """Call what `super(instrumented, backend).<name>` is, with the caller's arguments.

    Inside an instrumented operation the caller is the backend's own code, called with
    `_MISSING` or a probe for the user's default: a patched method gets the default back.
    """
    stands_for = _operation.get()
    if stands_for is not _OUTSIDE:
        args = tuple(_restored(value, stands_for) for value in args)
        kwargs = {key: _restored(value, stands_for) for key, value in kwargs.items()}
    # The class may have been given back in another thread since this call began.
    target = super(instrumented, backend) if isinstance(backend, instrumented) else backend
    return getattr(target, name)(*args, **kwargs)


# -- the bracket ----------------------------------------------------------------------

# id(backend) -> its alias's metric keys, and -> a weak reference that removes both entries
# when the backend goes (before its id can be reused). No attribute of ours on the backend.
_registered: dict[int, dict[str, _OperationKeys]] = {}
_references: dict[int, weakref.ref[Any]] = {}


def _wrapper(
    instrumented: type, original: type, name: str, operation: str, is_async: bool
) -> Callable[..., Any]:
    """The method `name` of `instrumented`: records `operation` around `original`'s `name`,
    looked up at call time. One bracket, sync and async; the rule says how to read it."""
    rule = _RULES.get(operation, _WRITE)
    prepare: Prepare | None = rule.prepare
    outcome: Outcome = rule.outcome
    failed: Failed = rule.failed
    genuine: Any = None  # the last method found at call time and found genuine

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal genuine
        method = getattr(original, name)
        if method is not genuine:
            if not _is_genuine(original, name, method):
                return _bound(instrumented, name, self, args, kwargs)
            genuine = method
        if (
            _operation.get() is not _OUTSIDE
            or (rt := active_runtime()) is None
            or (registered := _registered.get(id(self))) is None
        ):
            return method(self, *args, **kwargs)
        keys = registered[operation]
        # The hot path: `get(key)`'s rule, _open and (below) _record inlined.
        memo = None
        key_only = prepare is _ask_for_missing and not kwargs and len(args) == 1
        if prepare is not None and not key_only:
            args, kwargs, memo = prepare(args, kwargs)
        token = _operation.set(memo)
        state = current_request.get()
        if state.span is not None if state is not None else trace.get_current_span().is_recording():
            scope = _start_span(rt, keys)
        else:
            scope = None
        started = perf_counter()
        try:
            result = method(self, args[0], _MISSING) if key_only else method(self, *args, **kwargs)
        except BaseException as error:
            _record_error(rt, keys, failed, memo, perf_counter() - started, scope, error)
            raise
        finally:
            _operation.reset(token)
        seconds = perf_counter() - started
        try:
            if outcome is _found_unless_missing:
                hits, misses, returned = (0, 1, memo) if result is _MISSING else (1, 0, result)
            else:
                hits, misses, returned = outcome(memo, result)
        except Exception:  # a result no rule foresaw: counted, returned unchanged
            hits, misses, returned = _NONE, 0, result
        try:
            ref = None if scope is None else scope.close(keys, hits, misses, None)
            operations = rt.instruments.cache_operations
            if hits == _NONE:
                operations.add(keys.none)
            else:
                if hits:
                    operations.add(keys.hit, hits)
                if misses:
                    operations.add(keys.miss, misses)
            rt.instruments.cache_duration.record(keys.duration, seconds, ref)
        except Exception:
            logger.debug("Cache operation not recorded", exc_info=True)
        return returned

    async def acall(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal genuine
        method = getattr(original, name)
        if method is not genuine:
            if not _is_genuine(original, name, method):
                return await _bound(instrumented, name, self, args, kwargs)
            genuine = method
        if (
            _operation.get() is not _OUTSIDE
            or (rt := active_runtime()) is None
            or (registered := _registered.get(id(self))) is None
        ):
            return await method(self, *args, **kwargs)
        keys = registered[operation]
        memo = None
        if prepare is not None:
            args, kwargs, memo = prepare(args, kwargs)
        token = _operation.set(memo)
        scope = _open(rt, keys)
        started = perf_counter()
        try:
            result = await method(self, *args, **kwargs)
        except BaseException as error:
            _record_error(rt, keys, failed, memo, perf_counter() - started, scope, error)
            raise
        finally:
            _operation.reset(token)
        seconds = perf_counter() - started
        try:
            hits, misses, returned = outcome(memo, result)
        except Exception:
            hits, misses, returned = _NONE, 0, result
        _record(rt, keys, hits, misses, seconds, scope, None)
        return returned

    wrapper = acall if is_async else call
    source = _own_method(original, name)
    if source is not None:
        functools.update_wrapper(wrapper, source)  # name, docstring and signature
    else:
        wrapper.__name__, wrapper.__qualname__ = name, f"{original.__qualname__}.{name}"
    return wrapper


# -- instrumented classes and backends ----------------------------------------------

_lock = threading.RLock()
_classes: dict[type, type] = {}


# What protocol 2+ reductions rebuild objects with (`cls.__new__(cls, ...)`).
_NEW_OBJECT = (copyreg.__newobj__, copyreg.__newobj_ex__)  # type: ignore[attr-defined]


def _reduce_ex(instrumented: type, original: type) -> Callable[[Any, int], Any]:
    def __reduce_ex__(self: Any, protocol: int) -> Any:
        """Pickle and copy as the original class would: what they rebuild is a backend of
        the original class, not instrumented, and unpickling needs no Fleetscope."""
        target = super(instrumented, self) if isinstance(self, instrumented) else self
        reduced = target.__reduce_ex__(protocol)
        if not (isinstance(reduced, tuple) and len(reduced) > 1 and reduced[1]):
            return reduced
        rebuild, args = reduced[0], reduced[1]
        if args[0] is instrumented and rebuild in _NEW_OBJECT:
            # Pickle insists that __newobj__'s class be the object's own; a partial is not
            # named __newobj__ and rebuilds the same way.
            return (functools.partial(rebuild, original), args[1:], *reduced[2:])
        args = tuple(original if arg is instrumented else arg for arg in args)
        return (rebuild, args, *reduced[2:])

    return __reduce_ex__


def _instrumented_class(cls: type) -> type:
    """The subclass of `cls` that records; one per original class, built on first use."""
    with _lock:
        instrumented = _classes.get(cls)
        if instrumented is not None:
            return instrumented
        # Same names as the original, so reprs and log lines look the same; no slots of its
        # own, so every instance of `cls` can take it on and give it back.
        namespace: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__slots__": (),
            _ORIGINAL_ATTR: cls,
        }
        instrumented = type(cls)(cls.__name__, (cls,), namespace)
        reduce_ex = _reduce_ex(instrumented, cls)
        instrumented.__reduce_ex__ = reduce_ex  # type: ignore[assignment,method-assign]
        for operation in OPERATIONS:
            for name, is_async in ((operation, False), ("a" + operation, True)):
                if callable(getattr(cls, name, None)):
                    wrapper = _wrapper(instrumented, cls, name, operation, is_async)
                    setattr(instrumented, name, wrapper)
        _classes[cls] = instrumented
        return instrumented


def _forget(ident: int, ref: weakref.ref[Any]) -> None:
    if _references.get(ident) is ref:
        _references.pop(ident, None)
        _registered.pop(ident, None)


def instrument_backend(backend: BaseCache, alias: str) -> None:
    """Record every operation of one cache backend instance under `alias`.

    Never raises: a backend that cannot be instrumented is logged and left as it is.
    """
    with _lock:
        cls = type(backend)
        ident = id(backend)
        try:
            ref = _references.get(ident)
            if ref is None:
                ref = weakref.ref(backend, functools.partial(_forget, ident))
            if _ORIGINAL_ATTR not in cls.__dict__:
                backend.__class__ = _instrumented_class(cls)
        except Exception as error:  # e.g. a class that refuses subclasses
            logger.warning(
                "Cache alias %r (%s.%s) cannot be instrumented: %s",
                alias,
                cls.__module__,
                cls.__qualname__,
                error,
            )
            return
        _references[ident] = ref
        _registered[ident] = _alias_keys(alias)


def uninstrument_backend(backend: BaseCache) -> None:
    """Give a backend its original class back; it records nothing from then on."""
    with _lock:
        original = type(backend).__dict__.get(_ORIGINAL_ATTR)
        if original is not None:
            backend.__class__ = original
        ident = id(backend)
        ref = _references.get(ident)
        if ref is not None and ref() is backend:
            del _references[ident], _registered[ident]


def _instrumented_backends() -> list[tuple[Any, str]]:
    """(backend, alias) of every live instrumented backend, in any thread."""
    with _lock:
        live = [(_references[ident](), keys["get"].alias) for ident, keys in _registered.items()]
    return [(backend, alias) for backend, alias in live if backend is not None]


# -- the cache handler ------------------------------------------------------------

_aliases: frozenset[str] | None = None  # None: every alias in settings.CACHES
_installed: Callable[[str], Any] | None = None  # our create_connection while in effect
_shadowed: Any = None  # what it shadowed in the handler's __dict__ (_ABSENT: nothing)


def _wants(alias: str) -> bool:
    return _aliases is None or alias in _aliases


def is_instrumented() -> bool:
    """Whether `instrument_caches` is in effect."""
    return _installed is not None


def instrument_caches(aliases: Collection[str] | None = None) -> None:
    """Record every operation of the given cache aliases (None: all of settings.CACHES).

    Backends the handler creates from now on, in any thread, are instrumented as they are
    created; backends this thread already holds are instrumented now; instrumented backends
    of aliases no longer wanted, in any thread, are given back. Idempotent: a second call
    only changes which aliases record.
    """
    global _aliases, _installed, _shadowed
    if isinstance(aliases, str):  # CACHE_ALIASES = "default" means the one alias
        aliases = (aliases,)
    with _lock:
        _aliases = None if aliases is None else frozenset(aliases)
        if _installed is None:
            _shadowed = caches.__dict__.get("create_connection", _ABSENT)
            create = caches.create_connection

            def create_connection(alias: str) -> Any:
                backend = create(alias)
                # Inert once uninstalled: another library may still hold and call it.
                if _installed is create_connection and _wants(alias):
                    instrument_backend(backend, alias)
                return backend

            _installed = create_connection
            caches.create_connection = create_connection  # type: ignore[method-assign]
        for backend, alias in _instrumented_backends():
            if not _wants(alias):
                uninstrument_backend(backend)
        # What caches.all(initialized_only=True) reads, read here to keep each alias.
        created = vars(caches)["_connections"]
        for alias in caches:
            backend = getattr(created, alias, None)
            if backend is not None and _wants(alias):
                instrument_backend(backend, alias)


def uninstrument_caches() -> None:
    """Undo `instrument_caches`: the handler's own create_connection (or whatever another
    library installed over it, ours then passing straight through), every backend instrumented
    in any thread given back its original class."""
    global _aliases, _installed, _shadowed
    with _lock:
        if _installed is not None and caches.__dict__.get("create_connection") is _installed:
            if _shadowed is _ABSENT:
                del caches.create_connection
            else:
                caches.create_connection = _shadowed  # type: ignore[method-assign]
        _installed = _shadowed = None
        for backend, _alias in _instrumented_backends():
            uninstrument_backend(backend)
        _aliases = None


def _after_fork() -> None:
    # Another thread of the parent may have held the lock at the fork: it would never be
    # released in the child.
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork)


class CacheInstrument(Instrument):
    """Every alias of CACHES (or TELEMETRY["CACHE_ALIASES"]): hits, misses, durations, spans."""

    name = "cache"

    def install(self) -> None:
        instrument_caches(self.config["CACHE_ALIASES"])

    def uninstall(self) -> None:
        uninstrument_caches()

    @classmethod
    def checks(cls, config: Config) -> list[CheckMessage]:
        aliases = config["CACHE_ALIASES"]
        if aliases is None:
            return []
        wanted = {aliases} if isinstance(aliases, str) else set(aliases)
        unknown = sorted(wanted - set(getattr(settings, "CACHES", {})))
        if not unknown:
            return []
        return [
            Warning(
                f"TELEMETRY['CACHE_ALIASES'] names cache alias(es) not in CACHES: "
                f"{', '.join(unknown)}; they are not instrumented.",
                hint="Use aliases from CACHES, or None for all of them.",
                id="telemetry.W004",
            )
        ]
