"""What `demo up` shows while the load runs behind the balancer: locust's total and the
balancer's split per node, live and as plain lines."""

from __future__ import annotations

from rich.console import Console

from fleetscope.demo.progress import BalancedLoad, DemoDisplay, LoadProgress, NodeLoad


def _progress() -> LoadProgress:
    progress = LoadProgress(1_700_000_000.0, 60, balancer=BalancedLoad("http://lb", 12, 500, 2))
    progress.nodes = [
        NodeLoad("node-1", 0, sent=251, seen=250, workers=3, weight=1),
        NodeLoad("node-2", 0, sent=249, seen=249, workers=1, weight=1),
    ]
    return progress


def test_plain_lines_name_the_balancer_and_each_nodes_share() -> None:
    console = Console(record=True, width=200, color_system=None, force_terminal=False)
    display = DemoDisplay(console)
    display.start_load(_progress())
    display.end_load()
    text = console.export_text()

    assert "12 locust users through the balancer http://lb (workers node-1: 3, node-2: 1)" in text
    assert "locust sent 500 requests (2 failed) through the balancer; Prometheus saw 499" in text
    assert "node-2 (1 workers) got 249 from the balancer, Prometheus saw 249" in text


def test_the_live_table_shows_the_balancers_split() -> None:
    console = Console(record=True, width=200, color_system=None)
    display = DemoDisplay(console)
    display.load = _progress()
    console.print(display.render())
    text = console.export_text()

    assert "locust (12 users) → balancer" in text
    assert "balancer → node-1" in text and "251" in text
    assert "balancer → node-2" in text and "249" in text
