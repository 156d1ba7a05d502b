"""Fleetscope demo fleet: a small Django shop (settings, shop app, locustfile) and its launcher."""
