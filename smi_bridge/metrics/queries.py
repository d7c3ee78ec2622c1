"""Per-mesh PromQL for TrafficMetrics: latency percentiles and exact request counts over a window.

One table per mesh says where it records requests (series, the fixed matchers that pin the
reporting side), how it spells the outcome of a request, and how an object of each kind appears
in its labels (a *party*: the server or the client of a request). From that table the same
renderer writes every query, so the four meshes differ only in data:

======== ============================================ ========================================
mesh     resource (inbound) and "from" edges           "to" edges, TrafficSplit backends
======== ============================================ ========================================
proxy    ``smi_proxy_requests_total`` (the proxy sees  same series (the proxy decides at the
         both ends; measured at the client side)       client side)
istio    ``istio_requests_total{reporter="destination"}`` ``reporter="source"``
linkerd  ``response_total{direction="inbound"}``;      ``direction="outbound"`` (only client
         "from" edges from ``direction="outbound"``   series carry ``dst_*`` labels)
consul   Envoy ``public_listener`` downstream stats;   Envoy upstream cluster stats of the
         "from" edges from the callers' upstream       client (``consul_destination_service``)
         cluster stats
======== ============================================ ========================================

Outcomes, the same meaning on every mesh: **success** is a response with a status below 500
that was not a denial; **failure** is a 5xx, or no response at all; **denied** is a request
refused by access policy, counted apart from both. Where the mesh has a policy counter we use it
(proxy ``denied="true"``, Linkerd ``inbound_http_authz_deny_total``, Envoy ``rbac.denied`` behind
Consul); where the vantage point has only status codes (Istio; client-side series) a denial is a
403, and an application's own 403s are then counted as denied too (the plan says so in a note).

Exact counts. ``increase()`` extrapolates to the window edges, so it returns fractions even for
integer counters (smi-metrics reported ``"73492m"`` requests). We never extrapolate: for each
series ``S`` we take the last scraped value at the window end ``T`` minus the last scraped value
at or before ``T - W`` (``S - S offset W``). That is exactly the number of requests the scrapes in
``(T - W, T]`` recorded; the test suite compares it with the proxy's own counters. Two cases
need more than a subtraction, and both are decided per series before summing:

- a series with no value at ``T - W`` was born inside the window (a new peer, a new status
  code): all of its current value counts (``or S``);
- a series whose value went down inside the window was restarted (a counter reset, detected as
  ``min_over_time(S[W]) < S offset W``): the increments since the restart count (its current
  value). Requests between the last scrape before the restart and the restart itself were never
  scraped by anyone, so no query can count them.

Latency percentiles apply ``histogram_quantile`` to the same exact per-bucket increases (so a
percentile describes exactly the requests that were counted) and are converted to milliseconds in
the query; a percentile falls inside the bounds of the bucket that holds it, by construction of
``histogram_quantile``. With no request in the window the quantile is NaN and reported as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from smi_bridge import ir
from smi_bridge.metrics.kinds import (
    DAEMONSET,
    DEPLOYMENT,
    NAMESPACE,
    POD,
    STATEFULSET,
    TRAFFICSPLIT,
    ResourceKind,
)
from smi_bridge.metrics.model import (
    DENIED,
    FAILURE,
    LATENCY_METRICS,
    SUCCESS,
    Direction,
    ObjectReference,
    Side,
)
from smi_bridge.metrics.window import Window

Matcher = tuple[str, str, str]  # (label, operator, value)
UNIDENTIFIED = "unknown"  # the name a peer gets when the mesh could not identify it (Istio's own word)
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


class Unsupported(Exception):
    """This mesh's metrics cannot answer the question asked (the message says why)."""


# --- PromQL text ----------------------------------------------------------------------------------


def promql_string(value: str) -> str:
    """A double-quoted PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly itself."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def selector(metric: str, matchers: Sequence[Matcher]) -> str:
    inner = ", ".join(f"{label}{op}{promql_string(value)}" for label, op, value in matchers)
    return f"{metric}{{{inner}}}"


def exact_increase(series: str, window: Window) -> str:
    """Per series: the exact number of increments scraped in ``(T - W, T]`` (module docstring)."""
    w = window.promql()
    return (
        f"(({series} - {series} offset {w}) unless "
        f"(min_over_time({series}[{w}]) < {series} offset {w}) or {series})"
    )


LOOKUP = "__smi_bridge_lookup__"  # stands for the values a Lookup finds, until they are known


@dataclass(frozen=True)
class Lookup:
    """A first query whose result pins a label in the real ones.

    Consul's client-side series name the *service* they call, not the Kubernetes object behind it;
    the object's services are whatever its own proxies reported as ``local_cluster`` during the
    window. Pinning those names in the selectors (``=~"a|b"``, where ``LOOKUP`` stands until the
    lookup has run) lets Prometheus' index find the few series involved; joining with ``and on``
    instead would evaluate every client series of the cluster first.
    """

    expr: str
    label: str  # the label of the lookup's result rows holding the values


@dataclass(frozen=True)
class Selection:
    """Series filter for one object: label matchers, and maybe a lookup that completes them."""

    matchers: tuple[Matcher, ...] = ()
    lookup: Lookup | None = None


# --- parties: how an object appears in one mesh's labels -----------------------------------------------


class Party(Protocol):
    """One end of a request (server or client) as a mesh labels it, for one resource kind."""

    def select(self, namespace: str | None, name: str | None, window: Window) -> Selection:
        """Series of that object (``name is None``: every object of the kind, in ``namespace``)."""
        ...

    @property
    def group(self) -> tuple[str, ...]:
        """Labels that tell objects apart, after ``derive``."""
        ...

    def derive(self, expr: str) -> str:
        """Wrap a per-series expression so that the ``group`` labels exist (``label_replace``)."""
        ...

    def ref(self, labels: Mapping[str, str], kind: str) -> ObjectReference | None:
        """The object a result row belongs to (``None``: the row names no object of this kind)."""
        ...

    def presence(self) -> tuple[Matcher, ...]:
        """Matchers keeping only series that name an object of this kind, when grouping by it."""
        ...


@dataclass(frozen=True)
class LabelParty:
    """An object named by a label (and its namespace by another; Namespace objects have none)."""

    name_label: str
    namespace_label: str | None = None
    report_kind: str | None = None  # when peers are reported as another kind (Consul services)
    # True: a series without the label is not about an object of this kind (Linkerd adds
    # ``deployment`` only to Deployment pods). False: an empty or "unknown" value is a peer the
    # mesh could not identify, reported as "unknown" rather than dropped.
    required: bool = False

    def select(self, namespace: str | None, name: str | None, window: Window) -> Selection:
        matchers: list[Matcher] = []
        if namespace is not None and self.namespace_label:
            matchers.append((self.namespace_label, "=", namespace))
        matchers.append((self.name_label, "=", name) if name is not None else (self.name_label, "!=", ""))
        return Selection(tuple(matchers))

    @property
    def group(self) -> tuple[str, ...]:
        return (self.namespace_label, self.name_label) if self.namespace_label else (self.name_label,)

    def derive(self, expr: str) -> str:
        return expr

    def ref(self, labels: Mapping[str, str], kind: str) -> ObjectReference | None:
        name = labels.get(self.name_label, "")
        namespace = labels.get(self.namespace_label, "") if self.namespace_label else None
        if not name and self.required:
            return None
        return ObjectReference(
            kind=self.report_kind or kind,
            namespace=namespace or None,
            name=name if name and name != UNIDENTIFIED else UNIDENTIFIED,
        )

    def presence(self) -> tuple[Matcher, ...]:
        return ((self.name_label, "!=", ""),) if self.required else ()


# Kubernetes names a workload's pods after it; meshes that know only pods (Consul) are mapped back
# by these shapes. Deployment: <name>-<pod-template-hash>-<5>; StatefulSet: <name>-<ordinal>;
# DaemonSet: <name>-<5>. A workload whose own name ends in such a suffix can be mistaken, so the
# label-based meshes never use this.
_POD_SUFFIX = {
    "Deployment": "-[a-z0-9]{1,10}-[a-z0-9]{5}",
    "StatefulSet": "-[0-9]+",
    "DaemonSet": "-[a-z0-9]{5}",
}
DERIVED_WORKLOAD = "smi_workload"


@dataclass(frozen=True)
class PodNameParty:
    """A workload known only through its pods' names (a scrape-time ``pod`` label)."""

    workload_kind: str
    namespace_label: str = "namespace"
    pod_label: str = "pod"

    def select(self, namespace: str | None, name: str | None, window: Window) -> Selection:
        suffix = _POD_SUFFIX[self.workload_kind]
        head = regex_literal(name) if name is not None else ".+"
        matchers: list[Matcher] = []
        if namespace is not None:
            matchers.append((self.namespace_label, "=", namespace))
        matchers.append((self.pod_label, "=~", head + suffix))
        return Selection(tuple(matchers))

    @property
    def group(self) -> tuple[str, ...]:
        return (self.namespace_label, DERIVED_WORKLOAD)

    def derive(self, expr: str) -> str:
        pattern = promql_string("(.+)" + _POD_SUFFIX[self.workload_kind])
        return f'label_replace({expr}, "{DERIVED_WORKLOAD}", "$1", "{self.pod_label}", {pattern})'

    def ref(self, labels: Mapping[str, str], kind: str) -> ObjectReference | None:
        name = labels.get(DERIVED_WORKLOAD, "")
        if not name:
            return None
        return ObjectReference(kind=kind, namespace=labels.get(self.namespace_label) or None, name=name)

    def presence(self) -> tuple[Matcher, ...]:
        return ((self.pod_label, "=~", ".+" + _POD_SUFFIX[self.workload_kind]),)


@dataclass(frozen=True)
class ConsulServiceParty:
    """The server of a Consul upstream call: a Consul service.

    Filtering by a Kubernetes object pins the service names its own proxies reported as
    ``local_cluster`` on their public listener during the window (a ``Lookup``); grouping
    reports Services.
    """

    inner: Party  # how the object appears on its own (server-side) series
    inner_metric: str
    inner_fixed: tuple[Matcher, ...]

    def select(self, namespace: str | None, name: str | None, window: Window) -> Selection:
        sel = self.inner.select(namespace, name, window)
        own = selector(self.inner_metric, (*self.inner_fixed, *sel.matchers))
        services = f"group by (local_cluster) (max_over_time({own}[{window.promql()}]))"
        return Selection((("consul_destination_service", "=~", LOOKUP),), Lookup(services, "local_cluster"))

    @property
    def group(self) -> tuple[str, ...]:
        return ("consul_destination_namespace", "consul_destination_service")

    def derive(self, expr: str) -> str:
        return expr

    def ref(self, labels: Mapping[str, str], kind: str) -> ObjectReference | None:
        name = labels.get("consul_destination_service", "")
        if not name:
            return None
        return ObjectReference(
            kind="Service", namespace=labels.get("consul_destination_namespace") or None, name=name
        )

    def presence(self) -> tuple[Matcher, ...]:
        return (("consul_destination_service", "!=", ""),)


# --- families: where a mesh counts one kind of observation ------------------------------------------


@dataclass(frozen=True)
class Denials:
    """How denied requests are counted at one vantage point.

    Either ``matchers`` on the family's own series, or a separate ``counter`` whose series carry the
    same party labels (``subtract``: the denials are also inside the family's success series).
    """

    note: str = ""
    matchers: tuple[Matcher, ...] = ()
    counter: str = ""
    fixed: tuple[Matcher, ...] = ()
    subtract: bool = False

    def excluded(self) -> tuple[Matcher, ...]:
        """Matchers that keep denied requests out of the success series (when they live in it)."""
        negate = {"=": "!=", "!=": "=", "=~": "!~", "!~": "=~"}
        return tuple((label, negate[op], value) for label, op, value in self.matchers)


@dataclass(frozen=True)
class Family:
    side: Side
    counter: str
    histogram: str  # the ``_bucket`` series
    fixed: tuple[Matcher, ...]
    success: tuple[Matcher, ...]
    failure: tuple[Matcher, ...]
    denials: Denials
    server: Mapping[str, Party]  # by kind
    client: Mapping[str, Party]
    blind: str = ""  # why a missing party cannot be identified here
    to_ms: int = 1  # histogram unit -> milliseconds


@dataclass(frozen=True)
class ItemKey:
    """Which TrafficMetrics item a result row fills."""

    resource: ObjectReference
    peer: ObjectReference | None = None
    backend: str | None = None


KeyFn = Callable[[Mapping[str, str]], ItemKey | None]


@dataclass(frozen=True)
class PromQuery:
    metric: str  # the TrafficMetrics metric it fills
    expr: str
    key: KeyFn = field(compare=False, repr=False)


@dataclass(frozen=True)
class Plan:
    """Everything needed to answer one scope: the queries, where they measure, what to tell the user."""

    direction: Direction
    side: Side
    queries: tuple[PromQuery, ...]
    notes: tuple[str, ...] = ()
    lookup: Lookup | None = None  # run first; its values replace LOOKUP in ``queries``

    def resolved(self, values: list[str]) -> Plan:
        """The plan with the lookup's values pinned (``values`` must not be empty)."""
        pattern = promql_string("|".join(regex_literal(v) for v in sorted(set(values))))[1:-1]
        queries = tuple(PromQuery(q.metric, q.expr.replace(LOOKUP, pattern), q.key) for q in self.queries)
        return Plan(self.direction, self.side, queries, self.notes)


def _render(
    family: Family,
    filt: Selection,
    grouping: Party,
    window: Window,
    key: KeyFn,
    direction: Direction,
) -> Plan:
    """The six queries of one scope: series filtered by ``filt``, items told apart by ``grouping``."""
    by_text = ", ".join(grouping.group)
    notes: list[str] = []

    def per_series(metric: str, matchers: tuple[Matcher, ...]) -> str:
        # A presence matcher is only needed when the filter does not already pin that label.
        pinned = {label for label, op, _ in filt.matchers if op in ("=", "=~")}
        presence = tuple(m for m in grouping.presence() if m[0] not in pinned)
        every = tuple(dict.fromkeys((*matchers, *filt.matchers, *presence)))
        return grouping.derive(exact_increase(selector(metric, every), window))

    def count(metric: str, matchers: tuple[Matcher, ...]) -> str:
        return f"sum by ({by_text}) ({per_series(metric, matchers)})"

    queries: list[PromQuery] = []
    latency_inner = per_series(family.histogram, family.fixed)
    for name, q in LATENCY_METRICS.items():
        expr = f"histogram_quantile({q}, sum by (le, {by_text}) ({latency_inner}))"
        if family.to_ms != 1:
            expr = f"{expr} * {family.to_ms}"
        queries.append(PromQuery(name, expr, key))

    d = family.denials
    success = count(family.counter, (*family.fixed, *family.success, *d.excluded()))
    if d.counter:
        denied = count(d.counter, d.fixed)
        if d.subtract:
            # The denials were also answered (403) and counted as non-5xx responses: take them out.
            success = f"clamp_min({success} - ({denied} or {success} * 0), 0)"
    else:
        denied = count(family.counter, (*family.fixed, *d.matchers))
    queries.append(PromQuery(SUCCESS, success, key))
    queries.append(PromQuery(FAILURE, count(family.counter, (*family.fixed, *family.failure)), key))
    queries.append(PromQuery(DENIED, denied, key))
    if d.note:
        notes.append(d.note)
    return Plan(direction, family.side, tuple(queries), tuple(notes), filt.lookup)


# --- meshes ---------------------------------------------------------------------------------------

WORKLOADS = (DEPLOYMENT, STATEFULSET, DAEMONSET)


@dataclass(frozen=True)
class SplitSource:
    """Where a mesh counts the requests a TrafficSplit sent to each backend (client side)."""

    family: Family
    backend_label: str
    matchers: Callable[[ir.Split], tuple[Matcher, ...]]


@dataclass(frozen=True)
class MeshQueries:
    """The PromQL of one mesh for every TrafficMetrics scope."""

    name: str
    description: str
    inbound: Family  # resource scope
    from_edges: Family
    to_edges: Family
    split: SplitSource

    def resource(self, kind: ResourceKind, namespace: str | None, name: str | None, window: Window) -> Plan:
        """Inbound traffic of one object (``name``) or of every object of ``kind`` with traffic."""
        if kind is TRAFFICSPLIT:
            raise Unsupported("TrafficSplit metrics are per backend: use split_backends()")
        party = self.inbound.server.get(kind.kind)
        if party is None:
            raise Unsupported(f"{self.name} metrics cannot tell {kind.plural} apart: {self.inbound.blind}")
        sel = party.select(namespace if kind.namespaced else None, name, window)

        def key(labels: Mapping[str, str]) -> ItemKey | None:
            ref = party.ref(labels, kind.kind)
            return ItemKey(ref) if ref is not None else None

        return _render(self.inbound, sel, party, window, key, "from")

    def edges(
        self, kind: ResourceKind, namespace: str | None, name: str, window: Window
    ) -> tuple[list[Plan], list[str]]:
        """Plans for both directions, and a note for each direction this mesh cannot measure."""
        if not kind.edges:
            raise Unsupported(f"{kind.plural} have no edges")
        resource = ObjectReference(
            kind=kind.kind, namespace=namespace if kind.namespaced else None, name=name
        )
        plans: list[Plan] = []
        notes: list[str] = []
        directions: tuple[tuple[Direction, Family, Mapping[str, Party], Mapping[str, Party]], ...] = (
            ("from", self.from_edges, self.from_edges.server, self.from_edges.client),
            ("to", self.to_edges, self.to_edges.client, self.to_edges.server),
        )
        for direction, family, filters, groupings in directions:
            filt, grouping = filters.get(kind.kind), groupings.get(kind.kind)
            if filt is None or grouping is None:
                notes.append(f"{self.name}: no {direction!r} edges for {kind.plural}: {family.blind}")
                continue
            plans.append(
                _render(
                    family,
                    filt.select(resource.namespace, name, window),
                    grouping,
                    window,
                    _edge_key(resource, grouping, kind.kind),
                    direction,
                )
            )
        if not plans:
            raise Unsupported("; ".join(notes))
        return plans, notes

    def split_backends(self, split: ir.Split, window: Window) -> Plan:
        """One row per backend Service of ``split``, measured where the split is decided."""
        src = self.split
        backends = {b.service for b in split.backends}
        pattern = "|".join(regex_literal(b) for b in sorted(backends))
        matchers = (*src.matchers(split), (src.backend_label, "=~", pattern))
        resource = ObjectReference(kind=TRAFFICSPLIT.kind, namespace=split.namespace, name=split.name)
        label = src.backend_label

        def key(labels: Mapping[str, str]) -> ItemKey | None:
            backend = labels.get(label, "")
            return ItemKey(resource, None, backend) if backend in backends else None

        return _render(src.family, Selection(matchers), LabelParty(label, required=True), window, key, "from")


def _edge_key(resource: ObjectReference, grouping: Party, kind: str) -> KeyFn:
    def key(labels: Mapping[str, str]) -> ItemKey | None:
        peer = grouping.ref(labels, kind)
        return ItemKey(resource, peer) if peer is not None else None

    return key


def _by_kind(
    workload: Callable[[ResourceKind], Party], pod: Party | None, namespace: Party
) -> dict[str, Party]:
    parties: dict[str, Party] = {k.kind: workload(k) for k in WORKLOADS}
    if pod is not None:
        parties[POD.kind] = pod
    parties[NAMESPACE.kind] = namespace
    return parties


def _root_authority(split: ir.Split) -> str:
    """Every way a client may write the root Service in ``:authority`` (short to FQDN, any port)."""
    root, ns = regex_literal(split.root), regex_literal(split.namespace)
    return f"{root}(\\.{ns}(\\.svc(\\..+)?)?)?(:[0-9]+)?"


_STATUS_OK = "[1-4][0-9][0-9]"

# The reference proxy (contract: proxy/metrics.py). It decides splits and access where the client
# is, and labels the caller by workload (never by pod).
_proxy = Family(
    side="client",
    counter="smi_proxy_requests_total",
    histogram="smi_proxy_request_duration_seconds_bucket",
    fixed=(),
    success=(("status_class", "!=", "5xx"),),
    failure=(("status_class", "=", "5xx"), ("denied", "!=", "true")),
    denials=Denials(matchers=(("denied", "=", "true"),)),
    server=_by_kind(
        lambda k: LabelParty("destination_workload", "destination_namespace"),
        LabelParty("destination_pod", "destination_namespace"),
        LabelParty("destination_namespace"),
    ),
    client=_by_kind(
        lambda k: LabelParty("source_workload", "source_namespace"), None, LabelParty("source_namespace")
    ),
    blind="the proxy labels the caller by workload, not by pod",
    to_ms=1000,
)

_istio_denials = Denials(
    note="istio: denied_count counts 403 responses; Istio's standard metrics carry no policy-decision "
    "label, so an application's own 403s are counted as denied too",
    matchers=(("response_code", "=", "403"),),
)
_istio_dst = LabelParty("destination_workload", "destination_workload_namespace")
_istio_src = LabelParty("source_workload", "source_workload_namespace")
_istio_inbound = Family(
    side="server",
    counter="istio_requests_total",
    histogram="istio_request_duration_milliseconds_bucket",
    fixed=(("reporter", "=", "destination"),),
    success=(("response_code", "=~", _STATUS_OK),),
    failure=(("response_code", "!~", _STATUS_OK),),
    denials=_istio_denials,
    server=_by_kind(
        lambda k: _istio_dst, LabelParty("pod", "namespace"), LabelParty("destination_workload_namespace")
    ),
    client=_by_kind(lambda k: _istio_src, None, LabelParty("source_workload_namespace")),
    blind="series reported by the server name the caller's workload, not its pod",
)
_istio_outbound = Family(
    side="client",
    counter="istio_requests_total",
    histogram="istio_request_duration_milliseconds_bucket",
    fixed=(("reporter", "=", "source"),),
    success=(("response_code", "=~", _STATUS_OK),),
    failure=(("response_code", "!~", _STATUS_OK),),
    denials=_istio_denials,
    server=_by_kind(lambda k: _istio_dst, None, LabelParty("destination_workload_namespace")),
    client=_by_kind(
        lambda k: _istio_src, LabelParty("pod", "namespace"), LabelParty("source_workload_namespace")
    ),
    blind="series reported by the client name the server's workload, not its pod",
)

_linkerd_inbound = Family(
    side="server",
    counter="response_total",
    histogram="response_latency_ms_bucket",
    fixed=(("direction", "=", "inbound"),),
    success=(("status_code", "=~", _STATUS_OK),),
    failure=(("status_code", "!~", _STATUS_OK),),
    # The proxy refuses unauthorized requests before its request metrics see them, so the
    # authorization counter is the whole story and nothing is subtracted.
    denials=Denials(counter="inbound_http_authz_deny_total"),
    server=_by_kind(
        lambda k: LabelParty(k.label, "namespace", required=True),
        LabelParty("pod", "namespace", required=True),
        LabelParty("namespace", required=True),
    ),
    client={},
    blind="inbound series name the caller only by its mTLS identity",
)
_linkerd_outbound = Family(
    side="client",
    counter="response_total",
    histogram="response_latency_ms_bucket",
    fixed=(("direction", "=", "outbound"),),
    success=(("status_code", "=~", _STATUS_OK),),
    failure=(("status_code", "!~", _STATUS_OK),),
    denials=Denials(
        note="linkerd: on edges and split backends denied_count counts 403 responses seen by the client "
        "(the authorization counter is server-side and does not name the caller's workload)",
        matchers=(("status_code", "=", "403"),),
    ),
    server=_by_kind(
        lambda k: LabelParty(f"dst_{k.label}", "dst_namespace", required=True),
        LabelParty("dst_pod", "dst_namespace", required=True),
        LabelParty("dst_namespace", required=True),
    ),
    client=_by_kind(
        lambda k: LabelParty(k.label, "namespace", required=True),
        LabelParty("pod", "namespace", required=True),
        LabelParty("namespace", required=True),
    ),
)

_consul_public: tuple[Matcher, ...] = (("envoy_http_conn_manager_prefix", "=", "public_listener"),)
_consul_pods = _by_kind(
    lambda k: PodNameParty(k.kind),
    LabelParty("pod", "namespace", required=True),
    LabelParty("namespace", required=True),
)
_consul_inbound = Family(
    side="server",
    counter="envoy_http_downstream_rq_xx",
    histogram="envoy_http_downstream_rq_time_bucket",
    fixed=_consul_public,
    success=(("envoy_response_code_class", "=~", "[1-4]"),),
    failure=(("envoy_response_code_class", "=", "5"),),
    # Envoy's RBAC filter (Consul intentions) answers 403 and that reply is counted with the 4xx.
    denials=Denials(counter="envoy_http_rbac_denied", fixed=_consul_public, subtract=True),
    server=_consul_pods,
    client={},
    blind="Envoy's server-side stats do not name the caller",
)
_consul_upstream = Family(
    side="client",
    counter="envoy_cluster_upstream_rq",
    histogram="envoy_cluster_upstream_rq_time_bucket",
    fixed=(("consul_destination_service", "!=", ""),),
    success=(("envoy_response_code", "=~", _STATUS_OK),),
    failure=(("envoy_response_code", "!~", _STATUS_OK),),
    denials=Denials(
        note="consul: on edges and split backends denied_count counts 403 responses seen by the client "
        "(Envoy's RBAC counter is server-side and does not name the caller)",
        matchers=(("envoy_response_code", "=", "403"),),
    ),
    server={
        kind: ConsulServiceParty(party, "envoy_http_downstream_rq_xx", _consul_public)
        for kind, party in _consul_pods.items()
    },
    client=_consul_pods,
    blind="client-side Envoy stats name the destination Consul service only, reported as kind Service",
)

MESHES: dict[str, MeshQueries] = {
    "proxy": MeshQueries(
        "proxy",
        "smi-bridge's reference proxy (smi_proxy_* metrics)",
        _proxy,
        _proxy,
        _proxy,
        SplitSource(
            _proxy,
            "backend_service",
            lambda s: (("destination_namespace", "=", s.namespace), ("destination_service", "=", s.root)),
        ),
    ),
    "istio": MeshQueries(
        "istio",
        "Istio standard metrics (istio_requests_total, istio_request_duration_milliseconds)",
        _istio_inbound,
        _istio_inbound,
        _istio_outbound,
        SplitSource(
            _istio_outbound,
            "destination_service_name",
            lambda s: (("destination_service_namespace", "=", s.namespace),),
        ),
    ),
    "linkerd": MeshQueries(
        "linkerd",
        "Linkerd proxy metrics (response_total, response_latency_ms)",
        _linkerd_inbound,
        _linkerd_outbound,
        _linkerd_outbound,
        SplitSource(
            _linkerd_outbound,
            "dst_service",
            lambda s: (("dst_namespace", "=", s.namespace), ("authority", "=~", _root_authority(s))),
        ),
    ),
    "consul": MeshQueries(
        "consul",
        "Envoy stats of Consul service mesh sidecars (envoy_http_downstream_*, envoy_cluster_upstream_*)",
        _consul_inbound,
        _consul_upstream,
        _consul_upstream,
        SplitSource(_consul_upstream, "consul_destination_service", lambda s: ()),
    ),
}

_NO_METRICS = {
    "gateway-api": "Gateway API (GAMMA) has no data plane of its own: query the mesh that implements it "
    f"({', '.join(m for m in MESHES if m != 'proxy')})",
}


class UnknownMesh(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        if self.name in _NO_METRICS:
            return _NO_METRICS[self.name]
        return f"no TrafficMetrics queries for backend {self.name!r} (choose one of: {', '.join(MESHES)})"


def mesh_queries(name: str) -> MeshQueries:
    try:
        return MESHES[name]
    except KeyError:
        raise UnknownMesh(name) from None
