"""``seed_shop``: fill the demo shop with deterministic data, sized to make the slow report slow."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, transaction

from fleetscope.demo.shop import seeding


class Command(BaseCommand):
    help = (
        "Fill the demo shop with deterministic data. Skips when data is already present "
        "unless --flush is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        defaults = seeding.SeedSizes()
        parser.add_argument("--categories", type=int, default=defaults.categories)
        parser.add_argument("--products", type=int, default=defaults.products)
        parser.add_argument("--customers", type=int, default=defaults.customers)
        parser.add_argument(
            "--reviews",
            type=int,
            default=defaults.reviews,
            help="Rows in the review table the slow report scans (default: %(default)s).",
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default: 42).")
        parser.add_argument(
            "--flush", action="store_true", help="Delete existing shop data first and reseed."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        sizes = seeding.SeedSizes(
            categories=options["categories"],
            products=options["products"],
            customers=options["customers"],
            reviews=options["reviews"],
        )
        _check_sizes(sizes)
        using: str = options["database"]
        verbose = options["verbosity"] >= 1
        started = time.perf_counter()
        with transaction.atomic(using=using):
            if seeding.has_data(using):
                if not options["flush"]:
                    if verbose:
                        self.stdout.write(
                            "Shop data already present; nothing to do (use --flush to reseed)."
                        )
                    return
                seeding.flush(using)
                if verbose:
                    self.stdout.write("Flushed existing shop data.")
            seeding.seed(sizes, options["seed"], using, self._progress if verbose else _silent)
        if verbose:
            elapsed = time.perf_counter() - started
            self.stdout.write(self.style.SUCCESS(f"Seeded the shop in {elapsed:.1f} s."))

    def _progress(self, label: str, done: int, total: int) -> None:
        self.stdout.write(f"  {label}: {done}/{total}")
        self.stdout.flush()


def _silent(label: str, done: int, total: int) -> None:
    return None


def _check_sizes(sizes: seeding.SeedSizes) -> None:
    for name in ("categories", "products", "customers"):
        if getattr(sizes, name) < 1:
            raise CommandError(f"--{name} must be at least 1.")
    if sizes.reviews < 0:
        raise CommandError("--reviews must be 0 or more.")
