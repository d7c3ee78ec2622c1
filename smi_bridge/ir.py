"""The mesh-neutral intermediate representation (IR).

Every input (SMI manifests of any version, a live cluster, another mesh's config) becomes one
``IR``; every output is emitted from it, and ``smi_bridge.semantics`` gives it its one meaning.

Nodes are frozen dataclasses holding tuples, so an IR is hashable, comparable and safe to share
between threads (the proxy swaps whole IRs on reload). Every node that came from a user's object
carries an ``Origin`` (kind, namespace/name, apiVersion, file, line, field path) so that any
diagnostic about it can point at the exact place.

Normal forms (``build`` and every ``ingest`` produce them, emitters may rely on them):
- names of headers are lower-case; methods are upper-case; ``methods == ()`` means every method
  (SMI's ``"*"``); ``path_regex is None`` means every path; ``ports == ()`` means every port;
- weights are integers >= 0 (v1alpha1 quantities already converted exactly);
- ``Split.matches is None`` means the split applies to every request; a tuple (possibly empty)
  means only requests matching one of those routes are split, the rest go to the root unsplit;
- tuples are in source order; ``IR`` collections are sorted by (namespace, name).

This module imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["http", "tcp", "udp"]
RuleKind = Literal["http", "tcp", "udp"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an IR node came from."""

    kind: str = ""
    namespace: str = ""
    name: str = ""
    api_version: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""  # field path inside the source object, e.g. ``spec.backends[0]``

    def ref(self) -> str:
        """``Kind/namespace/name`` as used by the ``smi-bridge.io/source`` annotation."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    def child(self, path: str, line: int | None = None, column: int | None = None) -> Origin:
        """The origin of a field below this one (keeps file, object and falls back to its line)."""
        return Origin(
            self.kind,
            self.namespace,
            self.name,
            self.api_version,
            self.file,
            line if line is not None else self.line,
            column if line is not None else self.column,
            path,
        )


NO_ORIGIN = Origin()


# --- inventory ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str = ""
    target_port: int | str | None = None  # None: same as ``port``
    protocol: str = "TCP"  # Kubernetes protocol: TCP, UDP, SCTP
    app_protocol: str = ""

    @property
    def is_http(self) -> bool:
        """HTTP when ``appProtocol`` or the port name says so (``http``, ``http-*``)."""
        app = self.app_protocol.lower()
        if app in ("http", "http2", "h2c", "kubernetes.io/h2c"):
            return True
        name = self.name.lower()
        return name == "http" or name.startswith("http-")

    @property
    def l4(self) -> Protocol:
        return "udp" if self.protocol.upper() == "UDP" else "tcp"


@dataclass(frozen=True, slots=True)
class EndpointPort:
    port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address behind a Service (from an EndpointSlice, Endpoints, or a matching Pod)."""

    address: str
    ports: tuple[EndpointPort, ...] = ()
    pod: str = ""
    service_account: str = ""  # in the Service's namespace; "" when unknown
    ready: bool = True


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    cluster_ip: str = ""
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] = ()
    service_accounts: tuple[str, ...] = ()  # ServiceAccounts of the pods it selects, sorted
    endpoints: tuple[Endpoint, ...] = ()
    origin: Origin = NO_ORIGIN

    def port(self, number: int) -> ServicePort | None:
        for p in self.ports:
            if p.port == number:
                return p
        return None

    def target_port(self, number: int) -> int | None:
        """The workload port behind Service port ``number`` (None when it cannot be resolved)."""
        sp = self.port(number)
        if sp is None:
            return None
        if isinstance(sp.target_port, int):
            return sp.target_port
        if sp.target_port is None or sp.target_port == "":
            return sp.port
        # a named targetPort: resolve through the endpoints' named ports
        for ep in self.endpoints:
            for epp in ep.ports:
                if epp.name == sp.name or epp.name == sp.target_port:
                    return epp.port
        return None


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod, or a workload's pod template (``template=True``; no IP then)."""

    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    service_account: str = "default"
    ip: str = ""
    template: bool = False
    workload: str = ""  # owning Deployment/StatefulSet/DaemonSet name, or the pod's own name
    origin: Origin = NO_ORIGIN

    def matches(self, selector: tuple[tuple[str, str], ...]) -> bool:
        if not selector:
            return False  # an empty Service selector selects nothing (manual endpoints)
        labels = dict(self.labels)
        return all(labels.get(k) == v for k, v in selector)


@dataclass(frozen=True, slots=True)
class Identity:
    """A workload identity: a ServiceAccount."""

    namespace: str
    name: str

    def spiffe(self, trust_domain: str) -> str:
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# --- traffic specs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str  # lower-case
    regex: str  # full-match RE2 on the header value


@dataclass(frozen=True, slots=True)
class HTTPMatch:
    """One HTTPRouteGroup route (an element of ``matches``)."""

    name: str
    path_regex: str | None = None  # anchored at the start only; None: every path
    methods: tuple[str, ...] = ()  # upper-case; (): every method
    headers: tuple[HeaderMatch, ...] = ()  # ANDed
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class RouteGroup:
    """An HTTPRouteGroup."""

    namespace: str
    name: str
    matches: tuple[HTTPMatch, ...] = ()
    origin: Origin = NO_ORIGIN

    def match(self, name: str) -> HTTPMatch | None:
        for m in self.matches:
            if m.name == name:
                return m
        return None


@dataclass(frozen=True, slots=True)
class PortRoute:
    """A TCPRoute or UDPRoute; ``ports == ()`` means every port."""

    namespace: str
    name: str
    protocol: Literal["tcp", "udp"] = "tcp"
    ports: tuple[int, ...] = ()
    origin: Origin = NO_ORIGIN


# --- policy ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SplitBackend:
    service: str
    weight: int
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class Split:
    """A TrafficSplit: requests to ``root`` are spread over ``backends`` by weight."""

    namespace: str
    name: str
    root: str  # Service name in ``namespace`` (already normalised from ``svc.ns.svc...``)
    backends: tuple[SplitBackend, ...]
    matches: tuple[HTTPMatch, ...] | None = None  # None: every request is split
    route_groups: tuple[str, ...] = ()  # names of the referenced HTTPRouteGroups (v1alpha3+)
    origin: Origin = NO_ORIGIN

    @property
    def total_weight(self) -> int:
        return sum(b.weight for b in self.backends)


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One element of a TrafficTarget's ``rules`` (``specs`` in v1alpha1), resolved.

    ``kind == "http"``: ``matches`` are the allowed routes (all routes of the group when the rule
    names none). ``kind in ("tcp", "udp")``: ``ports`` are the allowed workload ports (() = all).
    """

    kind: RuleKind
    route: str  # name of the referenced HTTPRouteGroup / TCPRoute / UDPRoute
    matches: tuple[HTTPMatch, ...] = ()
    ports: tuple[int, ...] = ()
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class TrafficTarget:
    namespace: str
    name: str
    destination: Identity
    sources: tuple[Identity, ...]
    rules: tuple[AccessRule, ...]
    origin: Origin = NO_ORIGIN


# --- the whole -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IR:
    services: tuple[Service, ...] = ()
    pods: tuple[Pod, ...] = ()
    route_groups: tuple[RouteGroup, ...] = ()
    port_routes: tuple[PortRoute, ...] = ()
    splits: tuple[Split, ...] = ()
    targets: tuple[TrafficTarget, ...] = ()
    _services_by_key: dict[tuple[str, str], Service] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        self._services_by_key.update({(s.namespace, s.name): s for s in self.services})

    def service(self, namespace: str, name: str) -> Service | None:
        return self._services_by_key.get((namespace, name))

    def namespaces(self) -> list[str]:
        seen: set[str] = set()
        for coll in (
            self.services,
            self.pods,
            self.route_groups,
            self.port_routes,
            self.splits,
            self.targets,
        ):
            for node in coll:
                seen.add(node.namespace)
        return sorted(seen)

    def pods_of(self, identity: Identity) -> list[Pod]:
        return [
            p for p in self.pods if p.namespace == identity.namespace and p.service_account == identity.name
        ]

    def identities_of(self, service: Service) -> tuple[Identity, ...]:
        return tuple(Identity(service.namespace, sa) for sa in service.service_accounts)

    def consumable(self) -> Iterator[object]:
        """Every node an emitter is expected to consume; what it does not becomes a warning."""
        for split in self.splits:
            yield split
            yield from split.backends
        for target in self.targets:
            yield target
            yield from target.rules


# --- plain-data codec (the proxy config and ``-o json`` dumps use it) ------------------------------


def _origin_to_dict(o: Origin) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": o.kind, "namespace": o.namespace, "name": o.name}
    if o.api_version:
        d["apiVersion"] = o.api_version
    if o.file:
        d["file"] = o.file
    if o.line is not None:
        d["line"] = o.line
    if o.column is not None:
        d["column"] = o.column
    if o.path:
        d["path"] = o.path
    return d


def _origin_from_dict(d: Mapping[str, Any] | None) -> Origin:
    if not d:
        return NO_ORIGIN
    return Origin(
        kind=d.get("kind", ""),
        namespace=d.get("namespace", ""),
        name=d.get("name", ""),
        api_version=d.get("apiVersion", ""),
        file=d.get("file"),
        line=d.get("line"),
        column=d.get("column"),
        path=d.get("path", ""),
    )


def _match_to_dict(m: HTTPMatch) -> dict[str, Any]:
    d: dict[str, Any] = {"name": m.name}
    if m.path_regex is not None:
        d["pathRegex"] = m.path_regex
    if m.methods:
        d["methods"] = list(m.methods)
    if m.headers:
        d["headers"] = [{"name": h.name, "regex": h.regex} for h in m.headers]
    d["origin"] = _origin_to_dict(m.origin)
    return d


def _match_from_dict(d: Mapping[str, Any]) -> HTTPMatch:
    return HTTPMatch(
        name=d["name"],
        path_regex=d.get("pathRegex"),
        methods=tuple(d.get("methods", ())),
        headers=tuple(HeaderMatch(h["name"], h["regex"]) for h in d.get("headers", ())),
        origin=_origin_from_dict(d.get("origin")),
    )


def ir_to_dict(ir: IR) -> dict[str, Any]:
    """A JSON-ready dict; ``ir_from_dict(ir_to_dict(ir)) == ir``."""
    return {
        "services": [
            {
                "namespace": s.namespace,
                "name": s.name,
                "clusterIP": s.cluster_ip,
                "ports": [
                    {
                        "port": p.port,
                        "name": p.name,
                        "targetPort": p.target_port,
                        "protocol": p.protocol,
                        "appProtocol": p.app_protocol,
                    }
                    for p in s.ports
                ],
                "selector": dict(s.selector),
                "serviceAccounts": list(s.service_accounts),
                "endpoints": [
                    {
                        "address": e.address,
                        "ports": [{"port": p.port, "name": p.name, "protocol": p.protocol} for p in e.ports],
                        "pod": e.pod,
                        "serviceAccount": e.service_account,
                        "ready": e.ready,
                    }
                    for e in s.endpoints
                ],
                "origin": _origin_to_dict(s.origin),
            }
            for s in ir.services
        ],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "labels": dict(p.labels),
                "serviceAccount": p.service_account,
                "ip": p.ip,
                "template": p.template,
                "workload": p.workload,
                "origin": _origin_to_dict(p.origin),
            }
            for p in ir.pods
        ],
        "routeGroups": [
            {
                "namespace": g.namespace,
                "name": g.name,
                "matches": [_match_to_dict(m) for m in g.matches],
                "origin": _origin_to_dict(g.origin),
            }
            for g in ir.route_groups
        ],
        "portRoutes": [
            {
                "namespace": r.namespace,
                "name": r.name,
                "protocol": r.protocol,
                "ports": list(r.ports),
                "origin": _origin_to_dict(r.origin),
            }
            for r in ir.port_routes
        ],
        "splits": [
            {
                "namespace": s.namespace,
                "name": s.name,
                "root": s.root,
                "backends": [
                    {"service": b.service, "weight": b.weight, "origin": _origin_to_dict(b.origin)}
                    for b in s.backends
                ],
                "matches": None if s.matches is None else [_match_to_dict(m) for m in s.matches],
                "routeGroups": list(s.route_groups),
                "origin": _origin_to_dict(s.origin),
            }
            for s in ir.splits
        ],
        "targets": [
            {
                "namespace": t.namespace,
                "name": t.name,
                "destination": {"namespace": t.destination.namespace, "name": t.destination.name},
                "sources": [{"namespace": i.namespace, "name": i.name} for i in t.sources],
                "rules": [
                    {
                        "kind": r.kind,
                        "route": r.route,
                        "matches": [_match_to_dict(m) for m in r.matches],
                        "ports": list(r.ports),
                        "origin": _origin_to_dict(r.origin),
                    }
                    for r in t.rules
                ],
                "origin": _origin_to_dict(t.origin),
            }
            for t in ir.targets
        ],
    }


def ir_from_dict(d: Mapping[str, Any]) -> IR:
    """Inverse of ``ir_to_dict``. The input is assumed valid (check it against the schema first)."""
    return IR(
        services=tuple(
            Service(
                namespace=s["namespace"],
                name=s["name"],
                cluster_ip=s.get("clusterIP", ""),
                ports=tuple(
                    ServicePort(
                        port=p["port"],
                        name=p.get("name", ""),
                        target_port=p.get("targetPort"),
                        protocol=p.get("protocol", "TCP"),
                        app_protocol=p.get("appProtocol", ""),
                    )
                    for p in s.get("ports", ())
                ),
                selector=tuple(sorted(s.get("selector", {}).items())),
                service_accounts=tuple(s.get("serviceAccounts", ())),
                endpoints=tuple(
                    Endpoint(
                        address=e["address"],
                        ports=tuple(
                            EndpointPort(p["port"], p.get("name", ""), p.get("protocol", "TCP"))
                            for p in e.get("ports", ())
                        ),
                        pod=e.get("pod", ""),
                        service_account=e.get("serviceAccount", ""),
                        ready=e.get("ready", True),
                    )
                    for e in s.get("endpoints", ())
                ),
                origin=_origin_from_dict(s.get("origin")),
            )
            for s in d.get("services", ())
        ),
        pods=tuple(
            Pod(
                namespace=p["namespace"],
                name=p["name"],
                labels=tuple(sorted(p.get("labels", {}).items())),
                service_account=p.get("serviceAccount", "default"),
                ip=p.get("ip", ""),
                template=p.get("template", False),
                workload=p.get("workload", ""),
                origin=_origin_from_dict(p.get("origin")),
            )
            for p in d.get("pods", ())
        ),
        route_groups=tuple(
            RouteGroup(
                namespace=g["namespace"],
                name=g["name"],
                matches=tuple(_match_from_dict(m) for m in g.get("matches", ())),
                origin=_origin_from_dict(g.get("origin")),
            )
            for g in d.get("routeGroups", ())
        ),
        port_routes=tuple(
            PortRoute(
                namespace=r["namespace"],
                name=r["name"],
                protocol=r.get("protocol", "tcp"),
                ports=tuple(r.get("ports", ())),
                origin=_origin_from_dict(r.get("origin")),
            )
            for r in d.get("portRoutes", ())
        ),
        splits=tuple(
            Split(
                namespace=s["namespace"],
                name=s["name"],
                root=s["root"],
                backends=tuple(
                    SplitBackend(b["service"], b["weight"], _origin_from_dict(b.get("origin")))
                    for b in s.get("backends", ())
                ),
                matches=None
                if s.get("matches") is None
                else tuple(_match_from_dict(m) for m in s["matches"]),
                route_groups=tuple(s.get("routeGroups", ())),
                origin=_origin_from_dict(s.get("origin")),
            )
            for s in d.get("splits", ())
        ),
        targets=tuple(
            TrafficTarget(
                namespace=t["namespace"],
                name=t["name"],
                destination=Identity(t["destination"]["namespace"], t["destination"]["name"]),
                sources=tuple(Identity(i["namespace"], i["name"]) for i in t.get("sources", ())),
                rules=tuple(
                    AccessRule(
                        kind=r["kind"],
                        route=r.get("route", ""),
                        matches=tuple(_match_from_dict(m) for m in r.get("matches", ())),
                        ports=tuple(r.get("ports", ())),
                        origin=_origin_from_dict(r.get("origin")),
                    )
                    for r in t.get("rules", ())
                ),
                origin=_origin_from_dict(t.get("origin")),
            )
            for t in d.get("targets", ())
        ),
    )
