"""TrafficMetrics (``metrics.smi-spec.io``) for every mesh, computed from a real Prometheus.

- ``model``: TrafficMetrics/TrafficMetricsList as served (v1alpha1, v1alpha2), quantities, windows;
- ``queries``: per-mesh PromQL (proxy, istio, linkerd, consul) with exact whole-number counts;
- ``prometheus``: the instant-query client, with deadlines and errors that say what went wrong;
- ``service``: a question (``Scope``) in, TrafficMetrics out;
- ``server``: the API paths an aggregated API server serves; ``cli``: ``smi-bridge metrics``;
- ``local_prometheus``, ``demo``: a throwaway Prometheus for tests, benchmarks and ``make demo``.
"""

from smi_bridge.metrics.model import TrafficMetrics, TrafficMetricsList
from smi_bridge.metrics.queries import MESHES, mesh_queries
from smi_bridge.metrics.service import Scope, TrafficMetricsService

__all__ = ["MESHES", "Scope", "TrafficMetrics", "TrafficMetricsList", "TrafficMetricsService", "mesh_queries"]
