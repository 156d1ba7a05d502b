"""Fleetscope's Django app: per-node OTLP traces and metrics for requests, SQL and caches."""
