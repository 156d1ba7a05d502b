"""Which requests django-silk profiles: a share of sampled traces, or a staff user's explicit ask.

Point Silk's own hooks here (settings hold the functions, Silk calls them directly)::

    from telemetry.silk import python_profiler, should_profile
    SILKY_INTERCEPT_FUNC = should_profile
    SILKY_PYTHON_PROFILER_FUNC = python_profiler

`should_profile` runs for every request that reaches Silk's middleware, so the common
"no" costs a context-variable read, an `is_recording()` and two dict lookups. It never
touches `request.user` (a session and user query) unless the request asks to be profiled.
This module is imported from settings files: it imports no model and nothing of Silk's.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextvars import ContextVar
from random import random
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from ..conf import Config, get_config
from ..registry import Instrument
from ..runtime import active_runtime

if TYPE_CHECKING:
    from django.core.checks import CheckMessage
    from django.http import HttpRequest

__all__ = [
    "IGNORE_QUERIES",
    "PROFILE_HEADER",
    "PROFILE_PARAM",
    "SENSITIVE_KEYS",
    "may_read_profiles",
    "profile_requested",
    "python_profiler",
    "should_profile",
]

PROFILE_HEADER = "X-Fleetscope-Profile"
PROFILE_PARAM = "fleetscope_profile"
_PROFILE_META = "HTTP_" + PROFILE_HEADER.upper().replace("-", "_")

# For SILKY_SENSITIVE_KEYS. Silk masks a form or JSON field when any entry occurs in its
# name, and a request header only when its lower-cased name is in the set: header names
# are listed in full, since Silk's default "api" and "key" never match `X-Api-Key`.
_FIELD_WORDS = (
    "password", "passwd", "secret", "token", "api", "key", "signature", "credential",
    "auth", "session", "csrf", "username",
)  # fmt: skip
_HEADER_NAMES = (
    "authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token",
    "x-access-token", "x-refresh-token", "x-csrftoken", "x-amz-security-token",
)  # fmt: skip
SENSITIVE_KEYS = frozenset(_FIELD_WORDS + _HEADER_NAMES)

# For SILKY_IGNORE_QUERIES (substrings of the SQL Silk would store, parameters filled in).
# These statements would put bearer credentials into its tables: session keys (every
# request of a signed-in user reads django_session by key) and password hashes (a
# password change). Silk does not record INSERTs. Quoting: PostgreSQL/SQLite, MySQL.
IGNORE_QUERIES = (
    "django_session",
    'SET "password" =',
    ', "password" =',
    "SET `password` =",
    ", `password` =",
)

# The request Silk is about to record, handed to the post_save hook that links its row to
# the trace (telemetry.silk.links); set only when should_profile says yes.
profiled_request: ContextVar[HttpRequest | None] = ContextVar(
    "fleetscope_silk_request", default=None
)
_links_connected = False


def may_read_profiles(user: Any) -> bool:
    """Whoever may read Silk's pages (SILKY_PERMISSIONS, staff by default) may ask for profiles."""
    if user is None or not user.is_authenticated:
        return False
    from django.apps import apps

    if apps.is_installed("silk"):
        from silk.config import SilkyConfig

        return bool(SilkyConfig().SILKY_PERMISSIONS(user))
    return bool(user.is_staff)


def profile_requested(request: HttpRequest) -> bool:
    """True when the request asks to be profiled (header or query flag) and its user may."""
    meta = request.META
    asked = meta.get(_PROFILE_META) == "1" or (
        PROFILE_PARAM in meta.get("QUERY_STRING", "") and request.GET.get(PROFILE_PARAM) == "1"
    )
    return asked and may_read_profiles(getattr(request, "user", None))


def _sampled_for_silk() -> bool:
    if not trace.get_current_span().is_recording():
        return False
    runtime = active_runtime()
    rate = (runtime.config if runtime is not None else get_config())["SILK_RATE"]
    return random() < rate


def should_profile(request: HttpRequest) -> bool:
    """SILKY_INTERCEPT_FUNC: record a sampled trace with probability SILK_RATE, or on request."""
    if _sampled_for_silk() or profile_requested(request):
        _connect_links()
        from .masking import start

        start(request)  # what Silk stores of this request is masked (telemetry.silk.masking)
        profiled_request.set(request)
        _profile_started(request)
        return True
    return False


# Silk wraps Django's SQLCompiler.execute_sql on the first request it records and never
# unwraps it; from then on every ORM query of the process, profiled or not, compiles its SQL
# twice (measured: +70-90 us per query). Fleetscope keeps Silk's cost on profiled requests:
# once no profiled request is in flight, Django's own execute_sql is put back, and Silk wraps
# it again (its own `hasattr(SQLCompiler, "_execute_sql")` test) on the next one.
#
# A profiled request is "finished" by whichever comes first: TelemetryMiddleware's end of the
# request, Django's request_finished signal in the request's own context (WSGI), or the
# request object being freed. Under ASGI on Django 5.x request_finished fires in the parent
# context, where the request's context variables are not visible: a context-variable flag
# alone never dropped the count there. Each profiled request gets one `weakref.finalize`,
# which runs at most once whoever calls it.
_in_flight = 0
_in_flight_lock = threading.Lock()
_profiling: ContextVar[weakref.finalize | None] = ContextVar(
    "fleetscope_silk_profiling", default=None
)
_FINISH_ATTR = "_fleetscope_silk_finish"


def in_flight() -> int:
    """Profiled requests not finished yet (tests, `telemetry_check`)."""
    return _in_flight


def _profile_started(request: HttpRequest) -> None:
    global _in_flight
    if getattr(request, _FINISH_ATTR, None) is not None:
        return
    with _in_flight_lock:
        _in_flight += 1
    finish = weakref.finalize(request, _profile_finished)
    setattr(request, _FINISH_ATTR, finish)
    _profiling.set(finish)
    from django.core.signals import request_finished

    request_finished.connect(_on_request_finished, dispatch_uid="fleetscope-silk-finished")


def _on_request_finished(**kwargs: Any) -> None:
    finish = _profiling.get()
    if finish is not None:
        _profiling.set(None)
        finish()


def finish_profile(request: HttpRequest) -> None:
    """The end of a profiled request (called by TelemetryMiddleware); no-op otherwise."""
    finish = getattr(request, _FINISH_ATTR, None)
    if finish is not None:
        finish()


def _profile_finished() -> None:
    global _in_flight
    with _in_flight_lock:
        _in_flight -= 1
        if _in_flight == 0:
            restore_sql_compiler()


def _after_fork() -> None:
    global _in_flight, _in_flight_lock
    _in_flight_lock = threading.Lock()
    _in_flight = 0


os.register_at_fork(after_in_child=_after_fork)


def restore_sql_compiler() -> None:
    """Undo Silk's wrapping of SQLCompiler.execute_sql (it re-wraps when it next records)."""
    from django.db.models.sql.compiler import SQLCompiler

    original = SQLCompiler.__dict__.get("_execute_sql")
    if original is not None:
        SQLCompiler.execute_sql = original  # type: ignore[method-assign]
        delattr(SQLCompiler, "_execute_sql")


def python_profiler(request: HttpRequest) -> bool:
    """SILKY_PYTHON_PROFILER_FUNC: cProfile only requests a staff user asked to profile."""
    return profile_requested(request)


def _connect_links() -> None:
    # Connected on the first profiled request rather than in AppConfig.ready(): the hook
    # needs Silk's models. Links are stored only with the sub-app installed (it owns the
    # table); without it Silk still profiles, unlinked (check telemetry.W006 says so).
    global _links_connected
    if not _links_connected:
        _links_connected = True
        from django.apps import apps

        from .masking import connect as connect_masking

        connect_masking()  # with or without the sub-app: Silk's rows hold request data
        if apps.is_installed("telemetry.silk"):
            from .links import connect

            connect()


class SilkInstrument(Instrument):
    """django-silk profiles of sampled requests, linked to traces, routes and fingerprints.

    Silk calls the hooks above from its own settings; this instrument has nothing to hook.
    Listed by default so that its checks run wherever Silk is installed; the links and their
    table need the sub-app "telemetry.silk" in INSTALLED_APPS."""

    name = "silk"

    def install(self) -> None:
        return None

    def uninstall(self) -> None:
        restore_sql_compiler()

    @classmethod
    def checks(cls, config: Config) -> list[CheckMessage]:
        from django.apps import apps

        if not apps.is_installed("silk"):
            return []
        from django.conf import settings
        from django.core.checks import Warning

        from .checks import silk_checks

        messages: list[CheckMessage] = []
        if not (
            getattr(settings, "SILKY_AUTHENTICATION", False)
            and getattr(settings, "SILKY_AUTHORISATION", False)
        ):
            messages.append(
                Warning(
                    "django-silk is installed without SILKY_AUTHENTICATION and "
                    "SILKY_AUTHORISATION: anyone can read profiles (SQL, headers, timings) "
                    "at /silk/.",
                    hint="Set SILKY_AUTHENTICATION = True and SILKY_AUTHORISATION = True "
                    "(staff only).",
                    id="telemetry.W010",
                )
            )
        hook = getattr(settings, "SILKY_INTERCEPT_FUNC", None)
        if getattr(hook, "__module__", "") == __name__ and not apps.is_installed("telemetry.silk"):
            messages.append(
                Warning(
                    "Silk samples through telemetry.silk but the Silk sub-app is not "
                    "installed: profiles are not linked to traces, routes and fingerprints, "
                    "and the /telemetry/silk/ links of the dashboards do not resolve.",
                    hint="Add 'telemetry.silk' to INSTALLED_APPS (after 'telemetry' and "
                    "'silk') and run migrate.",
                    id="telemetry.W006",
                )
            )
        silk_checks(messages)
        return messages
