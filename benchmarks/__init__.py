"""Benchmarks: Fleetscope's overhead against bare Django and the peer libraries, in one run."""
