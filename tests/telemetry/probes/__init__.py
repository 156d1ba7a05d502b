"""Small programs the telemetry tests run in their own process (settings the main test
process cannot have: file databases, CONN_MAX_AGE, fork, exit timing)."""
