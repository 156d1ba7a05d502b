"""Selecting configurations always brings the bare baseline each ratio divides by."""

from __future__ import annotations

import pytest

from benchmarks.server_matrix import BY_NAME, CONFIGURATIONS, select, select_views


def test_selection_adds_the_baseline_of_each_server_kind() -> None:
    names = [c.name for c in select(["fleetscope-10-uvicorn", "otel-10"])]
    assert names == ["bare", "otel-10", "bare-uvicorn", "fleetscope-10-uvicorn"]


def test_unknown_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="fleetscope-10"):
        select(["fleetscope-50"])
    with pytest.raises(ValueError, match="mixed"):
        select_views(["nope"])


def test_every_configuration_has_its_baseline_and_a_distinct_service_name() -> None:
    assert all(c.baseline in BY_NAME for c in CONFIGURATIONS)
    assert len({c.service_name for c in CONFIGURATIONS}) == len(CONFIGURATIONS)
