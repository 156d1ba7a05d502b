"""`manage.py run_queries N`: runs one distinctive statement N times, like a cron job would."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection


class Command(BaseCommand):
    help = "Run `SELECT COUNT(*) FROM testapp_author WHERE id > %s` N times."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("times", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            for i in range(options["times"]):
                cursor.execute("SELECT COUNT(*) FROM testapp_author WHERE id > %s", [i])
