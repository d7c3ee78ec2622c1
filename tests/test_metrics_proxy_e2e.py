"""TrafficMetrics of the real smi-proxy, read back through a real Prometheus, equal its own counters.

smi-proxy runs as a process on loopback (``smi_bridge.verify.LoopbackBed``: echo upstreams, the
proxy translation of the manifests below) and Prometheus scrapes its admin ``/metrics`` every
second. Traffic before the window (which must not be counted) and inside it (which must be,
exactly): a 90/10 split, upstream 503s, slow responses, and a caller that access policy denies.
The expected numbers are the differences of the proxy's own counters, read from its admin
listener at the window's two ends; ``metrics query`` must report exactly those, and latency
percentiles inside the bounds of the histogram bucket that holds them.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smi_bridge.metrics.cli import metrics_query
from smi_bridge.metrics.demo import demo_split_metrics
from smi_bridge.metrics.local_prometheus import LocalPrometheus, ScrapeTarget, prometheus_binary
from tests.proxybed import (
    canary_shop,
    documents,
    fetch,
    metric_families,
    pod,
)

verify = pytest.importorskip("smi_bridge.verify", reason="the proxy test bed is not in this tree")

pytestmark = pytest.mark.skipif(
    prometheus_binary() is None, reason="Debian's prometheus package is not installed"
)

# This module's own loopback ranges (cluster IPs 127.0.93.x, pods 127.0.94.x).
CHECKOUT = "127.0.93.1"
WEB = "127.0.94.10"
CRAWLER = "127.0.94.12"

MANIFESTS = documents(
    *canary_shop(
        "127.0.93.",
        "127.0.94.",
        checkout=("checkout-v1-7f9c8d6b5-abcde", "checkout-v2-5d4c3b2a1-fghij"),
        web="web-6b7c8d9f4-klmno",
    ),
    pod("crawler-7c6d5e4f3-pqrst", CRAWLER, {"app": "crawler"}, replicaset="crawler-7c6d5e4f3"),
)

REQUESTS = "smi_proxy_requests_total"
DURATION = "smi_proxy_request_duration_seconds_bucket"
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def own_series(bed: Any) -> Series:
    """Every sample of the proxy's own /metrics, keyed by (name, sorted labels)."""
    out: Series = {}
    for family in metric_families(bed).values():  # asserts the scrape's status 200
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def own_increase(
    before: Series, after: Series, name: str, where: Callable[[Mapping[str, str]], bool]
) -> float:
    total = 0.0
    for (n, labels), value in after.items():
        if n == name and where(dict(labels)):
            total += value - before.get((n, labels), 0.0)
    return total


@dataclass
class Window:
    manifests: Path
    url: str
    start: int
    end: int
    before: Series
    after: Series
    ir: Any  # the test bed's IR
    admin: str  # the proxy's admin listener, host:port
    began: float  # before any traffic

    @property
    def length(self) -> str:
        return f"{self.end - self.start}s"


def _send(source: str, count: int, headers: Mapping[str, str] | None = None) -> Counter[int]:
    client = verify.HTTPClient(CHECKOUT, 8080, source=source)
    return Counter(
        r.status for r in fetch(client, count, method="GET", path="/cart", headers=dict(headers or {}))
    )


def _total(own: Series) -> float:
    return sum(v for (n, _), v in own.items() if n == REQUESTS)


def _settle(prom: LocalPrometheus, bed: Any) -> tuple[Series, float]:
    """The proxy's own counters, once Prometheus holds exactly them; and that scrape's start time."""
    own = own_series(bed)
    total = _total(own)
    for _ in range(20):
        scraped = prom.wait_for_scrape(time.time())
        if prom.query_value(f"sum({REQUESTS})", scraped) == total:
            return own, scraped
    raise AssertionError(f"Prometheus never saw the proxy's {total} requests")


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Window]:
    directory = tmp_path_factory.mktemp("metrics-e2e")
    manifests = directory / "manifests.yaml"
    manifests.write_text(MANIFESTS)
    ir = verify.ir_from_manifests(MANIFESTS)
    bed = verify.LoopbackBed(ir, directory)
    admin = f"127.0.0.1:{bed.proxy.admin_port}"
    with LocalPrometheus([ScrapeTarget("smi-proxy", admin)]) as prom, bed:
        began = time.time()
        # Before the window: traffic that must not be counted.
        assert _send(WEB, 20) == {200: 20}
        assert _send(CRAWLER, 3) == {403: 3}
        before, _ = _settle(prom, bed)
        for _attempt in range(3):
            start = math.ceil(time.time())
            time.sleep(start - time.time() + 0.3)
            # Inside the window.
            assert _send(WEB, 60) == {200: 60}
            assert _send(WEB, 20, {"x-echo-status": "503"}) == {503: 20}
            assert _send(WEB, 20, {"x-echo-delay": "0.03"}) == {200: 20}
            assert _send(CRAWLER, 7) == {403: 7}
            after, scraped = _settle(prom, bed)
            # A scrape stamped before ``start`` but answered after the traffic began (a loaded
            # machine) would count some of it before the window: then the window starts again.
            if prom.query_value(f"sum({REQUESTS})", start) == _total(before):
                yield Window(manifests, prom.url, start, math.ceil(scraped), before, after, ir, admin, began)
                return
            before = after
        pytest.fail("Prometheus never held the proxy's counters of a window start")


def _query(w: Window, target: str, *, edges: bool = False) -> dict[str, Any]:
    code, text = metrics_query(
        backend="proxy",
        prometheus=w.url,
        target=target,
        namespace="shop",
        edges=edges,
        window=w.length,
        at=str(w.end),
        output="json",
        api_version="v1alpha2",
        filenames=[str(w.manifests)],
    )
    assert code == 0, text
    doc: dict[str, Any] = json.loads(text)
    return doc


def _values(item: Mapping[str, Any]) -> dict[str, str]:
    return {m["name"]: m["value"] for m in item["metrics"]}


def _counts(w: Window, where: Callable[[Mapping[str, str]], bool]) -> dict[str, str]:
    """The proxy's own success/failure/denied counts in the window, as TrafficMetrics writes them."""

    def inc(extra: Callable[[Mapping[str, str]], bool]) -> str:
        value = own_increase(w.before, w.after, REQUESTS, lambda lab: where(lab) and extra(lab))
        assert value == int(value)
        return str(int(value))

    return {
        "success_count": inc(lambda lab: lab["status_class"] != "5xx" and lab["denied"] != "true"),
        "failure_count": inc(lambda lab: lab["status_class"] == "5xx" and lab["denied"] != "true"),
        "denied_count": inc(lambda lab: lab["denied"] == "true"),
    }


def _bucket_bounds(w: Window, where: Callable[[Mapping[str, str]], bool], q: float) -> tuple[float, float]:
    """Bounds (ms) of the histogram bucket holding quantile ``q`` of the window's requests."""
    cumulative: dict[float, float] = {}
    for (n, labels), _ in w.after.items():
        lab = dict(labels)
        if n == DURATION and where(lab):
            le = float(lab["le"])
            key = (n, labels)
            cumulative[le] = cumulative.get(le, 0.0) + w.after[key] - w.before.get(key, 0.0)
    bounds = sorted(cumulative)
    rank = q * cumulative[math.inf]
    lower = 0.0
    for le in bounds:
        if cumulative[le] >= rank:
            upper = bounds[-2] if le == math.inf else le  # histogram_quantile's answer for +Inf
            return lower * 1000, upper * 1000
        lower = le
    raise AssertionError("empty histogram")


def _latencies_within_buckets(
    w: Window, item: Mapping[str, Any], where: Callable[[Mapping[str, str]], bool]
) -> None:
    values = _values(item)
    for name, q in (
        ("p50_response_latency", 0.5),
        ("p90_response_latency", 0.9),
        ("p99_response_latency", 0.99),
    ):
        low, high = _bucket_bounds(w, where, q)
        got = float(values[name].removesuffix("m")) / (1000 if values[name].endswith("m") else 1)
        assert low <= got <= high, f"{name} = {got} ms outside the bucket ({low}, {high}]"


def test_split_backends_report_exactly_the_proxys_own_counts(window: Window) -> None:
    doc = _query(window, "trafficsplit/checkout-canary")
    items = {i["backend"]["name"]: i for i in doc["items"]}
    assert [(i["backend"]["name"], i["backend"]["weight"]) for i in doc["items"]] == [
        ("checkout-v1", 90),
        ("checkout-v2", 10),
    ]
    for backend, item in items.items():

        def mine(lab: Mapping[str, str], backend: str = backend) -> bool:
            return lab["destination_service"] == "checkout" and lab["backend_service"] == backend

        assert {k: v for k, v in _values(item).items() if k.endswith("_count")} == _counts(window, mine)
        assert item["edge"] == {"direction": "from", "side": "client", "resource": None}
        _latencies_within_buckets(window, item, mine)
    # The window holds 100 allowed requests split 90/10 and 7 denied ones; nothing from before it.
    total = Counter[str]()
    for item in items.values():
        total.update({k: int(v) for k, v in _values(item).items() if k.endswith("_count")})
    assert total == {"success_count": 80, "failure_count": 20, "denied_count": 7}


def test_namespace_reports_every_request_into_it_once(window: Window) -> None:
    doc = _query(window, "namespace/shop")
    assert doc["kind"] == "TrafficMetrics"
    assert {k: v for k, v in _values(doc).items() if k.endswith("_count")} == _counts(
        window, lambda lab: lab["destination_namespace"] == "shop"
    )
    _latencies_within_buckets(window, doc, lambda lab: lab["destination_namespace"] == "shop")


def test_deployment_reports_the_requests_its_pods_answered(window: Window) -> None:
    doc = _query(window, "deployment/checkout-v2")

    def mine(lab: Mapping[str, str]) -> bool:
        return lab["destination_namespace"] == "shop" and lab["destination_workload"] == "checkout-v2"

    counts = _counts(window, mine)
    assert int(counts["success_count"]) > 0
    assert {k: v for k, v in _values(doc).items() if k.endswith("_count")} == counts
    _latencies_within_buckets(window, doc, mine)


def test_edges_of_the_caller_name_each_backend_it_reached(window: Window) -> None:
    doc = _query(window, "deployment/web", edges=True)
    peers = {(i["edge"]["direction"], i["edge"]["resource"]["name"]): i for i in doc["items"]}
    assert set(peers) == {("to", "checkout-v1"), ("to", "checkout-v2")}
    for (_, peer), item in peers.items():

        def mine(lab: Mapping[str, str], peer: str = peer) -> bool:
            return lab["source_workload"] == "web" and lab["destination_workload"] == peer

        assert {k: v for k, v in _values(item).items() if k.endswith("_count")} == _counts(window, mine)
        assert item["edge"]["side"] == "client"


def test_demo_prints_the_split_totals_of_a_running_proxy(window: Window) -> None:
    code, text = demo_split_metrics(window.ir, window.admin, since=window.began)
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0] == "TrafficMetrics of TrafficSplit shop/checkout-canary (root checkout):"
    rows = [line.split() for line in lines[2:]]
    assert [(r[2], r[3]) for r in rows] == [("checkout-v1", "90"), ("checkout-v2", "10")]
    # Everything since the proxy started: 120 allowed requests (20 of them 503) and 10 denied.
    assert sum(int(r[4]) for r in rows) == 100
    assert sum(int(r[5]) for r in rows) == 20
    assert sum(int(r[6]) for r in rows) == 10
