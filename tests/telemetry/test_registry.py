"""TELEMETRY["INSTRUMENTS"]: each signal source switched on and off by one list entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.cache import caches
from django.db import connection
from django.test import Client, override_settings

from telemetry import registry
from telemetry.cache import is_instrumented
from telemetry.checks import telemetry_checks
from telemetry.db import observer_of, seam_installed
from telemetry.registry import DEFAULT_INSTRUMENTS, Instrument
from telemetry.runtime import get_runtime

WITHOUT = {name: [p for p in DEFAULT_INSTRUMENTS if p.split(".")[1] != name] for name in
           ("cache", "db", "requests", "process")}  # fmt: skip


class Probe(Instrument):
    """A user's own instrument: counts its installs and uninstalls."""

    name = "probe"
    events: list[str] = []

    def install(self) -> None:
        Probe.events.append("install")

    def uninstall(self) -> None:
        Probe.events.append("uninstall")


@pytest.fixture
def reload_with() -> Iterator[Any]:
    """Apply a TELEMETRY setting the way an app reload does; restore the defaults after."""
    stack: list[Any] = []

    def apply(**telemetry: Any) -> None:
        context = override_settings(TELEMETRY={"EXPORT": False, **telemetry})
        context.enable()
        stack.append(context)
        apps.get_app_config("telemetry").ready()

    yield apply
    for context in reversed(stack):
        context.disable()
    apps.get_app_config("telemetry").ready()


def test_the_default_list_installs_every_instrument() -> None:
    assert sorted(registry.installed()) == sorted(DEFAULT_INSTRUMENTS)


def test_without_the_cache_entry_cache_objects_are_not_wrapped(reload_with: Any) -> None:
    reload_with(INSTRUMENTS=WITHOUT["cache"])
    assert not is_instrumented()
    backend = caches["default"]
    assert not hasattr(type(backend), "_fleetscope_original_class")
    assert type(backend).__module__ == "django.core.cache.backends.locmem"


def test_the_cache_entry_back_wraps_them_again(reload_with: Any) -> None:
    reload_with(INSTRUMENTS=WITHOUT["cache"])
    reload_with(INSTRUMENTS=list(DEFAULT_INSTRUMENTS))
    assert is_instrumented()
    assert hasattr(type(caches["default"]), "_fleetscope_original_class")


@pytest.mark.django_db
def test_without_the_db_entry_queries_are_not_observed(reload_with: Any) -> None:
    reload_with(INSTRUMENTS=WITHOUT["db"])
    runtime = get_runtime()
    before = len(runtime.instruments.query_duration.attribute_sets())
    with connection.cursor() as cursor:
        cursor.execute("SELECT 12345")
    assert len(runtime.instruments.query_duration.attribute_sets()) == before
    assert observer_of(connection) is None
    assert not seam_installed()


@pytest.mark.django_db
def test_without_the_requests_entry_the_middleware_passes_through(reload_with: Any) -> None:
    reload_with(INSTRUMENTS=WITHOUT["requests"])
    runtime = get_runtime()
    assert Client().get("/hello/").status_code == 200
    assert all(key[1] != "/hello/" for key in runtime.instruments.request_duration.attribute_sets())


def test_an_instrument_of_ones_own_is_installed_and_uninstalled(reload_with: Any) -> None:
    Probe.events.clear()
    reload_with(INSTRUMENTS=[*DEFAULT_INSTRUMENTS, f"{__name__}.Probe"])
    reload_with(INSTRUMENTS=list(DEFAULT_INSTRUMENTS))
    assert Probe.events[0] == "install" and Probe.events[-1] == "uninstall"


def test_an_unusable_entry_is_a_check_error_not_a_crash(reload_with: Any) -> None:
    reload_with(
        INSTRUMENTS=[*DEFAULT_INSTRUMENTS, "telemetry.nope.Missing", "telemetry.conf.Config"]
    )
    ids = [m.id for m in telemetry_checks()]
    assert ids.count("telemetry.E009") == 2
    assert sorted(registry.installed()) == sorted(DEFAULT_INSTRUMENTS)
