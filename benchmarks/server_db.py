"""The benchmark server's SQLite database: migrated and seeded once, copied for every server start.

`python -m benchmarks.server_db PATH` builds it (every app's tables, the demo shop's data at
a benchmark size, the benchapp's ten items); `build_template` runs that in a subprocess so
the harness itself never loads Django settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The demo's catalogue at its default size, with a tenth of its reviews: enough for
# realistic list pages, quick to seed.
SHOP_SIZES = {"categories": 20, "products": 2000, "customers": 500, "reviews": 20_000}


def build_template(path: Path, timeout: float = 300.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.server_settings",
        "FLEETSCOPE_BENCH_SETUP": "migrate",
        "FLEETSCOPE_BENCH_DB": str(path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.server_db", str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the benchmark database failed:\n{result.stderr[-3000:]}")
    return path


def copy_for_run(template: Path, path: Path) -> Path:
    """A fresh copy per server start: Silk's writes never carry over to the next run."""
    shutil.copyfile(template, path)
    return path


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from benchmarks.benchapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)
    call_command("seed_shop", verbosity=0, **SHOP_SIZES)
    Item.objects.bulk_create(Item(name=f"item {i}", price=i) for i in range(1, 11))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m benchmarks.server_db PATH")
    main()
