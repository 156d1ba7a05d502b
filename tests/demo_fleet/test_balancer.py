"""The demo's load balancer: the HAProxy config it generates (checked by HAProxy itself), the
options that shape it, and reading the balancer's per-server counts."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetscope.collector.prometheus import PrometheusSettings, render_config
from fleetscope.demo import balancer
from fleetscope.demo.cli import node_workers
from fleetscope.demo.launcher import DemoOptions, balanced_workers
from fleetscope.errors import FleetscopeError


def _settings(tmp_path: Path) -> balancer.BalancerSettings:
    return balancer.BalancerSettings(
        port=18000,
        metrics_port=18404,
        backend="demo-shop",
        servers=[balancer.Server("node-1", 18001, 3), balancer.Server("node-2", 18002, 1)],
        workdir=tmp_path,
    )


def test_haproxy_accepts_the_generated_config(tmp_path: Path) -> None:
    config = balancer.write_config(_settings(tmp_path))

    balancer.check_config(balancer.locate_haproxy(), config)  # raises on any error


def test_the_config_stamps_requests_and_names_backend_and_servers_after_service_and_nodes(
    tmp_path: Path,
) -> None:
    text = balancer.render_config(_settings(tmp_path))

    assert "http-request set-header X-Request-Start t=%[date(0,us)]" in text
    assert "backend demo-shop" in text and "default_backend demo-shop" in text
    assert "server node-1 127.0.0.1:18001 weight 3 check" in text
    assert "server node-2 127.0.0.1:18002 weight 1 check" in text
    assert "bind 127.0.0.1:18000" in text and "bind 127.0.0.1:18404" in text
    assert "use-service prometheus-exporter" in text
    # TCP checks only: an HTTP check would add requests to the nodes' counts.
    assert "httpchk" not in text


def test_a_config_haproxy_refuses_is_reported_in_haproxys_words(tmp_path: Path) -> None:
    config = tmp_path / "broken.cfg"
    config.write_text("frontend x\n    bind 127.0.0.1:1\n    no-such-directive\n")

    with pytest.raises(FleetscopeError, match="HAProxy rejected"):
        balancer.check_config(balancer.locate_haproxy(), config)


def test_a_missing_haproxy_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balancer.shutil, "which", lambda name: None)
    monkeypatch.setattr(balancer, "HAPROXY_FALLBACKS", ())

    with pytest.raises(FleetscopeError, match=r"apt-get install haproxy.*--no-balancer"):
        balancer.locate_haproxy()


def test_prometheus_scrapes_the_balancers_exporter_when_there_is_one() -> None:
    with_balancer = render_config(PrometheusSettings(balancer_targets=("127.0.0.1:8404",)))
    without = render_config(PrometheusSettings())

    assert "job_name: haproxy" in with_balancer and "127.0.0.1:8404" in with_balancer
    assert "haproxy" not in without


# -- options ------------------------------------------------------------------------------


def test_behind_the_balancer_nodes_differ_by_workers_by_default() -> None:
    assert balanced_workers(3) == (3, 2, 1)
    assert balanced_workers(2) == (2, 1)
    assert balanced_workers(1) == (1,)
    assert balanced_workers(5) == (3, 3, 3, 2, 1)
    assert node_workers(None, 3, balanced=True) == (2, (3, 2, 1))
    assert node_workers(None, 3, balanced=False) == (2, ())


def test_workers_take_one_number_for_all_or_one_per_node() -> None:
    assert node_workers("4", 3, balanced=True) == (4, ())
    assert node_workers("4,2,1", 3, balanced=True) == (4, (4, 2, 1))
    assert DemoOptions(nodes=3, workers=4, node_workers=(4, 2, 1)).workers_per_node == [4, 2, 1]
    assert DemoOptions(nodes=2, workers=3).workers_per_node == [3, 3]


def test_the_port_plan_holds_the_balancers_ports_only_with_a_balancer() -> None:
    with_balancer = DemoOptions(nodes=2, free_ports=True).port_plan()
    without = DemoOptions(nodes=2, free_ports=True, balancer=False).port_plan()
    fixed = DemoOptions(nodes=2).port_plan()

    assert with_balancer.balancer and with_balancer.balancer_metrics
    assert {"--balancer-port", "--balancer-metrics-port"} <= {u.option for u in fixed.uses()}
    assert (fixed.balancer, fixed.balancer_metrics) == (8000, 8404)
    assert without.balancer is None
    assert "--balancer-port" not in {u.option for u in without.uses()}


# -- the balancer's counts ------------------------------------------------------------------

EXPORTER_TEXT = """\
# HELP haproxy_server_http_responses_total Total number of HTTP responses.
# TYPE haproxy_server_http_responses_total counter
haproxy_server_http_responses_total{proxy="demo-shop",server="node-1",code="2xx"} 120
haproxy_server_http_responses_total{proxy="demo-shop",server="node-1",code="5xx"} 7
haproxy_server_http_responses_total{proxy="demo-shop",server="node-2",code="2xx"} 64
haproxy_server_http_responses_total{proxy="demo-shop",server="node-2",code="other"} 0
haproxy_backend_http_responses_total{proxy="demo-shop",code="2xx"} 184
"""


@pytest.fixture
def exporter() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = EXPORTER_TEXT.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_server_responses_sums_every_status_class_per_server(exporter: str) -> None:
    assert balancer.server_responses(exporter) == {"node-1": 127, "node-2": 64}


def test_an_unreachable_exporter_is_a_fleetscope_error() -> None:
    from fleetscope.collector.process import free_port

    with pytest.raises(FleetscopeError, match="balancer's metrics"):
        balancer.server_responses(f"http://127.0.0.1:{free_port()}/metrics", timeout=0.5)
