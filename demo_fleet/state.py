"""The demo's state file: the processes `fleetscope demo up` started, so `down` stops exactly those.

Every process is recorded with its start time as well as its pid: a pid the kernel has
since given to an unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fleetscope.errors import FleetscopeError

STATE_FILE_NAME = "state.json"
STATE_VERSION = 1
# psutil derives create_time from boot time + clock ticks; both are stable, so a small
# tolerance only absorbs float rounding.
_START_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class Component:
    """One process the demo started: the leader of its own process group."""

    name: str
    role: str
    pid: int
    started: float
    endpoint: str = ""
    log: str = ""
    stop_signal: str = "SIGTERM"

    @classmethod
    def of(cls, name: str, role: str, pid: int, **kwargs: Any) -> Component:
        """A record of a process running now (its start time is read from the OS)."""
        return cls(name, role, pid, process_start_time(pid) or 0.0, **kwargs)


@dataclass(frozen=True)
class LoadWindow:
    """When the load ran (epoch seconds); `report` reads its default window from it."""

    started: float
    ended: float | None = None
    settle_s: float = 0.0


@dataclass
class DemoState:
    workdir: Path
    prometheus_url: str = ""
    otlp_endpoint: str = ""
    launcher: Component | None = None
    components: list[Component] = field(default_factory=list)
    load: LoadWindow | None = None
    # Directories the demo created outside its workdir (a PostgreSQL cluster, when the
    # workdir is not reachable by the postgres user); `down` removes them.
    cleanup_dirs: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return state_path(self.workdir)

    def add(self, component: Component) -> None:
        self.components = [c for c in self.components if c.name != component.name]
        self.components.append(component)
        self.save()

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def save(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = {
            "version": STATE_VERSION,
            "workdir": str(self.workdir),
            "prometheus_url": self.prometheus_url,
            "otlp_endpoint": self.otlp_endpoint,
            "launcher": asdict(self.launcher) if self.launcher else None,
            "components": [asdict(c) for c in self.components],
            "load": asdict(self.load) if self.load else None,
            "cleanup_dirs": self.cleanup_dirs,
        }
        # Written aside and renamed: `status` in another terminal never reads half a file.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.path)
        return self.path


def state_path(workdir: Path) -> Path:
    return workdir / STATE_FILE_NAME


def load_state(workdir: Path) -> DemoState | None:
    """The recorded state of the demo in `workdir`, or None when nothing is recorded."""
    path = state_path(workdir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FleetscopeError(
            f"Cannot read the demo state file {path} ({exc}). If no demo runs from "
            f"{workdir}, delete the file."
        ) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise FleetscopeError(
            f"{path} was written by another Fleetscope version; stop its processes by hand "
            "if any still run, then delete the file."
        )
    launcher = data.get("launcher")
    load = data.get("load")
    return DemoState(
        workdir=workdir,
        prometheus_url=data.get("prometheus_url", ""),
        otlp_endpoint=data.get("otlp_endpoint", ""),
        launcher=Component(**launcher) if launcher else None,
        components=[Component(**c) for c in data.get("components", [])],
        load=LoadWindow(**load) if load else None,
        cleanup_dirs=list(data.get("cleanup_dirs", [])),
    )


def remove_state(state: DemoState) -> None:
    for directory in state.cleanup_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    state.path.unlink(missing_ok=True)


def process_start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _process(component: Component) -> psutil.Process | None:
    """The live process recorded as `component`, or None if it is gone or its pid was reused."""
    try:
        process = psutil.Process(component.pid)
        if abs(process.create_time() - component.started) > _START_TIME_TOLERANCE_S:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def is_alive(component: Component) -> bool:
    return _process(component) is not None


def group_members(component: Component) -> list[psutil.Process]:
    """The recorded process and everything it forked (gunicorn workers, postgres backends)."""
    leader = _process(component)
    if leader is None:
        return []
    try:
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return [leader]


def stop_component(component: Component, timeout: float = 10.0) -> list[int]:
    """Signal the component's process group, wait, SIGKILL what is left; the pids it stopped.

    Only the recorded process and its descendants are ever signalled.
    """
    members = group_members(component)
    if not members:
        return []
    sig = signal.Signals[component.stop_signal]
    leader = members[0]
    try:
        # Started with a session of its own, so pid == process group id: gunicorn's workers
        # get the signal too. Servers whose children leave the group (PostgreSQL's do) stop
        # those children themselves; whatever outlives the timeout is killed below.
        if os.getpgid(leader.pid) == leader.pid:
            os.killpg(leader.pid, sig)
        else:
            leader.send_signal(sig)
    except (ProcessLookupError, psutil.Error):
        pass
    _, alive = psutil.wait_procs(members, timeout=timeout)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    return [member.pid for member in members]


def stop_components(components: Iterable[Component], timeout: float = 10.0) -> list[int]:
    """Stop in the given order; returns every pid stopped."""
    stopped: list[int] = []
    for component in components:
        stopped += stop_component(component, timeout)
    return stopped
