"""Settings: the demo shop plus one test-only view reporting Silk's hold on the SQL compiler.

Used by tests/integration/test_silk_asgi.py under uvicorn.
"""

from fleetscope.demo.settings import *  # noqa: F403

ROOT_URLCONF = "tests.integration.silk_probe_urls"
