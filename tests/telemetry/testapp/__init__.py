"""A tiny app the telemetry tests drive: models, views and URLs built to cause each signal."""
