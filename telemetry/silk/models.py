"""The Silk sub-app's one table: which trace, node, worker and route each Silk profile belongs to.

No foreign key to Silk's tables: Silk is optional for the app. Links whose Silk request
was deleted are skipped by the lookups and removed by ``manage.py telemetry_silk_gc``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ProfileLink(models.Model):
    """One Silk request (`silk_request_id`) and the request's place in the fleet."""

    silk_request_id = models.CharField(max_length=36, primary_key=True)
    trace_id = models.CharField(max_length=32, db_index=True, blank=True)  # 32 hex, "" if none
    node = models.CharField(max_length=255)  # host.name
    worker = models.CharField(max_length=255)  # service.instance.id
    route = models.CharField(max_length=255)  # http.route
    # Space-separated, with a space at each end, so " <fingerprint> " finds whole entries.
    fingerprints = models.TextField(blank=True, default="")
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # The name it had when it belonged to the `telemetry` app: upgrades keep their data.
        db_table = "telemetry_profilelink"
        indexes = [models.Index(fields=["route", "created"], name="telemetry_profile_route")]

    def __str__(self) -> str:
        return f"Silk {self.silk_request_id} ({self.route} on {self.worker}, trace {self.trace_id})"

    def fingerprint_list(self) -> list[str]:
        return self.fingerprints.split()
