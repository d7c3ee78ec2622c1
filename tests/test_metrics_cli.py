"""``smi-bridge metrics query|serve``: usage errors, exit codes, outputs, and serve as a process."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import yaml

from smi_bridge.metrics.cli import EXIT_UNAVAILABLE, EXIT_USAGE, metrics_query, metrics_serve, register, table
from smi_bridge.metrics.model import (
    Direction,
    Edge,
    Metric,
    ObjectReference,
    TrafficMetrics,
    TrafficMetricsList,
)
from smi_bridge.metrics.prometheus import Timeouts
from tests.conftest import FIXTURES, REPO


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DOWN = f"http://127.0.0.1:{closed_port()}"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"backend": "gateway-api"}, "no data plane of its own"),
        ({"backend": "kuma"}, "choose one of: proxy, istio, linkerd, consul"),
        ({"target": "deployment/"}, "is not KIND/NAME"),
        ({"target": "deployment/a/b"}, "is not KIND/NAME"),
        ({"target": "service/web"}, "unsupported resource kind 'service'"),
        ({"window": "5"}, "not a Go duration"),
        ({"window": "500ms"}, "shorter than 1s"),
        ({"target": "ts/web"}, "pass it with -f"),
        ({"target": "deployment", "edges": True}, "edges are served for one named object"),
        ({"output": "xml"}, "unknown output"),
        ({"at": "tomorrow"}, "neither an RFC 3339 time"),
        ({"prometheus": "127.0.0.1:9090"}, "must start with http://"),
    ],
)
def test_usage_errors_exit_2_with_a_message_saying_what_to_fix(
    overrides: dict[str, object], words: str
) -> None:
    args: dict[str, object] = {"backend": "istio", "prometheus": DOWN, "target": "deployment/web"}
    args.update(overrides)
    code, text = metrics_query(**args)  # type: ignore[arg-type]
    assert code == EXIT_USAGE
    assert text.startswith("error: ") and words in text


def test_unreachable_prometheus_exits_3_naming_it() -> None:
    code, text = metrics_query(
        backend="proxy", prometheus=DOWN, target="deployment/web", timeouts=Timeouts(connect=1, request=2)
    )
    assert code == EXIT_UNAVAILABLE
    assert text == f"error: Prometheus at {DOWN} is unreachable: connection refused"


def test_show_query_prints_the_promql_even_when_prometheus_is_down() -> None:
    messages = io.StringIO()
    code, _ = metrics_query(
        backend="istio",
        prometheus=DOWN,
        target="deploy/web",
        namespace="shop",
        show_query=True,
        messages=messages,
    )
    assert code == EXIT_UNAVAILABLE
    shown = messages.getvalue()
    assert shown.count("# ") == 6 and "# success_count (direction from, server side)" in shown
    assert 'reporter="destination"' in shown and 'destination_workload="web"' in shown


def test_a_trafficsplit_manifest_that_does_not_hold_the_split_is_a_usage_error() -> None:
    code, text = metrics_query(
        backend="istio",
        prometheus=DOWN,
        target="trafficsplit/other",
        namespace="shop",
        filenames=[str(FIXTURES / "metrics" / "trafficsplit.yaml")],
    )
    assert code == EXIT_USAGE and "TrafficSplit shop/other is not among" in text and "shop/web" in text


def sample_list() -> TrafficMetricsList:
    def item(direction: Direction, peer: str, success: int, failure: int, p99: str) -> TrafficMetrics:
        return TrafficMetrics(
            window="30s",
            resource=ObjectReference(kind="Deployment", namespace="shop", name="web"),
            edge=Edge(
                direction=direction, resource=ObjectReference(kind="Deployment", namespace="shop", name=peer)
            ),
            metrics=[
                Metric(name="p99_response_latency", unit="ms", value=p99),
                Metric(name="p90_response_latency", unit="ms", value="5"),
                Metric(name="p50_response_latency", unit="ms", value="1500m"),
                Metric(name="success_count", value=str(success)),
                Metric(name="failure_count", value=str(failure)),
                Metric(name="denied_count", value="0"),
            ],
        )

    return TrafficMetricsList(items=[item("from", "frontend", 99, 1, "250"), item("to", "api", 0, 0, "0")])


def test_table_shows_one_row_per_edge_with_rate_and_milliseconds() -> None:
    lines = table(sample_list()).splitlines()
    assert lines[0].split()[:4] == ["NAMESPACE", "NAME", "DIRECTION", "PEER"]
    assert lines[1].split() == [
        "shop", "web", "from", "Deployment/shop/frontend", "99", "1", "0", "99.00%", "1.5ms", "5ms", "250ms", "30s",
    ]  # fmt: skip
    assert lines[2].split()[7] == "-"  # no answered request: no rate


def test_register_adds_metrics_query_and_serve_to_the_main_parser() -> None:
    parser = argparse.ArgumentParser(prog="smi-bridge")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "metrics",
            "query",
            "--backend",
            "linkerd",
            "--prometheus",
            DOWN,
            "-n",
            "shop",
            "deploy/web",
            "--edges",
        ]
    )
    assert (args.command, args.metrics_command, args.target, args.edges) == (
        "metrics",
        "query",
        "deploy/web",
        True,
    )
    assert callable(args.func)
    serve = parser.parse_args(["metrics", "serve", "--backend", "proxy", "--prometheus", DOWN])
    assert serve.listen == "127.0.0.1:8080" and callable(serve.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["metrics"])


def test_serve_refuses_a_bad_listen_address_or_half_a_tls_pair() -> None:
    messages = io.StringIO()
    assert metrics_serve(backend="proxy", prometheus=DOWN, listen="nowhere", messages=messages) == EXIT_USAGE
    assert metrics_serve(backend="proxy", prometheus=DOWN, tls_cert="c.pem", messages=messages) == EXIT_USAGE
    assert "--listen 'nowhere' is not HOST:PORT" in messages.getvalue()
    assert "--tls-cert and --tls-key go together" in messages.getvalue()


def test_query_outputs_yaml_that_reads_back() -> None:
    from smi_bridge.metrics.cli import render

    doc = yaml.safe_load(render(sample_list(), "yaml"))
    assert doc["kind"] == "TrafficMetricsList" and doc["items"][0]["edge"]["resource"]["name"] == "frontend"
    assert (
        json.loads(render(sample_list(), "json", "v1alpha2"))["apiVersion"] == "metrics.smi-spec.io/v1alpha2"
    )


def test_serve_runs_as_a_process_answers_503_while_prometheus_is_down_and_stops_on_sigterm() -> None:
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [
            sys.executable, "-m", "smi_bridge.metrics.cli", "serve",
            "--backend", "proxy", "--prometheus", DOWN, "--listen", f"127.0.0.1:{port}",
            "--timeout", "2", "--connect-timeout", "1",
            "-f", str(FIXTURES / "metrics" / "trafficsplit.yaml"),
        ],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            assert f"on http://127.0.0.1:{port}" in banner and "1 TrafficSplits known" in banner
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(timeout=10) as http:
                assert http.get(f"{base}/healthz").status_code == 200
                down = http.get(f"{base}/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/trafficsplits/web")
                assert down.status_code == 503
                assert down.json()["message"] == f"Prometheus at {DOWN} is unreachable: connection refused"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
