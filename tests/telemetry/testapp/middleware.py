"""A user's request-scoped execute_wrapper, as in Django's docs (the QueryLogger pattern)."""

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse


class QueryLogger:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries.append(sql)
        return execute(sql, params, many, context)


class QueryLoggerMiddleware:
    """Wraps every request in `connection.execute_wrapper()` on every alias."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        logger = QueryLogger()
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(logger))
            return self.get_response(request)
