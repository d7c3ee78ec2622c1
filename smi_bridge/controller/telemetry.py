"""The controller's Prometheus metrics, on a registry of its own (several controllers can share a process).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` histograms); every series is
documented in the README's controller section.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Telemetry:
    """Counters, gauges and the reconcile latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter(
            "smi_bridge_controller_reconciles", "Reconcile passes, by result", ["result"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "smi_bridge_controller_reconcile_duration_seconds",
            "Time from the first change a pass handles to the end of its writes",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "smi_bridge_controller_errors",
            "Failed API calls and passes, by what failed",
            ["what"],
            registry=r,
        )
        self.writes = Counter(
            "smi_bridge_controller_writes", "Write requests sent, by verb", ["verb"], registry=r
        )
        self.managed = Gauge(
            "smi_bridge_controller_managed_objects",
            "Output objects the controller wants applied, by kind",
            ["kind"],
            registry=r,
        )
        self.lossy = Gauge(
            "smi_bridge_controller_lossy_translations",
            "Translation diagnostics at warning or above in the current desired state",
            registry=r,
        )
        self.lossy_total = Counter(
            "smi_bridge_controller_lossy_translation_reports",
            "Lossy translation diagnostics reported",
            registry=r,
        )
        self.events = Counter(
            "smi_bridge_controller_events", "Kubernetes Events written, by type", ["type"], registry=r
        )
        self.events_dropped = Counter(
            "smi_bridge_controller_events_dropped",
            "Events not written (rate limit or errors)",
            ["why"],
            registry=r,
        )
        self.leader = Gauge(
            "smi_bridge_controller_leader", "1 while this instance holds the lease", registry=r
        )
        self.ready = Gauge("smi_bridge_controller_ready", "1 while /readyz answers ok", registry=r)
        self.cached = Gauge(
            "smi_bridge_controller_cached_objects",
            "Objects in the informer caches, by kind",
            ["kind"],
            registry=r,
        )
        self.relists = Counter(
            "smi_bridge_controller_relists", "Cache relists (start, 410, reconnects)", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Telemetry"]
