"""TelemetryMiddleware: put it first in MIDDLEWARE; works under WSGI and ASGI.

Nothing Fleetscope does may change what a request returns or raises: if recording the
request fails (a bug of ours, a broken processor), the failure is logged once and the
request goes on unmeasured; the view's own exceptions pass through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from .conf import get_config
from .requests import RequestHandle, RequestRecorder
from .runtime import get_runtime

CONTRIB_MODE = "opentelemetry-instrumentation-django"
logger = logging.getLogger("telemetry")


class TelemetryMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        own = get_config()["REQUEST_INSTRUMENTATION"] != CONTRIB_MODE
        self.recorder = RequestRecorder(get_runtime(), own_spans_and_metrics=own)
        self._reported = False

    def _failed(self, what: str) -> None:
        if not self._reported:
            self._reported = True
            logger.exception("Fleetscope could not %s; the request is not affected", what)

    def _begin(self, request: HttpRequest) -> RequestHandle | None:
        if not self.recorder.runtime.requests_enabled:  # RequestsInstrument not listed
            return None
        try:
            return self.recorder.begin(request)
        except Exception:
            self._failed("start measuring a request")
            return None

    def _end(
        self,
        handle: RequestHandle | None,
        request: HttpRequest,
        response: HttpResponseBase | None,
        error: BaseException | None = None,
    ) -> None:
        if handle is None:
            return
        try:
            self.recorder.end(handle, request, response, error)
        except Exception:
            self._failed("finish measuring a request")

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        handle = self._begin(request)
        try:
            response = self.get_response(request)
        except BaseException as error:
            self._end(handle, request, None, error)
            raise
        self._end(handle, request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        handle = self._begin(request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        try:
            response = await get_response(request)
        except BaseException as error:
            self._end(handle, request, None, error)
            raise
        self._end(handle, request, response)
        return response
