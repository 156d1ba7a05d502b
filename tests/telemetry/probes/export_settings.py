"""Test settings with export on (the endpoint comes from the environment)."""

from tests.settings import *  # noqa: F403

TELEMETRY = {"EXPORT": True, "PROCESS_METRICS": False, "EXIT_FLUSH_TIMEOUT_MS": 1000}
