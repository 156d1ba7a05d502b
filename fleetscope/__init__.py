"""Fleetscope: observability and profiling for fleets of Django servers."""

__version__ = "0.1.0"
