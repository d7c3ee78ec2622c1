"""The ``linkerd`` backend: SMI access as ``policy.linkerd.io`` policy, splits as GAMMA routes or ServiceProfiles.

Access (per destination ServiceAccount D with at least one TrafficTarget):
- One ``Server`` (v1beta3, ``accessPolicy: deny``) per workload port of D: the target ports of the
  Services that select D's pods, plus every port a TCPRoute rule names. ``podSelector`` holds the
  labels common to all pods running as D (Linkerd selects by labels, not ServiceAccount). With no
  such pods, or no common label, no Server is emitted and an error says the port stays at the
  cluster default policy (a namespace-wide selector would over-grant). A selector that also picks
  pods of another ServiceAccount is reported.
- Sources: one ``MeshTLSAuthentication`` per TrafficTarget holding *all* its sources as identity
  strings ``<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>``, because an
  AuthorizationPolicy ANDs its ``requiredAuthenticationRefs``.
- A TrafficTarget with only TCP rules becomes one ``AuthorizationPolicy`` per covered Server (an L4
  allow covers everything on that port). One with HTTP rules becomes, per covered Server, a
  ``policy.linkerd.io/v1beta3`` ``HTTPRoute`` (parentRef the Server) holding all its routes, and an
  AuthorizationPolicy targeting that route; its TCP rules only narrow the Servers covered. This is
  ``smi_bridge.semantics`` exactly: next to HTTP rules a TCPRoute narrows, it never opens raw TCP,
  and Linkerd authorizes opaque connections with Server-level policies only.
- Linkerd checks a request against the one route it selects (Server-level policies are added to
  every route; a request no route matches gets 404). So a Server with both Server-level policies
  and routes also gets a catch-all route, and routes of targets with different sources that may
  match the same request are reported: SMI ORs them, Linkerd takes the best route only.
- Regexes are written ``^(?:R)$``: Linkerd accepts a regex when ``find()`` covers the whole value,
  which is not RE2's full match for alternations (``a|ab`` against ``ab``); ``\\d``/``\\w``/``\\s``
  are spelled as ASCII classes because Rust's are Unicode-aware (see ``backends.gamma``).
- Modes: Servers make their ports deny-by-default. In ``enforce`` mode workloads no TrafficTarget
  names must deny too; Linkerd reads ``config.linkerd.io/default-inbound-policy: deny`` at pod
  creation only, so that is an info note naming them, never a workload patch. ``permissive``
  assumes the cluster default ``all-unauthenticated``. A TCPRoute with no ports covers the ports D
  serves (Linkerd has no "every port" Server); UDP is not proxied by Linkerd, so UDP rules and
  UDP ports cannot be enforced (reported).

Splits: by default GAMMA ``gateway.networking.k8s.io/v1`` HTTPRoutes (and ``v1alpha2`` TCPRoutes,
the version Linkerd's bundled Gateway API serves) built by ``backends.gamma``; with
``options.linkerd_split == "serviceprofile"`` a ServiceProfile with ``dstOverrides`` as linkerd-smi
wrote it. A ServiceProfile applies to every request, so a split with matches is refused there.

Ingest reads all of the above as people write it (Server, HTTPRoute of both groups,
AuthorizationPolicy, MeshTLSAuthentication with identityRefs or identity strings, the legacy
ServerAuthorization, ServiceProfile dstOverrides, GAMMA routes) and reports what SMI cannot hold:
NetworkAuthentication and networks, unauthenticated clients, identity wildcards (expanded to the
known ServiceAccounts), ``accessPolicy`` other than deny, Namespace-targeted policies, ServiceProfile
routes/retries/timeouts, filters, timeouts, query parameters. A ServiceProfile wins over HTTPRoutes
for the same Service (Linkerd's rule); both places are named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from backends.base import Emission, EmitContext, Options, SourceObject, unique_name
from backends.gamma import (
    GATEWAY_GROUP,
    TCPROUTE_V1ALPHA2,
    GammaChecks,
    GammaStyle,
    RouteLimits,
    emit_split,
    guarded,
    ingest_routes,
    is_inventory,
    object_name,
    pack_rules,
    read_route_matches,
    split_matches,
    splits_in_force,
    translate_match,
)
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    HTTPMatch,
    Identity,
    Origin,
    Pod,
    PortRoute,
    RouteGroup,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.model.quantity import QuantityError, integer_weights, parse_quantity
from smi_bridge.regex import full_match_form, reduce_to_literal

POLICY_GROUP = "policy.linkerd.io"
SERVER_API = f"{POLICY_GROUP}/v1beta3"
POLICY_ROUTE_API = f"{POLICY_GROUP}/v1beta3"
AUTHZ_API = f"{POLICY_GROUP}/v1alpha1"
MTLS_API = f"{POLICY_GROUP}/v1alpha1"
PROFILE_API = "linkerd.io/v1alpha2"
DEFAULT_INBOUND_ANNOTATION = "config.linkerd.io/default-inbound-policy"

# --- translation (SMT200-SMT299) ------------------------------------------------------------------
ROOT_UNKNOWN = Check("SMT200", Severity.ERROR, "root Service (and so its ports) unknown: split not emitted")
ALL_ZERO = Check("SMT201", Severity.ERROR, "every backend weight is 0: split refused")
WEIGHTS_SCALED = Check("SMT202", Severity.WARNING, "weights above 1,000,000 scaled; ratios approximate")
PORT_UNSUPPORTED = Check("SMT203", Severity.WARNING, "UDP/SCTP root port: no route, not split")
METHOD_UNSUPPORTED = Check("SMT204", Severity.WARNING, "HTTP method outside the HTTPRoute enum: not matched")
HEADER_UNSUPPORTED = Check(
    "SMT205", Severity.WARNING, "route match not expressible (headers, length): left out"
)
MATCHES_NEED_HTTP = Check("SMT206", Severity.WARNING, "split matches on a port not marked HTTP: left unsplit")
BACKEND_PORT_MISSING = Check(
    "SMT207", Severity.INFO, "backend Service lacks the root's port: no traffic there"
)
SHARED_ROOT = Check("SMT208", Severity.WARNING, "several TrafficSplits for one root: only the first applies")
NO_REQUEST = Check("SMT209", Severity.INFO, "split applies to no request: nothing emitted")
NEVER_MATCHES = Check("SMT210", Severity.INFO, "route regex outside the RE2 subset matches nothing: left out")
NO_PODS = Check("SMT220", Severity.ERROR, "no pod runs as the destination ServiceAccount: no Server emitted")
NO_COMMON_LABELS = Check(
    "SMT221", Severity.ERROR, "pods of the destination share no label: no Server emitted"
)
SELECTOR_WIDER = Check(
    "SMT222", Severity.WARNING, "Server podSelector also selects other ServiceAccounts' pods"
)
NO_PORTS = Check("SMT223", Severity.ERROR, "no workload port known for the destination: no Server emitted")
UDP_NOT_PROXIED = Check("SMT224", Severity.WARNING, "Linkerd does not proxy UDP: UDP access is not enforced")
ROUTE_OVERLAP = Check("SMT225", Severity.WARNING, "overlapping routes with different sources on one Server")
DEFAULT_INBOUND = Check(
    "SMT226", Severity.INFO, "enforce mode: workloads without TrafficTarget need deny default"
)
PROFILE_MATCHES = Check(
    "SMT227", Severity.ERROR, "split matches cannot be expressed by a ServiceProfile: refused"
)
PROBES = Check(
    "SMT228", Severity.INFO, "kubelet probes are not authorized once HTTPRoutes attach to a Server"
)
SERVER_OVERLAP = Check("SMT229", Severity.ERROR, "two Servers select the same pod and port (Linkerd rejects)")
PORTS_AMBIGUOUS = Check(
    "SMT230", Severity.WARNING, "TCPRoute ports are every port D serves: reads back as all"
)

# --- import (SMX200-SMX299) -----------------------------------------------------------------------
UNKNOWN_KIND = Check("SMX200", Severity.INFO, "object of a kind this importer does not read: passed over")
PARENT_UNSUPPORTED = Check("SMX201", Severity.WARNING, "route parent is not a Service or Server: ignored")
CONSUMER_ROUTE = Check("SMX202", Severity.WARNING, "consumer route (other namespace's Service): ignored")
FIELD_IGNORED = Check("SMX203", Severity.WARNING, "field with no SMI equivalent: dropped")
BACKEND_DROPPED = Check("SMX204", Severity.WARNING, "backend SMI cannot hold: dropped")
PATH_PREFIX = Check("SMX205", Severity.INFO, "PathPrefix read as a path-segment prefix regex")
NO_CATCH_ALL = Check(
    "SMX206", Severity.WARNING, "route without a catch-all: unmatched requests fail in GAMMA"
)
RULES_MERGED = Check(
    "SMX207", Severity.WARNING, "rule SMI cannot hold (second backend set, failing rule): dropped"
)
ROUTE_CONFLICT = Check("SMX208", Severity.WARNING, "two routes for one Service port: the older one kept")
PORTS_DISAGREE = Check(
    "SMX209", Severity.WARNING, "routes differ per port; an SMI split has no port dimension"
)
REGEX_DIALECT = Check(
    "SMX210", Severity.INFO, "Linkerd regex with a top-level alternation read as full match"
)
SERVER_NO_PODS = Check(
    "SMX220", Severity.WARNING, "Server selects no pod in the input: its identity is unknown"
)
ACCESS_POLICY = Check("SMX221", Severity.WARNING, "Server accessPolicy other than deny: read as deny")
EXTERNAL_WORKLOADS = Check("SMX222", Severity.WARNING, "Server for external workloads: not imported")
NETWORKS = Check("SMX223", Severity.WARNING, "network (CIDR) authentication has no SMI equivalent: dropped")
UNAUTHENTICATED = Check(
    "SMX224", Severity.WARNING, "unauthenticated clients cannot be SMI sources: not imported"
)
IDENTITY_WILDCARD = Check(
    "SMX225", Severity.WARNING, "identity wildcard expanded to the known ServiceAccounts"
)
FOREIGN_IDENTITY = Check(
    "SMX226", Severity.WARNING, "identity of another control plane or trust domain: dropped"
)
NAMESPACE_TARGET = Check("SMX227", Severity.INFO, "Namespace-targeted policy applied to every Server there")
TARGET_UNSUPPORTED = Check(
    "SMX228", Severity.WARNING, "policy target that SMI cannot hold or that is missing"
)
AUTHN_MISSING = Check(
    "SMX229", Severity.WARNING, "authentication reference not found: the policy never applies"
)
PROFILE_FIELD = Check("SMX230", Severity.WARNING, "ServiceProfile field with no SMI equivalent: dropped")
PROFILE_CONFLICT = Check(
    "SMX231", Severity.WARNING, "ServiceProfile and HTTPRoute for one Service: profile wins"
)
PROFILE_AUTHORITY = Check(
    "SMX232", Severity.WARNING, "dstOverride SMI cannot hold (authority, weight): dropped"
)
ROUTE_PRECEDENCE = Check(
    "SMX233", Severity.WARNING, "Linkerd authorizes by one route per request; SMI ORs rules"
)
PORT_WITHOUT_SERVER = Check(
    "SMX234", Severity.WARNING, "destination port without a Server: cluster default there"
)
SERVER_PORT = Check("SMX235", Severity.WARNING, "Server port name cannot be resolved: Server not imported")
PROXY_PROTOCOL = Check("SMX236", Severity.INFO, "Server proxyProtocol has no SMI equivalent: dropped")
KIND_UNSUPPORTED = Check("SMX237", Severity.WARNING, "Linkerd kind with no SMI equivalent: not imported")
MALFORMED = Check("SMX238", Severity.ERROR, "object without the shape its kind requires: not imported")

# the GAMMA findings are the constants named after GammaChecks' fields (ROOT_UNKNOWN ... MALFORMED)
GAMMA_CHECKS = GammaChecks.from_names(globals())
CHECKS: tuple[Check, ...] = GAMMA_CHECKS.listed_with(
    NO_PODS,
    NO_COMMON_LABELS,
    SELECTOR_WIDER,
    NO_PORTS,
    UDP_NOT_PROXIED,
    ROUTE_OVERLAP,
    DEFAULT_INBOUND,
    PROFILE_MATCHES,
    PROBES,
    SERVER_OVERLAP,
    PORTS_AMBIGUOUS,
    SERVER_NO_PODS,
    ACCESS_POLICY,
    EXTERNAL_WORKLOADS,
    NETWORKS,
    UNAUTHENTICATED,
    IDENTITY_WILDCARD,
    FOREIGN_IDENTITY,
    NAMESPACE_TARGET,
    TARGET_UNSUPPORTED,
    AUTHN_MISSING,
    PROFILE_FIELD,
    PROFILE_CONFLICT,
    PROFILE_AUTHORITY,
    ROUTE_PRECEDENCE,
    PORT_WITHOUT_SERVER,
    SERVER_PORT,
    PROXY_PROTOCOL,
    KIND_UNSUPPORTED,
)

# Linkerd's bundled Gateway API (v1.1.1, experimental) serves TCPRoute as v1alpha2 only.
STYLE = GammaStyle(checks=GAMMA_CHECKS, tcp_route_api=TCPROUTE_V1ALPHA2)
# policy.linkerd.io HTTPRoute: 8 matches per rule, 16 rules, no total limit
POLICY_ROUTE_LIMITS = RouteLimits(matches_per_rule=8, rules_per_route=16, matches_per_route=128)

Port = int | str


def identity_string(identity: Identity, options: Options) -> str:
    """Linkerd's mTLS identity of a ServiceAccount (the control-plane namespace is part of it)."""
    return (
        f"{identity.name}.{identity.namespace}.serviceaccount.identity."
        f"{options.linkerd_control_plane_ns}.{options.trust_domain}"
    )


_IDENTITY = re.compile(r"^(?P<sa>[^.]+)\.(?P<ns>[^.]+)\.serviceaccount\.identity\.(?P<cp>[^.]+)\.(?P<td>.+)$")


# --- route overlap (shared by emit and ingest) ---------------------------------------------------


def _path_literal(path_regex: str | None) -> tuple[str, str] | None:
    if path_regex is None:
        return ("prefix", "")
    kind, literal = reduce_to_literal(full_match_form(path_regex))
    return (kind, literal) if kind in ("exact", "prefix") else None


def matches_disjoint(a: HTTPMatch, b: HTTPMatch) -> bool:
    """True only when no request can match both (a conservative test: False means "maybe")."""
    if a.methods and b.methods and not set(a.methods) & set(b.methods):
        return True
    pa, pb = _path_literal(a.path_regex), _path_literal(b.path_regex)
    if pa is not None and pb is not None:
        (ka, la), (kb, lb) = pa, pb
        if ka == "exact" and kb == "exact" and la != lb:
            return True
        if ka == "exact" and kb == "prefix" and not la.startswith(lb):
            return True
        if kb == "exact" and ka == "prefix" and not lb.startswith(la):
            return True
        if ka == "prefix" and kb == "prefix" and not (la.startswith(lb) or lb.startswith(la)):
            return True
    heads_a = {h.name: reduce_to_literal(h.regex) for h in a.headers}
    for h in b.headers:
        other = heads_a.get(h.name)
        mine = reduce_to_literal(h.regex)
        if other and other[0] == "exact" and mine[0] == "exact" and other[1] != mine[1]:
            return True
    return False


def routes_may_overlap(a: Iterable[HTTPMatch] | None, b: Iterable[HTTPMatch] | None) -> bool:
    """Whether two routes (None: every request) might both match one request."""
    if a is None or b is None:
        return True
    bl = list(b)
    return any(not matches_disjoint(x, y) for x in a for y in bl)


# --- emit ----------------------------------------------------------------------------------------


def _common_labels(pods: Sequence[Pod]) -> dict[str, str]:
    common = dict(pods[0].labels)
    for pod in pods[1:]:
        labels = dict(pod.labels)
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common


def _port_key(port: Port) -> tuple[int, int, str]:
    return (0, port, "") if isinstance(port, int) else (1, 0, port)


@dataclass
class _Destination:
    identity: Identity
    targets: list[TrafficTarget]
    selector: dict[str, str] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    udp_ports: list[int] = field(default_factory=list)
    servers: dict[Port, str] = field(default_factory=dict)


@dataclass
class _RouteGrant:
    target: TrafficTarget
    tname: str
    matches: tuple[HTTPMatch, ...]


class _AccessEmitter:
    def __init__(self, ctx: EmitContext, ir: IR, options: Options) -> None:
        self.ctx = ctx
        self.ir = ir
        self.options = options
        self.server_selectors: dict[tuple[str, Port], list[tuple[str, dict[str, str], Identity]]] = {}
        self.reported: set[tuple[str, str, HTTPMatch]] = set()

    def run(self) -> None:
        by_dest: dict[Identity, list[TrafficTarget]] = {}
        for target in self.ir.targets:
            by_dest.setdefault(target.destination, []).append(target)
        for identity in sorted(by_dest, key=lambda i: (i.namespace, i.name)):
            self._destination(_Destination(identity, by_dest[identity]))
        self._server_overlaps()
        if self.options.access_mode == "enforce":
            self._default_inbound(set(by_dest))

    # -- one destination ServiceAccount

    def _destination(self, dest: _Destination) -> None:
        ctx = self.ctx
        for t in dest.targets:
            ctx.consume(t, *t.rules)
        first = dest.targets[0]
        who = f"ServiceAccount {dest.identity}"
        pods = self.ir.pods_of(dest.identity)
        if not pods:
            for t in dest.targets:
                ctx.lossy(
                    NO_PODS.code,
                    f"TrafficTarget {t.namespace}/{t.name}: no pod in the input runs as {who}, so no Server can "
                    "select it; its ports stay at the cluster default inbound policy",
                    t.origin,
                    severity=NO_PODS.severity,
                    hint="include the Deployments (or pods) that run as that ServiceAccount",
                )
            return
        dest.selector = _common_labels(pods)
        if not dest.selector:
            for t in dest.targets:
                ctx.lossy(
                    NO_COMMON_LABELS.code,
                    f"TrafficTarget {t.namespace}/{t.name}: the pods running as {who} share no label, so no "
                    "podSelector picks exactly them; no Server emitted (the cluster default applies)",
                    t.origin,
                    severity=NO_COMMON_LABELS.severity,
                    hint="give those pods a common label (e.g. app.kubernetes.io/name)",
                )
            return
        others = sorted(
            {
                p.service_account
                for p in self.ir.pods
                if p.namespace == dest.identity.namespace
                and p.service_account != dest.identity.name
                and p.matches(tuple(dest.selector.items()))
            }
        )
        if others:
            ctx.lossy(
                SELECTOR_WIDER.code,
                f"the Servers for {who} select {_labels(dest.selector)}, which also picks pods running as "
                f"{', '.join(others)}; those pods get the same Servers and policies",
                first.origin,
                severity=SELECTOR_WIDER.severity,
                hint="give the destination's pods a label the others do not carry",
            )
        self._ports(dest)
        if not dest.ports:
            for t in dest.targets:
                ctx.lossy(
                    NO_PORTS.code,
                    f"TrafficTarget {t.namespace}/{t.name}: no Service in the input selects the pods of {who} "
                    "and no TCPRoute names a port, so there is no port to put a Server on",
                    t.origin,
                    severity=NO_PORTS.severity,
                    hint="include the Services in front of that workload",
                )
            return
        if dest.udp_ports:
            ctx.lossy(
                UDP_NOT_PROXIED.code,
                f"{who} serves UDP port(s) {', '.join(map(str, dest.udp_ports))}; Linkerd does not proxy UDP, "
                "so the deny-by-default of SMI is not enforced there",
                first.origin,
                severity=UDP_NOT_PROXIED.severity,
            )
        sources = [t.origin for t in dest.targets]
        for port in dest.ports:
            name = object_name(dest.identity.name, port)
            dest.servers[port] = name
            selector = dict(sorted(dest.selector.items()))
            ctx.object(
                SERVER_API,
                "Server",
                dest.identity.namespace,
                name,
                {"podSelector": {"matchLabels": selector}, "port": port, "accessPolicy": "deny"},
                sources,
            )
            self.server_selectors.setdefault((dest.identity.namespace, port), []).append(
                (name, selector, dest.identity)
            )
        self._grants(dest)

    def _ports(self, dest: _Destination) -> None:
        ports: dict[Port, None] = {}
        udp: set[int] = set()
        pods = self.ir.pods_of(dest.identity)
        for svc in self.ir.services:
            if svc.namespace != dest.identity.namespace:
                continue
            if dest.identity.name not in svc.service_accounts and not any(
                p.matches(svc.selector) for p in pods
            ):
                continue
            for sp in svc.ports:
                target = svc.target_port(sp.port)
                if sp.protocol.upper() != "TCP":
                    udp.add(target if target is not None else sp.port)
                    continue
                if target is None:
                    # a named targetPort the input cannot resolve: Linkerd resolves container port names
                    ports.setdefault(sp.target_port if isinstance(sp.target_port, str) else sp.port)
                else:
                    ports.setdefault(target)
        for t in dest.targets:
            for rule in t.rules:
                if rule.kind == "tcp":
                    for p in rule.ports:
                        ports.setdefault(p)
        dest.ports = sorted(ports, key=_port_key)
        dest.udp_ports = sorted(udp)

    def _grants(self, dest: _Destination) -> None:
        ctx = self.ctx
        ns = dest.identity.namespace
        server_grants: dict[Port, list[TrafficTarget]] = {}
        route_grants: dict[Port, list[_RouteGrant]] = {}
        every = set(dest.ports)
        for t in sorted(dest.targets, key=lambda t: (t.namespace, t.name)):
            tname = t.name if t.namespace == ns else f"{t.namespace}-{t.name}"
            http = [r for r in t.rules if r.kind == "http"]
            tcp = [r for r in t.rules if r.kind == "tcp"]
            for r in t.rules:
                if r.kind == "udp":
                    ctx.lossy(
                        UDP_NOT_PROXIED.code,
                        f"TrafficTarget {t.namespace}/{t.name}: the UDPRoute {r.route} rule cannot be expressed; "
                        "Linkerd does not proxy UDP",
                        r.origin if r.origin.kind else t.origin,
                        severity=UDP_NOT_PROXIED.severity,
                    )
            if not http and not tcp:
                continue
            if tcp and all(r.ports for r in tcp):
                covered: set[Port] = {p for r in tcp for p in r.ports}
                if covered >= every:
                    ctx.lossy(
                        PORTS_AMBIGUOUS.code,
                        f"TrafficTarget {t.namespace}/{t.name}: its TCPRoute ports "
                        f"({', '.join(map(str, sorted(p for p in covered if isinstance(p, int))))}) are every port "
                        f"{dest.identity} serves, so the Linkerd policy reads back as covering every port",
                        t.origin,
                        severity=PORTS_AMBIGUOUS.severity,
                    )
            else:
                covered = every
            if not t.sources:
                continue  # nobody to allow: the Servers already deny
            self._mtls(t, tname, ns)
            ports = [p for p in dest.ports if p in covered]
            if http:
                matches = tuple(m for r in http for m in r.matches)
                for p in ports:
                    route_grants.setdefault(p, []).append(_RouteGrant(t, tname, matches))
            else:
                for p in ports:
                    server_grants.setdefault(p, []).append(t)
        for port in dest.ports:
            server = dest.servers[port]
            for t in server_grants.get(port, []):
                tname = t.name if t.namespace == ns else f"{t.namespace}-{t.name}"
                self._policy(
                    ns, object_name(tname, port), t, tname, {"group": POLICY_GROUP, "kind": "Server"}, server
                )
            grants = route_grants.get(port, [])
            if grants:
                self._routes(dest, port, server, grants, bool(server_grants.get(port)))

    def _mtls(self, t: TrafficTarget, tname: str, ns: str) -> None:
        identities = sorted({identity_string(s, self.options) for s in t.sources})
        self.ctx.object(MTLS_API, "MeshTLSAuthentication", ns, tname, {"identities": identities}, [t.origin])

    def _policy(
        self, ns: str, name: str, t: TrafficTarget, tname: str, target: Mapping[str, str], target_name: str
    ) -> None:
        self.ctx.object(
            AUTHZ_API,
            "AuthorizationPolicy",
            ns,
            name,
            {
                "targetRef": {**target, "name": target_name},
                "requiredAuthenticationRefs": [
                    {"group": POLICY_GROUP, "kind": "MeshTLSAuthentication", "name": tname, "namespace": ns}
                ],
            },
            [t.origin],
        )

    def _routes(
        self, dest: _Destination, port: Port, server: str, grants: list[_RouteGrant], server_level: bool
    ) -> None:
        ctx = self.ctx
        ns = dest.identity.namespace
        parent = [{"group": POLICY_GROUP, "kind": "Server", "name": server}]
        expressed: list[_RouteGrant] = []
        for g in grants:
            translated: list[dict[str, Any]] = []
            kept: list[HTTPMatch] = []
            for m in g.matches:
                tr = translate_match(m, GAMMA_CHECKS)
                once = (g.target.namespace, g.target.name, m)
                if once not in self.reported:  # each route once, not once per port
                    self.reported.add(once)
                    for check, message in tr.problems:
                        ctx.lossy(
                            check.code,
                            f"TrafficTarget {g.target.namespace}/{g.target.name}: {message}"
                            + ("; that route allows nothing" if tr.dropped else ""),
                            m.origin if m.origin.kind else g.target.origin,
                            severity=check.severity,
                        )
                translated.extend(tr.matches)
                if tr.matches:
                    kept.append(m)
            if not translated:
                continue
            expressed.append(_RouteGrant(g.target, g.tname, tuple(kept)))
            for index, rules in enumerate(pack_rules(translated, POLICY_ROUTE_LIMITS)):
                name = object_name(g.tname, port) if index == 0 else object_name(g.tname, port, index + 1)
                ctx.object(
                    POLICY_ROUTE_API,
                    "HTTPRoute",
                    ns,
                    name,
                    {"parentRefs": parent, "rules": [{"matches": ms} for ms in rules]},
                    [g.target.origin, *(m.origin for m in g.matches)],
                )
                self._policy(ns, name, g.target, g.tname, {"group": POLICY_GROUP, "kind": "HTTPRoute"}, name)
        if not expressed:
            return
        if server_level:
            # Server-level policies apply to every route, but a request no route matches gets 404
            ctx.object(
                POLICY_ROUTE_API,
                "HTTPRoute",
                ns,
                object_name(server, "catch-all"),
                {
                    "parentRefs": parent,
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}],
                },
                [t.origin for t in dest.targets],
            )
        ctx.lossy(
            PROBES.code,
            f"Server {ns}/{server}: once HTTPRoutes attach, Linkerd no longer authorizes kubelet probes on port "
            f"{port} by itself",
            expressed[0].target.origin,
            severity=PROBES.severity,
            hint="authorize the probe paths for unauthenticated clients if the pods have HTTP probes there",
        )
        self._overlaps(ns, server, expressed)

    def _overlaps(self, ns: str, server: str, grants: list[_RouteGrant]) -> None:
        for i, a in enumerate(grants):
            for b in grants[i + 1 :]:
                if set(a.target.sources) == set(b.target.sources):
                    continue
                if routes_may_overlap(a.matches, b.matches):
                    self.ctx.lossy(
                        ROUTE_OVERLAP.code,
                        f"Server {ns}/{server}: the routes of TrafficTargets {a.target.namespace}/{a.target.name} "
                        f"and {b.target.namespace}/{b.target.name} may match the same request; SMI allows it for "
                        "the sources of both, Linkerd only for those of the route it selects by precedence",
                        b.target.origin,
                        severity=ROUTE_OVERLAP.severity,
                        hint="give the two targets disjoint routes (distinct paths or methods) or the same sources",
                    )
                    return

    def _server_overlaps(self) -> None:
        for (ns, port), servers in sorted(
            self.server_selectors.items(), key=lambda kv: (kv[0][0], _port_key(kv[0][1]))
        ):
            for i, (name_a, sel_a, ident_a) in enumerate(servers):
                for name_b, sel_b, _ in servers[i + 1 :]:
                    shared = [
                        p.name
                        for p in self.ir.pods
                        if p.namespace == ns
                        and p.matches(tuple(sel_a.items()))
                        and p.matches(tuple(sel_b.items()))
                    ]
                    if shared:
                        self.ctx.lossy(
                            SERVER_OVERLAP.code,
                            f"Servers {ns}/{name_a} and {ns}/{name_b} both select pod {shared[0]} on port {port}; "
                            "Linkerd's admission webhook rejects overlapping Servers",
                            next((t.origin for t in self.ir.targets if t.destination == ident_a), None),
                            severity=SERVER_OVERLAP.severity,
                            hint="label the workloads of the two ServiceAccounts apart",
                        )

    def _default_inbound(self, guarded: set[Identity]) -> None:
        known: set[Identity] = {Identity(p.namespace, p.service_account) for p in self.ir.pods}
        for svc in self.ir.services:
            known.update(self.ir.identities_of(svc))
        unguarded: dict[str, list[str]] = {}
        for identity in known - guarded:
            unguarded.setdefault(identity.namespace, []).append(identity.name)
        for ns in sorted(unguarded):
            names = ", ".join(sorted(unguarded[ns]))
            self.ctx.lossy(
                DEFAULT_INBOUND.code,
                f"namespace {ns}: no TrafficTarget names {names}; enforce mode denies all traffic to them, but "
                f"Linkerd denies only where a Server exists. Annotate the namespace or pods "
                f"{DEFAULT_INBOUND_ANNOTATION}: deny (read when a pod is created: restart them)",
                None,
                severity=DEFAULT_INBOUND.severity,
                hint="or install Linkerd with proxy.defaultInboundPolicy=deny",
            )


def _labels(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


# --- ServiceProfile splits ------------------------------------------------------------------------


def _emit_profiles(ctx: EmitContext, ir: IR, options: Options) -> None:
    for split in splits_in_force(ctx, ir, GAMMA_CHECKS):
        ctx.consume(split, *split.backends)
        go, matches = split_matches(ctx, split, GAMMA_CHECKS)
        if not go:
            continue
        where = f"TrafficSplit {split.namespace}/{split.name}"
        root = ir.service(split.namespace, split.root)
        if matches is None and split.matches is not None:
            # one route matches every request: every HTTP request is split, TCP/UDP stay on the root
            other = [f"{p.port}/{p.protocol}" for p in (root.ports if root else ()) if not p.is_http]
            if root is None or other:
                ctx.lossy(
                    PROFILE_MATCHES.code,
                    f"{where}: the split covers HTTP requests only, but a ServiceProfile also splits "
                    + (
                        f"the non-HTTP port(s) {', '.join(other)}"
                        if other
                        else "any non-HTTP port of the root"
                    ),
                    split.origin,
                    severity=Severity.WARNING,
                )
        if matches is not None:
            ctx.lossy(
                PROFILE_MATCHES.code,
                f"{where}: a ServiceProfile's dstOverrides apply to every request and cannot be limited to the "
                "split's matches; the split is refused (matched requests stay on the root)",
                split.origin,
                severity=PROFILE_MATCHES.severity,
                hint="use --linkerd-split httproute for splits with matches",
            )
            continue
        domain = options.cluster_domain
        weights: dict[str, int] = {}
        for b in split.backends:
            weights[b.service] = weights.get(b.service, 0) + b.weight
        for svc in weights:
            backend = ir.service(split.namespace, svc)
            if root is None or backend is None or not backend.ports:
                continue
            missing = [p.port for p in root.ports if backend.port(p.port) is None]
            if missing and weights[svc] > 0:
                ctx.lossy(
                    BACKEND_PORT_MISSING.code,
                    f"{where}: backend Service {svc} lacks port(s) {', '.join(map(str, missing))} of the root; a "
                    "ServiceProfile sends it its share on every port, and requests there fail",
                    split.origin,
                    severity=Severity.WARNING,
                )
        ctx.object(
            PROFILE_API,
            "ServiceProfile",
            split.namespace,
            f"{split.root}.{split.namespace}.svc.{domain}",
            {
                "dstOverrides": [
                    {"authority": f"{svc}.{split.namespace}.svc.{domain}", "weight": w}
                    for svc, w in weights.items()
                ]
            },
            [split.origin, *(b.origin for b in split.backends)],
        )


# --- the backend ----------------------------------------------------------------------------------


class LinkerdBackend:
    name = "linkerd"
    description = (
        "Linkerd: policy.linkerd.io Server/HTTPRoute/AuthorizationPolicy/MeshTLSAuthentication; splits as "
        "GAMMA HTTPRoutes (or ServiceProfile dstOverrides)"
    )

    def emit(self, ir: IR, options: Options) -> Emission:
        ctx = EmitContext(self.name, options)
        if options.linkerd_split == "serviceprofile":
            _emit_profiles(ctx, ir, options)
        else:
            for split in splits_in_force(ctx, ir, GAMMA_CHECKS):
                emit_split(ctx, ir, split, STYLE)
        _AccessEmitter(ctx, ir, options).run()
        return ctx.emission()

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        report = Report()
        ir = _Importer(objects, inventory, options, report).run()
        report.resources = len(objects)
        return ir, report


# --- ingest ---------------------------------------------------------------------------------------


def _diag(check: Check, message: str, origin: Origin, *, hint: str = "") -> Diagnostic:
    return Diagnostic.at(check.code, check.severity, message, origin, hint=hint)


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata")
    if not isinstance(md, Mapping):
        md = {}
    return str(md.get("namespace") or "default"), str(md.get("name", ""))


def _parent_refs(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parentRefs that are mappings (a malformed entry is reported by the route's own reader)."""
    spec = obj.get("spec")
    refs = spec.get("parentRefs") if isinstance(spec, Mapping) else None
    return [r for r in refs if isinstance(r, Mapping)] if isinstance(refs, list) else []


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj.get("apiVersion", "")).rpartition("/")[0], str(obj.get("kind", ""))


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); ``{}`` selects everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(str(k)) != str(v):
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = (
            str(expr.get("key")),
            expr.get("operator"),
            [str(v) for v in expr.get("values") or ()],
        )
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@dataclass
class _Server:
    src: SourceObject
    namespace: str
    name: str
    port: int
    identities: tuple[Identity, ...]
    labels: dict[str, str]


@dataclass
class _InboundRoute:
    src: SourceObject
    namespace: str
    name: str
    servers: list[str]
    matches: tuple[HTTPMatch, ...] | None


@dataclass
class _Grant:
    """Sources allowed on some Servers (``route`` None) or on one inbound route."""

    policy: SourceObject
    name: str  # the policy's name
    auth: str  # the one MeshTLSAuthentication it names, else ""
    sources: frozenset[Identity]
    servers: list[_Server]
    route: _InboundRoute | None


_POLICY_KINDS_UNSUPPORTED = {
    "EgressNetwork": "egress control has no SMI equivalent",
    "HTTPLocalRateLimitPolicy": "rate limits have no SMI equivalent",
    "GRPCRoute": "gRPC method routing has no SMI equivalent",
}


class _Importer:
    def __init__(
        self, objects: Sequence[SourceObject], inventory: IR, options: Options, report: Report
    ) -> None:
        self.objects = objects
        self.inventory = inventory
        self.options = options
        self.report = report
        self.servers: dict[tuple[str, str], _Server] = {}
        self.server_objects: dict[tuple[str, str], SourceObject] = {}
        self.mtls: dict[tuple[str, str], SourceObject] = {}
        self.netauth: dict[tuple[str, str], SourceObject] = {}
        self.routes: dict[tuple[str, str, str], _InboundRoute] = {}
        self.grants: list[_Grant] = []
        self.known_identities = self._known_identities()

    def _known_identities(self) -> list[Identity]:
        known = {Identity(p.namespace, p.service_account) for p in self.inventory.pods}
        for svc in self.inventory.services:
            known.update(self.inventory.identities_of(svc))
        return sorted(known, key=lambda i: (i.namespace, i.name))

    def add(self, check: Check, message: str, origin: Origin, *, hint: str = "") -> None:
        self.report.add(_diag(check, message, origin, hint=hint))

    # -- the whole

    def run(self) -> IR:
        policies: list[SourceObject] = []
        legacy: list[SourceObject] = []
        profiles: list[SourceObject] = []
        inbound: list[SourceObject] = []
        for src in self.objects:
            group, kind = _group_kind(src.obj)
            ns, name = _meta(src.obj)
            if is_inventory(src.obj):
                continue
            if group == POLICY_GROUP and kind == "Server":
                self.server_objects[(ns, name)] = src
            elif group == POLICY_GROUP and kind == "MeshTLSAuthentication":
                self.mtls[(ns, name)] = src
            elif group == POLICY_GROUP and kind == "NetworkAuthentication":
                self.netauth[(ns, name)] = src
            elif group == POLICY_GROUP and kind == "AuthorizationPolicy":
                policies.append(src)
            elif group == POLICY_GROUP and kind == "ServerAuthorization":
                legacy.append(src)
            elif group == "linkerd.io" and kind == "ServiceProfile":
                profiles.append(src)
            elif group in (POLICY_GROUP, GATEWAY_GROUP) and kind in ("HTTPRoute", "TCPRoute"):
                if any(self._server_parent(r) for r in _parent_refs(src.obj)):
                    inbound.append(src)
            elif group in (POLICY_GROUP, GATEWAY_GROUP) and kind in _POLICY_KINDS_UNSUPPORTED:
                self.add(
                    KIND_UNSUPPORTED, f"{kind} is not imported: {_POLICY_KINDS_UNSUPPORTED[kind]}", src.origin
                )
            else:
                self.add(
                    UNKNOWN_KIND,
                    f"{src.obj.get('apiVersion')} {kind} is not a kind the linkerd importer reads; passed over",
                    src.origin,
                )
        for key, src in sorted(self.server_objects.items()):
            server = guarded(partial(self._server, src), src, MALFORMED, self.report)
            if server is not None:
                self.servers[key] = server
        for src in inbound:
            guarded(partial(self._inbound_route, src), src, MALFORMED, self.report)
        for src in policies:
            guarded(partial(self._authorization_policy, src), src, MALFORMED, self.report)
        for src in legacy:
            guarded(partial(self._server_authorization, src), src, MALFORMED, self.report)

        gamma = ingest_routes(
            self.objects,
            self.inventory,
            GAMMA_CHECKS,
            self.report,
            linkerd=True,
            groups=(GATEWAY_GROUP, POLICY_GROUP),
        )
        splits = {(s.namespace, s.root): s for s in gamma.splits}
        groups = {(g.namespace, g.name): g for g in gamma.route_groups}
        for src in profiles:
            split = guarded(partial(self._profile, src), src, MALFORMED, self.report)
            if split is None:
                continue
            key = (split.namespace, split.root)
            if key in gamma.roots:
                self._profile_conflict(src, key)
                old = splits.pop(key, None)
                if old is not None and old.route_groups:
                    groups.pop((old.namespace, old.route_groups[0]), None)
            splits[key] = split

        targets, more_groups, port_routes = self._targets()
        for g in more_groups:
            groups.setdefault((g.namespace, g.name), g)
        return IR(
            services=self.inventory.services,
            pods=self.inventory.pods,
            route_groups=tuple(groups[k] for k in sorted(groups)),
            port_routes=tuple(sorted(port_routes, key=lambda r: (r.namespace, r.name))),
            splits=tuple(sorted(splits.values(), key=lambda s: (s.namespace, s.name))),
            targets=tuple(sorted(targets, key=lambda t: (t.namespace, t.name))),
        )

    @staticmethod
    def _server_parent(ref: Mapping[str, Any]) -> bool:
        return ref.get("kind") == "Server" and ref.get("group", POLICY_GROUP) == POLICY_GROUP

    # -- Servers

    def _server(self, src: SourceObject) -> _Server | None:
        ns, name = _meta(src.obj)
        spec = src.obj.get("spec") or {}
        if "externalWorkloadSelector" in spec:
            self.add(
                EXTERNAL_WORKLOADS,
                f"Server {ns}/{name} selects external workloads (VMs), which have no ServiceAccount identity in SMI",
                src.origin.child("spec.externalWorkloadSelector"),
            )
            return None
        policy = spec.get("accessPolicy", "deny")
        if policy != "deny":
            self.add(
                ACCESS_POLICY,
                f"Server {ns}/{name} has accessPolicy {policy!r}, which admits clients no authorization names; SMI "
                "access is deny-by-default plus allows, so it is read as deny",
                src.origin.child("spec.accessPolicy"),
            )
        if spec.get("proxyProtocol") not in (None, "unknown"):
            self.add(
                PROXY_PROTOCOL,
                f"Server {ns}/{name} proxyProtocol {spec.get('proxyProtocol')!r} is dropped (SMI reads protocols "
                "from the Service)",
                src.origin.child("spec.proxyProtocol"),
            )
        selector = spec.get("podSelector") or {}
        pods = [p for p in self.inventory.pods if p.namespace == ns and _selects(selector, dict(p.labels))]
        if not pods:
            self.add(
                SERVER_NO_PODS,
                f"Server {ns}/{name} selects no pod in the input, so the ServiceAccount it protects is unknown; "
                "it is not imported",
                src.origin.child("spec.podSelector"),
                hint="include the workloads (Deployments or pods) with the Linkerd objects",
            )
            return None
        port = self._resolve_port(ns, spec.get("port"), pods)
        if port is None:
            self.add(
                SERVER_PORT,
                f"Server {ns}/{name} port {spec.get('port')!r} cannot be resolved to a number from the input",
                src.origin.child("spec.port"),
            )
            return None
        identities = tuple(sorted({Identity(ns, p.service_account) for p in pods}, key=lambda i: i.name))
        labels = {str(k): str(v) for k, v in ((src.obj.get("metadata") or {}).get("labels") or {}).items()}
        return _Server(src, ns, name, port, identities, labels)

    def _resolve_port(self, ns: str, port: Any, pods: list[Pod]) -> int | None:
        if isinstance(port, int) and not isinstance(port, bool):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        if not isinstance(port, str):
            return None
        names = {p.name for p in pods}
        for svc in self.inventory.services:
            if svc.namespace != ns:
                continue
            for ep in svc.endpoints:
                if ep.pod and ep.pod not in names:
                    continue
                for epp in ep.ports:
                    if epp.name == port:
                        return epp.port
        # as smi_bridge.semantics does for an unresolvable named targetPort: the Service port itself
        for svc in self.inventory.services:
            if svc.namespace == ns:
                for sp in svc.ports:
                    if sp.target_port == port:
                        return sp.port
        return None

    # -- routes attached to Servers

    def _inbound_route(self, src: SourceObject) -> None:
        ns, name = _meta(src.obj)
        group, kind = _group_kind(src.obj)
        if kind != "HTTPRoute":
            self.add(
                TARGET_UNSUPPORTED,
                f"{kind} {ns}/{name} attached to a Server has no SMI equivalent; ignored",
                src.origin,
            )
            return
        servers: list[str] = []
        for i, ref in enumerate((src.obj.get("spec") or {}).get("parentRefs") or ()):
            if not self._server_parent(ref):
                continue
            if ref.get("namespace") not in (None, ns) or ref.get("port") or ref.get("sectionName"):
                self.add(
                    PARENT_UNSUPPORTED,
                    "a Server parent must be in the route's namespace without port or sectionName (Linkerd "
                    "rejects the route otherwise); parent ignored",
                    src.origin.child(f"spec.parentRefs[{i}]"),
                )
                continue
            servers.append(str(ref.get("name")))
        matches = read_route_matches(src, GAMMA_CHECKS, self.report, linkerd=True)
        self.routes[(group, ns, name)] = _InboundRoute(src, ns, name, servers, matches)

    # -- authentications

    def _authn(self, ref: Mapping[str, Any], ns: str, where: Origin) -> frozenset[Identity] | None:
        """The identities one ``requiredAuthenticationRefs`` entry admits (None: cannot be held)."""
        kind = ref.get("kind")
        ref_ns = str(ref.get("namespace") or ns)
        name = str(ref.get("name", ""))
        if kind == "ServiceAccount" and ref.get("group", "") in ("", "core"):
            return frozenset({Identity(ref_ns, name)})
        if kind == "NetworkAuthentication":
            if (ref_ns, name) not in self.netauth:
                self.add(AUTHN_MISSING, f"NetworkAuthentication {ref_ns}/{name} not found", where)
                return None
            self.add(
                NETWORKS,
                f"NetworkAuthentication {ref_ns}/{name} restricts clients by address; SMI cannot, so that "
                "restriction is dropped (wider)",
                self.netauth[(ref_ns, name)].origin,
            )
            return frozenset(self.known_identities) | {_ANY}
        if kind == "MeshTLSAuthentication":
            src = self.mtls.get((ref_ns, name))
            if src is None:
                self.add(
                    AUTHN_MISSING,
                    f"MeshTLSAuthentication {ref_ns}/{name} not found; Linkerd ignores the policy",
                    where,
                )
                return None
            return self._mtls_identities(src)
        self.add(
            AUTHN_MISSING, f"authentication kind {kind!r} is not one Linkerd reads; policy ignored", where
        )
        return None

    def _mtls_identities(self, src: SourceObject) -> frozenset[Identity]:
        ns, _ = _meta(src.obj)
        spec = src.obj.get("spec") or {}
        out: set[Identity] = set()
        for i, ref in enumerate(spec.get("identityRefs") or ()):
            where = src.origin.child(f"spec.identityRefs[{i}]")
            kind = ref.get("kind")
            if kind == "ServiceAccount":
                if ref.get("name") in (None, "*"):
                    out |= self._wildcard(str(ref.get("namespace") or ns), where)
                else:
                    out.add(Identity(str(ref.get("namespace") or ns), str(ref["name"])))
            elif kind == "Namespace":
                out |= self._wildcard(str(ref.get("name")), where)
            else:
                self.add(
                    FOREIGN_IDENTITY, f"identityRef kind {kind!r} is not a ServiceAccount; dropped", where
                )
        for i, text in enumerate(spec.get("identities") or ()):
            out |= self._identity(str(text), src.origin.child(f"spec.identities[{i}]"))
        return frozenset(out)

    def _identity(self, text: str, where: Origin) -> set[Identity]:
        cp, td = self.options.linkerd_control_plane_ns, self.options.trust_domain
        if text == "*":
            return self._wildcard(None, where)
        m = _IDENTITY.match(text)
        if m is None:
            self.add(
                FOREIGN_IDENTITY,
                f"identity {text!r} is not a Linkerd ServiceAccount identity; dropped",
                where,
            )
            return set()
        if m["cp"] != cp or m["td"] != td:
            self.add(
                FOREIGN_IDENTITY,
                f"identity {text!r} belongs to control plane {m['cp']!r} / trust domain {m['td']!r}, not "
                f"{cp!r} / {td!r}; dropped",
                where,
                hint="set --linkerd-control-plane-ns / --trust-domain to the mesh's values",
            )
            return set()
        if m["sa"] == "*":
            return self._wildcard(m["ns"], where)
        return {Identity(m["ns"], m["sa"])}

    def _wildcard(self, namespace: str | None, where: Origin) -> set[Identity]:
        known = {i for i in self.known_identities if namespace is None or i.namespace == namespace}
        scope = (
            "every meshed ServiceAccount"
            if namespace is None
            else f"every ServiceAccount of namespace {namespace}"
        )
        self.add(
            IDENTITY_WILDCARD,
            f"{scope} is admitted; SMI names ServiceAccounts one by one, so this becomes the {len(known)} known "
            "to the input (later ones are not covered)",
            where,
        )
        return known

    # -- policies

    def _authorization_policy(self, src: SourceObject) -> None:
        ns, name = _meta(src.obj)
        spec = src.obj.get("spec") or {}
        ref = spec.get("targetRef") or {}
        kind, tgroup, tname = ref.get("kind"), ref.get("group", ""), str(ref.get("name", ""))
        where = src.origin.child("spec.targetRef")
        servers: list[_Server] = []
        route: _InboundRoute | None = None
        if kind == "Server":
            server = self.servers.get((ns, tname))
            if server is None:
                if (ns, tname) not in self.server_objects:
                    self.add(
                        TARGET_UNSUPPORTED,
                        f"Server {ns}/{tname} not found; the policy applies to nothing",
                        where,
                    )
                return
            servers = [server]
        elif kind == "HTTPRoute":
            route = self.routes.get((tgroup or POLICY_GROUP, ns, tname))
            if route is None:
                self.add(
                    TARGET_UNSUPPORTED,
                    f"HTTPRoute {ns}/{tname} ({tgroup or POLICY_GROUP}) attached to a Server not found; the policy "
                    "applies to nothing",
                    where,
                )
                return
            servers = [self.servers[(ns, s)] for s in route.servers if (ns, s) in self.servers]
        elif kind == "Namespace":
            servers = [s for (sns, _), s in sorted(self.servers.items()) if sns == ns]
            self.add(
                NAMESPACE_TARGET,
                f"AuthorizationPolicy {ns}/{name} targets namespace {tname}: applied to its {len(servers)} Server(s) "
                "in the input",
                where,
            )
        else:
            self.add(
                TARGET_UNSUPPORTED, f"target kind {kind!r} has no SMI equivalent; policy not imported", where
            )
            return
        sources: frozenset[Identity] | None = None
        auth_names: list[str] = []
        for i, aref in enumerate(spec.get("requiredAuthenticationRefs") or ()):
            admitted = self._authn(aref, ns, src.origin.child(f"spec.requiredAuthenticationRefs[{i}]"))
            if admitted is None:
                return
            auth_names.append(str(aref.get("name")) if aref.get("kind") == "MeshTLSAuthentication" else "")
            # requiredAuthenticationRefs are ANDed: a client must satisfy every one
            sources = admitted if sources is None else sources & admitted
        if sources is None:
            self.add(AUTHN_MISSING, f"AuthorizationPolicy {ns}/{name} requires no authentication", src.origin)
            return
        if _ANY in sources:
            self.add(
                UNAUTHENTICATED,
                f"AuthorizationPolicy {ns}/{name} admits clients by network only (unauthenticated ones too); SMI "
                "sources are ServiceAccounts, so it is read as the known ones",
                src.origin,
            )
        self.grants.append(
            # named after its MeshTLSAuthentication when that is all it requires (how smi-bridge writes it)
            _Grant(src, name, auth_names[0] if len(auth_names) == 1 else "", sources - {_ANY}, servers, route)
        )

    def _server_authorization(self, src: SourceObject) -> None:
        ns, name = _meta(src.obj)
        spec = src.obj.get("spec") or {}
        server_ref = spec.get("server") or {}
        if "name" in server_ref:
            found = self.servers.get((ns, str(server_ref["name"])))
            servers = [found] if found is not None else []
        else:
            selector = server_ref.get("selector") or {}
            servers = [
                s
                for (sns, _), s in sorted(self.servers.items())
                if sns == ns and _selects(selector, s.labels)
            ]
        client = spec.get("client") or {}
        if client.get("networks"):
            self.add(
                NETWORKS,
                "client networks restrict by address; SMI cannot, so the restriction is dropped (wider)",
                src.origin.child("spec.client.networks"),
            )
        if client.get("unauthenticated"):
            self.add(
                UNAUTHENTICATED,
                f"ServerAuthorization {ns}/{name} admits unauthenticated clients, which SMI cannot name; not imported",
                src.origin.child("spec.client.unauthenticated"),
            )
            return
        mesh = client.get("meshTLS") or {}
        if mesh.get("unauthenticatedTLS"):
            self.add(
                UNAUTHENTICATED,
                f"ServerAuthorization {ns}/{name} admits TLS clients without identity; not imported",
                src.origin.child("spec.client.meshTLS.unauthenticatedTLS"),
            )
            return
        sources: set[Identity] = set()
        for sa in mesh.get("serviceAccounts") or ():
            sources.add(Identity(str(sa.get("namespace") or ns), str(sa.get("name"))))
        for i, text in enumerate(mesh.get("identities") or ()):
            sources |= self._identity(str(text), src.origin.child(f"spec.client.meshTLS.identities[{i}]"))
        if not servers:
            self.add(
                TARGET_UNSUPPORTED, f"ServerAuthorization {ns}/{name} selects no imported Server", src.origin
            )
            return
        self.grants.append(_Grant(src, name, "", frozenset(sources), servers, None))

    # -- ServiceProfiles

    def _profile(self, src: SourceObject) -> Split | None:
        ns, name = _meta(src.obj)
        spec = src.obj.get("spec") or {}
        for key, why in (
            ("routes", "routes (per-route metrics, retries, timeouts) have"),
            ("retryBudget", "the retry budget has"),
            ("opaquePorts", "opaque ports have"),
        ):
            if spec.get(key):
                self.add(
                    PROFILE_FIELD,
                    f"ServiceProfile {ns}/{name}: {why} no SMI equivalent; dropped",
                    src.origin.child(f"spec.{key}"),
                )
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != ns or parts[2] != "svc":
            if spec.get("dstOverrides"):
                self.add(
                    PROFILE_AUTHORITY,
                    f"ServiceProfile {ns}/{name} is not named <service>.{ns}.svc.<cluster-domain>; its dstOverrides "
                    "are not imported",
                    src.origin,
                )
            return None
        root = parts[0]
        backends: list[tuple[str, Any, Origin]] = []
        for i, override in enumerate(spec.get("dstOverrides") or ()):
            where = src.origin.child(f"spec.dstOverrides[{i}]")
            authority = str(override.get("authority", ""))
            host = authority.rsplit(":", 1)[0] if ":" in authority else authority
            hparts = host.split(".")
            if len(hparts) == 1 or (len(hparts) >= 3 and hparts[1] == ns and hparts[2] == "svc"):
                backends.append((hparts[0], override.get("weight"), where))
                continue
            self.add(
                PROFILE_AUTHORITY,
                f"dstOverride {authority!r} is not a Service of namespace {ns} (another namespace or cluster); SMI "
                "backends live in the split's namespace, so it is dropped",
                where,
            )
        if not backends:
            return None
        try:
            weights = integer_weights([parse_quantity(w) for _, w, _ in backends])
        except (QuantityError, TypeError) as exc:
            self.add(PROFILE_AUTHORITY, f"dstOverride weight: {exc}; ServiceProfile not imported", src.origin)
            return None
        if sum(weights) == 0:
            return None  # the proxy drops every 0-weight override: traffic stays on the service itself
        merged: dict[str, int] = {}
        origins: dict[str, Origin] = {}
        for (svc, _, where), w in zip(backends, weights, strict=True):
            merged[svc] = merged.get(svc, 0) + w
            origins.setdefault(svc, where)
        split_name = _source_split(src.obj) or root
        return Split(
            ns,
            split_name,
            root,
            tuple(SplitBackend(svc, w, origins[svc]) for svc, w in merged.items()),
            None,
            (),
            src.origin,
        )

    def _profile_conflict(self, profile: SourceObject, key: tuple[str, str]) -> None:
        others = [
            o
            for o in self.objects
            if _group_kind(o.obj)[1] in ("HTTPRoute", "TCPRoute")
            and any(r.get("kind") == "Service" and str(r.get("name")) == key[1] for r in _parent_refs(o.obj))
            and _meta(o.obj)[0] == key[0]
        ]
        where = ", ".join(
            f"{o.origin.kind} {o.origin.name} ({o.origin.file or '<input>'}:{o.origin.line or 0})"
            for o in others
        )
        self.add(
            PROFILE_CONFLICT,
            f"ServiceProfile {profile.origin.name} and {where} all route Service {key[0]}/{key[1]}; Linkerd gives the "
            "ServiceProfile precedence, so the routes are not imported",
            profile.origin,
            hint="delete the ServiceProfile when migrating to HTTPRoutes (linkerd-smi keeps it after the split is gone)",
        )

    # -- TrafficTargets

    def _targets(self) -> tuple[list[TrafficTarget], list[RouteGroup], list[PortRoute]]:
        by_identity: dict[Identity, list[_Server]] = {}
        for server in self.servers.values():
            for identity in server.identities:
                by_identity.setdefault(identity, []).append(server)
        self._precedence()
        self._uncovered_ports(by_identity)

        # (identity, server-level?, auth, sources, matches key) -> (grant, ports, match tuple)
        groups: dict[tuple[Any, ...], tuple[_Grant, set[int], tuple[HTTPMatch, ...] | None]] = {}
        for grant in self.grants:
            if not grant.sources:
                continue
            matches = grant.route.matches if grant.route is not None else None
            mkey = None if matches is None else tuple((m.path_regex, m.methods, m.headers) for m in matches)
            for server in grant.servers:
                for identity in server.identities:
                    key = (identity, grant.route is None, grant.auth or grant.name, grant.sources, mkey)
                    entry = groups.setdefault(key, (grant, set(), matches))
                    entry[1].add(server.port)
        targets: list[TrafficTarget] = []
        route_groups: list[RouteGroup] = []
        port_routes: list[PortRoute] = []
        taken: dict[str, set[str]] = {}  # names per namespace
        guarded: set[Identity] = set()
        for key, (grant, ports, matches) in sorted(groups.items(), key=lambda kv: _group_sort(kv[0])):
            identity, server_level = key[0], key[1]
            every = {s.port for s in by_identity.get(identity, [])}
            name = unique_name(taken.setdefault(identity.namespace, set()), grant.auth or grant.name)
            all_ports = ports >= every
            rules: list[AccessRule] = []
            if server_level:
                pr = PortRoute(
                    identity.namespace,
                    name,
                    "tcp",
                    () if all_ports else tuple(sorted(ports)),
                    grant.policy.origin,
                )
                port_routes.append(pr)
                rules.append(AccessRule("tcp", pr.name, ports=pr.ports, origin=grant.policy.origin))
            else:
                route = grant.route
                assert route is not None
                held = (
                    matches
                    if matches is not None
                    else (HTTPMatch(f"{route.name}-all", origin=route.src.origin),)
                )
                group = RouteGroup(route.namespace, route.name, held, route.src.origin)
                route_groups.append(group)
                rules.append(AccessRule("http", group.name, matches=held, origin=route.src.origin))
                if not all_ports:
                    # the route sits on only some of the destination's Servers: SMI says so with a TCPRoute
                    pr = PortRoute(
                        identity.namespace, f"{name}-ports", "tcp", tuple(sorted(ports)), route.src.origin
                    )
                    port_routes.append(pr)
                    rules.append(AccessRule("tcp", pr.name, ports=pr.ports, origin=route.src.origin))
            guarded.add(identity)
            targets.append(
                TrafficTarget(
                    identity.namespace,
                    name,
                    identity,
                    tuple(sorted(grant.sources, key=lambda i: (i.namespace, i.name))),
                    tuple(rules),
                    grant.policy.origin,
                )
            )
        # a Server with no authorization still denies its port: keep that destination deny-by-default
        for identity, servers in sorted(by_identity.items(), key=lambda kv: (kv[0].namespace, kv[0].name)):
            if identity in guarded:
                continue
            first = sorted(servers, key=lambda s: s.name)[0]
            name = unique_name(taken.setdefault(identity.namespace, set()), first.name)
            targets.append(TrafficTarget(identity.namespace, name, identity, (), (), first.src.origin))
        return targets, route_groups, port_routes

    def _precedence(self) -> None:
        """Report where Linkerd's one-route-per-request authorization differs from SMI's OR."""
        for (ns, sname), server in sorted(self.servers.items()):
            routes = [r for r in self.routes.values() if r.namespace == ns and sname in r.servers]
            if not routes:
                continue
            server_level = [g for g in self.grants if g.route is None and server in g.servers and g.sources]
            if server_level and all(r.matches is not None for r in routes):
                self.add(
                    ROUTE_PRECEDENCE,
                    f"Server {ns}/{sname} has Server-level authorizations and HTTPRoutes but no catch-all route: "
                    "requests no route matches get 404 even from the authorized clients, while SMI allows them",
                    server.src.origin,
                )
            route_grants = [(r, {g.sources for g in self.grants if g.route is r}) for r in routes]
            for i, (ra, sa) in enumerate(route_grants):
                for rb, sb in route_grants[i + 1 :]:
                    # a route without its own policies only carries the Server-level ones, which every route has
                    if sa and sb and sa != sb and routes_may_overlap(ra.matches, rb.matches):
                        self.add(
                            ROUTE_PRECEDENCE,
                            f"HTTPRoutes {ns}/{ra.name} and {ns}/{rb.name} on Server {sname} may match the same request "
                            "with different authorizations; Linkerd authorizes by the route it selects, SMI by any",
                            rb.src.origin,
                        )

    def _uncovered_ports(self, by_identity: Mapping[Identity, list[_Server]]) -> None:
        for identity, servers in sorted(by_identity.items(), key=lambda kv: (kv[0].namespace, kv[0].name)):
            have = {s.port for s in servers}
            for svc in self.inventory.services:
                if svc.namespace != identity.namespace or identity.name not in svc.service_accounts:
                    continue
                for sp in svc.ports:
                    target = svc.target_port(sp.port)
                    port = target if target is not None else sp.port
                    if sp.protocol.upper() == "TCP" and port not in have:
                        self.add(
                            PORT_WITHOUT_SERVER,
                            f"{identity} serves port {port} (Service {svc.name}) without a Server: Linkerd applies "
                            "the cluster default policy there, while SMI (the identity has TrafficTargets) denies",
                            servers[0].src.origin,
                        )


_ANY = Identity("", "*")  # marker: a network-only authentication admits every client


def _group_sort(key: tuple[Any, ...]) -> tuple[str, str, bool, str, str]:
    identity, server_level, auth, sources, mkey = key
    return (
        identity.namespace,
        identity.name,
        not server_level,
        auth,
        repr((sorted(map(str, sources)), mkey)),
    )


def _source_split(obj: Mapping[str, Any]) -> str | None:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    refs = [r for r in str(ann.get("smi-bridge.io/source", "")).split(",") if r.startswith("TrafficSplit/")]
    return refs[0].split("/", 2)[2] if len(refs) == 1 else None


__all__ = ["CHECKS", "LinkerdBackend", "identity_string", "matches_disjoint", "routes_may_overlap"]
