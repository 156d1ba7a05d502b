"""What each resilience test measured, kept for the end-of-run summary (docs/reliability.md)."""

from __future__ import annotations

FIGURES: dict[str, dict[str, object]] = {}


def record(row: str, **values: object) -> None:
    """Remember measured values under a row name; floats are rounded for reading."""
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    FIGURES.setdefault(row, {}).update(rounded)
