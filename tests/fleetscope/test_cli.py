"""`fleetscope` without the [cli] extra says in one line what to install, never a traceback."""

import subprocess
import sys

import pytest

from fleetscope.cli import CLI_MODULES

# Runs `python -m fleetscope` as if the module were not installed.
WITHOUT = (
    "import runpy, sys; sys.modules[{module!r}] = None; "
    "runpy.run_module('fleetscope', run_name='__main__')"
)


@pytest.mark.parametrize("module", ["typer", "rich", "yaml"])
def test_without_the_cli_extra_one_line_says_what_to_install(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT.format(module=module), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert 'pip install "fleetscope[cli]"' in line
    assert f"({module} is not installed)" in line


def test_a_missing_module_outside_the_extra_is_not_blamed_on_it() -> None:
    """A bug (an import of something no extra brings) still shows its traceback."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT.format(module="fleetscope.errors")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr
    assert "fleetscope[cli]" not in result.stderr
    assert "fleetscope.errors" not in CLI_MODULES
