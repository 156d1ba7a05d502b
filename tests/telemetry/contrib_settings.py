"""Test settings with request instrumentation delegated to the contrib package."""

from tests.settings import *  # noqa: F403

TELEMETRY = {
    "EXPORT": False,
    "REQUEST_INSTRUMENTATION": "opentelemetry-instrumentation-django",
    "TRACES_SAMPLE_RATE": 1.0,
}
