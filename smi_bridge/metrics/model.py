"""TrafficMetrics and TrafficMetricsList as we serve them (``metrics.smi-spec.io`` v1alpha1/v1alpha2).

The wire shape follows what smi-metrics actually sent (key order, ``edge.resource: null`` for
"all peers", Quantity strings for values, Go duration strings for windows, RFC 3339 second
timestamps, selfLinks), so clients written against it keep working. Where smi-metrics was wrong
we are not: latencies really are milliseconds, counts are whole numbers, ``items`` is ``[]`` and
never ``null``, and a list's selfLink names the namespace it was asked for.

Versions: v1alpha1 has no ``edge.side``; v1alpha2 adds it. ``backend`` (apex, leaf, weight) exists
only on TrafficSplit items and is written in both versions, because the published v1alpha1 spec
text shows it and without it the per-backend items of a split would be indistinguishable.

Besides the five standard metrics every item carries ``denied_count`` (requests refused by access
policy), kept apart from ``failure_count``; clients that look metrics up by name ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smi_bridge.metrics.quantity import format_quantity, quantity_value

API_GROUP = "metrics.smi-spec.io"
API_VERSIONS = ("v1alpha1", "v1alpha2")
DEFAULT_API_VERSION = "v1alpha1"

P99, P90, P50 = "p99_response_latency", "p90_response_latency", "p50_response_latency"
SUCCESS, FAILURE, DENIED = "success_count", "failure_count", "denied_count"
LATENCY_METRICS: dict[str, float] = {P99: 0.99, P90: 0.90, P50: 0.50}
COUNT_METRICS = (SUCCESS, FAILURE, DENIED)
METRIC_ORDER = (P99, P90, P50, SUCCESS, FAILURE, DENIED)
LATENCY_UNIT = "ms"

Direction = Literal["from", "to"]
Side = Literal["client", "server"]


def api_version(version: str) -> str:
    return f"{API_GROUP}/{version}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ObjectReference(_Wire):
    kind: str = ""
    namespace: str | None = None
    name: str | None = None

    def wire(self) -> dict[str, str]:
        """Like core/v1 ObjectReference JSON: empty fields are left out."""
        out: dict[str, str] = {}
        if self.kind:
            out["kind"] = self.kind
        if self.namespace:
            out["namespace"] = self.namespace
        if self.name:
            out["name"] = self.name
        return out

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else (self.name or "")
        return f"{self.kind}/{where}" if self.kind else where


class Edge(_Wire):
    direction: Direction
    side: Side | None = None
    resource: ObjectReference | None = None

    def wire(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"direction": self.direction}
        if version != "v1alpha1" and self.side:
            out["side"] = self.side
        out["resource"] = self.resource.wire() if self.resource and self.resource.wire() else None
        return out


class Backend(_Wire):
    apex: str
    name: str
    weight: int


class Metric(_Wire):
    name: str
    unit: str | None = None
    value: str = "0"

    @field_validator("value", mode="before")
    @classmethod
    def _quantity_text(cls, value: object) -> object:
        # YAML readers turn ``value: 100`` into a number; a quantity is its text.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @classmethod
    def of(cls, name: str, amount: Decimal | int) -> Metric:
        return cls(
            name=name, unit=LATENCY_UNIT if name in LATENCY_METRICS else None, value=format_quantity(amount)
        )

    @property
    def amount(self) -> Fraction:
        return quantity_value(self.value)

    def wire(self) -> dict[str, str]:
        out = {"name": self.name}
        if self.unit:
            out["unit"] = self.unit
        out["value"] = self.value
        return out


class ObjectMeta(_Wire):
    name: str | None = None
    namespace: str | None = None
    selfLink: str | None = None
    creationTimestamp: str | None = None


class TrafficMetrics(_Wire):
    apiVersion: str = api_version(DEFAULT_API_VERSION)
    kind: Literal["TrafficMetrics"] = "TrafficMetrics"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    timestamp: str | None = None
    window: str | None = None
    resource: ObjectReference | None = None
    edge: Edge | None = None
    backend: Backend | None = None
    metrics: list[Metric] = Field(default_factory=list)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _time_text(cls, value: object) -> object:
        return rfc3339(value) if isinstance(value, datetime) else value

    def metric(self, name: str) -> Metric | None:
        for m in self.metrics:
            if m.name == name:
                return m
        return None

    def value(self, name: str) -> Fraction:
        """The metric's exact value; an absent metric reads as zero, as the spec's defaults do."""
        m = self.metric(name)
        return m.amount if m is not None else Fraction(0)

    def wire(self, version: str = DEFAULT_API_VERSION) -> dict[str, Any]:
        md: dict[str, str] = {}
        for key in ("name", "namespace", "selfLink", "creationTimestamp"):
            val = getattr(self.metadata, key)
            if val:
                md[key] = val
        out: dict[str, Any] = {
            "kind": "TrafficMetrics",
            "apiVersion": api_version(version),
            "metadata": md,
            "timestamp": self.timestamp,
            "window": self.window,
            "resource": self.resource.wire() if self.resource else None,
            "edge": self.edge.wire(version) if self.edge else None,
        }
        if self.backend is not None:
            out["backend"] = self.backend.model_dump()
        out["metrics"] = [m.wire() for m in self.metrics]
        return out


class ListMeta(_Wire):
    selfLink: str | None = None


class TrafficMetricsList(_Wire):
    apiVersion: str = api_version(DEFAULT_API_VERSION)
    kind: Literal["TrafficMetricsList"] = "TrafficMetricsList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    resource: ObjectReference | None = None
    items: list[TrafficMetrics] | None = None

    def wire(self, version: str = DEFAULT_API_VERSION) -> dict[str, Any]:
        return {
            "kind": "TrafficMetricsList",
            "apiVersion": api_version(version),
            "metadata": {"selfLink": self.metadata.selfLink} if self.metadata.selfLink else {},
            "resource": self.resource.wire() if self.resource else None,
            "items": [i.wire(version) for i in self.items or ()],
        }


def parse_wire(doc: Mapping[str, Any]) -> TrafficMetrics | TrafficMetricsList:
    """Read a served object back (tests, clients); ``items: null`` (smi-metrics) reads as empty."""
    if doc.get("kind") == "TrafficMetricsList":
        return TrafficMetricsList.model_validate(doc)
    return TrafficMetrics.model_validate(doc)


def metrics_in_order(
    values: Mapping[str, Decimal | int], names: Sequence[str] = METRIC_ORDER
) -> list[Metric]:
    """Every named metric in the fixed order; a metric without a value is zero, never missing."""
    return [Metric.of(name, values.get(name, 0)) for name in names]
