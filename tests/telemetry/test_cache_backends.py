"""Every cache backend, instrumented through the cache handler, behaves exactly as the original
and records each user call exactly once with the right operation and result.

One script of calls runs on a plain backend of the class, then (on the same, cleared storage)
on the backend the handler hands out; both must give the same results and exceptions, the plain
one must record nothing, and each instrumented call must add one duration sample of its own
operation and exactly its hit/miss/none counts. Local memory, file, database and a real Redis
server and a real memcached (both installed by `make test`).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache, CacheKeyWarning
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from django.utils.module_loading import import_string

from telemetry.cache import instrument_caches, is_instrumented, uninstrument_caches
from telemetry.conf import get_config
from telemetry.runtime import Runtime

REDIS_SERVER = "/usr/bin/redis-server"
MEMCACHED = "/usr/bin/memcached"
ALIAS = "cachetest"

Record = tuple[str, str, int]  # (operation, result, amount)


@dataclass
class Step:
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    records: tuple[Record, ...] = ()
    sync_only: bool = False
    raises: bool = False  # the backend itself raises: a missing key to incr, a bad key


def script() -> list[Step]:
    """Built afresh for every run: it holds generators, which can be read only once."""
    return [
        Step("get", ("k1",), records=(("get", "miss", 1),)),
        Step("set", ("k1", "v1"), records=(("set", "none", 1),)),
        Step("get", ("k1",), records=(("get", "hit", 1),)),
        Step("set", ("stored-none", None), records=(("set", "none", 1),)),
        Step("get", ("stored-none", "fallback"), records=(("get", "hit", 1),)),
        Step("get", ("absent",), {"default": "fallback"}, records=(("get", "miss", 1),)),
        Step("get", ("k1",), {"version": 2}, records=(("get", "miss", 1),)),
        Step("add", ("k1", "other"), records=(("add", "none", 1),)),
        Step("add", ("k2", 2), records=(("add", "none", 1),)),
        Step(
            "get_many",
            (["k1", "stored-none", "absent", "k2"],),
            records=(("get_many", "hit", 3), ("get_many", "miss", 1)),
        ),
        Step(
            "get_many",
            ((key for key in ("k1", "absent", "absent-too")),),
            records=(("get_many", "hit", 1), ("get_many", "miss", 2)),
        ),
        Step("get_many", (["absent"],), records=(("get_many", "miss", 1),)),
        Step("get_or_set", ("k3", "d3"), records=(("get_or_set", "miss", 1),)),
        Step("get_or_set", ("k3", "other"), records=(("get_or_set", "hit", 1),)),
        Step("get_or_set", ("k4", lambda: "computed"), records=(("get_or_set", "miss", 1),)),
        Step("get_or_set", ("stored-none", "x"), records=(("get_or_set", "hit", 1),)),
        Step("has_key", ("k1",), records=(("has_key", "hit", 1),)),
        Step("has_key", ("absent",), records=(("has_key", "miss", 1),)),
        Step("__contains__", ("k2",), records=(("has_key", "hit", 1),), sync_only=True),
        Step("incr", ("counter",), records=(("incr", "none", 1),), raises=True),
        Step("set", ("counter", 10), records=(("set", "none", 1),)),
        Step("incr", ("counter", 5), records=(("incr", "none", 1),)),
        Step("decr", ("counter",), {"delta": 3}, records=(("decr", "none", 1),)),
        Step("decr", ("absent",), records=(("decr", "none", 1),), raises=True),
        Step("get", ("counter",), records=(("get", "hit", 1),)),
        Step("touch", ("k1", 300), records=(("touch", "none", 1),)),
        Step("touch", ("absent",), records=(("touch", "none", 1),)),
        Step("set_many", ({"m1": 1, "m2": None},), records=(("set_many", "none", 1),)),
        Step("get_many", (("m1", "m2"),), records=(("get_many", "hit", 2),)),
        Step("delete_many", (["m1", "m2"],), records=(("delete_many", "none", 1),)),
        Step("has_key", ("m1",), records=(("has_key", "miss", 1),)),
        Step("delete", ("k1",), records=(("delete", "none", 1),)),
        Step("delete", ("k1",), records=(("delete", "none", 1),)),
        # Keys memcached cannot store: a CacheKeyWarning (an error here) or InvalidCacheKey.
        Step("get", ("bad key",), records=(("get", "miss", 1),), raises=True),
        Step("set", ("bad key", 1), records=(("set", "none", 1),), raises=True),
    ]


Outcome = tuple[Any, ...]


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return ("returned", call())
    except Exception as error:
        return ("raised", type(error), str(error))


async def _aoutcome(call: Callable[[], Any]) -> Outcome:
    try:
        return ("returned", await call())
    except Exception as error:
        return ("raised", type(error), str(error))


def _counts(rt: Runtime) -> Counter[Any]:
    counts: Counter[Any] = Counter(dict(rt.instruments.cache_operations.items()))
    recorded = rt.instruments.cache_duration.attribute_sets()
    for key in recorded:
        snapshot = rt.instruments.cache_duration.snapshot(key)
        assert snapshot is not None
        counts[("duration", *key)] = snapshot[0]
    return counts


def _delta(before: Counter[Any], after: Counter[Any]) -> dict[Any, int]:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def _expected(alias: str, step: Step) -> dict[Any, int]:
    expected: dict[Any, int] = {(alias, op, result): n for op, result, n in step.records}
    expected[("duration", alias, step.records[0][0])] = 1
    return expected


def run_sync(backend: BaseCache, rt: Runtime) -> list[tuple[Outcome, dict[Any, int]]]:
    results = []
    for step in script():
        before = _counts(rt)
        method = getattr(backend, step.method)
        outcome = _outcome(functools.partial(method, *step.args, **step.kwargs))
        results.append((outcome, _delta(before, _counts(rt))))
    return results


def run_async(backend: BaseCache, rt: Runtime) -> list[tuple[Outcome, dict[Any, int]]]:
    async def main() -> list[tuple[Outcome, dict[Any, int]]]:
        results = []
        for step in script():
            if step.sync_only:
                continue
            before = _counts(rt)
            method = getattr(backend, "a" + step.method)
            outcome = await _aoutcome(functools.partial(method, *step.args, **step.kwargs))
            results.append((outcome, _delta(before, _counts(rt))))
        # The worker thread asgiref ran the database cache in keeps its own connection.
        await sync_to_async(connections.close_all, thread_sensitive=True)()
        return results

    return asyncio.run(main())


# -- backends ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with status {process.returncode} before answering")
        if ready():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not answer within 15 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(
            f"{REDIS_SERVER} not found: the Redis cache backend is tested against a real server. "
            "Install the Debian package redis-server (scripts/install-system-deps.sh does)."
        )
    import redis

    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        try:
            _wait_until(answers, f"redis-server on port {port}", process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            _stop(process)


@pytest.fixture(scope="module")
def memcached_location() -> Iterator[str]:
    if not os.access(MEMCACHED, os.X_OK) or importlib.util.find_spec("pymemcache") is None:
        pytest.fail(
            f"memcached tests need {MEMCACHED} (apt-get install memcached) and pymemcache "
            "(the dev extra); `make test` installs both."
        )
    port = _free_port()
    process = subprocess.Popen(
        # memcached refuses to run as root unless told which user to be.
        [
            MEMCACHED,
            "-l",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "0",
            *(["-u", "root"] if os.geteuid() == 0 else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        _wait_until(answers, f"memcached on port {port}", process)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


BACKENDS: list[Any] = [
    "locmem",
    "file",
    # Transactional: the async forms run in asgiref's worker thread, on its own connection.
    pytest.param("database", marks=pytest.mark.django_db(transaction=True)),
    "redis",
    "memcached",
]


@pytest.fixture
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    kind = request.param
    if kind == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": uuid.uuid4().hex}  # fmt: skip
    if kind == "file":
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache")}  # fmt: skip
    if kind == "database":
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "fleetscope_cache_test"}  # fmt: skip
    if kind == "redis":
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": request.getfixturevalue("redis_url")}  # fmt: skip
    return {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": request.getfixturevalue("memcached_location")}  # fmt: skip


@pytest.fixture
def handler_instrumented() -> Iterator[None]:
    """Every alias instrumented, as with the default settings; the app's own state restored."""
    was_instrumented = is_instrumented()
    instrument_caches(None)
    yield
    uninstrument_caches()
    if was_instrumented:
        instrument_caches(get_config()["CACHE_ALIASES"])


@pytest.fixture
def pair(backend_settings: dict[str, Any], handler_instrumented: None) -> Iterator[tuple[Any, Any]]:
    """(backend from the instrumented handler, plain backend of the same class and storage)."""
    cache_settings = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        ALIAS: backend_settings,
    }
    with override_settings(CACHES=cache_settings):
        if backend_settings["BACKEND"].endswith("DatabaseCache"):
            call_command("createcachetable", verbosity=0)
        backend_class = import_string(backend_settings["BACKEND"])
        params = {k: v for k, v in backend_settings.items() if k not in ("BACKEND", "LOCATION")}
        plain = backend_class(backend_settings["LOCATION"], params)
        instrumented = caches[ALIAS]
        plain.clear()
        yield instrumented, plain
        plain.clear()
        plain.close()


@pytest.mark.parametrize("backend_settings", BACKENDS, indirect=True)
@pytest.mark.parametrize("runner", [run_sync, run_async], ids=["sync", "async"])
def test_each_call_records_once_and_returns_what_the_backend_returns(
    pair: tuple[Any, Any], runner: Any, rt: Runtime
) -> None:
    instrumented, plain = pair
    backend_class = type(plain)
    assert isinstance(instrumented, backend_class)
    assert type(instrumented) is not backend_class  # really instrumented ...
    assert type(plain) is backend_class  # ... and really not

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        expected = runner(plain, rt)
        plain.clear()
        actual = runner(instrumented, rt)

    steps = [s for s in script() if runner is run_sync or not s.sync_only]
    assert len(actual) == len(expected) == len(steps)
    for step, (plain_outcome, plain_delta), (outcome, delta) in zip(
        steps, expected, actual, strict=True
    ):
        assert outcome == plain_outcome, step
        assert plain_delta == {}, step
        assert delta == _expected(ALIAS, step), step
    # The script's own semantics, so equal-but-wrong results on both sides cannot pass.
    for step, (outcome, _) in zip(steps, actual, strict=True):
        assert (outcome[0] == "raised") == step.raises, (step, outcome)
    returned = [outcome[1] for outcome, _ in actual]
    assert returned[:7] == [None, None, "v1", None, None, "fallback", None]
    assert returned[9] == {"k1": "v1", "stored-none": None, "k2": 2}
    assert returned[12:16] == ["d3", "d3", "computed", None]
