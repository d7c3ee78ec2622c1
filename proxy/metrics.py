"""The proxy's Prometheus metrics: names and labels are a contract with the TrafficMetrics work.

The request path only bumps integers in plain dicts keyed by label tuples; the Prometheus
families are built when ``/metrics`` is scraped (a custom collector on a private
``CollectorRegistry``). That keeps prometheus-client's per-child locks and label validation off
the hot path, which runs on one event loop thread anyway.

- ``smi_proxy_requests_total`` (counter): source_namespace, source_workload,
  source_service_account, destination_namespace, destination_service (the Service as dialed, the
  split root), backend_service, destination_workload, destination_pod, status_class, denied;
- ``smi_proxy_request_duration_seconds`` (histogram): source_namespace, source_workload,
  destination_namespace, destination_service, backend_service, destination_workload,
  destination_pod;
- ``smi_proxy_tcp_connections_total`` and ``smi_proxy_tcp_bytes_total`` (+ ``direction``):
  source_namespace, source_workload, destination_namespace, destination_service,
  backend_service, destination_workload, denied;
- ``smi_proxy_upstream_failures_total``: backend_service, reason (connect, timeout, reset);
- ``smi_proxy_config_reloads_total``: result; ``smi_proxy_config_info`` (= 1): version, digest.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_LABELS = (
    "source_namespace",
    "source_workload",
    "source_service_account",
    "destination_namespace",
    "destination_service",
    "backend_service",
    "destination_workload",
    "destination_pod",
    "status_class",
    "denied",
)
DURATION_LABELS = (
    "source_namespace",
    "source_workload",
    "destination_namespace",
    "destination_service",
    "backend_service",
    "destination_workload",
    "destination_pod",
)
TCP_LABELS = (
    "source_namespace",
    "source_workload",
    "destination_namespace",
    "destination_service",
    "backend_service",
    "destination_workload",
    "denied",
)

STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

# Label tuples, in the orders above.
RequestKey = tuple[str, str, str, str, str, str, str, str, str, str]
DurationKey = tuple[str, str, str, str, str, str, str]
TCPKey = tuple[str, str, str, str, str, str, str]
# What the request path records: source ns, source workload, source ServiceAccount, destination
# ns, destination service, backend service, destination workload, destination pod.
Labels = tuple[str, str, str, str, str, str, str, str]


class ProxyMetrics:
    """Counters and histograms of one proxy process, exported through a private registry."""

    def __init__(self) -> None:
        # keyed on what the request path has at hand; the exported label sets are built on scrape
        self.requests: dict[tuple[Labels, int, bool], int] = {}
        # per label set: [count per bucket (len(DURATION_BUCKETS) + 1 for +Inf)..., sum]
        self.durations: dict[Labels, list[float]] = {}
        self.tcp_connections: dict[TCPKey, int] = {}
        self.tcp_bytes: dict[tuple[TCPKey, str], int] = {}
        self.upstream_failures: dict[tuple[str, str], int] = {}
        self.reloads: dict[str, int] = {"success": 0, "failure": 0}
        self.config_info: tuple[str, str] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # --- recording (hot path) ------------------------------------------------------------------

    def request(self, labels: Labels, status: int, denied: bool, seconds: float) -> None:
        key = (labels, status // 100, denied)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        row = self.durations.get(labels)
        if row is None:
            row = [0.0] * (len(DURATION_BUCKETS) + 2)
            self.durations[labels] = row
        row[bisect_left(DURATION_BUCKETS, seconds)] += 1
        row[-1] += seconds

    def tcp_connection(self, key: TCPKey) -> None:
        self.tcp_connections[key] = self.tcp_connections.get(key, 0) + 1

    def tcp_transfer(self, key: TCPKey, sent: int, received: int) -> None:
        """``sent``: bytes the proxy sent to the client; ``received``: bytes it received from it."""
        for direction, amount in (("sent", sent), ("received", received)):
            k = (key, direction)
            self.tcp_bytes[k] = self.tcp_bytes.get(k, 0) + amount

    def upstream_failure(self, backend_service: str, reason: str) -> None:
        k = (backend_service, reason)
        self.upstream_failures[k] = self.upstream_failures.get(k, 0) + 1

    def reload(self, ok: bool) -> None:
        self.reloads["success" if ok else "failure"] += 1

    def set_config(self, version: str, digest: str) -> None:
        self.config_info = (version, digest)

    # --- export -------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "smi_proxy_requests", "HTTP requests handled by smi-proxy.", labels=REQUEST_LABELS
        )
        merged: dict[RequestKey, int] = {}
        for (labels, hundreds, denied), value in self.requests.items():
            key = (*labels, STATUS_CLASS.get(hundreds, "5xx"), "true" if denied else "false")
            merged[key] = merged.get(key, 0) + value
        for key, value in sorted(merged.items()):
            requests.add_metric(key, value)
        yield requests

        durations = HistogramMetricFamily(
            "smi_proxy_request_duration_seconds",
            "Time from a request's headers to the end of its response.",
            labels=DURATION_LABELS,
        )
        bounds = [*(repr(b) for b in DURATION_BUCKETS), "+Inf"]
        rows: dict[DurationKey, list[float]] = {}
        for labels, row in self.durations.items():
            # The histogram has no source_service_account label: rows that differ only there merge.
            dkey = (*labels[:2], *labels[3:])
            into = rows.get(dkey)
            rows[dkey] = list(row) if into is None else [a + b for a, b in zip(into, row, strict=True)]
        for dkey, row in sorted(rows.items()):
            cumulative = 0.0
            buckets = []
            for bound, count in zip(bounds, row[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            durations.add_metric(dkey, buckets, row[-1])
        yield durations

        connections = CounterMetricFamily(
            "smi_proxy_tcp_connections", "TCP connections handled by smi-proxy.", labels=TCP_LABELS
        )
        for tkey, value in sorted(self.tcp_connections.items()):
            connections.add_metric(tkey, value)
        yield connections

        transferred = CounterMetricFamily(
            "smi_proxy_tcp_bytes", "Bytes relayed on TCP connections.", labels=(*TCP_LABELS, "direction")
        )
        for (tkey, direction), value in sorted(self.tcp_bytes.items()):
            transferred.add_metric((*tkey, direction), value)
        yield transferred

        failures = CounterMetricFamily(
            "smi_proxy_upstream_failures",
            "Upstream connections or responses that failed.",
            labels=("backend_service", "reason"),
        )
        for (backend, reason), value in sorted(self.upstream_failures.items()):
            failures.add_metric((backend, reason), value)
        yield failures

        reloads = CounterMetricFamily(
            "smi_proxy_config_reloads", "Configuration reloads by result.", labels=("result",)
        )
        for result, value in sorted(self.reloads.items()):
            reloads.add_metric((result,), value)
        yield reloads

        info = GaugeMetricFamily(
            "smi_proxy_config_info", "The active configuration (always 1).", labels=("version", "digest")
        )
        if self.config_info is not None:
            info.add_metric(self.config_info, 1)
        yield info

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
