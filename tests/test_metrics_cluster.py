"""``smi-bridge metrics query|serve --kubeconfig``: TrafficSplits read from a live cluster.

The cluster is the project's fake API server (``FakeKubeAPI``) with the published SMI CRDs; the
split is the one of ``fixtures/metrics/trafficsplit.yaml``, so every answer from the cluster is
compared with the answer for the same manifest given with ``-f``. Prometheus is the recorded one
of test_metrics_prometheus.py (a real Prometheus over recorded Linkerd metrics; skipped without
Debian's binary) and test_metrics_server.py's ``FakePrometheus`` behind a real socket, so that a
CLI process can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from smi_bridge.controller.kubeapi import ClusterConfig, KubeClient
from smi_bridge.controller.testing.fakeapi import FakeKubeAPI, Fault
from smi_bridge.metrics.cli import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    ClusterSplits,
    metrics_query,
    metrics_serve,
    splits_from_manifests,
)
from smi_bridge.metrics.local_prometheus import prometheus_binary
from smi_bridge.metrics.prometheus import Timeouts
from smi_bridge.metrics.queries import MESHES
from smi_bridge.metrics.server import MetricsAPI, Response
from smi_bridge.metrics.service import TrafficMetricsService
from tests import test_metrics_prometheus as recorded_metrics
from tests.conftest import FIXTURES, REPO
from tests.controller.cluster import Cluster, crds
from tests.test_metrics_cli import closed_port
from tests.test_metrics_server import FakePrometheus, Rows

MANIFEST = FIXTURES / "metrics" / "trafficsplit.yaml"
SPLIT_DOC: dict[str, Any] = next(
    d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "TrafficSplit"
)
SPLIT_PATH = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/trafficsplits"
AT = "1700000000"
DOWN = f"http://127.0.0.1:{closed_port()}"  # a Prometheus the error cases must never need

# The same fixture as test_metrics_prometheus.py: a real Prometheus over the recorded metrics.
recorded = recorded_metrics.recorded
needs_prometheus = pytest.mark.skipif(
    prometheus_binary() is None, reason="Debian's prometheus package is not installed"
)


def istio_rows(expr: str) -> Rows:
    if "histogram_quantile" in expr:
        return [({"destination_service_name": "web-v1"}, "12.5")]
    return [({"destination_service_name": "web-v1"}, "9"), ({"destination_service_name": "web-v2"}, "1")]


class PrometheusStub:
    """test_metrics_server.py's ``FakePrometheus`` on a real socket (for CLI processes)."""

    def __init__(self, fake: FakePrometheus) -> None:
        self.fake = fake
        fake_handler = fake.handler

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = httpx.Request(
                    self.command, f"http://stub{self.path}", content=body, headers=dict(self.headers)
                )
                response = fake_handler(request)
                self.send_response(response.status_code)
                self.send_header("Content-Type", response.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PrometheusStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def prometheus() -> Iterator[PrometheusStub]:
    with PrometheusStub(FakePrometheus(istio_rows)) as stub:
        yield stub


def start_cluster(tmp_path: Path, *crd_sets: str, **kwargs: Any) -> Cluster:
    api = FakeKubeAPI(**kwargs).start()
    cluster = Cluster("fake", api.url, fake=api, workdir=tmp_path)
    if crd_sets:
        cluster.install_crds(crds(*crd_sets))
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    return cluster


@contextlib.contextmanager
def running(c: Cluster) -> Iterator[Cluster]:
    """``c`` until the test ends, then its client and its fake server stopped."""
    try:
        yield c
    finally:
        c.close()
        assert c.fake is not None
        c.fake.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The fake API server with the smi-sdk-go CRDs (split.smi-spec.io/v1alpha4) and shop/web."""
    with running(start_cluster(tmp_path, "smi")) as c:
        c.create(json.loads(json.dumps(SPLIT_DOC)))
        yield c


@pytest.fixture
def bare_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The fake API server without any SMI CRD."""
    with running(start_cluster(tmp_path)) as c:
        yield c


def query(kubeconfig: Path | str, target: str = "trafficsplit/web", **kwargs: Any) -> tuple[int, str]:
    args: dict[str, Any] = {
        "backend": "istio",
        "prometheus": DOWN,
        "target": target,
        "namespace": "shop",
        "kubeconfig": str(kubeconfig),
    }
    args.update(kwargs)
    return metrics_query(**args)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smi_bridge.metrics.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- the same answer as -f --------------------------------------------------------------------------


@needs_prometheus
def test_query_from_the_cluster_equals_the_query_with_the_manifest_over_recorded_metrics(
    recorded: recorded_metrics.RecordedWindow, cluster: Cluster
) -> None:
    common = ["--backend", "linkerd", "--prometheus", recorded.url, "-n", "shop", "trafficsplit/web"]
    common += ["--window", recorded.window.go(), "--at", str(recorded.end), "-o", "json"]
    code, from_manifest = metrics_query(
        backend="linkerd",
        prometheus=recorded.url,
        target="trafficsplit/web",
        namespace="shop",
        window=recorded.window.go(),
        at=str(recorded.end),
        output="json",
        filenames=[str(MANIFEST)],
    )
    assert code == 0, from_manifest
    proc = cli("query", *common, "--kubeconfig", str(cluster.kubeconfig()))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == from_manifest
    rows = {i["backend"]["name"]: i for i in json.loads(proc.stdout)["items"]}
    values = {n: {m["name"]: m["value"] for m in rows[n]["metrics"]} for n in rows}
    assert {n: rows[n]["backend"]["weight"] for n in rows} == {"web-v1": 90, "web-v2": 10}
    assert (values["web-v1"]["success_count"], values["web-v1"]["failure_count"]) == ("90", "2")
    assert values["web-v2"]["success_count"] == "10"


def test_query_from_the_cluster_equals_the_query_with_the_manifest(
    prometheus: PrometheusStub, cluster: Cluster
) -> None:
    for output in ("json", "table"):
        args = {"prometheus": prometheus.url, "at": AT, "output": output}
        code, from_manifest = metrics_query(
            backend="istio", target="ts/web", namespace="shop", filenames=[str(MANIFEST)], **args
        )
        assert code == 0, from_manifest
        assert query(cluster.kubeconfig(), **args) == (0, from_manifest)
    doc = json.loads(query(cluster.kubeconfig(), prometheus=prometheus.url, at=AT, output="json")[1])
    assert [(i["backend"]["name"], i["backend"]["weight"]) for i in doc["items"]] == [
        ("web-v1", 90),
        ("web-v2", 10),
    ]
    assert {m["name"]: m["value"] for m in doc["items"][0]["metrics"]}["success_count"] == "9"


def test_a_process_reads_the_split_from_the_context_given(
    prometheus: PrometheusStub, cluster: Cluster, tmp_path: Path
) -> None:
    """--context picks the cluster (from --kubeconfig, or alone from $KUBECONFIG)."""
    doc = yaml.safe_load(cluster.kubeconfig().read_text())
    doc["clusters"].append({"name": "gone", "cluster": {"server": DOWN}})
    doc["contexts"].append({"name": "gone", "context": {"cluster": "gone", "user": "test"}})
    doc["current-context"] = "gone"
    two = tmp_path / "two-contexts.yaml"
    two.write_text(yaml.safe_dump(doc))
    args = ["query", "--backend", "istio", "--prometheus", prometheus.url, "-n", "shop", "ts/web", "--at", AT]
    by_flag = cli(*args, "--kubeconfig", str(two), "--context", "test")
    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout.split("\n")[0].split()[:4] == ["NAMESPACE", "NAME", "BACKEND", "WEIGHT"]
    by_env = cli(*args, "--context", "test", env={"KUBECONFIG": str(two)})
    assert (by_env.returncode, by_env.stdout) == (0, by_flag.stdout)
    current = cli(*args, "--kubeconfig", str(two))  # current-context: the server that is gone
    assert current.returncode == EXIT_UNAVAILABLE
    assert current.stderr == f"error: the Kubernetes API server at {DOWN} is unreachable: cannot connect\n"


def test_without_n_the_namespace_is_the_contexts_as_in_kubectl(
    prometheus: PrometheusStub, cluster: Cluster, tmp_path: Path
) -> None:
    doc = yaml.safe_load(cluster.kubeconfig().read_text())
    for ctx in doc["contexts"]:
        ctx["context"]["namespace"] = "shop"
    with_ns = tmp_path / "with-namespace.yaml"
    with_ns.write_text(yaml.safe_dump(doc))
    args = ["query", "--backend", "istio", "--prometheus", prometheus.url, "ts/web", "--at", AT]
    from_context = cli(*args, "--kubeconfig", str(with_ns))
    assert from_context.returncode == 0, from_context.stderr
    explicit = cli(*args, "--kubeconfig", str(with_ns), "-n", "shop")
    assert (explicit.returncode, explicit.stdout) == (0, from_context.stdout)
    plain = cli(*args, "--kubeconfig", str(cluster.kubeconfig()))  # no namespace in the context: default
    assert plain.returncode == 2
    assert "default" in plain.stderr and "web" in plain.stderr


def test_every_served_version_holds_the_split_and_one_list_reads_it(
    prometheus: PrometheusStub, tmp_path: Path
) -> None:
    """linkerd-smi's CRD serves v1alpha1 and v1alpha2: the server's preferred one is listed, once."""
    with running(start_cluster(tmp_path, "smi-linkerd")) as c:
        c.create({**json.loads(json.dumps(SPLIT_DOC)), "apiVersion": "split.smi-spec.io/v1alpha2"})
        assert c.fake is not None
        mark = len(c.fake.requests)
        code, text = query(c.kubeconfig(), prometheus=prometheus.url, at=AT, output="json")
        assert code == 0, text
        assert [(i["backend"]["name"], i["backend"]["weight"]) for i in json.loads(text)["items"]] == [
            ("web-v1", 90),
            ("web-v2", 10),
        ]
        lists = [r.path for r in c.fake.requests[mark:] if r.path.endswith("/trafficsplits")]
        assert lists == ["/apis/split.smi-spec.io/v1alpha2/namespaces/shop/trafficsplits"]


def test_references_the_cluster_read_does_not_fetch_are_not_reported(
    prometheus: PrometheusStub, cluster: Cluster
) -> None:
    """Only TrafficSplits are listed: a split's matches naming an HTTPRouteGroup is no error here."""
    split = json.loads(json.dumps(SPLIT_DOC))
    split["metadata"]["name"] = "matched"
    split["spec"]["matches"] = [{"kind": "HTTPRouteGroup", "name": "web-routes"}]
    cluster.create(split)
    messages = io.StringIO()
    code, text = query(
        cluster.kubeconfig(), "ts/matched", prometheus=prometheus.url, at=AT, messages=messages
    )
    assert code == 0, text
    assert "SMB030" not in messages.getvalue() and "web-v1" in text


# --- errors: one line, the metrics CLI's exit codes -------------------------------------------------


def test_unreachable_api_server_exits_3_naming_it(tmp_path: Path) -> None:
    kubeconfig = Cluster("fake", DOWN, workdir=tmp_path).kubeconfig()
    assert query(kubeconfig) == (
        EXIT_UNAVAILABLE,
        f"error: the Kubernetes API server at {DOWN} is unreachable: cannot connect",
    )


def test_a_split_the_namespace_does_not_hold_exits_2_naming_what_it_holds(cluster: Cluster) -> None:
    code, text = query(cluster.kubeconfig(), "trafficsplit/other")
    assert code == EXIT_USAGE
    assert text == (
        f"error: TrafficSplit shop/other not found on the Kubernetes API server at {cluster.host} "
        "(TrafficSplits in namespace shop: web)"
    )
    code, text = query(cluster.kubeconfig(), namespace="default")
    assert code == EXIT_USAGE and text.endswith("(TrafficSplits in namespace default: none)")


def test_a_cluster_without_the_trafficsplit_crd_exits_2(bare_cluster: Cluster) -> None:
    assert query(bare_cluster.kubeconfig()) == (
        EXIT_USAGE,
        f"error: the Kubernetes API server at {bare_cluster.host} does not serve TrafficSplits "
        "(split.smi-spec.io): is the SMI TrafficSplit CRD installed?",
    )


def test_a_split_that_does_not_build_exits_2_with_the_finding(cluster: Cluster) -> None:
    split = json.loads(json.dumps(SPLIT_DOC))
    split["metadata"]["name"] = "elsewhere"
    split["spec"]["service"] = "web.other"
    cluster.create(split)
    messages = io.StringIO()
    code, text = query(cluster.kubeconfig(), "ts/elsewhere", messages=messages)
    assert code == EXIT_USAGE
    assert text == (
        f"error: TrafficSplit shop/elsewhere on the Kubernetes API server at {cluster.host} cannot be "
        "measured: spec.service 'web.other' is not a Service in namespace 'shop'"
    )
    assert "cluster:TrafficSplit/shop/elsewhere:1: error[SMB032]" in messages.getvalue()


def test_refused_credentials_exit_3_naming_the_server(tmp_path: Path) -> None:
    guarded = FakeKubeAPI(token="right").start()
    try:
        wrong = Cluster("fake", guarded.url, token="wrong", workdir=tmp_path).kubeconfig()
        code, text = query(wrong)
        assert code == EXIT_UNAVAILABLE
        assert text == (
            f"error: the Kubernetes API server at {guarded.url} did not accept our credentials for the "
            "discovery of split.smi-spec.io (401 Unauthorized: Unauthorized)"
        )
    finally:
        guarded.stop()


def test_a_forbidden_list_exits_3_naming_the_namespace(cluster: Cluster) -> None:
    assert cluster.fake is not None
    cluster.fake.inject(Fault(status=403, path="/trafficsplits$", times=None))
    assert query(cluster.kubeconfig()) == (
        EXIT_UNAVAILABLE,
        f"error: the Kubernetes API server at {cluster.host} forbids the list of "
        "trafficsplits.split.smi-spec.io/v1alpha4 in namespace shop (403 Forbidden: injected fault: Forbidden)",
    )


def test_a_slow_api_server_exits_3_at_the_deadline(cluster: Cluster) -> None:
    assert cluster.fake is not None
    cluster.fake.inject(Fault(status=0, delay=5, path="/trafficsplits$", times=None))
    started = time.monotonic()
    code, text = query(cluster.kubeconfig(), timeouts=Timeouts(connect=1, request=1))
    assert time.monotonic() - started < 4.5  # one retry, then the answer: never a hang
    assert (code, text) == (
        EXIT_UNAVAILABLE,
        f"error: the Kubernetes API server at {cluster.host} did not answer within 1s",
    )


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"filenames": [str(MANIFEST)]}, "-f and --kubeconfig are two sources for the TrafficSplits"),
        ({"kubeconfig": "/no/such/kubeconfig"}, "kubeconfig /no/such/kubeconfig: no such file"),
        ({"namespace": None}, "give -n NAMESPACE, not -A/--all-namespaces"),
    ],
)
def test_usage_errors_exit_2(overrides: dict[str, Any], words: str, cluster: Cluster) -> None:
    code, text = query(overrides.pop("kubeconfig", cluster.kubeconfig()), **overrides)
    assert code == EXIT_USAGE and text.startswith("error: ") and words in text


def test_usage_errors_of_a_process_are_one_line_without_a_traceback(cluster: Cluster) -> None:
    both = cli(
        "query", "--backend", "istio", "--prometheus", DOWN, "-n", "shop", "ts/web",
        "-f", str(MANIFEST), "--kubeconfig", str(cluster.kubeconfig()),
    )  # fmt: skip
    assert both.returncode == EXIT_USAGE
    assert both.stderr == (
        "error: -f and --kubeconfig are two sources for the TrafficSplits: pass the manifests (-f) "
        "or read them from the cluster (--kubeconfig/--context), not both\n"
    )
    missing = cli(
        "query", "--backend", "istio", "--prometheus", DOWN, "-n", "shop", "ts/other",
        "--kubeconfig", str(cluster.kubeconfig()),
    )  # fmt: skip
    assert missing.returncode == EXIT_USAGE and missing.stderr.count("\n") == 1
    assert "TrafficSplit shop/other not found" in missing.stderr and "Traceback" not in missing.stderr
    serve = cli(
        "serve", "--backend", "istio", "--prometheus", DOWN, "--listen", "127.0.0.1:0",
        "--context", "test", "-f", str(MANIFEST),
    )  # fmt: skip
    assert serve.returncode == EXIT_USAGE and serve.stderr.count("\n") == 1
    assert serve.stderr.startswith("error: -f and --context are two sources")


def test_serve_refuses_both_sources() -> None:
    messages = io.StringIO()
    code = metrics_serve(
        backend="istio", prometheus=DOWN, filenames=[str(MANIFEST)], kubeconfig="k.yaml", messages=messages
    )
    assert code == EXIT_USAGE and "-f and --kubeconfig are two sources" in messages.getvalue()


# --- serve ------------------------------------------------------------------------------------------


def handle(cluster: Cluster, target: str) -> Response:
    """One request to a MetricsAPI whose splits come from ``cluster`` (FakePrometheus behind it)."""

    async def go() -> Response:
        kube = KubeClient(ClusterConfig(cluster.host, token=cluster.token), retries=0)
        try:
            async with FakePrometheus(istio_rows).client() as client:
                source = ClusterSplits(kube).split
                service = TrafficMetricsService(client, MESHES["istio"], split_source=source)
                return await MetricsAPI(service).handle("GET", target)
        finally:
            await kube.aclose()

    return asyncio.run(go())


def status_of(response: Response) -> tuple[int, str, str]:
    doc = json.loads(response.body)
    assert doc["kind"] == "Status" and doc["code"] == response.status
    return response.status, doc["reason"], doc["message"]


def test_served_api_failures_are_503_and_missing_splits_404(cluster: Cluster, tmp_path: Path) -> None:
    assert handle(cluster, f"{SPLIT_PATH}/web?at={AT}").status == 200
    assert status_of(handle(cluster, f"{SPLIT_PATH}/other")) == (
        404,
        "NotFound",
        f"TrafficSplit shop/other not found on the Kubernetes API server at {cluster.host} "
        "(TrafficSplits in namespace shop: web)",
    )
    assert cluster.fake is not None
    cluster.fake.inject(Fault(status=403, path="/trafficsplits$", times=None))
    code, reason, message = status_of(handle(cluster, f"{SPLIT_PATH}/web"))
    assert (code, reason) == (503, "ServiceUnavailable")
    assert message.startswith(f"the Kubernetes API server at {cluster.host} forbids the list of")
    gone = Cluster("fake", DOWN, workdir=tmp_path)
    assert status_of(handle(gone, f"{SPLIT_PATH}/web")) == (
        503,
        "ServiceUnavailable",
        f"the Kubernetes API server at {DOWN} is unreachable: cannot connect",
    )


def test_served_api_without_the_crd_answers_404(bare_cluster: Cluster) -> None:
    code, _, message = status_of(handle(bare_cluster, f"{SPLIT_PATH}/web"))
    assert code == 404 and "does not serve TrafficSplits (split.smi-spec.io)" in message
    deployment = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web"
    assert handle(bare_cluster, deployment).status == 200  # other kinds never need the cluster


def served_from_manifest(target: str) -> Response:
    """What ``serve -f`` answers for ``target`` (FakePrometheus behind it)."""

    async def go() -> Response:
        async with FakePrometheus(istio_rows).client() as client:
            splits = splits_from_manifests([str(MANIFEST)], None)
            return await MetricsAPI(TrafficMetricsService(client, MESHES["istio"], splits)).handle(
                "GET", target
            )

    return asyncio.run(go())


def test_serve_process_answers_a_trafficsplit_from_the_cluster_at_every_request(
    prometheus: PrometheusStub, cluster: Cluster
) -> None:
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [
            sys.executable, "-m", "smi_bridge.metrics.cli", "serve",
            "--backend", "istio", "--prometheus", prometheus.url, "--listen", f"127.0.0.1:{port}",
            "--kubeconfig", str(cluster.kubeconfig()), "--timeout", "5",
        ],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stderr is not None
            banner = proc.stderr.readline()
            assert f"on http://127.0.0.1:{port}" in banner
            assert f"(TrafficSplits from the Kubernetes API server at {cluster.host})" in banner
            base = f"http://127.0.0.1:{port}{SPLIT_PATH}"
            with httpx.Client(timeout=20) as http:
                served = http.get(f"{base}/web?at={AT}")
                assert served.status_code == 200, served.text
                assert served.json() == json.loads(served_from_manifest(f"{SPLIT_PATH}/web?at={AT}").body)

                # the next request sees the cluster as it is now
                backends = [{"service": "web-v1", "weight": 50}, {"service": "web-v3", "weight": 50}]
                resp = cluster.request(
                    "PATCH",
                    "/apis/split.smi-spec.io/v1alpha4/namespaces/shop/trafficsplits/web",
                    body={"spec": {"backends": backends}},
                    content_type="application/merge-patch+json",
                )
                assert resp.status_code == 200, resp.text
                items = http.get(f"{base}/web").json()["items"]
                assert [(i["backend"]["name"], i["backend"]["weight"]) for i in items] == [
                    ("web-v1", 50),
                    ("web-v3", 50),
                ]

                missing = http.get(f"{base}/other")
                assert missing.status_code == 404 and missing.json()["kind"] == "Status"
                assert missing.json()["message"].startswith("TrafficSplit shop/other not found on the")

                assert cluster.fake is not None
                cluster.fake.pause()
                down = http.get(f"{base}/web")
                assert down.status_code == 503
                assert down.json()["reason"] == "ServiceUnavailable"
                assert down.json()["message"].startswith(
                    f"the Kubernetes API server at {cluster.host} is unreachable"
                )
                assert http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
            rest = proc.stderr.read()
            assert "Traceback" not in rest, rest
        finally:
            if proc.poll() is None:
                proc.kill()
