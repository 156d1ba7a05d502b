"""One run of Django's own tests, with or without Fleetscope; writes each test's outcome as JSON.

runner.py starts it as `python driver.py --mode M --tests-dir D --result F LABEL...` with the
extracted Django tests/ folder D as working directory. It does what runtests.py's __main__
block does (temporary TMPDIR, settings module, runtests.django_tests()), but imports
runtests.py as a module first so that, in the instrumented run, Fleetscope can be added to
the lists runtests.py installs (ALWAYS_INSTALLED_APPS, ALWAYS_MIDDLEWARE) without editing
Django's files.
"""

from __future__ import annotations

import argparse
import atexit
import inspect
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _set_import_path(tests_dir: Path) -> None:
    """Django's test apps first (as for runtests.py), then this repository; not this folder."""
    here = str(Path(__file__).resolve().parent)
    rest = [p for p in sys.path if p != here]
    sys.path[:] = [str(tests_dir), str(REPO), *rest]


def enable_fleetscope(runtests: ModuleType) -> None:
    """Install Fleetscope as a user does: the app, and its middleware first."""
    from tests.transparency.config import TELEMETRY_APP, TELEMETRY_MIDDLEWARE

    apps: list[str] = runtests.ALWAYS_INSTALLED_APPS
    middleware: list[str] = runtests.ALWAYS_MIDDLEWARE
    if TELEMETRY_APP not in apps:
        apps.append(TELEMETRY_APP)
    if middleware[:1] != [TELEMETRY_MIDDLEWARE]:
        middleware.insert(0, TELEMETRY_MIDDLEWARE)


def run_django_tests(runtests: ModuleType, labels: list[str], parallel: int) -> int:
    options: dict[str, Any] = {
        "verbosity": 2,
        "interactive": False,
        "failfast": False,
        "keepdb": False,
        "reverse": False,
        "test_labels": labels,
        "debug_sql": False,
        "parallel": parallel,
        "tags": None,
        "exclude_tags": None,
        "test_name_patterns": None,
        "start_at": None,
        "start_after": None,
        "pdb": False,
        "buffer": False,
        "timing": False,
        "shuffle": False,
        "durations": None,
    }
    # django_tests() gains parameters across Django versions (durations: 5.0).
    accepted = inspect.signature(runtests.django_tests).parameters
    return int(runtests.django_tests(**{k: v for k, v in options.items() if k in accepted}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True, choices=("baseline", "instrumented"))
    parser.add_argument("--tests-dir", required=True, type=Path)
    parser.add_argument("--result", required=True, type=Path)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("labels", nargs="+")
    args = parser.parse_args(argv)

    _set_import_path(args.tests_dir.resolve())
    from tests.transparency.config import INSTRUMENTED, MODE_ENV, SETTINGS_MODULE

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ[MODE_ENV] = args.mode
    # As runtests.py's __main__: a private TMPDIR, inherited by the worker processes.
    tmpdir = tempfile.mkdtemp(prefix="django_")
    tempfile.tempdir = os.environ["TMPDIR"] = tmpdir
    atexit.register(shutil.rmtree, tmpdir, True)
    parallel = args.parallel
    # Workers inherit the instrumented app lists by fork (what gunicorn does too).
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork")
    else:
        parallel = 1

    started = time.time()
    import runtests  # the extracted Django tests/runtests.py

    if args.mode == INSTRUMENTED:
        enable_fleetscope(runtests)
    from tests.transparency.django_runner import RECORD

    failures = run_django_tests(runtests, args.labels, parallel)
    finished = time.time()
    payload = {
        "mode": args.mode,
        "pid": os.getpid(),
        "labels": args.labels,
        "parallel": parallel,
        "started": started,
        "first_test_start": RECORD.first_test_start,
        "last_test_end": RECORD.last_test_end,
        "finished": finished,
        "failures": failures,
        "first_request_status": RECORD.first_request_status,
        "installed_apps": list(runtests.ALWAYS_INSTALLED_APPS),
        "middleware": list(runtests.ALWAYS_MIDDLEWARE),
        "outcomes": RECORD.outcomes,
        "probes": RECORD.probes,
        "batches": sorted(RECORD.batches, key=lambda b: -b["seconds"]),
    }
    partial = args.result.with_suffix(".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(partial, args.result)
    # What follows (interpreter exit, atexit hooks, exporter shutdown) is the exit delay.
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
