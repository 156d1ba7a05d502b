"""Reads the OCB manifest: the one place where the collector version pair is pinned."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")
CONFIGS_DIR = Path(__file__).with_name("configs")
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"

_GOMOD = re.compile(r"^(?P<module>\S+) (?P<version>v\S+)$")


@dataclass(frozen=True)
class Component:
    kind: str
    module: str
    version: str

    @property
    def is_contrib(self) -> bool:
        return "opentelemetry-collector-contrib" in self.module


@dataclass(frozen=True)
class Manifest:
    path: Path
    dist_name: str
    output_path: str
    components: tuple[Component, ...]

    @property
    def version(self) -> str:
        """The collector version every component is pinned to (also the builder's)."""
        versions = {c.version for c in self.components}
        if len(versions) != 1:
            raise ValueError(f"{self.path}: components disagree on the version: {sorted(versions)}")
        return versions.pop()

    @property
    def binary_name(self) -> str:
        return self.dist_name


_KINDS = ("receivers", "processors", "connectors", "exporters", "extensions")


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    data = yaml.safe_load(path.read_text())
    components = []
    for kind in _KINDS:
        for entry in data.get(kind) or []:
            match = _GOMOD.match(entry["gomod"])
            if match is None:
                raise ValueError(f"{path}: cannot read gomod line {entry['gomod']!r}")
            components.append(Component(kind, match["module"], match["version"]))
    dist = data["dist"]
    return Manifest(path, dist["name"], dist.get("output_path", "./_build"), tuple(components))
