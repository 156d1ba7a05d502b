"""Which loopback ports the demo listens on; a clear error naming the option when one is taken."""

from __future__ import annotations

from dataclasses import dataclass

from fleetscope.collector.process import free_port, port_in_use
from fleetscope.collector.run import CollectorPorts
from fleetscope.errors import FleetscopeError

HOST = "127.0.0.1"

# CollectorPorts field -> (what listens there, the `fleetscope demo up` option that moves it).
COLLECTOR_PORT_OPTIONS: dict[str, tuple[str, str]] = {
    "otlp_grpc": ("the collector's OTLP/gRPC receiver", "--otlp-grpc-port"),
    "otlp_http": ("the collector's OTLP/HTTP receiver", "--otlp-http-port"),
    "health": ("the collector's health check", "--collector-health-port"),
    "self_metrics": ("the collector's own metrics", "--collector-metrics-port"),
    "prometheus_exporter": ("the collector's Prometheus exporter", "--collector-exporter-port"),
    "pprof": ("the collector's pprof extension", "--collector-pprof-port"),
    "zpages": ("the collector's zpages extension", "--collector-zpages-port"),
}


@dataclass(frozen=True)
class PortUse:
    port: int
    what: str
    option: str


@dataclass(frozen=True)
class PortPlan:
    collector: CollectorPorts
    prometheus: int
    nodes: tuple[int, ...]
    # The load balancer's front and its Prometheus exporter (None without a balancer).
    balancer: int | None = None
    balancer_metrics: int | None = None

    def uses(self) -> list[PortUse]:
        """Every port of the plan with what uses it and the option that changes it."""
        result = [
            PortUse(getattr(self.collector, name), what, option)
            for name, (what, option) in COLLECTOR_PORT_OPTIONS.items()
        ]
        result.append(PortUse(self.prometheus, "Prometheus", "--prometheus-port"))
        result += [
            PortUse(port, f"node-{i}", "--base-port") for i, port in enumerate(self.nodes, 1)
        ]
        if self.balancer is not None:
            result.append(PortUse(self.balancer, "the load balancer", "--balancer-port"))
        if self.balancer_metrics is not None:
            result.append(
                PortUse(
                    self.balancer_metrics,
                    "the load balancer's Prometheus exporter",
                    "--balancer-metrics-port",
                )
            )
        return result


def fixed_plan(
    collector: CollectorPorts,
    prometheus: int,
    base_port: int,
    nodes: int,
    balancer: tuple[int, int] | None = None,
) -> PortPlan:
    """DESIGN.md's defaults (or what the options say): node i listens on base_port + i - 1;
    `balancer` is (front, exporter) when the nodes run behind the load balancer."""
    front, metrics = balancer if balancer is not None else (None, None)
    return PortPlan(
        collector, prometheus, tuple(base_port + i for i in range(nodes)), front, metrics
    )


def free_plan(nodes: int, balancer: bool = False) -> PortPlan:
    """Ports the OS reports free right now, all distinct."""
    taken: set[int] = set()

    def pick() -> int:
        while True:
            port = free_port(HOST)
            if port not in taken:
                taken.add(port)
                return port

    collector = CollectorPorts(
        otlp_grpc=pick(),
        otlp_http=pick(),
        health=pick(),
        self_metrics=pick(),
        prometheus_exporter=pick(),
        pprof=pick(),
        zpages=pick(),
    )
    plan = PortPlan(collector, pick(), tuple(pick() for _ in range(nodes)))
    if not balancer:
        return plan
    return PortPlan(plan.collector, plan.prometheus, plan.nodes, pick(), pick())


def check_plan(plan: PortPlan) -> None:
    """Raise a FleetscopeError naming the first port that is out of range, doubled or taken."""
    seen: dict[int, PortUse] = {}
    for use in plan.uses():
        if not 1 <= use.port <= 65535:
            raise FleetscopeError(
                f"Port {use.port} for {use.what} is not a TCP port; change {use.option}."
            )
        if use.port in seen:
            other = seen[use.port]
            raise FleetscopeError(
                f"Port {use.port} is chosen for both {other.what} and {use.what}; change "
                f"{use.option} or {other.option}, or pass --free-ports."
            )
        seen[use.port] = use
    for use in plan.uses():
        if port_in_use(use.port, HOST):
            raise FleetscopeError(
                f"Port {use.port} on {HOST} ({use.what}) is already in use. Stop what listens "
                f"there, choose another port with {use.option}, or pass --free-ports to let the "
                "demo pick free ports."
            )
