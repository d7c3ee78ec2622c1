"""TrafficMetrics PromQL evaluated by a real Prometheus over recorded istio, linkerd, consul and proxy metrics.

One Prometheus (Debian's binary, a child process on 127.0.0.1, 1 s scrapes) scrapes the
``fixtures/metrics/<mesh>/before.prom`` documents, then the ``after.prom`` ones; the window is
exactly the time between the two. Every case of ``expected.yaml`` (derived by hand from the
traffic table in ``fixtures/metrics/README.md``) must come back exactly: whole-number counts
across a sidecar restart and series born inside the window, latencies to the microsecond.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from smi_bridge import ir
from smi_bridge.metrics.cli import metrics_query
from smi_bridge.metrics.kinds import resolve_kind
from smi_bridge.metrics.local_prometheus import (
    ExpositionServer,
    LocalPrometheus,
    ScrapeTarget,
    prometheus_binary,
)
from smi_bridge.metrics.model import (
    COUNT_METRICS,
    LATENCY_METRICS,
    TrafficMetrics,
    TrafficMetricsList,
    parse_wire,
)
from smi_bridge.metrics.prometheus import PrometheusClient
from smi_bridge.metrics.queries import MESHES
from smi_bridge.metrics.server import MetricsAPI, MetricsServer
from smi_bridge.metrics.service import Scope, TrafficMetricsService
from smi_bridge.metrics.window import Window
from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.skipif(
    prometheus_binary() is None, reason="Debian's prometheus package is not installed"
)

RECORDED = FIXTURES / "metrics"
MESH_DIRS = ("istio", "linkerd", "consul", "proxy")
WEB_SPLIT = ir.Split("shop", "web", "web", (ir.SplitBackend("web-v1", 90), ir.SplitBackend("web-v2", 10)))


@dataclass(frozen=True)
class RecordedWindow:
    url: str
    end: int  # Unix seconds
    window: Window


def _sums(files: dict[str, str]) -> dict[str, float]:
    """Per job, the sum of every sample value of its document (a fingerprint of one snapshot)."""
    return {
        mesh: sum(s.value for f in text_string_to_metric_families(text) for s in f.samples)
        for mesh, text in files.items()
    }


@pytest.fixture(scope="module")
def recorded() -> Iterator[RecordedWindow]:
    before = {mesh: (RECORDED / mesh / "before.prom").read_text() for mesh in MESH_DIRS}
    after = {mesh: (RECORDED / mesh / "after.prom").read_text() for mesh in MESH_DIRS}
    fingerprint = _sums(before)
    with ExpositionServer() as files:
        targets = [ScrapeTarget(mesh, files.address, f"/{mesh}/metrics") for mesh in MESH_DIRS]
        with LocalPrometheus(targets) as prom:
            for _attempt in range(3):
                for mesh in MESH_DIRS:
                    files.publish(f"/{mesh}/metrics", before[mesh])
                prom.wait_for_scrape(time.time())
                # The window starts on a whole second once Prometheus holds "before" everywhere...
                start = math.ceil(time.time())
                time.sleep(start - time.time() + 0.3)
                for mesh in MESH_DIRS:
                    files.publish(f"/{mesh}/metrics", after[mesh])
                # ...and ends on a whole second after every target was scraped with "after".
                end = math.ceil(prom.wait_for_scrape(time.time()))
                # A scrape stamped before ``start`` but answered after the swap (a loaded machine)
                # would put "after" values at the window start: then try again.
                held = {
                    mesh: prom.query_value(f'sum({{job="{mesh}", __name__!~"up|scrape_.+"}})', start)
                    for mesh in MESH_DIRS
                }
                if all(math.isclose(held[m] or 0.0, fingerprint[m], rel_tol=1e-9) for m in MESH_DIRS):
                    yield RecordedWindow(prom.url, end, Window((end - start) * 1000))
                    return
            pytest.fail(
                f"Prometheus never held the 'before' snapshot at a window start: {held} != {fingerprint}"
            )


def _cases() -> list[Any]:
    params = []
    for mesh in MESH_DIRS:
        doc = yaml.safe_load((RECORDED / mesh / "expected.yaml").read_text())
        for case in doc["cases"]:
            params.append(pytest.param(mesh, case, id=f"{mesh}-{case['name'].replace(' ', '_')}"))
    return params


def scope_of(spec: Mapping[str, Any]) -> Scope:
    return Scope(
        resolve_kind(spec["kind"]), spec.get("namespace"), spec.get("name"), edges=spec.get("edges", False)
    )


def items_of(obj: TrafficMetrics | TrafficMetricsList) -> list[TrafficMetrics]:
    return list(obj.items or []) if isinstance(obj, TrafficMetricsList) else [obj]


def comparable(item: TrafficMetrics) -> dict[str, Any]:
    """An item in the shape of expected.yaml."""
    assert item.edge is not None and item.resource is not None
    out: dict[str, Any] = {
        "resource": str(item.resource),
        "direction": item.edge.direction,
        "side": item.edge.side,
        "peer": str(item.edge.resource) if item.edge.resource else None,
    }
    if item.backend is not None:
        out["backend"] = item.backend.model_dump()
    for name in COUNT_METRICS:
        value = item.value(name)
        assert value.denominator == 1, f"{name} is not a whole number: {item.metric(name)}"
        out[name] = int(value)
    for name in LATENCY_METRICS:
        out[name] = float(item.value(name))
    return out


def expected_items(case: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{k: (float(v) if k in LATENCY_METRICS else v) for k, v in item.items()} for item in case["items"]]


async def _answer(rec: RecordedWindow, mesh: str, scope: Scope) -> TrafficMetrics | TrafficMetricsList:
    async with PrometheusClient(rec.url) as client:
        service = TrafficMetricsService(client, MESHES[mesh], [WEB_SPLIT], api_version="v1alpha2")
        return (await service.answer(scope, rec.window, rec.end)).obj


@pytest.mark.parametrize(("mesh", "case"), _cases())
def test_recorded_window_gives_the_hand_derived_traffic_metrics(
    recorded: RecordedWindow, mesh: str, case: dict[str, Any]
) -> None:
    obj = asyncio.run(_answer(recorded, mesh, scope_of(case["scope"])))
    assert [comparable(i) for i in items_of(obj)] == expected_items(case)


def test_every_item_states_the_window_and_its_end(recorded: RecordedWindow) -> None:
    obj = asyncio.run(_answer(recorded, "istio", Scope(resolve_kind("deployment"), "shop", None)))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(recorded.end))
    for item in items_of(obj):
        assert item.timestamp == stamp
        assert item.window == recorded.window.go()


def test_query_command_prints_the_split_from_its_manifest(recorded: RecordedWindow) -> None:
    code, text = metrics_query(
        backend="linkerd",
        prometheus=recorded.url,
        target="trafficsplit/web",
        namespace="shop",
        window=recorded.window.go(),
        at=str(recorded.end),
        output="json",
        filenames=[str(RECORDED / "trafficsplit.yaml")],
    )
    assert code == 0, text
    doc = json.loads(text)
    assert doc["kind"] == "TrafficMetricsList"
    rows = {i["backend"]["name"]: i for i in doc["items"]}
    assert {n: rows[n]["backend"]["weight"] for n in rows} == {"web-v1": 90, "web-v2": 10}
    values = {n: {m["name"]: m["value"] for m in rows[n]["metrics"]} for n in rows}
    assert (values["web-v1"]["success_count"], values["web-v1"]["failure_count"]) == ("90", "2")
    assert values["web-v1"]["denied_count"] == "5"
    assert values["web-v2"]["success_count"] == "10"


def test_query_command_runs_as_a_process_and_prints_a_table(recorded: RecordedWindow) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "smi_bridge.metrics.cli", "query",
            "--backend", "consul", "--prometheus", recorded.url,
            "-n", "shop", "deployment/web-v1", "--edges",
            "--window", recorded.window.go(), "--at", str(recorded.end),
        ],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "NAME", "DIRECTION", "PEER", "SUCCESS", "FAILURE", "DENIED", "SUCCESS%", "P50", "P90", "P99", "WINDOW",
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("from", "Deployment/shop/frontend", "90", "2", "0"),
        ("from", "Deployment/tools/loadgen", "0", "0", "5"),
        ("to", "Service/default/api", "40", "1", "0"),
    ]
    assert "note: consul:" in proc.stderr  # denied edges are 403s on Consul, and it says so


def test_served_api_answers_like_an_aggregated_api_server(recorded: RecordedWindow) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
        async with PrometheusClient(recorded.url) as client:
            server = MetricsServer(MetricsAPI(TrafficMetricsService(client, MESHES["istio"], [WEB_SPLIT])))
            host, port = await server.start("127.0.0.1", 0)
            base = f"http://{host}:{port}/apis/metrics.smi-spec.io/v1alpha1"
            t = f"?t={recorded.window.go()}&at={recorded.end}"
            try:
                async with httpx.AsyncClient() as http:
                    one = (await http.get(f"{base}/namespaces/shop/deployments/web-v1{t}")).json()
                    edges = (await http.get(f"{base}/namespaces/shop/deployments/web-v1/edges{t}")).json()
                    missing = await http.get(f"{base}/namespaces/shop/trafficsplits/nope{t}")
            finally:
                await server.close()
            return one, edges, missing

    one, edges, missing = asyncio.run(scenario())
    assert one["kind"] == "TrafficMetrics" and one["edge"] == {"direction": "from", "resource": None}
    assert {m["name"]: m["value"] for m in one["metrics"]}["success_count"] == "90"
    assert isinstance(parse_wire(edges), TrafficMetricsList)
    assert [(i["edge"]["direction"], i["edge"]["resource"]["name"]) for i in edges["items"]] == [
        ("from", "frontend"),
        ("from", "loadgen"),
        ("to", "api"),
    ]
    assert missing.status_code == 404 and missing.json()["kind"] == "Status"
