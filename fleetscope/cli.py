"""The `fleetscope` command's entry point; it runs without the [cli] extra to say what to install.

A web node installs `fleetscope` for the `telemetry` app alone: the command-line tools and
their dependencies (typer, rich, PyYAML, httpx, grafana-foundation-sdk) come with
`pip install "fleetscope[cli]"`, and `fleetscope` says so in one line where they are missing.
"""

from __future__ import annotations

import sys

# Top-level modules of the [cli] extra's packages: one of them missing means the extra is.
CLI_MODULES = frozenset({"typer", "click", "rich", "yaml", "httpx", "grafana_foundation_sdk"})
INSTALL_LINE = (
    'fleetscope: the command-line tools need the [cli] extra: pip install "fleetscope[cli]"'
)


def main() -> None:
    try:
        from fleetscope.commands import main as run
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in CLI_MODULES:
            raise
        print(f"{INSTALL_LINE} ({missing} is not installed)", file=sys.stderr)
        sys.exit(1)
    run()


if __name__ == "__main__":
    main()
