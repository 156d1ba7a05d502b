"""Deploy annotations (`fleetscope dashboards annotate`): a marker on every Fleetscope
dashboard at the moment a version was deployed, next to the "by version" panels."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .panels import DEPLOY_TAG
from .push import GrafanaClient, PushError


@dataclass(frozen=True)
class AnnotationResult:
    id: int
    text: str
    tags: list[str]
    time_ms: int


def deploy_tags(version: str, service: str | None) -> list[str]:
    """The deploy tag the dashboards filter on, plus `version:` and `service:` for search."""
    tags = [DEPLOY_TAG, f"version:{version}"]
    if service:
        tags.append(f"service:{service}")
    return tags


def annotate_deploy(
    url: str,
    token: str,
    version: str,
    *,
    service: str | None = None,
    text: str | None = None,
    at: float | None = None,
    timeout: float = 10.0,
) -> AnnotationResult:
    """Posts one deploy annotation through Grafana's HTTP API (`POST /api/annotations`)."""
    version = version.strip()
    if not version:
        raise PushError("--version is empty: pass the deployed service.version, e.g. 1.4.2.")
    tags = deploy_tags(version, service)
    message = text or (f"Deployed {service} {version}" if service else f"Deployed {version}")
    time_ms = int((time.time() if at is None else at) * 1000)
    with GrafanaClient(url, token, timeout=timeout) as client:
        answer = client.create_annotation(message, tags, time_ms)
    return AnnotationResult(int(answer.get("id", 0)), message, tags, time_ms)
