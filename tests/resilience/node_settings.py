"""Settings of the resilience suite's gunicorn nodes: the integration node, with a small span
queue so that an outage overflows it within seconds."""

from tests.integration.node_settings import *  # noqa: F403
from tests.integration.node_settings import TELEMETRY as _BASE

from .node import SPAN_QUEUE_SIZE

TELEMETRY = {**_BASE, "SERVICE_NAME": "resilience", "SPAN_QUEUE_SIZE": SPAN_QUEUE_SIZE}
