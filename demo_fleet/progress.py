"""What `fleetscope demo up` shows while it works: a status line per component, then the load.

On a terminal it is one live rich display; elsewhere (CI logs, pipes) each change is one line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "starting": "yellow",
    "migrating": "yellow",
    "seeding": "yellow",
    "settling": "yellow",
    "ready": "green",
    "running": "green",
    "done": "cyan",
    "stopping": "yellow",
    "stopped": "dim",
    "failed": "bold red",
}


@dataclass
class ComponentLine:
    name: str
    status: str
    pid: int | None = None
    endpoint: str = ""
    note: str = ""


@dataclass
class NodeLoad:
    node: str
    users: int
    sent: int | None = None  # by its own locust, or by the balancer when there is one
    failures: int | None = None
    seen: int | None = None
    workers: int | None = None
    weight: int | None = None


@dataclass
class BalancedLoad:
    """One locust loading the balancer, which spreads the requests over the nodes."""

    url: str
    users: int
    sent: int | None = None
    failures: int | None = None


@dataclass
class LoadProgress:
    started: float
    duration_s: int | None
    nodes: list[NodeLoad] = field(default_factory=list)
    ended: float | None = None
    balancer: BalancedLoad | None = None

    def elapsed(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else (now or time.time())
        return max(0.0, end - self.started)


class DemoDisplay:
    """Collects status changes and renders them; use as a context manager around `up`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.components: dict[str, ComponentLine] = {}
        self.load: LoadProgress | None = None
        self._live: Live | None = None

    # -- updates ---------------------------------------------------------------------

    def component(
        self,
        name: str,
        status: str,
        pid: int | None = None,
        endpoint: str = "",
        note: str = "",
    ) -> None:
        previous = self.components.get(name)
        line = ComponentLine(
            name,
            status,
            pid if pid is not None else (previous.pid if previous else None),
            endpoint or (previous.endpoint if previous else ""),
            note,
        )
        self.components[name] = line
        if self._live is None:
            self.console.print(_plain_line(line), highlight=False)
        self.refresh()

    def start_load(self, progress: LoadProgress) -> None:
        self.load = progress
        if self._live is None:
            length = f"{progress.duration_s} s" if progress.duration_s else "until Ctrl-C"
            if progress.balancer is not None:
                workers = ", ".join(f"{n.node}: {n.workers}" for n in progress.nodes)
                self.console.print(
                    f"load: {progress.balancer.users} locust users through the balancer "
                    f"{progress.balancer.url} (workers {workers}); {length}",
                    highlight=False,
                )
            else:
                users = ", ".join(f"{n.node}: {n.users}" for n in progress.nodes)
                self.console.print(f"load: locust users per node {users}; {length}")
        self.refresh()

    def update_load(self) -> None:
        """Call after changing the counts in `self.load`; only the live display shows them."""
        self.refresh()

    def end_load(self, summary: bool = True) -> None:
        if self.load is None:
            return
        if self.load.ended is None:
            self.load.ended = time.time()
        if self._live is None and summary and self.load.balancer is not None:
            self._print_balanced_summary(self.load.balancer, self.load.nodes)
        elif self._live is None and summary:
            for node in self.load.nodes:
                self.console.print(
                    f"load: {node.node} sent {_count(node.sent)} requests "
                    f"({_count(node.failures)} failed), Prometheus saw {_count(node.seen)}",
                    highlight=False,
                )
        self.refresh()

    def _print_balanced_summary(self, load: BalancedLoad, nodes: list[NodeLoad]) -> None:
        self.console.print(
            f"load: locust sent {_count(load.sent)} requests ({_count(load.failures)} failed) "
            f"through the balancer; Prometheus saw {_count(_total(n.seen for n in nodes))}",
            highlight=False,
        )
        for node in nodes:
            self.console.print(
                f"load: {node.node} ({node.workers} workers) got {_count(node.sent)} from the "
                f"balancer, Prometheus saw {_count(node.seen)}",
                highlight=False,
            )

    def note(self, message: str) -> None:
        """A one-off message above the live display."""
        self.console.print(message, highlight=False)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)

    # -- rendering -------------------------------------------------------------------

    def render(self) -> RenderableType:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("component", "status", "pid", "endpoint", ""):
            table.add_column(column)
        for line in self.components.values():
            table.add_row(
                line.name,
                Text(line.status, style=STATUS_STYLES.get(line.status, "")),
                str(line.pid) if line.pid else "",
                line.endpoint,
                Text(line.note, style="dim"),
            )
        parts: list[RenderableType] = [table]
        if self.load is not None:
            parts.append(self._render_load(self.load))
        return Group(*parts)

    def _render_load(self, load: LoadProgress) -> RenderableType:
        elapsed = load.elapsed()
        if load.duration_s:
            remaining = max(0.0, load.duration_s - elapsed)
            header = Text(
                f"load: {elapsed:4.0f} s elapsed, {remaining:4.0f} s remaining", style="bold"
            )
            bar: RenderableType = ProgressBar(
                total=float(load.duration_s), completed=min(elapsed, load.duration_s), width=50
            )
        else:
            header = Text(f"load: {elapsed:4.0f} s elapsed (Ctrl-C stops)", style="bold")
            bar = Text("")
        if load.balancer is not None:
            return Group(Text(""), header, bar, _balanced_table(load.balancer, load.nodes))
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("node", "users", "sent (locust)", "failed", "in Prometheus"):
            table.add_column(column, justify="right" if column != "node" else "left")
        for node in load.nodes:
            table.add_row(
                node.node,
                str(node.users),
                _count(node.sent),
                _count(node.failures),
                _count(node.seen),
            )
        return Group(Text(""), header, bar, table)

    # -- context manager -------------------------------------------------------------

    def __enter__(self) -> DemoDisplay:
        if self.console.is_terminal:
            self._live = Live(
                self.render(), console=self.console, refresh_per_second=4, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.__exit__(exc_type, exc, tb)
            self._live = None


def _balanced_table(load: BalancedLoad, nodes: list[NodeLoad]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "workers", "weight", "sent", "failed", "in Prometheus"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row(
        f"locust ({load.users} users) → balancer",
        "",
        "",
        _count(load.sent),
        _count(load.failures),
        _count(_total(n.seen for n in nodes)),
    )
    for node in nodes:
        table.add_row(
            f"  balancer → {node.node}",
            _count(node.workers),
            _count(node.weight),
            _count(node.sent),
            "",
            _count(node.seen),
        )
    return table


def _total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _plain_line(line: ComponentLine) -> str:
    parts = [f"{line.name}: {line.status}"]
    if line.pid:
        parts.append(f"pid {line.pid}")
    if line.endpoint:
        parts.append(line.endpoint)
    if line.note:
        parts.append(line.note)
    return ", ".join(parts)
