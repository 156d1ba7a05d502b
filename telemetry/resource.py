"""Node identity (DESIGN.md): the resource attributes every span and metric carries."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource

from .conf import Config


def instance_id(node: str) -> str:
    """Unique per worker process and readable: `node-2/4711`."""
    return f"{node}/{os.getpid()}"


def build_resource(config: Config) -> Resource:
    attributes: dict[str, str | int] = {
        "service.name": config.service_name,
        "host.name": config.node,
        "service.instance.id": instance_id(config.node),
        "process.pid": os.getpid(),
    }
    if config.environment:
        attributes["deployment.environment.name"] = config.environment
    if config.service_version:
        attributes["service.version"] = config.service_version
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; ours win where both set a key.
    return Resource.create(attributes)
