"""TelemetryMiddleware: put it first in MIDDLEWARE; works under WSGI and ASGI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from .conf import get_config
from .requests import RequestRecorder
from .runtime import get_runtime

CONTRIB_MODE = "opentelemetry-instrumentation-django"


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

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        recorder = self.recorder
        handle = recorder.begin(request)
        try:
            response = self.get_response(request)
        except BaseException as error:
            recorder.end(handle, request, None, error)
            raise
        recorder.end(handle, request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        recorder = self.recorder
        handle = recorder.begin(request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        try:
            response = await get_response(request)
        except BaseException as error:
            recorder.end(handle, request, None, error)
            raise
        recorder.end(handle, request, response)
        return response
