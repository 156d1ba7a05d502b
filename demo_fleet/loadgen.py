"""Load for the demo fleet: how many locust users each node gets, the locust command, its stats."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from fleetscope.errors import FleetscopeError

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def default_users(nodes: int) -> int:
    """Enough users that the weights N:…:2:1 split exactly twice over: 3 nodes -> 12 (6/4/2)."""
    return nodes * (nodes + 1)


def users_per_node(users: int, nodes: int) -> list[int]:
    """Split `users` over the nodes with weights N, N-1, …, 1 (node-1 busiest).

    Largest-remainder rounding keeps the sum exact and the shares non-increasing; every node
    gets at least one user, so each one serves traffic. Shares are all different whenever
    users >= N(N+1)/2.
    """
    if nodes < 1:
        raise FleetscopeError("--nodes must be at least 1.")
    if users < nodes:
        raise FleetscopeError(
            f"--users {users} cannot load {nodes} nodes: every node needs at least one user. "
            f"Use --users {default_users(nodes)} (the default) or more."
        )
    weights = [nodes - i for i in range(nodes)]
    total_weight = sum(weights)
    quotas = [users * w / total_weight for w in weights]
    shares = [int(q) for q in quotas]
    by_remainder = sorted(range(nodes), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in by_remainder[: users - sum(shares)]:
        shares[i] += 1
    # Only when users < N(N+1)/2 can a light node round to zero: move one user to it from
    # the rightmost of the busiest nodes, which keeps the shares non-increasing.
    while 0 in shares:
        busiest = max(shares)
        shares[len(shares) - 1 - shares[::-1].index(busiest)] -= 1
        shares[shares.index(0)] += 1
    return shares


@dataclass(frozen=True)
class LoadStats:
    """What locust sent to one node: requests (failures included) and failures."""

    requests: int
    failures: int


def locust_command(
    host: str,
    users: int,
    stats_prefix: Path,
    run_time_s: int | None,
    locustfile: Path = LOCUSTFILE,
) -> list[str]:
    """Headless locust against one node. It writes `<prefix>_stats.csv` every second while it
    runs and `<prefix>.json` (exact final counts) when it stops."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--csv",
        str(stats_prefix),
        "--json-file",
        str(stats_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if run_time_s is not None:
        command += ["--run-time", f"{run_time_s}s"]
    return command


def read_final_stats(stats_prefix: Path) -> LoadStats | None:
    """Locust's final counts (`<prefix>.json`), or None before locust has stopped."""
    try:
        entries = json.loads(stats_prefix.with_name(stats_prefix.name + ".json").read_text())
    except (OSError, ValueError):
        return None
    return LoadStats(
        requests=sum(int(e.get("num_requests", 0)) for e in entries),
        failures=sum(int(e.get("num_failures", 0)) for e in entries),
    )


def read_running_stats(stats_prefix: Path) -> LoadStats | None:
    """The Aggregated row of `<prefix>_stats.csv`: at most a few seconds old while locust runs."""
    path = stats_prefix.with_name(stats_prefix.name + "_stats.csv")
    try:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated":
                    return LoadStats(int(row["Request Count"]), int(row["Failure Count"]))
    except (OSError, KeyError, ValueError):
        return None
    return None


def read_stats(stats_prefix: Path) -> LoadStats | None:
    """Final counts when locust has stopped, else the running ones."""
    return read_final_stats(stats_prefix) or read_running_stats(stats_prefix)
