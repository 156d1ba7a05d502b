"""WSGI entry of the resilience nodes: the Django app, with each response carrying the CPU time
its request thread spent (`X-Request-CPU`, seconds), so that comparisons with and without
Fleetscope do not depend on what else the machine runs."""

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.resilience.input_settings")
django_application = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    began = time.thread_time()

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # Django starts the response once every middleware has run.
        headers.append(("X-Request-CPU", f"{time.thread_time() - began:.6f}"))
        return start_response(status, headers, exc_info)

    return django_application(environ, start)
