"""Fleetscope's collector distribution: build, locate, validate and run it (and Prometheus).

The OCB manifest and pipeline configs live here; the Python modules only locate, build,
validate and start the real collector and Prometheus, never re-implement them.
"""
