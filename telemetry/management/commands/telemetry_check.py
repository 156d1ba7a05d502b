"""`manage.py telemetry_check`: the effective configuration, where each value came from, and
whether the collector answers (probed exactly as export sends: same protocol, URL, headers)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from telemetry.conf import ExportTarget, get_config
from telemetry.resource import build_resource
from telemetry.runtime import get_runtime
from telemetry.transport import EndpointError, make_sender

PROBE_TIMEOUT_SECONDS = 3.0


class Command(BaseCommand):
    help = "Print Fleetscope's effective telemetry configuration and probe the OTLP endpoints."

    def handle(self, *args: Any, **options: Any) -> None:
        config = get_config()
        runtime = get_runtime()
        resource = build_resource(config)
        source = config.sources
        rows: list[tuple[str, object]] = [
            ("service.name", f"{config.service_name}  (from {source['service.name']})"),
            ("host.name", f"{config.node}  (from {source['host.name']})"),
            ("service.instance.id", resource.attributes.get("service.instance.id")),
        ]
        for target, exporting in (
            (config.traces, config.export_traces),
            (config.metrics, config.export_metrics),
        ):
            origin = dict(target.sources)
            rows.append(
                (
                    f"{target.signal} export",
                    f"{target.protocol} {target.url}  (from {origin['endpoint']})"
                    if exporting
                    else "off",
                )
            )
            if target.headers:
                rows.append((f"{target.signal} headers", ", ".join(target.header_names)))
        rows += [
            ("sampler", f"{config.sampler} ({config.sampler_arg})  (from {source['sampler']})"),
            (
                "metric export interval",
                f"{config.metric_export_interval_ms} ms  (from {source['metric export interval']})",
            ),
            ("request instrumentation", config["REQUEST_INSTRUMENTATION"]),
            ("slow query threshold", f"{config['SLOW_QUERY_MS']} ms"),
            ("N+1 threshold", config["N_PLUS_ONE_THRESHOLD"]),
            ("max fingerprints", config["MAX_FINGERPRINTS"]),
            ("exporting in this process", runtime.worker is not None),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self.stdout.write(f"{name:<{width}}  {value}")
        failures = []
        for target in (config.traces, config.metrics):
            reachable, detail = probe(target)  # also when export is off: is it reachable?
            self.stdout.write(f"{'collector (' + target.signal + ')':<{width}}  {detail}")
            if not reachable:
                failures.append(f"{target.signal}: {detail}")
        if failures:
            raise CommandError("The OTLP endpoint does not answer: " + "; ".join(failures))


def probe(target: ExportTarget) -> tuple[bool, str]:
    """An empty export request is the cheapest one a collector must answer."""
    try:
        sender = make_sender(target)
    except EndpointError as exc:
        return False, str(exc)
    try:
        result = sender.send(b"", PROBE_TIMEOUT_SECONDS)
    finally:
        sender.close()
    if result.ok:
        return True, f"answers ({target.protocol} {target.url})"
    return False, f"unreachable: {result.detail} ({target.protocol} {target.url})"
