"""Grafana dashboards and Prometheus alert rules for the fleet, generated in Python."""
