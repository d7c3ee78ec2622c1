"""Answering a TrafficMetrics question: plan the PromQL, run it concurrently, shape the result.

A ``Scope`` is the question (a kind, maybe a namespace and name, maybe its edges); ``plan`` turns
it into ``queries.Plan`` values for the chosen mesh, and ``answer`` runs every query of every plan
at one evaluation instant and folds the rows into TrafficMetrics items:

- one named object always yields exactly one item; with no traffic its metrics are all zero
  (smi-metrics answered 500 "unable to lookup metrics" there);
- lists and edges yield one item per object or peer with traffic, ``items`` empty otherwise;
- a TrafficSplit yields one item per backend of the split, zero-weight backends included, with
  the split's integer weights (not smi-metrics' milli-weights); the split comes from the
  manifests the service was given, or from a ``split_source`` asked at every answer (the live
  cluster: ``smi-bridge metrics ... --kubeconfig``);
- counts are whole numbers (the queries subtract scraped integers; rounding only removes float
  noise); latency quantiles that are NaN or infinite (no request) are reported as 0.

The evaluation instant is a whole second, so the RFC 3339 ``timestamp`` the object states is
exactly the end of the window the numbers cover.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from smi_bridge import ir
from smi_bridge.metrics.kinds import NAMESPACE, TRAFFICSPLIT, ResourceKind
from smi_bridge.metrics.model import (
    API_GROUP,
    COUNT_METRICS,
    DEFAULT_API_VERSION,
    LATENCY_METRICS,
    Backend,
    Edge,
    ListMeta,
    ObjectMeta,
    ObjectReference,
    TrafficMetrics,
    TrafficMetricsList,
    metrics_in_order,
    rfc3339,
)
from smi_bridge.metrics.prometheus import PrometheusClient, PrometheusError, PrometheusUnavailable, Sample
from smi_bridge.metrics.quantity import to_milli
from smi_bridge.metrics.queries import ItemKey, MeshQueries, Plan, PromQuery, Unsupported
from smi_bridge.metrics.window import Window


class ScopeError(Exception):
    """A question that cannot be asked (``status`` is the HTTP status the server answers with)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SplitsUnavailable(Exception):
    """Where TrafficSplits are read from (the Kubernetes API) did not answer or refused us: the
    server answers 503 and the CLI exits 3, as when Prometheus is down."""


# (namespace, name) -> the TrafficSplit; raises ScopeError (404) when there is none, SplitsUnavailable
# when its source cannot be read.
SplitSource = Callable[[str, str], Awaitable[ir.Split]]


@dataclass(frozen=True)
class Scope:
    kind: ResourceKind
    namespace: str | None  # None: every namespace (lists) or a cluster-scoped kind
    name: str | None = None  # None: a list of every object of the kind with traffic
    edges: bool = False

    def __post_init__(self) -> None:
        if self.edges and self.name is None:
            raise ScopeError("edges are served for one named object, not for a list")
        if self.edges and not self.kind.edges:
            raise ScopeError(f"{self.kind.plural} have no edges", 404)
        if self.kind is TRAFFICSPLIT and self.name is None:
            raise ScopeError("trafficsplits are served one split at a time (get, not list)", 405)

    @property
    def split(self) -> bool:
        return self.kind is TRAFFICSPLIT

    def self_link(self, version: str) -> str:
        base = f"/apis/{API_GROUP}/{version}"
        if self.kind is NAMESPACE:
            path = f"{base}/namespaces/{self.name}" if self.name else f"{base}/namespaces"
        elif self.namespace is not None:
            path = f"{base}/namespaces/{self.namespace}/{self.kind.plural}"
            path += f"/{self.name}" if self.name else ""
        else:
            path = f"{base}/{self.kind.plural}"
        return path + "/edges" if self.edges else path

    def reference(self) -> ObjectReference:
        namespace = self.namespace if self.kind.namespaced else None
        return ObjectReference(kind=self.kind.kind, namespace=namespace, name=self.name)


@dataclass
class Answer:
    obj: TrafficMetrics | TrafficMetricsList
    notes: list[str] = field(default_factory=list)
    queries: list[PromQuery] = field(default_factory=list)


def evaluation_instant(now: float | None = None) -> int:
    """The whole second the question is answered at (now, rounded down)."""
    return int(now if now is not None else time.time())


class TrafficMetricsService:
    """TrafficMetrics for one mesh from one Prometheus; TrafficSplits come from ``splits``, or from
    ``split_source`` (asked again for every answer) when one is given."""

    def __init__(
        self,
        client: PrometheusClient,
        mesh: MeshQueries,
        splits: Sequence[ir.Split] = (),
        *,
        api_version: str = DEFAULT_API_VERSION,
        split_source: SplitSource | None = None,
    ) -> None:
        self.client = client
        self.mesh = mesh
        self.api_version = api_version
        self.split_source = split_source
        self._splits: dict[tuple[str, str], ir.Split] = {(s.namespace, s.name): s for s in splits}

    def find_split(self, namespace: str, name: str) -> ir.Split:
        split = self._splits.get((namespace, name))
        if split is None:
            known = ", ".join(f"{ns}/{n}" for ns, n in sorted(self._splits)) or "none were loaded"
            raise ScopeError(
                f"TrafficSplit {namespace}/{name} is not among the manifests given to smi-bridge ({known})",
                404,
            )
        return split

    async def split_for(self, scope: Scope) -> ir.Split | None:
        """The TrafficSplit ``scope`` asks about (None for other kinds), from its source."""
        if not scope.split:
            return None
        if self.split_source is None:
            return self._given_split(scope)
        namespace, name = _split_key(scope)
        return await self.split_source(namespace, name)

    def _given_split(self, scope: Scope) -> ir.Split:
        return self.find_split(*_split_key(scope))

    def plan(
        self, scope: Scope, window: Window, split: ir.Split | None = None
    ) -> tuple[list[Plan], list[str]]:
        """The plans answering ``scope`` and notes on what this mesh cannot measure (a TrafficSplit
        scope uses ``split``, else the one of that name among ``splits``)."""
        try:
            if scope.split:
                return [self.mesh.split_backends(split or self._given_split(scope), window)], []
            if scope.edges:
                assert scope.name is not None
                return self.mesh.edges(scope.kind, scope.namespace, scope.name, window)
            return [self.mesh.resource(scope.kind, scope.namespace, scope.name, window)], []
        except Unsupported as exc:
            raise ScopeError(str(exc), 404) from None

    async def answer(
        self, scope: Scope, window: Window, at: int | None = None, *, api_version: str | None = None
    ) -> Answer:
        """Run every query of ``scope`` at ``at`` (default: now) and shape the TrafficMetrics."""
        instant = evaluation_instant() if at is None else at
        split = await self.split_for(scope)
        plans, notes = self.plan(scope, window, split)
        for p in plans:
            notes.extend(n for n in p.notes if n not in notes)
        plans = await self._resolve(plans, instant)
        jobs = [(p, q) for p in plans for q in p.queries]
        results = await self._run([q for _, q in jobs], instant)
        items: dict[tuple[ItemKey, str], dict[str, Decimal | int]] = {}
        sides: dict[tuple[ItemKey, str], Plan] = {}
        for (p, q), rows in zip(jobs, results, strict=True):
            for row in rows:
                key = q.key(row.labels)
                if key is None:
                    continue
                values = items.setdefault((key, p.direction), {})
                sides[(key, p.direction)] = p
                value = _value(q.metric, row)
                if value is None:
                    continue
                if q.metric in COUNT_METRICS:
                    values[q.metric] = values.get(q.metric, 0) + value
                else:
                    values[q.metric] = value
        stamp = rfc3339(datetime.fromtimestamp(instant, UTC))
        build = _ItemBuilder(scope, window, stamp, api_version or self.api_version)
        if split is not None:
            plan = plans[0]
            out = []
            for b in split.backends:
                key = ItemKey(scope.reference(), None, b.service)
                backend = Backend(apex=split.root, name=b.service, weight=b.weight)
                out.append(build.item(key, items.get((key, "from"), {}), plan, backend))
            obj: TrafficMetrics | TrafficMetricsList = build.listing(out)
        elif scope.name is not None and not scope.edges:
            key = ItemKey(scope.reference())
            obj = build.item(key, items.get((key, "from"), {}), plans[0])
        else:
            ordered = sorted(items, key=_order)
            obj = build.listing([build.item(k, items[(k, d)], sides[(k, d)]) for k, d in ordered])
        return Answer(obj, notes, [q for _, q in jobs])

    async def _resolve(self, plans: list[Plan], at: int) -> list[Plan]:
        """Run the plans' lookups; a plan whose lookup finds nothing has nothing to measure."""
        lookups = [p.lookup for p in plans if p.lookup is not None]
        if not lookups:
            return plans
        found = iter(await self._run_exprs([lk.expr for lk in lookups], at))
        out = []
        for p in plans:
            if p.lookup is None:
                out.append(p)
                continue
            values = [v for row in next(found) if (v := row.labels.get(p.lookup.label))]
            if values:
                out.append(p.resolved(values))
        return out

    async def _run(self, queries: list[PromQuery], at: int) -> list[list[Sample]]:
        return await self._run_exprs([q.expr for q in queries], at)

    async def _run_exprs(self, exprs: list[str], at: int) -> list[list[Sample]]:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.client.query(expr, at)) for expr in exprs]
        except* PrometheusError as eg:
            errors = [e for e in eg.exceptions if isinstance(e, PrometheusError)]
            # Report an outage over a refused query: it is the cause of the others.
            unavailable = [e for e in errors if isinstance(e, PrometheusUnavailable)]
            raise (unavailable or errors)[0] from None
        return [t.result() for t in tasks]


def _split_key(scope: Scope) -> tuple[str, str]:
    if scope.namespace is None or scope.name is None:
        raise ScopeError("a TrafficSplit is asked for by namespace and name", 400)
    return scope.namespace, scope.name


def _order(entry: tuple[ItemKey, str]) -> tuple[str, str, str, str, str]:
    key, direction = entry
    peer = key.peer or ObjectReference()
    return (
        key.resource.namespace or "",
        key.resource.name or "",
        direction,
        peer.namespace or "",
        peer.name or "",
    )


def _value(metric: str, row: Sample) -> Decimal | int | None:
    if not row.finite:
        return None  # NaN quantile: no request in the window
    if metric in LATENCY_METRICS:
        return to_milli(row.value)
    # Sums of scraped integers are exact in float64; rounding only removes noise like 41.99999.
    return max(round(row.value), 0)


@dataclass
class _ItemBuilder:
    scope: Scope
    window: Window
    stamp: str
    version: str

    def item(
        self,
        key: ItemKey,
        values: Mapping[str, Decimal | int],
        plan: Plan,
        backend: Backend | None = None,
    ) -> TrafficMetrics:
        link = self.scope.self_link(self.version)
        if not self.scope.edges and self.scope.name is None:
            # a list item links to its own object
            link = Scope(self.scope.kind, key.resource.namespace, key.resource.name).self_link(self.version)
        return TrafficMetrics(
            metadata=ObjectMeta(
                name=key.resource.name,
                namespace=key.resource.namespace,
                selfLink=link,
                creationTimestamp=self.stamp,
            ),
            timestamp=self.stamp,
            window=self.window.go(),
            resource=key.resource,
            edge=Edge(direction=plan.direction, side=plan.side, resource=key.peer),
            backend=backend,
            metrics=metrics_in_order(values),
        )

    def listing(self, items: list[TrafficMetrics]) -> TrafficMetricsList:
        return TrafficMetricsList(
            metadata=ListMeta(selfLink=self.scope.self_link(self.version)),
            resource=self.scope.reference(),
            items=items,
        )
