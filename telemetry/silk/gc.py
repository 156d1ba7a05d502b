"""Bounded Silk storage: Silk's own garbage collection, then the links it left without a profile.

Meant for a cron job or systemd timer (``manage.py telemetry_silk_gc``), with
SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0 so that Silk never collects inside a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO

from django.core.management import call_command

from .models import ProfileLink

_DELETE_BATCH = 500


@dataclass(frozen=True)
class SilkGcResult:
    limit: int
    requests_before: int
    requests_after: int
    links_removed: int


def collect_silk_garbage(max_requests: int | None = None) -> SilkGcResult:
    """Keep the newest `max_requests` Silk requests (default SILKY_MAX_RECORDED_REQUESTS)."""
    from silk.config import SilkyConfig
    from silk.models import Request

    limit = int(SilkyConfig().SILKY_MAX_RECORDED_REQUESTS if max_requests is None else max_requests)
    before = Request.objects.count()
    call_command("silk_request_garbage_collect", max_requests=limit, verbosity=0, stdout=StringIO())
    # Silk's tables may live in another database: compare ids in Python, not in a join.
    alive = set(Request.objects.values_list("pk", flat=True))
    orphans = [pk for pk in ProfileLink.objects.values_list("pk", flat=True) if pk not in alive]
    for start in range(0, len(orphans), _DELETE_BATCH):
        ProfileLink.objects.filter(pk__in=orphans[start : start + _DELETE_BATCH]).delete()
    return SilkGcResult(limit, before, Request.objects.count(), len(orphans))
