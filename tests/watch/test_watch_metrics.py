"""metrics: the Prometheus text format, the watch loop's values, and /metrics over real HTTP."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from reconciler.metrics import Family, Histogram, MetricsServer, WatchMetrics, parse_address, render
from reconciler.planmodel import Action, Classification, NodePlan, ResourcePlan, Source


def resource(address, classification):
    kind, _, rid = address.partition(":")
    return ResourcePlan(address, kind, rid, "a", Source("m.yaml", 1, 1, "/spec"), Action.UPDATE, classification, "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_text_format_escapes_label_values_and_writes_help_and_type():
    text = render([Family("plumb_x", "gauge", "An x.", [("", (("node", 'a"b\\c\nd'),), 2.0), ("", (), 0.5)])])
    assert text == ('# HELP plumb_x An x.\n# TYPE plumb_x gauge\n'
                    'plumb_x{node="a\\"b\\\\c\\nd"} 2\nplumb_x 0.5\n')


def test_histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count():
    histogram = Histogram((1.0, 10.0))
    for value in (0.5, 3.0, 30.0):
        histogram.observe(value)
    assert histogram.samples() == [("_bucket", (("le", "1"),), 1.0), ("_bucket", (("le", "10"),), 2.0),
                                   ("_bucket", (("le", "+Inf"),), 3.0), ("_sum", (), 33.5), ("_count", (), 3.0)]


def test_watch_metrics_follow_the_last_plan_of_each_node():
    metrics = WatchMetrics()
    metrics.nodes_seen([NodePlan("web-1", resources=(resource("files:/a", Classification.DRIFT),
                                                     resource("files:/b", Classification.IN_SYNC))),
                        NodePlan("web-2", reachable=False, error="refused")])
    metrics.nodes_seen([NodePlan("web-3", resources=(resource("files:/a", Classification.DRIFT_AND_CHANGE),))])
    metrics.fleet(["web-1", "web-2", "web-3"], {"web-2": 4}, {"a": 1800000000.0, "b": None})
    metrics.run_finished(True, 2.5, 1700000000.0)
    metrics.run_finished(False, 700.0, 1700000100.0)
    metrics.manifests(True, "abc123")
    text = metrics.text()
    for line in ('plumb_drift_resources{node="web-1"} 1', 'plumb_drift_resources{node="web-3"} 1',
                 'plumb_node_up{node="web-1"} 1', 'plumb_node_up{node="web-2"} 0',
                 'plumb_node_backoff_cycles{node="web-2"} 4', 'plumb_node_backoff_cycles{node="web-1"} 0',
                 'plumb_plan_resources{classification="drift"} 1', 'plumb_plan_resources{classification="in_sync"} 1',
                 'plumb_plan_resources{classification="unknown"} 0',
                 'plumb_reconcile_runs_total{result="ok"} 1', 'plumb_reconcile_runs_total{result="failed"} 1',
                 'plumb_reconcile_duration_seconds_bucket{le="5"} 1', 'plumb_reconcile_duration_seconds_count 2',
                 'plumb_last_run_timestamp_seconds 1700000100', 'plumb_manifests_info{git_revision="abc123"} 1',
                 'plumb_manifests_valid 1', 'plumb_association_next_run_timestamp_seconds{association="a"} 1800000000'):
        assert line in text.splitlines(), line
    assert 'association="b"' not in text


def test_nodes_no_longer_managed_lose_their_series():
    metrics = WatchMetrics()
    metrics.nodes_seen([NodePlan("old"), NodePlan("web-1")])
    metrics.fleet(["web-1"], {}, {})
    assert 'node="old"' not in metrics.text()


def test_invalid_manifests_keep_the_revision_being_applied():
    metrics = WatchMetrics()
    metrics.manifests(True, "good")
    metrics.manifests(False, None)
    text = metrics.text()
    assert 'plumb_manifests_info{git_revision="good"} 1' in text and "plumb_manifests_valid 0" in text


def test_nothing_is_claimed_before_the_first_run():
    text = WatchMetrics().text()
    assert "plumb_last_run_timestamp_seconds " not in text and "plumb_manifests_info{" not in text
    assert 'plumb_reconcile_runs_total{result="ok"} 0' in text


def test_the_endpoint_serves_metrics_over_http_and_stops():
    metrics = WatchMetrics()
    metrics.run_finished(True, 1.0, 1700000000.0)
    port = free_port()
    server = MetricsServer(f"127.0.0.1:{port}", metrics.text)
    try:
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(server.url, timeout=30) as response:
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert 'plumb_reconcile_runs_total{result="ok"} 1' in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=30)
        assert missing.value.code == 404
    finally:
        server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=5)


@pytest.mark.parametrize("address, expected", [("127.0.0.1:9464", ("127.0.0.1", 9464)), (":9464", ("", 9464)),
                                               ("[::1]:9464", ("::1", 9464))])
def test_addresses_are_host_and_port(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9464", "localhost", "host:http", "host:70000"])
def test_a_malformed_address_is_refused_with_the_expected_form(address):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(address)
