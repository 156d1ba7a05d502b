"""`manage.py telemetry_silk_gc`: keep Silk's tables bounded; for a cron job or systemd timer."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Delete the oldest Silk profiles beyond SILKY_MAX_RECORDED_REQUESTS (or "
        "--max-requests) and the Fleetscope links that pointed to them."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-m",
            "--max-requests",
            type=int,
            default=None,
            help="Profiles to keep (default: SILKY_MAX_RECORDED_REQUESTS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not apps.is_installed("silk"):
            raise CommandError(
                "django-silk is not installed here: add 'silk' to "
                "INSTALLED_APPS (see docs/silk.md) or drop this timer."
            )
        limit = options["max_requests"]
        if limit is not None and limit < 0:
            raise CommandError(
                f"--max-requests {limit}: give the number of profiles to keep (0 deletes them all)."
            )
        from telemetry.silk.gc import collect_silk_garbage

        result = collect_silk_garbage(limit)
        self.stdout.write(
            f"Silk profiles: {result.requests_after} kept of {result.requests_before} "
            f"(limit {result.limit}); {result.links_removed} trace link(s) removed."
        )
