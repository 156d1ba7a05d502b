"""Local processes: free ports for a collector's listeners."""

from fleetscope.collector.process import free_ports
from fleetscope.collector.run import CollectorPorts


def test_free_ports_are_distinct_even_when_many_are_picked() -> None:
    """Regression: ports picked one at a time (bind to port 0, close, repeat) can repeat, so a
    collector given two equal ports failed to start ("address already in use")."""
    ports = free_ports(500)
    assert len(set(ports)) == 500


def test_a_collectors_free_ports_are_distinct() -> None:
    listening = CollectorPorts.free().listening()
    assert len(set(listening)) == len(listening) == 7
