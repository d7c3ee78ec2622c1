"""TrafficMetrics and TrafficMetricsList (``metrics.smi-spec.io``) v1alpha1 and v1alpha2.

These are read-only API objects (an aggregated API, no CRD). v1alpha2 adds ``edge.side`` and the
TrafficSplit ``backend`` block; real servers sent both under v1alpha1 too, so both versions accept
them as optional, and ``edge``, ``edge.resource`` and ``backend`` may be null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from smi_bridge.model.base import Strict

GROUP = "metrics.smi-spec.io"


class ObjectReference(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiVersion: str | None = None


class Edge(Strict):
    direction: Literal["to", "from"]
    side: Literal["client", "server"] | None = None
    resource: ObjectReference | None = None


class Backend(Strict):
    apex: str
    name: str
    weight: int


class Metric(Strict):
    name: str
    unit: str | None = None
    value: str | int | float


class MetricsMeta(BaseModel):
    """API output: servers fill name/namespace/selfLink/creationTimestamp as they like."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    namespace: str | None = None


class TrafficMetrics(Strict):
    apiVersion: str
    kind: Literal["TrafficMetrics"]
    metadata: MetricsMeta | None = None
    timestamp: str | None = None
    window: str | None = None
    resource: ObjectReference | None = None
    edge: Edge | None = None
    backend: Backend | None = None
    metrics: list[Metric] = []


class ListMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TrafficMetricsList(Strict):
    apiVersion: str
    kind: Literal["TrafficMetricsList"]
    metadata: ListMeta | None = None
    resource: ObjectReference | None = None
    selector: Any = None
    items: list[TrafficMetrics] | None = None


MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("v1alpha1", "TrafficMetrics"): TrafficMetrics,
    ("v1alpha2", "TrafficMetrics"): TrafficMetrics,
    ("v1alpha1", "TrafficMetricsList"): TrafficMetricsList,
    ("v1alpha2", "TrafficMetricsList"): TrafficMetricsList,
}
