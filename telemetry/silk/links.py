"""Tie each Silk profile to its trace, node, worker and route; find profiles by those keys.

The tie is made from Django's `post_save` signal on Silk's `Request` model, Silk's only
public seam with the request id in hand:

* created (in Silk's process_request, right after `should_profile` said yes): the server
  span gets the attribute `fleetscope.silk.request_id`;
* the final save (in Silk's process_response, once the response and SQL are stored): one
  `ProfileLink` row with the trace id, `host.name`, `service.instance.id`, `http.route` and
  the fingerprints of the statements the request ran.

Both run inside TelemetryMiddleware's request, so the OTel context and the per-request
state are current. Nothing here runs for requests Silk does not record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, router, transaction
from django.db.models import QuerySet
from django.db.models.signals import post_save
from django.http import HttpRequest
from opentelemetry import trace

from ..instruments import UNMATCHED_ROUTE
from ..routes import render_pattern
from ..runtime import active_runtime
from ..state import current_request
from . import profiled_request
from .models import ProfileLink

logger = logging.getLogger("telemetry")

SPAN_ATTRIBUTE = "fleetscope.silk.request_id"
_REQUEST_ATTR = "_fleetscope_http_request"
# How many recent links a lookup considers before giving up on finding one whose Silk row
# still exists (Silk's garbage collection removes the oldest first).
LOOKBACK = 50
_MAX_CHARS = 255


def route_of(request: HttpRequest) -> str:
    """`http.route` as TelemetryMiddleware reports it (telemetry/routes.py)."""
    runtime = active_runtime()
    if runtime is not None:
        return runtime.routes.of(request)
    match = getattr(request, "resolver_match", None)
    return UNMATCHED_ROUTE if match is None else render_pattern(match.route)


def trace_id_hex(span: trace.Span) -> str:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _on_request_saved(
    sender: type,
    instance: Any,
    created: bool,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    if created:
        request = profiled_request.get()
        # Silk sets silk_is_intercepted just before creating the row; a request that
        # should_profile accepted but Silk then skipped (its own pages) never has it.
        if request is None or not getattr(request, "silk_is_intercepted", False):
            return
        profiled_request.set(None)
        setattr(instance, _REQUEST_ATTR, request)
        trace.get_current_span().set_attribute(SPAN_ATTRIBUTE, str(instance.pk))
        return
    request = getattr(instance, _REQUEST_ATTR, None)
    # Silk also saves the row for each SQL query it stores (update_fields=num_sql_queries);
    # the final save is the full one, after end_time is set.
    if request is None or update_fields is not None or instance.end_time is None:
        return
    write_link(str(instance.pk), request)


def write_link(silk_request_id: str, request: HttpRequest) -> None:
    """Store the link; a failure is logged and never breaks Silk's save or the request."""
    runtime = active_runtime()
    resource = runtime.resource.attributes if runtime is not None else {}
    state = current_request.get()
    fingerprints = sorted(state.repeats) if state is not None else []
    link = ProfileLink(
        silk_request_id=silk_request_id,
        trace_id=trace_id_hex(trace.get_current_span()),
        node=str(resource.get("host.name", ""))[:_MAX_CHARS],
        worker=str(resource.get("service.instance.id", ""))[:_MAX_CHARS],
        route=route_of(request)[:_MAX_CHARS],
        fingerprints=f" {' '.join(fingerprints)} " if fingerprints else "",
    )
    using = router.db_for_write(ProfileLink)
    try:
        # A savepoint: Silk saves inside its own transaction, which must survive our error.
        with transaction.atomic(using=using):
            link.save(using=using, force_insert=True)
    except DatabaseError as exc:
        logger.warning(
            "Silk profile %s was not linked to its trace: %s (run `manage.py migrate telemetry`?)",
            silk_request_id,
            exc,
        )


def connect() -> None:
    from silk.models import Request

    post_save.connect(_on_request_saved, sender=Request, dispatch_uid="fleetscope-silk-links")


# -- lookups ----------------------------------------------------------------------------


def _with_silk_rows(links: QuerySet[ProfileLink]) -> list[ProfileLink]:
    """The newest links first, keeping those whose Silk request still exists."""
    from silk.models import Request

    candidates = list(links.order_by("-created")[:LOOKBACK])
    # Two queries rather than a join: Silk's tables may live in another database.
    alive = set(
        Request.objects.filter(pk__in=[c.silk_request_id for c in candidates]).values_list(
            "pk", flat=True
        )
    )
    return [c for c in candidates if c.silk_request_id in alive]


def profiles_of_trace(trace_id: str) -> list[ProfileLink]:
    return _with_silk_rows(ProfileLink.objects.filter(trace_id=trace_id))


def latest_of_route(route: str) -> ProfileLink | None:
    found = _with_silk_rows(ProfileLink.objects.filter(route=route))
    return found[0] if found else None


def latest_with_fingerprint(fingerprint: str) -> ProfileLink | None:
    found = _with_silk_rows(ProfileLink.objects.filter(fingerprints__contains=f" {fingerprint} "))
    return found[0] if found else None
