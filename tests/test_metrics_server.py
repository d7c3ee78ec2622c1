"""The metrics.smi-spec.io server: paths, Status errors, Prometheus outages, and its HTTP layer.

Prometheus is faked with an httpx transport here (its PromQL is run for real in
test_metrics_prometheus.py); outages use real sockets: a closed port, and a listener that
accepts and never answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from smi_bridge import ir
from smi_bridge.metrics.prometheus import PrometheusClient, Timeouts
from smi_bridge.metrics.queries import MESHES
from smi_bridge.metrics.server import MetricsAPI, MetricsServer, Response
from smi_bridge.metrics.service import TrafficMetricsService

BASE = "/apis/metrics.smi-spec.io/v1alpha1"
SPLIT = ir.Split("shop", "web", "web", (ir.SplitBackend("web-v1", 90), ir.SplitBackend("web-v2", 10)))

Rows = list[tuple[dict[str, str], str]]


class FakePrometheus:
    """Answers /api/v1/query from ``answer(expr) -> rows``; records every query it was sent."""

    def __init__(
        self, answer: Callable[[str], Rows] | None = None, *, status: int = 200, body: Any = None
    ) -> None:
        self.answer = answer or (lambda expr: [])
        self.status = status
        self.body = body
        self.queries: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/-/ready":
            return httpx.Response(200, text="Prometheus Server is Ready.")
        form = parse_qs(request.content.decode())
        expr = form["query"][0]
        self.queries.append(expr)
        if self.body is not None:
            return httpx.Response(self.status, json=self.body)
        result = [{"metric": labels, "value": [0, value]} for labels, value in self.answer(expr)]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    def client(self) -> PrometheusClient:
        return PrometheusClient("http://prometheus.test:9090", transport=httpx.MockTransport(self.handler))


def call(fake: FakePrometheus, target: str, *, mesh: str = "istio", method: str = "GET") -> Response:
    async def go() -> Response:
        async with fake.client() as client:
            return await MetricsAPI(TrafficMetricsService(client, MESHES[mesh], [SPLIT])).handle(
                method, target
            )

    return asyncio.run(go())


def body(response: Response) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(response.body)
    return doc


def test_discovery_lists_every_kind_and_its_edges_subresource() -> None:
    doc = body(call(FakePrometheus(), BASE))
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "metrics.smi-spec.io/v1alpha1"
    names = [r["name"] for r in doc["resources"]]
    for plural in ("deployments", "pods", "daemonsets", "statefulsets", "namespaces"):
        assert plural in names and f"{plural}/edges" in names
    assert "trafficsplits" in names and "trafficsplits/edges" not in names
    assert {r["kind"] for r in doc["resources"]} == {"TrafficMetrics"}
    assert next(r for r in doc["resources"] if r["name"] == "namespaces")["namespaced"] is False


def test_group_discovery_names_both_versions_and_prefers_v1alpha1() -> None:
    group = body(call(FakePrometheus(), "/apis/metrics.smi-spec.io"))
    assert [v["version"] for v in group["versions"]] == ["v1alpha1", "v1alpha2"]
    assert group["preferredVersion"]["version"] == "v1alpha1"
    assert body(call(FakePrometheus(), "/apis"))["groups"][0]["name"] == "metrics.smi-spec.io"


def test_an_object_without_traffic_is_answered_with_zeros_not_an_error() -> None:
    response = call(FakePrometheus(), f"{BASE}/namespaces/shop/deployments/idle")
    assert response.status == 200
    doc = body(response)
    assert doc["resource"] == {"kind": "Deployment", "namespace": "shop", "name": "idle"}
    assert doc["metadata"]["selfLink"] == f"{BASE}/namespaces/shop/deployments/idle"
    assert {m["value"] for m in doc["metrics"]} == {"0"}


def test_a_list_without_traffic_has_an_empty_items_array() -> None:
    doc = body(call(FakePrometheus(), f"{BASE}/namespaces/shop/pods"))
    assert doc["kind"] == "TrafficMetricsList" and doc["items"] == []
    assert doc["metadata"]["selfLink"] == f"{BASE}/namespaces/shop/pods"  # names the namespace asked for


def test_list_items_are_sorted_and_link_to_their_own_objects() -> None:
    def answer(expr: str) -> Rows:
        names = ("web", "api")
        return [({"destination_workload_namespace": "shop", "destination_workload": n}, "3") for n in names]

    doc = body(call(FakePrometheus(answer), f"{BASE}/namespaces/shop/deployments"))
    assert [i["metadata"]["name"] for i in doc["items"]] == ["api", "web"]
    assert doc["items"][0]["metadata"]["selfLink"] == f"{BASE}/namespaces/shop/deployments/api"
    assert {m["name"]: m["value"] for m in doc["items"][0]["metrics"]}["success_count"] == "3"


def test_namespaces_are_cluster_scoped_objects() -> None:
    doc = body(call(FakePrometheus(), f"{BASE}/namespaces/shop"))
    assert doc["resource"] == {"kind": "Namespace", "name": "shop"}
    assert "namespace" not in doc["metadata"]
    edges = body(call(FakePrometheus(), f"{BASE}/namespaces/shop/edges"))
    assert (
        edges["kind"] == "TrafficMetricsList"
        and edges["metadata"]["selfLink"] == f"{BASE}/namespaces/shop/edges"
    )


def test_a_trafficsplit_is_a_list_with_one_item_per_backend_and_its_weight() -> None:
    def answer(expr: str) -> Rows:
        if "histogram_quantile" in expr:
            return [({"destination_service_name": "web-v1"}, "12.5")]
        return [({"destination_service_name": "web-v1"}, "9"), ({"destination_service_name": "other"}, "4")]

    doc = body(call(FakePrometheus(answer), f"{BASE}/namespaces/shop/trafficsplits/web"))
    assert [(i["backend"]["name"], i["backend"]["weight"]) for i in doc["items"]] == [
        ("web-v1", 90),
        ("web-v2", 10),
    ]
    v1 = {m["name"]: m["value"] for m in doc["items"][0]["metrics"]}
    assert v1["success_count"] == "9" and v1["p50_response_latency"] == "12500m"
    assert {m["value"] for m in doc["items"][1]["metrics"]} == {"0"}  # a backend without traffic


def test_v1alpha2_states_which_side_measured() -> None:
    doc = body(call(FakePrometheus(), "/apis/metrics.smi-spec.io/v1alpha2/namespaces/shop/deployments/web"))
    assert doc["apiVersion"] == "metrics.smi-spec.io/v1alpha2"
    assert doc["edge"] == {"direction": "from", "side": "server", "resource": None}


def test_the_window_comes_from_t_and_is_written_back_as_a_go_duration() -> None:
    fake = FakePrometheus()
    doc = body(call(fake, f"{BASE}/namespaces/shop/deployments/web?t=1m&at=1700000000"))
    assert doc["window"] == "1m0s" and doc["timestamp"] == "2023-11-14T22:13:20Z"
    assert all(" offset 1m" in q for q in fake.queries if "histogram_quantile" not in q)


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        (f"{BASE}/namespaces/shop/services/web", 404, "unsupported resource kind 'services'"),
        (f"{BASE}/namespaces/shop/deployment/web", 404, "unsupported resource kind"),
        (f"{BASE}/namespaces/shop/deployments/web?t=soon", 400, "Go duration"),
        (f"{BASE}/namespaces/shop/deployments/web?t=100ms", 400, "shorter than 1s"),
        (
            f"{BASE}/namespaces/shop/deployments?labelSelector=app%3Dweb",
            400,
            "labelSelector is not supported",
        ),
        (f"{BASE}/namespaces/shop/trafficsplits/nope", 404, "TrafficSplit shop/nope is not among"),
        (f"{BASE}/namespaces/shop/trafficsplits", 405, "one split at a time"),
        (f"{BASE}/namespaces/shop/trafficsplits/web/edges", 404, "have no edges"),
        (f"{BASE}/namespaces/shop/pods/web-0/edges", 404, "pod"),
        (f"{BASE}/namespaces/shop/deployments/web/metrics", 404, "could not find"),
        ("/apis/metrics.smi-spec.io/v1beta1/pods", 404, "not served"),
        ("/apis/metrics.k8s.io/v1beta1/pods", 404, "could not find"),
    ],
)
def test_bad_requests_get_a_kubernetes_status_saying_what_is_wrong(
    target: str, code: int, words: str
) -> None:
    response = call(FakePrometheus(), target)
    doc = body(response)
    assert response.status == code
    assert doc["kind"] == "Status" and doc["status"] == "Failure" and doc["code"] == code
    assert words in doc["message"]


def test_writes_are_refused_with_405() -> None:
    response = call(FakePrometheus(), f"{BASE}/namespaces/shop/deployments/web", method="DELETE")
    assert response.status == 405 and body(response)["reason"] == "MethodNotAllowed"


def test_a_query_prometheus_refuses_is_a_500_carrying_its_error() -> None:
    fake = FakePrometheus(
        status=400, body={"status": "error", "errorType": "bad_data", "error": "parse error"}
    )
    response = call(fake, f"{BASE}/namespaces/shop/deployments/web")
    assert response.status == 500 and "parse error" in body(response)["message"]


def test_prometheus_answering_503_is_passed_on_as_503() -> None:
    fake = FakePrometheus(
        status=503, body={"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
    )
    response = call(fake, f"{BASE}/namespaces/shop/deployments/web")
    assert response.status == 503 and "TSDB not ready" in body(response)["message"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _against(url: str, target: str, timeouts: Timeouts) -> Response:
    async def go() -> Response:
        async with PrometheusClient(url, timeouts=timeouts) as client:
            return await MetricsAPI(TrafficMetricsService(client, MESHES["proxy"])).handle("GET", target)

    return asyncio.run(go())


def test_unreachable_prometheus_gives_503_with_a_status_naming_it() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    response = _against(url, f"{BASE}/namespaces/shop/deployments/web", Timeouts(connect=1, request=2))
    doc = body(response)
    assert response.status == 503 and doc["reason"] == "ServiceUnavailable"
    assert url in doc["message"] and "unreachable" in doc["message"]


@pytest.fixture
def silent_prometheus() -> Iterator[str]:
    """A listener that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_prometheus_that_never_answers_gives_503_at_the_deadline_instead_of_hanging(
    silent_prometheus: str,
) -> None:
    response = _against(
        silent_prometheus, f"{BASE}/namespaces/shop/deployments/web", Timeouts(connect=1, request=0.3)
    )
    assert response.status == 503
    assert "did not answer within 0.3s" in body(response)["message"]


def test_readyz_follows_prometheus_and_healthz_only_the_process(silent_prometheus: str) -> None:
    assert call(FakePrometheus(), "/readyz").status == 200
    assert _against(silent_prometheus, "/readyz", Timeouts(connect=1, request=0.3)).status == 503
    assert _against(silent_prometheus, "/healthz", Timeouts(connect=1, request=0.3)).status == 200


# --- the HTTP layer over a real socket ---------------------------------------------------------------


def served(fake: FakePrometheus, exchange: Callable[[str, int], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with fake.client() as client:
            server = MetricsServer(MetricsAPI(TrafficMetricsService(client, MESHES["istio"], [SPLIT])))
            host, port = await server.start("127.0.0.1", 0)
            try:
                return await exchange(host, port)
            finally:
                await server.close()

    return asyncio.run(go())


async def raw(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)  # until the server closes
    finally:
        writer.close()


def test_kubectl_style_client_gets_json_and_notes_as_warning_headers() -> None:
    async def exchange(host: str, port: int) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.get(f"http://{host}:{port}{BASE}/namespaces/shop/deployments/web")

    response = served(FakePrometheus(), exchange)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["kind"] == "TrafficMetrics"
    assert response.headers["warning"].startswith('299 - "istio: denied_count counts 403 responses')


def test_keep_alive_serves_several_requests_on_one_connection_and_head_has_no_body() -> None:
    async def exchange(host: str, port: int) -> bytes:
        requests = (
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            f"HEAD {BASE}/namespaces/shop/deployments/web HTTP/1.1\r\nHost: x\r\n\r\n"
            f"GET {BASE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        return await raw(host, port, requests.encode())

    data = served(FakePrometheus(), exchange)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    head = data.split(b"HTTP/1.1 200 OK")[2]
    assert b"Content-Length: " in head and b'"kind":"TrafficMetrics"' not in head
    assert data.rstrip().endswith(b"}")  # the last response's JSON body, then the server closed


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"413"),
        (b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"413"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 40_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_malformed_or_oversized_requests_are_refused_and_the_connection_closed(
    request_bytes: bytes, status: bytes
) -> None:
    async def exchange(host: str, port: int) -> bytes:
        return await raw(host, port, request_bytes)

    data = served(FakePrometheus(), exchange)
    assert data.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in data


def test_consul_edges_look_up_the_objects_services_first_and_pin_them() -> None:
    def answer(expr: str) -> Rows:
        if expr.startswith("group by (local_cluster)"):
            return [({"local_cluster": "web"}, "1")]
        if 'consul_destination_service=~"web"' in expr and "envoy_cluster_upstream_rq{" in expr:
            return [({"namespace": "shop", "smi_workload": "frontend"}, "7")]
        return []

    fake = FakePrometheus(answer)
    doc = body(call(fake, f"{BASE}/namespaces/shop/deployments/web/edges", mesh="consul"))
    assert [(i["edge"]["direction"], i["edge"]["resource"]["name"]) for i in doc["items"]] == [
        ("from", "frontend")
    ]
    assert all("__smi_bridge_lookup__" not in q for q in fake.queries)


def test_consul_object_that_serves_no_service_has_no_incoming_edges() -> None:
    fake = FakePrometheus()
    doc = body(call(fake, f"{BASE}/namespaces/shop/deployments/web/edges", mesh="consul"))
    assert doc["items"] == []
    assert not any("__smi_bridge_lookup__" in q for q in fake.queries)  # nothing ran unresolved
