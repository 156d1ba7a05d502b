"""Stepped load for `fleetscope demo scale-test`: the shop's users, more of them at every step.

Locust runs the LoadTestShape below instead of a fixed user count. Environment:
FLEETSCOPE_SCALE_STEPS (users at each step over the whole fleet, e.g. "2,4,8,16"),
FLEETSCOPE_SCALE_STEP_S (seconds per step), FLEETSCOPE_SCALE_THINK_S (each user's pause
between requests), FLEETSCOPE_SCALE_LOG (a file the shape appends one JSON line to when a
step starts: {"step", "users", "started"}).

The users browse and order like the demo's ShopUser. With a short think time the first
steps offer less than one request in flight per node, so the measured points start on the
rising part of the curve even where a node saturates with one request (a small machine); the
fit uses the concurrency the fleet actually held (Little's law), not the user count.

The deliberately slow report (a full scan taking up to seconds) and the flaky page are left
out: a handful of them in a step's window would decide its throughput, and the fit needs
each step's rate to be steady.
"""

from __future__ import annotations

import json
import os
import time

from locust import HttpUser, LoadTestShape, constant

from fleetscope.demo import locustfile as shop

__all__ = ["ScaleUser", "StepShape"]


class ScaleUser(HttpUser):
    """The shop's catalogue, product and order pages with their ShopUser weights."""

    wait_time = constant(float(os.environ.get("FLEETSCOPE_SCALE_THINK_S", "0")))
    tasks = {  # type: ignore[assignment]  # locust documents {task: weight}; its hint says list
        shop.ShopUser.home: 10,
        shop.ShopUser.catalogue: 30,
        shop.ShopUser.products_n_plus_one: 8,
        shop.ShopUser.products_fixed: 8,
        shop.ShopUser.api_product: 15,
        shop.ShopUser.order: 4,
        shop.ShopUser.healthz: 1,
    }


def _steps() -> list[int]:
    raw = os.environ.get("FLEETSCOPE_SCALE_STEPS", "1,2,4,8")
    try:
        steps = [int(part) for part in raw.split(",")]
    except ValueError:
        raise SystemExit(
            f"FLEETSCOPE_SCALE_STEPS={raw!r}: give users per step, e.g. 2,4,8."
        ) from None
    if not steps or min(steps) < 1:
        raise SystemExit(f"FLEETSCOPE_SCALE_STEPS={raw!r}: every step needs at least one user.")
    return steps


STEPS = _steps()
STEP_S = float(os.environ.get("FLEETSCOPE_SCALE_STEP_S", "30"))
LOG = os.environ.get("FLEETSCOPE_SCALE_LOG")


class StepShape(LoadTestShape):
    """STEPS[i] users from i * STEP_S to (i + 1) * STEP_S, all spawned within a second."""

    logged = -1

    def tick(self) -> tuple[int, float] | None:
        index = int(self.get_run_time() // STEP_S)
        if index >= len(STEPS):
            return None
        users = STEPS[index]
        if index != self.logged:
            self.logged = index
            if LOG:
                with open(LOG, "a") as log:
                    record = {"step": index, "users": users, "started": time.time()}
                    log.write(json.dumps(record) + "\n")
        return users, float(max(users, 1) * 2)
