"""The OCB manifest pins one version pair and lists every component the design needs."""

from fleetscope.collector.manifest import load_manifest

REQUIRED = {
    "receivers": {"otlpreceiver"},
    "processors": {
        "memorylimiterprocessor",
        "batchprocessor",
        "resourceprocessor",
        "attributesprocessor",
        "transformprocessor",
        "filterprocessor",
        "tailsamplingprocessor",
    },
    "connectors": {"spanmetricsconnector"},
    "exporters": {
        "prometheusexporter",
        "prometheusremotewriteexporter",
        "otlpexporter",
        "otlphttpexporter",
        "debugexporter",
        "fileexporter",
    },
    "extensions": {"healthcheckextension", "pprofextension", "zpagesextension", "filestorage"},
}


def test_every_component_is_pinned_to_one_version() -> None:
    manifest = load_manifest()
    assert {c.version for c in manifest.components} == {manifest.version}


def test_core_and_contrib_components_are_both_present() -> None:
    manifest = load_manifest()
    assert any(c.is_contrib for c in manifest.components)
    assert any(not c.is_contrib for c in manifest.components)


def test_manifest_has_every_required_component() -> None:
    manifest = load_manifest()
    present: dict[str, set[str]] = {}
    for component in manifest.components:
        present.setdefault(component.kind, set()).add(component.module.rsplit("/", 1)[-1])
    for kind, names in REQUIRED.items():
        assert names <= present.get(kind, set()), f"{kind}: missing {names - present[kind]}"
