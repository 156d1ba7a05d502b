"""Django's own test suite for the installed Django version, from its source distribution.

The sdist is downloaded once into a cache directory and its `tests/` extracted next to it;
both are reused while present, so only the first run needs the package index.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from fleetscope.errors import FleetscopeError

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "fleetscope" / "django-sdist"
_COMPLETE = ".complete"  # written last: a tree without it is a half-extracted leftover


def installed_django_version() -> str:
    return version("django")


def find_sdist(django_version: str, cache_dir: Path) -> Path | None:
    for name in (f"django-{django_version}.tar.gz", f"Django-{django_version}.tar.gz"):
        candidate = cache_dir / name
        if candidate.is_file():
            return candidate
    return None


def download_sdist(django_version: str, cache_dir: Path) -> Path:
    """`pip download django==<version> --no-binary :all: --no-deps` into cache_dir."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("pip") is not None:
        pip = [sys.executable, "-m", "pip"]
    elif on_path := shutil.which("pip3") or shutil.which("pip"):
        pip = [on_path]
    else:
        raise FleetscopeError(
            "Fetching Django's test suite needs pip, and this environment has none: run "
            f"`{sys.executable} -m ensurepip`, or put django-{django_version}.tar.gz "
            f"(the sdist) into {cache_dir}."
        )
    command = [
        *pip,
        "download",
        f"django=={django_version}",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(cache_dir),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    found = find_sdist(django_version, cache_dir)
    if completed.returncode != 0 or found is None:
        raise FleetscopeError(
            f"Could not download the Django {django_version} sdist ({' '.join(command)}):\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return found


def extract_tests(sdist: Path, django_version: str, cache_dir: Path) -> Path:
    """The sdist's `tests/` folder (runtests.py and the test apps), extracted once."""
    target = cache_dir / f"django-{django_version}-tests"
    tests = target / "tests"
    if (target / _COMPLETE).is_file() and (tests / "runtests.py").is_file():
        return tests
    shutil.rmtree(target, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".django-{django_version}-", dir=cache_dir))
    try:
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if _is_tests_member(m.name)]
            if not members:
                raise FleetscopeError(f"{sdist} has no tests/ folder")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members
                archive.extractall(staging, members=members, filter="data")
            else:
                archive.extractall(staging, members=members)
        (root,) = {Path(m.name).parts[0] for m in members}
        os.replace(staging / root, target)
        (target / _COMPLETE).write_text(f"{sdist.name}\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tests


def _is_tests_member(name: str) -> bool:
    parts = Path(name).parts
    return len(parts) >= 2 and parts[1] == "tests"


def django_tests_dir(cache_dir: Path = DEFAULT_CACHE_DIR) -> tuple[str, Path]:
    """(installed Django version, its extracted tests/ folder), downloading on first use."""
    django_version = installed_django_version()
    sdist = find_sdist(django_version, cache_dir) or download_sdist(django_version, cache_dir)
    return django_version, extract_tests(sdist, django_version, cache_dir)
