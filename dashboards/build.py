"""Renders the dashboards and alert rules into deterministic files (`dashboards build`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from .cache import cache_dashboard
from .capacity import capacity_dashboard
from .database import database_dashboard
from .fleet import fleet_dashboard
from .node import node_dashboard
from .objectives import SLO_RULES_FILE_NAME, Objectives, load_objectives, render_slo_rules
from .rules import RULES_FILE_NAME, render_rules
from .slo import slo_dashboard
from .tasks import tasks_dashboard

GENERATED_DIR = Path(__file__).resolve().parent / "generated"
PROVISIONING_DIR = Path(__file__).resolve().parent / "provisioning"

DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (
    fleet_dashboard,
    database_dashboard,
    cache_dashboard,
    node_dashboard,
    slo_dashboard,
    capacity_dashboard,
    tasks_dashboard,
)


def render(dashboard: Dashboard) -> str:
    """Dashboard JSON with sorted keys and a trailing newline, identical on every run."""
    return JSONEncoder(sort_keys=True, indent=2).encode(dashboard.build()) + "\n"


def dashboard_models() -> list[dict[str, Any]]:
    """Every dashboard as the JSON object Grafana stores."""
    return [json.loads(render(factory())) for factory in DASHBOARDS]


def rendered_files(objectives: Objectives | None = None) -> dict[str, str]:
    """File name -> content of everything `build` writes (SLO rules from `objectives`, by
    default dashboards/slo.yaml)."""
    files = {}
    for factory in DASHBOARDS:
        text = render(factory())
        files[f"{json.loads(text)['uid']}.json"] = text
    files[RULES_FILE_NAME] = render_rules()
    files[SLO_RULES_FILE_NAME] = render_slo_rules(objectives or load_objectives())
    return files


def build(out: Path = GENERATED_DIR, slo: Path | None = None) -> list[Path]:
    """Writes dashboards and rules into `out`, removing dashboards we no longer generate.
    `slo` is the SLO file (default dashboards/slo.yaml)."""
    objectives = load_objectives(slo) if slo is not None else None
    out.mkdir(parents=True, exist_ok=True)
    files = rendered_files(objectives)
    for stale in out.glob("fleetscope-*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in sorted(files.items()):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
