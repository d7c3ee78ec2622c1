"""TrafficMetrics query throughput: 100 resources x 4 backends against a local Prometheus.

Generates the metrics of 100 Deployments (each called by two client workloads, with 2xx, 5xx and
denied responses and a latency histogram) in every mesh's own idiom, serves two snapshots of them
to a throwaway Prometheus (Debian's binary, 1 s scrapes) so that the window holds increments,
then asks for the TrafficMetrics of every Deployment on every backend, ``--concurrency`` at a
time. One answer is six PromQL queries (three latency percentiles, success, failure, denied).

Prints, per backend: answers/s, PromQL queries/s, and p50/p99 latency of one answer; plus the same
for edges (both directions: twelve queries). Run: ``python benchmarks/metrics.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smi_bridge.metrics.kinds import DEPLOYMENT
from smi_bridge.metrics.local_prometheus import ExpositionServer, LocalPrometheus, ScrapeTarget
from smi_bridge.metrics.prometheus import PrometheusClient, Timeouts
from smi_bridge.metrics.queries import MESHES
from smi_bridge.metrics.service import Scope, TrafficMetricsService
from smi_bridge.metrics.window import Window

NS = "bench"
CLIENTS = ("frontend", "batch")
ENVOY_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
LINKERD_MS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000)
PROXY_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def name(i: int) -> str:
    return f"svc-{i:03d}"


def pod(workload: str) -> str:
    return f"{workload}-5c7b9f4d8-q7wz2"


def labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def histogram(
    metric: str, base: dict[str, str], bounds: tuple[float, ...], n: int, scale: float = 1.0
) -> list[str]:
    """``n`` observations spread over the buckets (a quarter each in four middle buckets)."""
    out, cumulative = [], 0
    for k, b in enumerate(bounds):
        if 3 <= k < 7:
            cumulative += n // 4
        out.append(f"{metric}_bucket{labels({**base, 'le': repr(b * scale)})} {cumulative}")
    out.append(f"{metric}_bucket{labels({**base, 'le': '+Inf'})} {n}")
    out.append(f"{metric}_count{labels(base)} {n}")
    return out


def traffic(i: int, phase: int) -> list[tuple[str, int, int]]:
    """``(client, status, count)`` for Deployment ``i`` at snapshot ``phase``: counters grow with it."""
    k = 1 + phase
    return [
        (c, code, k * n) for c in CLIENTS for code, n in ((200, 40 + i % 7), (503, 1 + i % 3), (403, i % 2))
    ]


def istio(i: int, phase: int) -> list[str]:
    out = []
    for client, code, n in traffic(i, phase):
        for reporter, scrape in (("destination", name(i)), ("source", client)):
            base = {
                "reporter": reporter,
                "source_workload": client,
                "source_workload_namespace": NS,
                "destination_workload": name(i),
                "destination_workload_namespace": NS,
                "destination_service_name": name(i),
                "destination_service_namespace": NS,
                "response_code": str(code),
                "response_flags": "-",
                "namespace": NS,
                "pod": pod(scrape),
            }
            out.append(f"istio_requests_total{labels(base)} {n}")
            out += histogram("istio_request_duration_milliseconds", base, ENVOY_MS, n)
    return out


def linkerd(i: int, phase: int) -> list[str]:
    out = []
    for client, code, n in traffic(i, phase):
        status = {"status_code": str(code), "classification": "failure" if code >= 500 else "success"}
        if code != 403:
            inbound = {
                "direction": "inbound",
                "namespace": NS,
                "deployment": name(i),
                "pod": pod(name(i)),
                **status,
            }
            out.append(f"response_total{labels(inbound)} {n}")
            out += histogram("response_latency_ms", inbound, LINKERD_MS, n)
        else:
            deny = {
                "namespace": NS,
                "deployment": name(i),
                "pod": pod(name(i)),
                "client_id": f"{client}.{NS}",
            }
            out.append(f"inbound_http_authz_deny_total{labels(deny)} {n}")
        outbound = {
            "direction": "outbound",
            "namespace": NS,
            "deployment": client,
            "pod": pod(client),
            "dst_namespace": NS,
            "dst_deployment": name(i),
            "dst_service": name(i),
            "authority": f"{name(i)}.{NS}.svc.cluster.local:8080",
            **status,
        }
        out.append(f"response_total{labels(outbound)} {n}")
        out += histogram("response_latency_ms", outbound, LINKERD_MS, n)
    return out


def consul(i: int, phase: int) -> list[str]:
    out = []
    server = {"envoy_http_conn_manager_prefix": "public_listener", "local_cluster": name(i), "namespace": NS}
    server["pod"] = pod(name(i))
    by_class: dict[str, int] = {}
    denied = total = 0
    for client, code, n in traffic(i, phase):
        by_class[str(code // 100)] = by_class.get(str(code // 100), 0) + n
        total += n
        denied += n if code == 403 else 0
        up = {"consul_destination_service": name(i), "consul_destination_namespace": "default"}
        up |= {"local_cluster": client, "namespace": NS, "pod": pod(client)}
        out.append(f"envoy_cluster_upstream_rq{labels({**up, 'envoy_response_code': str(code)})} {n}")
        if code == 200:
            out += histogram("envoy_cluster_upstream_rq_time", up, ENVOY_MS, n)
    for cls, n in by_class.items():
        out.append(f"envoy_http_downstream_rq_xx{labels({**server, 'envoy_response_code_class': cls})} {n}")
    out.append(f"envoy_http_rbac_denied{labels(server)} {denied}")
    out += histogram("envoy_http_downstream_rq_time", server, ENVOY_MS, total)
    return out


def proxy(i: int, phase: int) -> list[str]:
    out = []
    for client, code, n in traffic(i, phase):
        base = {
            "source_namespace": NS,
            "source_workload": client,
            "destination_namespace": NS,
            "destination_service": name(i),
            "backend_service": name(i),
            "destination_workload": name(i),
            "destination_pod": pod(name(i)),
        }
        extra = {"status_class": f"{code // 100}xx", "denied": "true" if code == 403 else "false"}
        out.append(f"smi_proxy_requests_total{labels({**base, **extra})} {n}")
        if code == 200:
            out += histogram("smi_proxy_request_duration_seconds", base, PROXY_S, n)
    return out


GENERATORS: dict[str, Callable[[int, int], list[str]]] = {
    "istio": istio,
    "linkerd": linkerd,
    "consul": consul,
    "proxy": proxy,
}


def exposition(mesh: str, resources: int, phase: int) -> str:
    return "\n".join(line for i in range(resources) for line in GENERATORS[mesh](i, phase)) + "\n"


async def measure(
    url: str, mesh: str, resources: int, window: Window, at: int, concurrency: int, edges: bool
) -> list[float]:
    limit = asyncio.Semaphore(concurrency)
    timeouts = Timeouts(connect=2.0, request=60.0)
    async with PrometheusClient(url, timeouts=timeouts, max_connections=concurrency * 12) as client:
        service = TrafficMetricsService(client, MESHES[mesh])

        async def one(i: int) -> float:
            async with limit:
                start = time.perf_counter()
                await service.answer(Scope(DEPLOYMENT, NS, name(i), edges=edges), window, at)
                return time.perf_counter() - start

        await one(0)  # warm the connection pool
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(i)) for i in range(resources)]
        return [t.result() for t in tasks]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resources", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    with ExpositionServer() as files:
        for mesh in GENERATORS:
            files.publish(f"/{mesh}", exposition(mesh, args.resources, 0))
        targets = [ScrapeTarget(mesh, files.address, f"/{mesh}") for mesh in GENERATORS]
        # A 7 MB scrape of Istio's series needs more than the tests' one-second interval.
        with LocalPrometheus(targets, scrape_interval_s=2.0) as prom:
            prom.wait_for_scrape(time.time())
            start = math.ceil(time.time())
            time.sleep(start - time.time() + 0.05)
            for mesh in GENERATORS:
                files.publish(f"/{mesh}", exposition(mesh, args.resources, 1))
            end = math.ceil(prom.wait_for_scrape(time.time()))
            window = Window((end - start) * 1000)
            # Stop feeding: serving and ingesting 50k series every scrape would compete with the
            # queries for the CPU. Later scrapes mark the series stale, but only after ``end``,
            # the instant every query is evaluated at.
            for mesh in GENERATORS:
                files.publish(f"/{mesh}", "")
            prom.wait_for_scrape(time.time())
            series = sum(exposition(mesh, args.resources, 1).count("\n") for mesh in GENERATORS)
            print(f"{args.resources} Deployments x {len(GENERATORS)} backends, {series:.0f} series in Prometheus, "
                  f"concurrency {args.concurrency}, window {window.go()}")  # fmt: skip
            print(
                f"{'scope':<10} {'backend':<8} {'answers/s':>10} {'PromQL/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
            )
            for edges in (False, True):
                for mesh in GENERATORS:
                    began = time.perf_counter()
                    times = asyncio.run(
                        measure(prom.url, mesh, args.resources, window, end, args.concurrency, edges)
                    )
                    elapsed = time.perf_counter() - began
                    per_answer = 12 if edges else 6
                    rate = args.resources / elapsed
                    print(
                        f"{'edges' if edges else 'resource':<10} {mesh:<8} {rate:>10.1f} {rate * per_answer:>10.1f} "
                        f"{statistics.median(times) * 1000:>8.1f} {percentile(times, 0.99) * 1000:>8.1f}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
