"""Instrumented cache backends stay transparent: patches and mocks of backend classes reach
callers exactly as without Fleetscope, hit counting never raises, pickling and copying behave
as the original class, and uninstrumenting gives back every backend and the handler.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.test import override_settings

from telemetry.cache import (
    OPERATIONS,
    instrument_backend,
    instrument_caches,
    is_instrumented,
    uninstrument_backend,
    uninstrument_caches,
)
from telemetry.conf import get_config
from telemetry.runtime import Runtime

from .test_cache import calls, locmem_settings, ops


@pytest.fixture
def instrumented() -> Iterator[None]:
    """Fresh local-memory aliases `default` and `sessions`, all instrumented; state restored."""
    was_instrumented = is_instrumented()
    with override_settings(CACHES={"default": locmem_settings(), "sessions": locmem_settings()}):
        instrument_caches(None)
        yield
    uninstrument_caches()
    if was_instrumented:
        instrument_caches(get_config()["CACHE_ALIASES"])


# What each operation is called with in these tests, as the caller writes it.
CALL_ARGS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "get": (("k",), {}),
    "get_many": ((["k", "j"],), {}),
    "get_or_set": (("k", "d"), {"timeout": 30}),
    "set": (("k", 1), {}),
    "set_many": (({"k": 1},), {}),
    "add": (("k", 1), {"version": 2}),
    "delete": (("k",), {}),
    "delete_many": ((["k"],), {}),
    "incr": (("k",), {"delta": 2}),
    "decr": (("k",), {}),
    "touch": (("k", 60), {}),
    "has_key": (("k",), {}),
}
assert set(CALL_ARGS) == set(OPERATIONS)
METHOD_NAMES = [name for operation in OPERATIONS for name in (operation, "a" + operation)]


def _call(backend: Any, name: str) -> Any:
    args, kwargs = CALL_ARGS[name.removeprefix("a") if name not in CALL_ARGS else name]
    result = getattr(backend, name)(*args, **kwargs)
    return asyncio.run(result) if name.startswith("a") and name not in CALL_ARGS else result


# -- patches and mocks ---------------------------------------------------------------


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_a_class_patched_after_backends_exist_is_what_callers_reach(
    rt: Runtime, instrumented: None, name: str
) -> None:
    cache = caches["default"]
    cache.set("k", 1)  # the backend and its instrumented class exist before the patch
    before = ops(rt)
    operation = name.removeprefix("a") if name not in CALL_ARGS else name
    args, kwargs = CALL_ARGS[operation]
    marker = object()
    with mock.patch.object(LocMemCache, name, return_value=marker) as patched:
        assert _call(cache, name) is marker
    # The mock saw exactly the caller's arguments, and the call was not recorded.
    patched.assert_called_once_with(*args, **kwargs)
    assert ops(rt) == before
    # With the patch gone, the genuine method runs and records again.
    _call(cache, "set")
    assert ops(rt)[("set", "none")] == before[("set", "none")] + 1


def test_a_mock_active_when_the_first_backend_is_built_does_not_stay(
    rt: Runtime, instrumented: None
) -> None:
    class Fresh(LocMemCache):
        """A class no backend was instrumented with yet."""

    with mock.patch.object(Fresh, "get", return_value="mocked") as patched:
        cache = Fresh(uuid.uuid4().hex, {})
        instrument_backend(cache, "fresh")
        assert cache.get("k") == "mocked"
    patched.assert_called_once_with("k")
    cache.set("k", "real")
    assert cache.get("k") == "real" and cache.get("absent", 0) == 0
    assert ops(rt, "fresh") == {("set", "none"): 1, ("get", "hit"): 1, ("get", "miss"): 1}


def test_a_patched_method_used_inside_an_operation_sees_what_the_operation_passes(
    rt: Runtime, instrumented: None
) -> None:
    """BaseCache.aget calls self.get(key, default, version): the mock sees the caller's default."""
    plain = LocMemCache(uuid.uuid4().hex, {})
    cache = caches["default"]
    seen: list[Any] = []
    for backend in (plain, cache):
        with mock.patch.object(LocMemCache, "get", return_value="mocked") as patched:
            assert asyncio.run(backend.aget("k", "fallback")) == "mocked"
            assert asyncio.run(backend.aget_or_set("j", lambda: "computed")) == "mocked"
        seen.append(patched.call_args_list)
    assert seen[0] == seen[1]
    assert seen[0][0] == mock.call("k", "fallback", None)


class NativeAsync(LocMemCache):
    """A backend with async methods of its own, as one on an asyncio client has."""

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.calls: list[str] = []

    async def aget(self, key: Any, default: Any = None, version: Any = None) -> Any:
        self.calls.append("aget")
        return self.get(key, default, version)

    async def aset(self, key: Any, value: Any, timeout: Any = 300, version: Any = None) -> None:
        self.calls.append("aset")
        self.set(key, value, timeout, version)

    async def aadd(self, key: Any, value: Any, timeout: Any = 300, version: Any = None) -> bool:
        self.calls.append("aadd")
        return self.add(key, value, timeout, version)


def test_async_forms_take_the_path_they_take_without_fleetscope(
    rt: Runtime, instrumented: None
) -> None:
    """Django 6.1's aget_or_set, aget_many, aset_many ... run their own body, with the
    backend's async methods, unless the class overrides the sync form; instrumented or not."""
    seen: list[list[str]] = []
    for instrument in (False, True):
        cache = NativeAsync(uuid.uuid4().hex, {})
        if instrument:
            instrument_backend(cache, "native")
        assert asyncio.run(cache.aget_or_set("k", "v")) == "v"
        assert asyncio.run(cache.aget_many(["k", "j"])) == {"k": "v"}
        asyncio.run(cache.aset_many({"j": 1}))
        assert asyncio.run(cache.ahas_key("j"))  # LocMemCache has its own has_key
        seen.append(cache.calls)
    assert seen[0] == seen[1]
    assert seen[0][:3] == ["aget", "aadd", "aget"]
    assert ops(rt, "native") == {
        ("get_or_set", "miss"): 1,
        ("get_many", "hit"): 1,
        ("get_many", "miss"): 1,
        ("set_many", "none"): 1,
        ("has_key", "hit"): 1,
    }


def test_patches_are_bound_the_way_attribute_access_binds_them(
    rt: Runtime, instrumented: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = caches["default"]
    with mock.patch.object(LocMemCache, "get", autospec=True, return_value=1) as patched:
        assert cache.get("k", version=3) == 1
    patched.assert_called_once_with(cache, "k", version=3)

    received: list[tuple[Any, ...]] = []

    def replacement(self: Any, key: Any, *args: Any, **kwargs: Any) -> str:
        received.append((self, key, args, kwargs))
        return "replaced"

    monkeypatch.setattr(LocMemCache, "has_key", replacement)
    assert cache.has_key("k") == "replaced" and "k" in cache
    assert received == [(cache, "k", (), {})] * 2
    assert ops(rt) == {}


# -- hit counting never raises --------------------------------------------------------


class HashFails:
    """A key the backend accepts (it only formats keys) but that cannot be hashed."""

    def __str__(self) -> str:
        return "hash-fails"

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


def test_get_many_counts_keys_it_cannot_hash_as_misses(rt: Runtime, instrumented: None) -> None:
    cache = caches["default"]
    plain = LocMemCache(uuid.uuid4().hex, {})
    assert plain.get_many([["a"]]) == {} == plain.get_many([HashFails()])
    assert cache.get_many([["a"]]) == {}
    assert cache.get_many([HashFails(), "absent"]) == {}
    assert asyncio.run(cache.aget_many([["a"], ["b"]])) == {}
    assert ops(rt) == {("get_many", "miss"): 5}


class Unbool:
    def __bool__(self) -> bool:
        raise RuntimeError("no truth value")


class OddResults(LocMemCache):
    """A backend whose reads return values no hit rule can classify."""

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return None

    def has_key(self, key: Any, version: Any = None) -> Any:
        return UNBOOL


UNBOOL = Unbool()


def test_results_no_rule_can_classify_reach_the_caller_and_are_counted(
    rt: Runtime, instrumented: None
) -> None:
    cache = OddResults(uuid.uuid4().hex, {})
    instrument_backend(cache, "odd")
    assert cache.get_many(["a"]) is None
    assert cache.has_key("a") is UNBOOL
    assert ops(rt, "odd") == {("get_many", "none"): 1, ("has_key", "none"): 1}
    assert calls(rt, "get_many", "odd") == 1 and calls(rt, "has_key", "odd") == 1


# -- identity, pickling and copies ----------------------------------------------------


def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("returned", type(call()))
    except Exception as error:
        return ("raised", type(error), str(error))


def test_pickling_fails_exactly_as_for_the_original_class(instrumented: None) -> None:
    plain = LocMemCache(uuid.uuid4().hex, {})
    cache = caches["default"]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        expected = _outcome(lambda: pickle.dumps(plain, protocol))  # noqa: B023
        assert expected[0] == "raised"  # a lock: local-memory backends never pickle
        assert _outcome(lambda: pickle.dumps(cache, protocol)) == expected  # noqa: B023
    assert _outcome(lambda: copy.deepcopy(cache)) == _outcome(lambda: copy.deepcopy(plain))


def test_a_backend_that_pickles_unpickles_as_its_original_class(
    rt: Runtime, tmp_path: Path
) -> None:
    cache = FileBasedCache(str(tmp_path), {})
    plain_state = dict(vars(cache))
    instrument_backend(cache, "files")
    try:
        cache.set("k", "v")
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            for twin in (pickle.loads(pickle.dumps(cache, protocol)), copy.copy(cache),
                         copy.deepcopy(cache)):  # fmt: skip
                assert type(twin) is FileBasedCache
                assert vars(twin) == plain_state
                assert twin.get("k") == "v"
    finally:
        uninstrument_backend(cache)
    assert ops(rt, "files") == {("set", "none"): 1}  # the twins record nothing


def test_instrumenting_adds_no_attribute_to_the_backend(instrumented: None) -> None:
    uninstrument_caches()
    cache = caches["default"]
    before = dict(vars(cache))
    instrument_caches(None)
    assert type(cache) is not LocMemCache
    assert vars(cache) == before


# -- uninstrumenting --------------------------------------------------------------------


def _in_threads(count: int) -> list[Any]:
    """`default` backends created by other threads (the handler's are per thread), kept alive."""
    held: list[Any] = []
    threads = [
        threading.Thread(target=lambda: held.append(caches["default"])) for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return held


def test_uninstrumenting_gives_back_the_backends_of_every_thread(
    rt: Runtime, instrumented: None
) -> None:
    held = [caches["default"], caches["sessions"], *_in_threads(3)]
    assert all(type(backend) is not LocMemCache for backend in held)
    uninstrument_caches()
    assert [type(backend) for backend in held] == [LocMemCache] * len(held)
    for backend in held:
        backend.get("k")
    assert ops(rt) == {} and not is_instrumented()


def test_dropping_an_alias_gives_back_its_backends_in_every_thread(
    rt: Runtime, instrumented: None
) -> None:
    held = _in_threads(2)
    instrument_caches(["sessions"])
    assert [type(backend) for backend in held] == [LocMemCache] * 2
    assert type(caches["default"]) is LocMemCache and type(caches["sessions"]) is not LocMemCache


def test_uninstrumenting_after_another_library_wrapped_the_handler(
    rt: Runtime, instrumented: None
) -> None:
    """Their wrapper stays and works; ours stops instrumenting; instrumenting again works."""
    theirs: list[str] = []
    ours = caches.create_connection

    def their_create_connection(alias: str) -> Any:
        theirs.append(alias)
        return ours(alias)

    caches.create_connection = their_create_connection  # type: ignore[method-assign]
    try:
        uninstrument_caches()
        assert not is_instrumented()
        (created,) = _in_threads(1)
        assert type(created) is LocMemCache and theirs == ["default"]

        instrument_caches(None)
        assert is_instrumented()
        (created,) = _in_threads(1)
        assert type(created) is not LocMemCache and theirs == ["default"] * 2
        created.get("k")
        assert ops(rt) == {("get", "miss"): 1}
    finally:
        uninstrument_caches()
        assert caches.__dict__.get("create_connection") is their_create_connection
        del caches.create_connection


def test_a_backend_that_cannot_be_instrumented_is_still_handed_out(
    rt: Runtime, instrumented: None, caplog: pytest.LogCaptureFixture
) -> None:
    backend = {"BACKEND": f"{__name__}.FinalCache", "LOCATION": uuid.uuid4().hex}
    with override_settings(CACHES={"default": backend}):
        with caplog.at_level(logging.WARNING, logger="telemetry"):
            cache = caches["default"]
        assert type(cache) is FinalCache
        assert cache.get("k", 1) == 1
    assert "cannot be instrumented" in caplog.text
    assert ops(rt) == {}


class FinalCache(LocMemCache):
    """A backend class that refuses to be subclassed."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise RuntimeError("FinalCache cannot be subclassed")
