"""The supported-version matrix: unit tests on every Python x Django pair, the integration
suite on the oldest and the newest pair (docs/development.md).

`make test-matrix` runs every session, three at a time (scripts/test_matrix.py); one pair
alone: `.venv/bin/nox -s "unit(3.13-django6.1)"`. Interpreters are looked up the way a CI
script would (`uv python find`, PATH, pyenv) and never downloaded.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

# (Python, Django): Django 6.x needs Python >= 3.12. Keep in step with pyproject.toml's
# classifiers and docs/install.md.
UNIT_PAIRS = [
    ("3.11", "4.2"),
    ("3.12", "4.2"),
    ("3.13", "4.2"),
    ("3.11", "5.2"),
    ("3.12", "5.2"),
    ("3.13", "5.2"),
    ("3.12", "6.0"),
    ("3.13", "6.0"),
    ("3.12", "6.1"),
    ("3.13", "6.1"),
]
INTEGRATION_PAIRS = [("3.13", "6.1"), ("3.11", "4.2")]
PYTHONS = sorted({python for python, _ in UNIT_PAIRS + INTEGRATION_PAIRS})

# Suites that are not unit tests: the real stack, the resilience suite, and the transparency
# job (`python -m tests.transparency`, which pytest does not collect).
NOT_UNIT = ["tests/integration", "tests/resilience"]
# Counts what locust gets through gunicorn in 6 s: with sessions side by side on two cores
# it falls under its floor on any version (0-8 requests where 57-80 come alone). It runs in
# `make test`, and the integration sessions run the demo under locust on both Django ends.
CONTENDED = ["tests/demo_fleet/test_load.py::test_locust_mix_hits_only_valid_routes"]

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.reuse_existing_virtualenvs = True


def _uv() -> str | None:
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    return find_uv_bin()


def _is_python(executable: str, version: str) -> bool:
    """pyenv's shims exist for versions that are installed but not selected: run it to know."""
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def find_python(version: str) -> str | None:
    """An interpreter for `version` ("3.12"): uv's own search, then PATH, then pyenv."""
    candidates: list[str] = []
    uv = _uv()
    if uv:
        found = subprocess.run(
            [uv, "python", "find", "--system", "--no-project", "--no-python-downloads", version],
            capture_output=True,
            text=True,
        )
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(found.stdout.strip())
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [
        str(path / "bin" / f"python{version}")
        for path in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True)
    ]
    return next((c for c in candidates if _is_python(c, version)), None)


def _put_pythons_on_path() -> None:
    """Nox and uv then find each version by its plain name, first on PATH."""
    directories: list[str] = []
    for version in PYTHONS:
        found = find_python(version)
        if found is None:
            print(
                f"noxfile: Python {version} not found (uv python find, PATH, pyenv): install it "
                f"(`pyenv install {version}`, `uv python install {version}`, or the "
                f"distribution's python{version}); its sessions fail until then.",
                file=sys.stderr,
            )
            continue
        directory = str(Path(found).parent)
        if directory not in directories:
            directories.append(directory)
    os.environ["PATH"] = os.pathsep.join([*directories, os.environ.get("PATH", "")])


_put_pythons_on_path()


@contextmanager
def _install_lock() -> Iterator[None]:
    """Sessions run side by side; setuptools' editable build writes into the source tree."""
    lock_path = ROOT / ".nox" / "install.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(session: nox.Session, django: str) -> None:
    with _install_lock():
        # Wagtail for tests/telemetry/test_wagtail_hooks.py (a dev dependency, not in [test]):
        # the newest release that supports the pair's Django (7.x on 4.2, 8.x from 5.2).
        session.install("-e", ".[test]", f"Django~={django}.0", "wagtail")
    session.run(
        "python",
        "-c",
        "import sys, django; v = '%d.%d' % django.VERSION[:2]; "
        f"print('Python', sys.version.split()[0], 'Django', django.__version__); "
        f"sys.exit(v != {django!r})",
    )


def _pytest(session: nox.Session, *args: str) -> None:
    tmp = Path(session.create_tmp())
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp / 'pytest'}",
        *args,
        *session.posargs,
        env={"HYPOTHESIS_STORAGE_DIRECTORY": str(tmp / "hypothesis")},
    )


def _params(pairs: list[tuple[str, str]]) -> list[nox.param]:
    return [nox.param(python, django, id=f"{python}-django{django}") for python, django in pairs]


@nox.session(tags=["unit"])
@nox.parametrize(("python", "django"), _params(UNIT_PAIRS))
def unit(session: nox.Session, django: str) -> None:
    """Every test but the integration and resilience suites, on one Python/Django pair."""
    _install(session, django)
    _pytest(
        session,
        *(f"--ignore={path}" for path in NOT_UNIT),
        *(f"--deselect={test}" for test in CONTENDED),
    )


@nox.session(tags=["integration"])
@nox.parametrize(("python", "django"), _params(INTEGRATION_PAIRS))
def integration(session: nox.Session, django: str) -> None:
    """The real stack (collector, Prometheus, PostgreSQL, Redis, gunicorn) on one pair."""
    _install(session, django)
    _pytest(session, "tests/integration")
