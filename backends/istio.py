"""The Istio backend: SMI IR -> VirtualService + AuthorizationPolicy, and Istio config -> IR.

What is emitted, and why (research: backend-mappings.md sections 1 and 2):

Splits -> ``networking.istio.io/v1`` VirtualService, one per TrafficSplit, named after it, in its
namespace. ``hosts`` is the root FQDN ``<root>.<ns>.svc.<cluster-domain>`` (short names resolve
relative to the VirtualService's namespace, an FQDN never does). Destinations are FQDNs without a
port, so traffic keeps its port as SMI requires. No DestinationRule: SMI backends are Services, so
no subsets are ever needed.

- Weights become integers summing to 100 by largest remainder (so the output also works on Istio
  older than 1.13, where weights had to sum to 100); zero stays zero, and only positive weights
  can receive the remainder. Inexact rounding is reported (SMT103; a positive weight that rounds
  to 0% is a warning, SMT104). An all-zero split is refused (SMT101).
- Sections follow the root Service's ports when the inventory knows them: ``http`` for HTTP ports
  (``ServicePort.is_http``) and for ports without a declared protocol, which Istio sniffs and may
  route as HTTP; ``tcp`` for the other TCP ports. Without the root Service both sections are
  written without port matches (SMT106). Istio sidecars do not capture UDP, so UDP ports are not
  split (SMT105).
- The reference meaning lets a backend take traffic for root port P only if its Service has port
  P. When that leaves different backend sets for different ports, each set gets its own entry
  with ``match: [{port: P}, ...]`` (weights re-rounded over that set) and a final catch-all entry
  routes everything else to the root host; ports where no positive-weight backend remains fall
  through to it, as they go to the root unsplit in the IR. (The reference meaning also routes
  ports the root does not expose, by the backends' ports; no connection to a Kubernetes Service
  can use such a port, so nothing is written for them.)
- v1alpha4 ``matches``: one ``http`` entry with one HTTPMatchRequest per (route x method):
  ``uri.regex`` in full-match form ``(?:R).*`` (SMI anchors pathRegex at the start only; Envoy
  matches the whole path), ``method.exact``, ``headers[<lower-case name>].regex`` (header values
  are full-match in both), ``name`` = the route name; routed to the weighted backends; then a
  catch-all entry to the root host. TCP never matches such a split, so no ``tcp`` section is
  written for it. When the root has ports Istio may sniff as HTTP, the matched entries carry the
  HTTP port numbers so that sniffed traffic is not split. A route whose regex is not RE2 never
  matches in the IR and is left out (SMT108).
- Two splits on one root: Istio applies only one VirtualService per host to sidecars, and the
  reference meaning applies the first split by name; the others are refused (SMT102).

TrafficTargets -> ``security.istio.io/v1`` AuthorizationPolicy, action ALLOW, one per TrafficTarget,
in the destination's namespace (a policy can only select workloads of its own namespace).

- The selector is the labels common to every pod that runs as the destination ServiceAccount (the
  inventory's pods and pod templates). AuthorizationPolicy cannot select by ServiceAccount, so
  when no pod is known, the pods share no label, or the labels would also select pods of another
  ServiceAccount, no policy is written: a namespace-wide or shared selector would over-grant.
  In ``enforce`` mode the namespace's allow-nothing policy then denies every source (narrowed); in
  ``permissive`` mode Istio allows every source (widened) and the diagnostic is an error (SMT110).
- Sources become ``from.source.principals`` ``<trust-domain>/ns/<ns>/sa/<sa>``. A target without
  sources, or whose rules all had to be dropped, still gets a policy with a selector and no rules:
  Istio then denies everything to those workloads, which is the IR's deny-by-default.
- HTTP routes become ``to.operation`` (``paths``, ``methods``) plus ``when`` conditions on
  ``request.headers[<name>]``. AuthorizationPolicy has no regex: a path reduces (through
  ``full_match_form`` and ``reduce_to_literal``) to exact ``/a``, prefix ``/a*`` or suffix ``*/a``
  (SMI ``/api`` is the prefix ``/api*``), and a header value likewise. A match that does not
  reduce is dropped, so access is **narrowed**, never widened silently (SMT111 path, SMT112
  header). A header regex ``.*`` becomes Istio's presence value ``*``, which does not match an
  empty value (SMT113, narrowed). Operations without any HTTP-only field get ``paths: ["*"]`` so
  that they never allow raw TCP (Istio ignores ALLOW rules with HTTP fields for TCP traffic).
- Rules: one Istio rule per distinct set of header conditions (``when`` applies to a whole rule),
  its ``to`` listing the operations. TCP rules next to HTTP rules narrow the HTTP operations to
  their workload ports (``to.operation.ports`` beside ``paths``) and open no raw TCP, as the
  reference meaning says; TCP-only targets become ``to.operation.ports`` (strings of workload
  ports), or a rule without ``to`` when a TCPRoute covers every port. UDP rules have no Istio
  form (sidecars do not capture UDP): SMT114.
- Deny-by-default: in ``enforce`` mode one allow-nothing AuthorizationPolicy (``spec: {}``) named
  ``smi-bridge-deny-by-default`` per namespace the IR mentions (workloads, Services, splits,
  targets' destinations), so identities without TrafficTargets are denied. In ``permissive`` mode
  none; identities with targets are still deny-by-default, since an ALLOW policy selects them.
- No PeerAuthentication is written: principals only match mTLS peers, so plaintext callers are
  denied by these policies anyway; strict mTLS is a mesh-wide decision for the operator.

Ingest (migrations) reads VirtualService, DestinationRule, AuthorizationPolicy and
PeerAuthentication (any served version) as smi-bridge writes them and as people write them:

- VirtualService: each host that names a cluster Service (short name, relative to the object's
  namespace, or ``<svc>.<ns>.svc.<cluster-domain>``, as Istio resolves them) becomes a TrafficSplit
  root; ``http``/``tcp`` weights become backends; HTTPMatchRequests become routes (``uri.exact`` ->
  escaped literal + ``$``, ``uri.prefix`` -> escaped literal, ``uri.regex`` R -> ``(?:R)$``, and our
  own ``(?:R).*`` back to R; ``method.exact``; headers exact/prefix/regex); entries that differ only
  in method fold back into one route. A trailing catch-all to the root host is recognised, as are
  the per-port entries written above. When Istio splits only HTTP (no ``tcp`` entries) but the root
  also takes TCP or UDP, the split is read with one route that matches every HTTP request, which
  is exactly what Istio does. Everything a TrafficSplit cannot hold is reported with its
  field path: subsets, destination ports, rewrite, redirect, timeout, retries, fault, mirrors,
  corsPolicy, header manipulation, directResponse, delegate, and match fields other than uri,
  method and headers (the match is then dropped). Two VirtualServices for one host: for sidecars
  Istio uses the oldest, so the oldest by ``creationTimestamp`` (else the first in the input) is
  applied and the others are reported with both locations.
- AuthorizationPolicy ALLOW: the selector's pods (inventory) give the destination ServiceAccounts;
  principals and ``serviceAccounts`` give sources; paths exact/prefix/suffix become regexes;
  methods; ``ports`` become a TCPRoute; ``when request.headers[...]`` becomes header matches,
  ``destination.port``, ``source.principal`` and ``source.namespace`` are applied exactly. Istio
  rules whose sources, operations or ports differ become separate TrafficTargets, since one
  TrafficTarget has one source list and its TCP rules narrow all of its HTTP rules. What cannot be
  held is dropped with a report, always towards **less** access: DENY/AUDIT/CUSTOM actions, ``not*``
  fields, ipBlocks, requestPrincipals, hosts, other conditions; principal wildcards, ``namespaces``
  and missing ``from`` are expanded against the inventory's ServiceAccounts (narrowed to them).
  A selector that matches only some pods of a ServiceAccount is not widened to all of them.
  A selector-less ALLOW applies to every ServiceAccount of its namespace (reported); an
  allow-nothing policy marks its namespace deny-by-default, and any disagreement with the access
  mode is reported (SMX128).
- PeerAuthentication and DestinationRule hold nothing the IR can carry: noted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from backends.base import Emission, EmitContext, Options, SourceObject, unique_name
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    PortRoute,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.regex import (
    check_re2,
    full_match_form,
    reduce_to_literal,
    split_leading_flags,
    strip_full_match,
)

NETWORKING_API = "networking.istio.io/v1"
SECURITY_API = "security.istio.io/v1"
DENY_BY_DEFAULT_NAME = "smi-bridge-deny-by-default"
# AuthorizationPolicy CRD: ``rules`` has maxItems 512.
MAX_POLICY_RULES = 512
# The root namespace of a default Istio install: a selector-less policy there applies mesh-wide.
ISTIO_ROOT_NAMESPACE = "istio-system"

# --- translation checks (SMT100-SMT199) ---------------------------------------------------------

ZERO_SPLIT = Check(
    "SMT101", Severity.ERROR, "all-zero TrafficSplit refused (Istio rejects zero total weight)"
)
SECOND_SPLIT = Check(
    "SMT102", Severity.ERROR, "second TrafficSplit on one root not emitted (one VirtualService per host)"
)
WEIGHT_ROUNDED = Check("SMT103", Severity.INFO, "weights rounded to whole percent")
WEIGHT_LOST = Check("SMT104", Severity.WARNING, "a positive weight rounds to 0% and gets no traffic")
UDP_NOT_SPLIT = Check(
    "SMT105", Severity.WARNING, "UDP port of a split root is not split (Istio does not capture UDP)"
)
ROOT_PORTS_UNKNOWN = Check(
    "SMT106", Severity.INFO, "root Service ports unknown; both http and tcp sections written"
)
EMPTY_MATCHES = Check("SMT107", Severity.INFO, "split applies to no request; no VirtualService written")
BAD_ROUTE_REGEX = Check("SMT108", Severity.INFO, "route with a non-RE2 regex left out (it never matches)")
DUPLICATE_HEADER = Check(
    "SMT109", Severity.WARNING, "two regexes for one header in a split route; first kept"
)
NO_SELECTOR = Check(
    "SMT110", Severity.WARNING, "no safe workload selector for a destination; no AuthorizationPolicy"
)
PATH_NARROWED = Check(
    "SMT111", Severity.WARNING, "pathRegex has no AuthorizationPolicy form; match dropped (narrowed)"
)
HEADER_NARROWED = Check(
    "SMT112", Severity.WARNING, "header regex has no AuthorizationPolicy form; match dropped (narrowed)"
)
PRESENCE_NARROWED = Check(
    "SMT113", Severity.INFO, "header regex '.*' becomes presence '*' (empty value no longer matches)"
)
UDP_ACCESS = Check(
    "SMT114", Severity.WARNING, "UDPRoute access rule has no Istio form (Istio does not capture UDP)"
)
TOO_MANY_RULES = Check(
    "SMT115", Severity.ERROR, "AuthorizationPolicy would exceed 512 rules; the rest dropped (narrowed)"
)

# --- import checks (SMX100-SMX199) ----------------------------------------------------------------

UNKNOWN_KIND = Check("SMX100", Severity.INFO, "object kind not read by the istio importer; passed over")
PEER_AUTHENTICATION = Check("SMX101", Severity.INFO, "PeerAuthentication has no SMI form; noted")
DESTINATION_RULE = Check("SMX102", Severity.INFO, "DestinationRule has no SMI form; noted")
HOST_UNRESOLVED = Check(
    "SMX103", Severity.WARNING, "VirtualService host or destination is not a cluster Service"
)
NOT_FOR_SIDECARS = Check(
    "SMX104", Severity.INFO, "VirtualService does not apply to sidecars (gateways without mesh)"
)
VS_CONFLICT = Check("SMX105", Severity.WARNING, "two VirtualServices for one host; the oldest applies")
ROUTE_FEATURE = Check("SMX106", Severity.WARNING, "VirtualService route feature with no SMI field")
MATCH_FEATURE = Check("SMX107", Severity.WARNING, "HTTPMatchRequest field with no SMI field; match dropped")
ROUTING_SHAPE = Check(
    "SMX108", Severity.WARNING, "VirtualService routing that one TrafficSplit cannot express"
)
SUBSET = Check(
    "SMX109", Severity.WARNING, "destination subset or port with no SMI field; the whole Service is used"
)
ZERO_WEIGHTS = Check("SMX110", Severity.ERROR, "route with zero total weight (Istio rejects it); ignored")
NOT_ALLOW = Check("SMX120", Severity.WARNING, "AuthorizationPolicy action other than ALLOW has no SMI form")
POLICY_SCOPE = Check(
    "SMX121", Severity.WARNING, "AuthorizationPolicy scope (selector-less, targetRefs) changed or dropped"
)
SELECTOR = Check(
    "SMX122", Severity.WARNING, "AuthorizationPolicy selector does not map to whole ServiceAccounts"
)
SOURCE_FIELD = Check(
    "SMX123", Severity.WARNING, "AuthorizationPolicy source field with no SMI form; source dropped"
)
PRINCIPAL = Check(
    "SMX124", Severity.WARNING, "principal is not an exact ServiceAccount identity of this trust domain"
)
OPERATION_FIELD = Check(
    "SMX125", Severity.WARNING, "AuthorizationPolicy operation value with no SMI form; dropped"
)
CONDITION = Check("SMX126", Severity.WARNING, "AuthorizationPolicy condition with no SMI form; rule dropped")
SOURCES_EXPANDED = Check(
    "SMX127", Severity.WARNING, "sources expanded from the inventory (others narrowed away)"
)
DEFAULT_MODE = Check(
    "SMX128", Severity.WARNING, "Istio default for workloads without policy differs from the access mode"
)
MALFORMED = Check("SMX130", Severity.ERROR, "Istio object field has the wrong type or is missing")

CHECKS: tuple[Check, ...] = (
    ZERO_SPLIT,
    SECOND_SPLIT,
    WEIGHT_ROUNDED,
    WEIGHT_LOST,
    UDP_NOT_SPLIT,
    ROOT_PORTS_UNKNOWN,
    EMPTY_MATCHES,
    BAD_ROUTE_REGEX,
    DUPLICATE_HEADER,
    NO_SELECTOR,
    PATH_NARROWED,
    HEADER_NARROWED,
    PRESENCE_NARROWED,
    UDP_ACCESS,
    TOO_MANY_RULES,
    UNKNOWN_KIND,
    PEER_AUTHENTICATION,
    DESTINATION_RULE,
    HOST_UNRESOLVED,
    NOT_FOR_SIDECARS,
    VS_CONFLICT,
    ROUTE_FEATURE,
    MATCH_FEATURE,
    ROUTING_SHAPE,
    SUBSET,
    ZERO_WEIGHTS,
    NOT_ALLOW,
    POLICY_SCOPE,
    SELECTOR,
    SOURCE_FIELD,
    PRINCIPAL,
    OPERATION_FIELD,
    CONDITION,
    SOURCES_EXPANDED,
    DEFAULT_MODE,
    MALFORMED,
)

# Port names Istio reads as a declared protocol (``<protocol>[-<suffix>]``); other ports are sniffed.
_ISTIO_PROTOCOL_PREFIXES = (
    "http",
    "http2",
    "https",
    "grpc",
    "grpc-web",
    "h2c",
    "tcp",
    "tls",
    "mongo",
    "mysql",
    "redis",
    "udp",
)


# --- shared arithmetic and text forms -------------------------------------------------------------


def largest_remainder(weights: Sequence[int], total: int = 100) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total``; zero stays zero.

    The remainder goes to the largest fractional parts (ties: earlier entry first). Only positive
    weights have a fractional part, so a zero weight never receives any. ``sum(weights)`` must be > 0.
    """
    whole = sum(weights)
    if whole <= 0:
        raise ValueError("largest_remainder needs a positive total weight")
    quotas = [Fraction(w * total, whole) for w in weights]
    out = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _fqdn(service: str, namespace: str, cluster_domain: str) -> str:
    return f"{service}.{namespace}.svc.{cluster_domain}"


def _principal(identity: Identity, trust_domain: str) -> str:
    return f"{trust_domain}/ns/{identity.namespace}/sa/{identity.name}"


def _declares_protocol(port: ServicePort) -> bool:
    """True when Istio reads the port's protocol from its name or appProtocol (no sniffing)."""
    if port.app_protocol:
        return True
    name = port.name.lower()
    return any(name == p or name.startswith(p + "-") for p in _ISTIO_PROTOCOL_PREFIXES)


_RE2_META = set("\\.+*?()|[]{}^$")


def re2_escape(text: str) -> str:
    """``text`` as an RE2 (and Python ``re``) literal: only metacharacters are escaped."""
    return "".join("\\" + ch if ch in _RE2_META else ch for ch in text)


def _has_wildcard_text(literal: str) -> bool:
    """Characters Istio's string matchers would read as wildcards or path templates."""
    return "*" in literal or "{" in literal or "}" in literal


def _istio_value(regex: str, *, full: bool) -> tuple[str, str] | None:
    """An Istio string-match value for a regex, with its kind, or None when there is none.

    ``full``: the regex is already full-match (header values); otherwise it is a start-anchored
    pathRegex and is read through ``full_match_form`` first.
    """
    kind, literal = reduce_to_literal(regex if full else full_match_form(regex))
    if kind == "regex" or _has_wildcard_text(literal):
        return None
    if kind == "exact":
        return (kind, literal) if literal else None  # an empty exact value has no Istio form
    if kind == "prefix":
        return (kind, literal + "*")
    if kind == "suffix":
        return (kind, "*" + literal)
    return ("any", "*")


# --- emit -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PortGroup:
    """Root ports sharing one set of eligible backends, and their rounded weights."""

    ports: tuple[int, ...]
    backends: tuple[tuple[str, int], ...]  # (service, percent), zero weights kept


class _Emitter:
    def __init__(self, ir: IR, options: Options) -> None:
        self.ir = ir
        self.options = options
        self.ctx = EmitContext("istio", options)
        self._names: dict[tuple[str, str], set[str]] = {}

    # names are unique per (kind, namespace); ctx.object would otherwise merge two objects into one
    def _name(self, kind: str, namespace: str, wanted: str) -> str:
        return unique_name(self._names.setdefault((kind, namespace), set()), wanted)

    def run(self) -> Emission:
        if self.options.access_mode == "enforce":
            self._deny_by_default()
        seen_roots: dict[tuple[str, str], Split] = {}
        for split in self.ir.splits:
            first = seen_roots.get((split.namespace, split.root))
            if first is not None:
                self.ctx.consume(split, *split.backends)
                self.ctx.lossy(
                    SECOND_SPLIT.code,
                    f"TrafficSplit {split.namespace}/{split.name} is not emitted: TrafficSplit "
                    f"{first.namespace}/{first.name} already routes root {split.root}, and Istio applies one "
                    "VirtualService per host to sidecars (the first split by name applies)",
                    split.origin,
                    severity=SECOND_SPLIT.severity,
                    hint="merge the two TrafficSplits or give one of them another root Service",
                )
                continue
            seen_roots[(split.namespace, split.root)] = split
            self._split(split)
        for target in self.ir.targets:
            self._target(target)
        return self.ctx.emission()

    # -- splits --

    def _split(self, split: Split) -> None:
        ctx, ns, domain = self.ctx, split.namespace, self.options.cluster_domain
        ctx.consume(split, *split.backends)
        ref = f"TrafficSplit {ns}/{split.name}"
        if split.total_weight <= 0:
            ctx.lossy(
                ZERO_SPLIT.code,
                f"{ref}: every backend weight is 0; no VirtualService is written, so requests to "
                f"{split.root} go to the root Service unsplit",
                split.origin,
                severity=ZERO_SPLIT.severity,
                hint="give at least one backend a positive weight",
            )
            return
        matches: list[HTTPMatch] | None = None
        if split.matches is not None:
            matches = []
            for m in split.matches:
                reason = _match_regex_problem(m)
                if reason is not None:
                    ctx.lossy(
                        BAD_ROUTE_REGEX.code,
                        f"{ref}: route {m.name} is left out of the VirtualService: {reason}; it matches no "
                        "request in the IR either",
                        m.origin,
                        severity=BAD_ROUTE_REGEX.severity,
                    )
                    continue
                matches.append(m)
            if not matches:
                ctx.lossy(
                    EMPTY_MATCHES.code,
                    f"{ref}: the split has no usable route, so it applies to no request; no VirtualService "
                    f"is written and requests to {split.root} go to the root Service unsplit",
                    split.origin,
                    severity=EMPTY_MATCHES.severity,
                )
                return

        # duplicate backend entries add up, exactly as the reference meaning adds their shares
        merged: dict[str, int] = {}
        for b in split.backends:
            merged[b.service] = merged.get(b.service, 0) + b.weight
        backends = list(merged.items())
        root = self.ir.service(ns, split.root)

        http_entries: list[dict[str, Any]] = []
        tcp_entries: list[dict[str, Any]] = []
        rounding: list[tuple[tuple[str, int], ...]] = []
        if root is None or not root.ports:
            ctx.lossy(
                ROOT_PORTS_UNKNOWN.code,
                f"{ref}: the ports of root Service {ns}/{split.root} are unknown, so every port is split "
                "over every backend (a backend without the requested port fails for it)",
                split.origin,
                severity=ROOT_PORTS_UNKNOWN.severity,
                hint="include the Service manifests in the input",
            )
            group = self._group(ns, backends, None)
            if group is not None:
                rounding.append(tuple(backends))
                http_entries = self._http_entries([group], matches, None, split)
                if matches is None:
                    tcp_entries = self._tcp_entries([group], None, split)
        else:
            tcp_ports = [p for p in root.ports if p.l4 == "tcp"]
            for p in root.ports:
                if p.l4 == "udp":
                    ctx.lossy(
                        UDP_NOT_SPLIT.code,
                        f"{ref}: UDP port {p.port} of {ns}/{split.root} is not split: Istio sidecars do not "
                        "capture UDP, so it reaches the root Service directly",
                        split.origin,
                        severity=UDP_NOT_SPLIT.severity,
                    )
            http_declared = [p.port for p in tcp_ports if p.is_http]
            sniffed = [p.port for p in tcp_ports if not p.is_http and not _declares_protocol(p)]
            plain_tcp = [p.port for p in tcp_ports if not p.is_http]
            http_visible = [*http_declared, *sniffed]
            # a matches split applies to HTTP requests only: leave sniffed ports to the catch-all
            http_handled = http_visible if matches is None else http_declared
            http_groups = self._groups(ns, backends, http_handled)
            tcp_groups = self._groups(ns, backends, plain_tcp) if matches is None else []
            for g in [*http_groups, *tcp_groups]:
                rounding.append(tuple((s, w) for s, w in backends if s in {b for b, _ in g.backends}))
            if http_handled:
                need_ports = len(http_groups) != 1 or set(http_groups[0].ports) != set(http_visible)
                http_entries = self._http_entries(
                    http_groups, matches, http_visible if need_ports else None, split
                )
            if plain_tcp and tcp_groups:
                need_ports = len(tcp_groups) != 1 or set(tcp_groups[0].ports) != set(plain_tcp)
                tcp_entries = self._tcp_entries(tcp_groups, plain_tcp if need_ports else None, split)
        self._report_rounding(split, rounding)
        if not http_entries and not tcp_entries:
            ctx.lossy(
                EMPTY_MATCHES.code,
                f"{ref}: no port of root Service {ns}/{split.root} that Istio can split has a positive-weight "
                "backend with that port, so the split applies to no request; no VirtualService is written",
                split.origin,
                severity=EMPTY_MATCHES.severity,
            )
            return
        spec: dict[str, Any] = {"hosts": [_fqdn(split.root, ns, domain)]}
        if http_entries:
            spec["http"] = http_entries
        if tcp_entries:
            spec["tcp"] = tcp_entries
        origins = [split.origin, *(b.origin for b in split.backends), *(m.origin for m in matches or ())]
        # fresh copy: match and route dicts are built once and shared between entries
        name = self._name("VirtualService", ns, split.name)
        ctx.object(NETWORKING_API, "VirtualService", ns, name, _fresh(spec), origins)

    def _eligible(
        self, namespace: str, backends: Sequence[tuple[str, int]], port: int | None
    ) -> list[tuple[str, int]]:
        """Backends that take part for root port ``port`` (the reference meaning's port rule)."""
        if port is None:
            return list(backends)
        out = []
        for service, weight in backends:
            svc = self.ir.service(namespace, service)
            if svc is None or not svc.ports or svc.port(port) is not None:
                out.append((service, weight))
        return out

    def _group(
        self, namespace: str, backends: Sequence[tuple[str, int]], port: int | None
    ) -> _PortGroup | None:
        eligible = self._eligible(namespace, backends, port)
        if sum(w for _, w in eligible) <= 0:
            return None
        percents = largest_remainder([w for _, w in eligible])
        return _PortGroup(
            (port,) if port is not None else (), tuple(zip((s for s, _ in eligible), percents, strict=True))
        )

    def _groups(
        self, namespace: str, backends: Sequence[tuple[str, int]], ports: Sequence[int]
    ) -> list[_PortGroup]:
        by_set: dict[tuple[tuple[str, int], ...], list[int]] = {}
        for port in ports:
            group = self._group(namespace, backends, port)
            if group is not None:
                by_set.setdefault(group.backends, []).append(port)
        return [_PortGroup(tuple(p), b) for b, p in by_set.items()]

    def _route(self, group: _PortGroup, namespace: str) -> list[dict[str, Any]]:
        domain = self.options.cluster_domain
        return [
            {"destination": {"host": _fqdn(s, namespace, domain)}, "weight": w} for s, w in group.backends
        ]

    def _root_route(self, split: Split) -> list[dict[str, Any]]:
        host = _fqdn(split.root, split.namespace, self.options.cluster_domain)
        return [{"destination": {"host": host}}]

    def _http_entries(
        self,
        groups: Sequence[_PortGroup],
        matches: Sequence[HTTPMatch] | None,
        port_scoped: Sequence[int] | None,
        split: Split,
    ) -> list[dict[str, Any]]:
        """``port_scoped``: None when the groups need no port match; else every HTTP-visible port."""
        entries: list[dict[str, Any]] = []
        requests = None if matches is None else [r for m in matches for r in self._match_requests(m, split)]
        for group in groups:
            entry: dict[str, Any] = {}
            if port_scoped is not None:
                if requests is None:
                    entry["match"] = [{"port": p} for p in group.ports]
                else:
                    entry["match"] = [{**r, "port": p} for p in group.ports for r in requests]
            elif requests is not None:
                entry["match"] = [dict(r) for r in requests]
            entry["route"] = self._route(group, split.namespace)
            entries.append(entry)
        if entries and (matches is not None or port_scoped is not None):
            entries.append({"route": self._root_route(split)})
        return entries

    def _tcp_entries(
        self, groups: Sequence[_PortGroup], port_scoped: Sequence[int] | None, split: Split
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for group in groups:
            entry: dict[str, Any] = {}
            if port_scoped is not None:
                entry["match"] = [{"port": p} for p in group.ports]
            entry["route"] = self._route(group, split.namespace)
            entries.append(entry)
        if entries and port_scoped is not None:
            entries.append({"route": self._root_route(split)})
        return entries

    def _match_requests(self, m: HTTPMatch, split: Split) -> list[dict[str, Any]]:
        base: dict[str, Any] = {"name": m.name}
        if m.path_regex is not None:
            base["uri"] = {"regex": full_match_form(m.path_regex)}
        if m.headers:
            headers: dict[str, Any] = {}
            for h in m.headers:
                if h.name in headers:
                    if headers[h.name]["regex"] != h.regex:
                        self.ctx.lossy(
                            DUPLICATE_HEADER.code,
                            f"TrafficSplit {split.namespace}/{split.name} route {m.name}: header {h.name} has "
                            f"two regexes; Istio holds one per header, so {headers[h.name]['regex']!r} is kept "
                            f"and {h.regex!r} is dropped (more requests are split)",
                            m.origin,
                            severity=DUPLICATE_HEADER.severity,
                        )
                    continue
                headers[h.name] = {"regex": h.regex}
            base["headers"] = headers
        if not m.methods:
            return [base]
        return [{**base, "method": {"exact": method}} for method in m.methods]

    def _report_rounding(self, split: Split, sets: Iterable[tuple[tuple[str, int], ...]]) -> None:
        ref = f"TrafficSplit {split.namespace}/{split.name}"
        reported: set[tuple[tuple[str, int], ...]] = set()
        for backends in sets:
            if backends in reported or sum(w for _, w in backends) <= 0:
                continue
            reported.add(backends)
            weights = [w for _, w in backends]
            percents = largest_remainder(weights)
            total = sum(weights)
            exact = all(Fraction(w * 100, total) == p for w, p in zip(weights, percents, strict=True))
            if exact:
                continue
            shares = ", ".join(
                f"{s} {w} ({float(Fraction(w * 100, total)):.2f}% -> {p}%)"
                for (s, w), p in zip(backends, percents, strict=True)
            )
            lost = [s for (s, w), p in zip(backends, percents, strict=True) if w > 0 and p == 0]
            if lost:
                self.ctx.lossy(
                    WEIGHT_LOST.code,
                    f"{ref}: {', '.join(lost)} get(s) no traffic after rounding to whole percent: {shares}",
                    split.origin,
                    severity=WEIGHT_LOST.severity,
                    hint="raise the small weights to at least 1% of the total",
                )
            else:
                self.ctx.lossy(
                    WEIGHT_ROUNDED.code,
                    f"{ref}: weights rounded to whole percent (largest remainder): {shares}",
                    split.origin,
                    severity=WEIGHT_ROUNDED.severity,
                )

    # -- access --

    def _deny_by_default(self) -> None:
        namespaces = set(self.ir.namespaces()) | {t.destination.namespace for t in self.ir.targets}
        for ns in sorted(namespaces):
            origins = [t.origin for t in self.ir.targets if t.destination.namespace == ns]
            name = self._name("AuthorizationPolicy", ns, DENY_BY_DEFAULT_NAME)
            self.ctx.object(SECURITY_API, "AuthorizationPolicy", ns, name, {}, origins)

    def _selector(self, target: TrafficTarget) -> dict[str, str] | None:
        dest = target.destination
        ref = f"TrafficTarget {target.namespace}/{target.name}"
        pods = self.ir.pods_of(dest)
        problem: str | None = None
        labels: dict[str, str] = {}
        if not pods:
            problem = f"no pod or workload template running as ServiceAccount {dest} is known"
        else:
            common = set(pods[0].labels)
            for pod in pods[1:]:
                common &= set(pod.labels)
            labels = dict(sorted(common))
            if not labels:
                problem = f"the pods running as ServiceAccount {dest} share no label"
            else:
                others = sorted(
                    {
                        p.service_account
                        for p in self.ir.pods
                        if p.namespace == dest.namespace
                        and p.service_account != dest.name
                        and p.matches(tuple(labels.items()))
                    }
                )
                if others:
                    problem = (
                        f"the labels common to ServiceAccount {dest}'s pods ({_labels_text(labels)}) also select "
                        f"pods of ServiceAccount(s) {', '.join(others)}"
                    )
        if problem is None:
            return labels
        if self.options.access_mode == "enforce":
            effect = (
                f"the namespace's allow-nothing policy denies every source to {dest} (narrowed: the "
                "sources of this TrafficTarget lose access)"
            )
            severity = Severity.WARNING
        else:
            effect = (
                f"in permissive mode Istio then allows every source to reach {dest} (widened: the "
                "TrafficTarget's deny-by-default is lost)"
            )
            severity = Severity.ERROR
        self.ctx.lossy(
            NO_SELECTOR.code,
            f"{ref}: no AuthorizationPolicy is written because {problem}; {effect}",
            target.origin,
            severity=severity,
            hint="include the Deployments/Pods of the destination ServiceAccount, with labels unique to it",
        )
        return None

    def _target(self, target: TrafficTarget) -> None:
        ctx = self.ctx
        ctx.consume(target, *target.rules)
        selector = self._selector(target)
        if selector is None:
            return
        dest = target.destination
        sources = [_principal(s, self.options.trust_domain) for s in dict.fromkeys(target.sources)]
        rules: list[dict[str, Any]] = []
        origins = [
            target.origin,
            *(r.origin for r in target.rules),
            *(m.origin for r in target.rules for m in r.matches),
        ]
        if sources:
            rules = self._rules(target, sources)
        spec: dict[str, Any] = {"selector": {"matchLabels": selector}, "action": "ALLOW"}
        if rules:
            if len(rules) > MAX_POLICY_RULES:
                ctx.lossy(
                    TOO_MANY_RULES.code,
                    f"TrafficTarget {target.namespace}/{target.name}: {len(rules)} Istio rules exceed the "
                    f"AuthorizationPolicy limit of {MAX_POLICY_RULES}; rules after the {MAX_POLICY_RULES}th are "
                    "dropped (narrowed)",
                    target.origin,
                    severity=TOO_MANY_RULES.severity,
                    hint="split the HTTPRouteGroup's header variants over several TrafficTargets",
                )
                rules = rules[:MAX_POLICY_RULES]
            spec["rules"] = rules
        wanted = target.name if target.namespace == dest.namespace else f"{target.namespace}-{target.name}"
        name = self._name("AuthorizationPolicy", dest.namespace, wanted)
        ctx.object(SECURITY_API, "AuthorizationPolicy", dest.namespace, name, _fresh(spec), origins)

    def _rules(self, target: TrafficTarget, principals: list[str]) -> list[dict[str, Any]]:
        http_rules = [r for r in target.rules if r.kind == "http"]
        tcp_rules = [r for r in target.rules if r.kind == "tcp"]
        for r in target.rules:
            if r.kind == "udp":
                self.ctx.lossy(
                    UDP_ACCESS.code,
                    f"TrafficTarget {target.namespace}/{target.name}: UDPRoute {r.route} is not translated: "
                    "Istio sidecars do not capture UDP, so AuthorizationPolicy can neither allow nor deny it "
                    "(the allowed UDP ports are not enforced)",
                    r.origin,
                    severity=UDP_ACCESS.severity,
                )
        source = {"from": [{"source": {"principals": principals}}]}
        if not http_rules:
            if not tcp_rules:
                return []
            if any(not r.ports for r in tcp_rules):
                return [dict(source)]
            ports = sorted({p for r in tcp_rules for p in r.ports})
            return [{**source, "to": [{"operation": {"ports": [str(p) for p in ports]}}]}]
        narrowing: list[int] | None = None
        if tcp_rules and not any(not r.ports for r in tcp_rules):
            narrowing = sorted({p for r in tcp_rules for p in r.ports})
        by_when: dict[tuple[tuple[str, tuple[str, ...]], ...], list[dict[str, Any]]] = {}
        for rule in http_rules:
            for m in rule.matches:
                converted = self._access_match(target, rule, m)
                if converted is None:
                    continue
                operation, when = converted
                if narrowing is not None:
                    operation["ports"] = [str(p) for p in narrowing]
                ops = by_when.setdefault(when, [])
                if {"operation": operation} not in ops:
                    ops.append({"operation": operation})
        out = []
        for when, ops in by_when.items():
            rule_obj: dict[str, Any] = {**source, "to": ops}
            if when:
                rule_obj["when"] = [{"key": k, "values": list(v)} for k, v in when]
            out.append(rule_obj)
        return out

    def _access_match(
        self, target: TrafficTarget, rule: AccessRule, m: HTTPMatch
    ) -> tuple[dict[str, Any], tuple[tuple[str, tuple[str, ...]], ...]] | None:
        ref = f"TrafficTarget {target.namespace}/{target.name} route {rule.route}/{m.name}"
        reason = _match_regex_problem(m)
        if reason is not None:
            # never matches in the IR either, so leaving it out is exact
            self.ctx.lossy(
                BAD_ROUTE_REGEX.code,
                f"{ref} is left out: {reason}; it allows nothing in the IR either",
                m.origin,
                severity=BAD_ROUTE_REGEX.severity,
            )
            return None
        operation: dict[str, Any] = {}
        if m.path_regex is not None:
            value = _istio_value(m.path_regex, full=False)
            if value is None:
                self.ctx.lossy(
                    PATH_NARROWED.code,
                    f"{ref}: pathRegex {m.path_regex!r} (anchored at the start) is not an exact path, a prefix "
                    "or a suffix, and AuthorizationPolicy has no regex; the match is dropped, so its sources "
                    f"can no longer reach {target.destination} through it (narrowed)",
                    m.origin,
                    severity=PATH_NARROWED.severity,
                    hint="write the route as a literal path, a literal prefix, or '.*<literal suffix>'",
                )
                return None
            if value[0] != "any":
                operation["paths"] = [value[1]]
        if m.methods:
            operation["methods"] = list(m.methods)
        when: list[tuple[str, tuple[str, ...]]] = []
        for h in m.headers:
            hv = _istio_value(h.regex, full=True)
            if hv is None:
                self.ctx.lossy(
                    HEADER_NARROWED.code,
                    f"{ref}: header {h.name} regex {h.regex!r} is not an exact value, a prefix or a suffix, and "
                    "AuthorizationPolicy conditions have no regex; the match is dropped (narrowed)",
                    m.origin,
                    severity=HEADER_NARROWED.severity,
                )
                return None
            if hv[0] == "any":
                self.ctx.lossy(
                    PRESENCE_NARROWED.code,
                    f"{ref}: header {h.name} regex {h.regex!r} becomes the presence value '*', which Istio "
                    "matches only for a non-empty value (narrowed: an empty value no longer matches)",
                    m.origin,
                    severity=PRESENCE_NARROWED.severity,
                )
            when.append((f"request.headers[{h.name}]", (hv[1],)))
        if not operation.get("paths") and not operation.get("methods") and not when:
            # an HTTP route that matches everything must still not allow raw TCP: any HTTP-only field
            # makes Istio skip the rule for TCP traffic, and every HTTP path is non-empty
            operation["paths"] = ["*"]
        return operation, tuple(when)


def _fresh(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy sharing no dict or list with ``spec`` or within itself (``deepcopy`` keeps aliases)."""
    copied: dict[str, Any] = json.loads(json.dumps(spec))
    return copied


def _match_regex_problem(m: HTTPMatch) -> str | None:
    if m.path_regex is not None:
        reason = check_re2(m.path_regex)
        if reason is not None:
            return f"pathRegex {m.path_regex!r}: {reason}"
    for h in m.headers:
        reason = check_re2(h.regex)
        if reason is not None:
            return f"header {h.name} regex {h.regex!r}: {reason}"
    return None


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


# --- ingest ---------------------------------------------------------------------------------------

_NETWORKING_GROUP = "networking.istio.io"
_SECURITY_GROUP = "security.istio.io"
# Kubernetes kinds that reach ``ingest`` through ``inventory`` already; not reported as unknown.
_INVENTORY_KINDS = frozenset(
    {
        "Service",
        "ServiceAccount",
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "EndpointSlice",
        "Endpoints",
        "Namespace",
    }
)
_ROUTE_FEATURES: dict[str, str] = {
    "rewrite": "URI/authority rewrite",
    "redirect": "redirect (matching requests never reach a backend)",
    "timeout": "request timeout",
    "retries": "retry policy",
    "fault": "fault injection",
    "mirror": "traffic mirroring",
    "mirrors": "traffic mirroring",
    "mirrorPercent": "traffic mirroring",
    "mirror_percent": "traffic mirroring",
    "mirrorPercentage": "traffic mirroring",
    "corsPolicy": "CORS policy",
    "headers": "header manipulation",
    "directResponse": "direct response (matching requests never reach a backend)",
    "delegate": "delegation to another VirtualService",
}
_NON_ROUTING = ("redirect", "directResponse", "delegate")
_MATCH_FIELDS_DROPPED = (
    "queryParams",
    "scheme",
    "authority",
    "sourceLabels",
    "sourceNamespace",
    "withoutHeaders",
    "gateways",
)
_SOURCE_FIELDS_DROPPED = (
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "requestPrincipals",
    "notRequestPrincipals",
    "trustDomains",
    "notTrustDomains",
)
_OPERATION_FIELDS_DROPPED = ("hosts", "notHosts", "notPaths", "notMethods", "notPorts")
_PRINCIPAL = re.compile(r"(?P<td>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)")
_HEADER_KEY = re.compile(r"request\.headers\[(?P<name>[^\]]+)\]")
_METHOD_ALTERNATION = re.compile(r"[A-Z]+(?:\|[A-Z]+)*")


def _at(origin: Origin, path: str) -> Origin:
    """``origin`` at a field path below it (kept relative to a List item when there is one)."""
    if not path:
        return origin
    return origin.child(f"{origin.path}.{path}" if origin.path else path)


def _where(origin: Origin) -> str:
    place = origin.file or "<input>"
    if origin.line is not None:
        place += f":{origin.line}"
    return f"{origin.kind} {origin.namespace}/{origin.name} ({place})"


def _istio_matches(pattern: str, value: str) -> bool:
    """Istio's string match: exact, ``x*`` prefix, ``*x`` suffix, ``*`` non-empty."""
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _value_regex(value: str) -> str:
    """An Istio ``when`` value as a full-match regex."""
    if value == "*":
        return ".+"
    if value.startswith("*"):
        return ".*" + re2_escape(value[1:])
    if value.endswith("*"):
        return re2_escape(value[:-1]) + ".*"
    return re2_escape(value)


def _path_regex_of_uri(kind: str, value: str, ignore_case: bool) -> str:
    """A start-anchored pathRegex for an Istio ``uri`` match (Python wants global flags in front)."""
    flag = "(?i)" if ignore_case else ""
    if kind == "exact":
        return f"{flag}{re2_escape(value)}$"
    if kind == "prefix":
        return f"{flag}{re2_escape(value)}"
    head, body = split_leading_flags(value)
    inner = strip_full_match(body)
    if inner is not None:
        return f"{flag}{head}{inner}"
    return f"{flag}{head}(?:{body})$"


def _header_regex(kind: str, value: str) -> str:
    if kind == "exact":
        return re2_escape(value)
    if kind == "prefix":
        return re2_escape(value) + ".*"
    return value


def _blank(m: HTTPMatch | None) -> bool:
    """A match request that selects every request (only a name, or only a port)."""
    return m is None or (m.path_regex is None and not m.methods and not m.headers)


def _shares(weights: Sequence[tuple[str, int]]) -> dict[str, Fraction]:
    total = sum(w for _, w in weights)
    if total <= 0:
        return {}
    out: dict[str, Fraction] = {}
    for s, w in weights:
        if w > 0:
            out[s] = out.get(s, Fraction(0)) + Fraction(w, total)
    return out


def _close(a: Mapping[str, Fraction], b: Mapping[str, Fraction]) -> bool:
    """Same positive backends, shares within one percentage point (whole-percent rounding)."""
    return set(a) == set(b) and all(abs(a[s] - b[s]) <= Fraction(1, 100) for s in a)


@dataclass
class _Obj:
    source: SourceObject
    origin: Origin
    index: int
    kind: str
    namespace: str
    name: str
    spec: Mapping[str, Any]
    created: str

    def age_key(self) -> tuple[int, str, int]:
        # Istio: the oldest object wins; objects without a timestamp are not created yet (newest)
        return (0, self.created, self.index) if self.created else (1, "", self.index)


@dataclass
class _Entry:
    """One ``http``/``tcp`` entry of a VirtualService, read."""

    index: int
    path: str
    # None: no ``match`` (catch-all); else (port or None, HTTPMatch or None for "every request")
    requests: list[tuple[int | None, HTTPMatch | None]] | None
    route: tuple[tuple[str, int], ...] | None  # None: does not route to usable Services

    @property
    def catch_all(self) -> bool:
        return self.requests is None or any(p is None and _blank(m) for p, m in self.requests)


@dataclass
class _Section:
    """What one section (``http`` or ``tcp``) says for one root."""

    kind: Literal["http", "tcp"]
    # (ports or None for every port, weighted destinations, entry path)
    groups: list[tuple[frozenset[int] | None, tuple[tuple[str, int], ...], str]] = field(default_factory=list)
    matches: list[HTTPMatch] | None = None  # None: every request of the section's ports is routed by groups
    matched_ports: frozenset[int] | None = None  # ports the matched entries are scoped to (None: all)
    catch_all: Literal["root", "weighted", "other", "none"] = "none"
    blank: HTTPMatch | None = None  # the named match-everything request of a catch-all entry


@dataclass(frozen=True)
class _Grant:
    sources: tuple[Identity, ...]
    http: HTTPMatch | None  # None: an L4 grant (everything on the ports)
    ports: tuple[int, ...]  # (): every port
    origin: Origin


@dataclass
class _Op:
    http: bool  # has an HTTP-only field (paths or methods)
    paths: list[str | None]  # regexes; None: any path; [] when no paths were given
    methods: tuple[str, ...]
    ports: frozenset[int] | None


@dataclass
class _Conditions:
    headers: list[HeaderMatch] = field(default_factory=list)
    ports: frozenset[int] | None = None
    principals: list[list[str]] = field(default_factory=list)  # ANDed lists of OR-ed patterns
    namespaces: list[list[str]] = field(default_factory=list)


class _Importer:
    def __init__(self, inventory: IR, options: Options) -> None:
        self.inv = inventory
        self.options = options
        self.report = Report()
        self.splits: list[Split] = []
        self.targets: list[TrafficTarget] = []
        self.route_groups: list[RouteGroup] = []
        self.port_routes: list[PortRoute] = []
        self.deny_namespaces: dict[str, Origin] = {}
        self.mesh_deny: Origin | None = None
        self._names: dict[tuple[str, str], set[str]] = {}
        ids: set[Identity] = {Identity(p.namespace, p.service_account) for p in inventory.pods}
        for svc in inventory.services:
            ids.update(inventory.identities_of(svc))
        self.identities = sorted(ids, key=lambda i: (i.namespace, i.name))

    # -- plumbing --

    def note(
        self,
        check: Check,
        message: str,
        origin: Origin | None,
        path: str = "",
        *,
        severity: Severity | None = None,
        hint: str = "",
    ) -> None:
        where = _at(origin, path) if origin is not None else None
        self.report.add(
            Diagnostic.at(check.code, severity or check.severity, f"[istio] {message}", where, hint=hint)
        )

    def _name(self, kind: str, namespace: str, wanted: str) -> str:
        return unique_name(self._names.setdefault((kind, namespace), set()), wanted)

    def _map(self, value: Any, obj: _Obj, path: str) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.note(
            MALFORMED, f"{path} must be a mapping, not {type(value).__name__}; ignored", obj.origin, path
        )
        return None

    def _list(self, value: Any, obj: _Obj, path: str) -> list[Any] | None:
        if isinstance(value, list):
            return value
        self.note(MALFORMED, f"{path} must be a list, not {type(value).__name__}; ignored", obj.origin, path)
        return None

    def _strings(self, value: Any, obj: _Obj, path: str) -> list[str] | None:
        items = self._list(value, obj, path)
        if items is None:
            return None
        if not all(isinstance(v, str) for v in items):
            self.note(MALFORMED, f"{path} must be a list of strings; ignored", obj.origin, path)
            return None
        return items

    # -- entry point --

    def run(self, objects: Sequence[SourceObject]) -> tuple[IR, Report]:
        vss: list[_Obj] = []
        policies: list[_Obj] = []
        for index, so in enumerate(objects):
            obj = self._read(so, index)
            if obj is None:
                continue
            group = str(so.obj.get("apiVersion", "")).rpartition("/")[0]
            if group == _NETWORKING_GROUP and obj.kind == "VirtualService":
                vss.append(obj)
            elif group == _NETWORKING_GROUP and obj.kind == "DestinationRule":
                self._destination_rule(obj)
            elif group == _SECURITY_GROUP and obj.kind == "AuthorizationPolicy":
                policies.append(obj)
            elif group == _SECURITY_GROUP and obj.kind == "PeerAuthentication":
                self.note(
                    PEER_AUTHENTICATION,
                    f"PeerAuthentication {obj.namespace}/{obj.name} is not translated: SMI leaves mTLS to the "
                    "mesh (principals only match mTLS peers)",
                    obj.origin,
                )
            elif obj.kind not in _INVENTORY_KINDS or group not in ("", "apps", "batch", "discovery.k8s.io"):
                self.note(
                    UNKNOWN_KIND,
                    f"{so.obj.get('apiVersion', '?')} {obj.kind} {obj.namespace}/{obj.name} is not read by the "
                    "istio importer",
                    obj.origin,
                )
        self.report.resources = len(vss) + len(policies)
        self.report.documents = len(objects)
        self._virtual_services(vss)
        for policy in policies:
            self._policy(policy)
        self._check_default_mode()
        ir = IR(
            services=self.inv.services,
            pods=self.inv.pods,
            route_groups=tuple(sorted(self.route_groups, key=lambda g: (g.namespace, g.name))),
            port_routes=tuple(sorted(self.port_routes, key=lambda r: (r.namespace, r.name))),
            splits=tuple(sorted(self.splits, key=lambda s: (s.namespace, s.name))),
            targets=tuple(sorted(self.targets, key=lambda t: (t.namespace, t.name))),
        )
        return ir, self.report

    def _read(self, so: SourceObject, index: int) -> _Obj | None:
        raw = so.obj
        base = so.origin
        if not isinstance(raw, Mapping):
            self.report.add(
                Diagnostic.at(
                    MALFORMED.code, MALFORMED.severity, "[istio] object is not a mapping; ignored", base
                )
            )
            return None
        md = raw.get("metadata")
        md = md if isinstance(md, Mapping) else {}
        kind = str(raw.get("kind") or base.kind)
        name = str(md.get("name") or base.name)
        namespace = str(md.get("namespace") or base.namespace or "default")
        origin = Origin(
            kind or base.kind,
            namespace,
            name,
            str(raw.get("apiVersion") or base.api_version),
            base.file,
            base.line,
            base.column,
            base.path,
        )
        spec = raw.get("spec", {})
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            self.report.add(
                Diagnostic.at(
                    MALFORMED.code,
                    MALFORMED.severity,
                    "[istio] spec must be a mapping; object ignored",
                    _at(origin, "spec"),
                )
            )
            return None
        created = md.get("creationTimestamp")
        return _Obj(so, origin, index, kind, namespace, name, spec, str(created) if created else "")

    # -- DestinationRule --

    def _destination_rule(self, obj: _Obj) -> None:
        parts = []
        subsets = obj.spec.get("subsets")
        if isinstance(subsets, list) and subsets:
            names = [str(s.get("name")) for s in subsets if isinstance(s, Mapping)]
            parts.append(f"subsets {', '.join(names)} (SMI backends are whole Services)")
        for key in sorted(obj.spec):
            if key not in ("host", "subsets"):
                parts.append(key)
        what = "; ".join(parts) if parts else "nothing beyond its host"
        self.note(
            DESTINATION_RULE,
            f"DestinationRule {obj.namespace}/{obj.name} holds {what}; the IR has no field for it",
            obj.origin,
        )

    # -- VirtualService --

    def _resolve_host(self, host: str, namespace: str) -> tuple[str, str] | None:
        """(namespace, service) for a host Istio resolves to a cluster Service, else None."""
        if not host or "*" in host:
            return None
        if "." not in host:
            return (namespace, host)  # Istio expands short names in the VirtualService's namespace
        suffix = f".svc.{self.options.cluster_domain}"
        if host.endswith(suffix):
            parts = host[: -len(suffix)].split(".")
            if len(parts) == 2 and all(parts):
                return (parts[1], parts[0])
        return None

    def _virtual_services(self, vss: list[_Obj]) -> None:
        claims: dict[tuple[str, str], list[_Obj]] = {}
        resolved: dict[int, list[tuple[str, str]]] = {}
        for vs in vss:
            spec = vs.spec
            gateways = spec.get("gateways")
            if gateways is not None:
                names = self._strings(gateways, vs, "spec.gateways")
                if names is not None and "mesh" not in names:
                    self.note(
                        NOT_FOR_SIDECARS,
                        f"VirtualService {vs.namespace}/{vs.name} binds only gateways {', '.join(names)}, not "
                        "'mesh', so it does not route sidecar traffic; not translated",
                        vs.origin,
                        "spec.gateways",
                    )
                    continue
                if names is not None and len(names) > 1:
                    self.note(
                        NOT_FOR_SIDECARS,
                        f"VirtualService {vs.namespace}/{vs.name} also binds gateways "
                        f"{', '.join(n for n in names if n != 'mesh')}; only its mesh (sidecar) routing is read",
                        vs.origin,
                        "spec.gateways",
                    )
            hosts = self._strings(spec.get("hosts", []), vs, "spec.hosts") or []
            for i, host in enumerate(hosts):
                key = self._resolve_host(host, vs.namespace)
                if key is None:
                    self.note(
                        HOST_UNRESOLVED,
                        f"host {host!r} of VirtualService {vs.namespace}/{vs.name} is not a cluster Service name "
                        "(short name or <svc>.<ns>.svc.<cluster-domain>); a TrafficSplit root must be one",
                        vs.origin,
                        f"spec.hosts[{i}]",
                        hint=f"Istio reads 'svc.ns' literally; write the FQDN svc.ns.svc.{self.options.cluster_domain}",
                    )
                    continue
                if all(other is not vs for other in claims.setdefault(key, [])):
                    claims[key].append(vs)
                resolved.setdefault(vs.index, []).append(key)
        for key in sorted(claims):
            ordered = sorted(claims[key], key=_Obj.age_key)
            winner = ordered[0]
            for loser in ordered[1:]:
                why = (
                    "older creationTimestamp"
                    if winner.created
                    else "earlier in the input (no creationTimestamp)"
                )
                self.note(
                    VS_CONFLICT,
                    f"VirtualService {loser.namespace}/{loser.name} and {_where(winner.origin)} both route host "
                    f"{_fqdn(key[1], key[0], self.options.cluster_domain)}; for sidecars Istio applies only the oldest, so "
                    f"{winner.namespace}/{winner.name} ({why}) is applied and this one is ignored",
                    loser.origin,
                    "spec.hosts",
                    hint="merge the routes into one VirtualService per host",
                )
            several = len(resolved.get(winner.index, [])) > 1
            wanted = f"{winner.name}-{key[1]}" if several else winner.name
            self._split_from_vs(winner, key, wanted)

    def _split_from_vs(self, vs: _Obj, root_key: tuple[str, str], wanted: str) -> None:
        ns, root = root_key
        spec = vs.spec
        for key in sorted(spec):
            if key in ("hosts", "gateways", "http", "tcp"):
                continue
            if key == "exportTo":
                self.note(
                    ROUTE_FEATURE,
                    f"exportTo of VirtualService {vs.namespace}/{vs.name} limits which namespaces see it; a "
                    "TrafficSplit applies to every client",
                    vs.origin,
                    "spec.exportTo",
                    severity=Severity.INFO,
                )
            elif key == "tls":
                self.note(
                    ROUTE_FEATURE,
                    f"tls routes of VirtualService {vs.namespace}/{vs.name} (SNI routing) have no SMI form; ignored",
                    vs.origin,
                    "spec.tls",
                )
            else:
                self.note(ROUTE_FEATURE, f"unknown field spec.{key}; ignored", vs.origin, f"spec.{key}")
        root_svc = self.inv.service(ns, root)
        http = self._section(vs, "http", ns, root, root_svc)
        tcp = self._section(vs, "tcp", ns, root, root_svc)
        self._assemble(vs, ns, root, root_svc, wanted, http, tcp)

    def _entries(self, vs: _Obj, kind: Literal["http", "tcp"], ns: str, root: str) -> list[_Entry]:
        raw = vs.spec.get(kind)
        if raw is None:
            return []
        items = self._list(raw, vs, f"spec.{kind}")
        if items is None:
            return []
        out = []
        for i, item in enumerate(items):
            path = f"spec.{kind}[{i}]"
            entry = self._map(item, vs, path)
            if entry is None:
                continue
            usable = True
            for key in sorted(entry):
                if key in ("match", "route", "name"):
                    continue
                what = _ROUTE_FEATURES.get(key) if kind == "http" else None
                if what is None:
                    self.note(
                        ROUTE_FEATURE, f"{path}.{key} has no SMI form; ignored", vs.origin, f"{path}.{key}"
                    )
                    continue
                if key in _NON_ROUTING:
                    usable = False
                    self.note(
                        ROUTE_FEATURE,
                        f"{path} answers with a {what}; a TrafficSplit cannot, so requests it matches are routed "
                        "like any other request in the IR",
                        vs.origin,
                        f"{path}.{key}",
                    )
                else:
                    self.note(
                        ROUTE_FEATURE,
                        f"{path}.{key} ({what}) has no SMI field; dropped",
                        vs.origin,
                        f"{path}.{key}",
                    )
            requests = self._requests(vs, kind, entry.get("match"), path)
            route = self._destinations(vs, entry.get("route"), path, ns) if usable else None
            out.append(_Entry(i, path, requests, route))
        return out

    def _requests(
        self, vs: _Obj, kind: str, raw: Any, path: str
    ) -> list[tuple[int | None, HTTPMatch | None]] | None:
        if raw is None:
            return None
        items = self._list(raw, vs, f"{path}.match")
        if items is None or not items:
            return None  # an empty match list matches everything, as no list does
        out: list[tuple[int | None, HTTPMatch | None]] = []
        for k, item in enumerate(items):
            mpath = f"{path}.match[{k}]"
            mr = self._map(item, vs, mpath)
            if mr is None:
                continue
            read = self._http_request(vs, mr, mpath) if kind == "http" else self._tcp_request(vs, mr, mpath)
            if read is not None:
                out.append(read)
        return out

    def _port(self, vs: _Obj, value: Any, path: str) -> int | Literal[False] | None:
        """The port of a match (None: absent), or False when it is malformed."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
            return value
        self.note(MALFORMED, f"{path} must be a port number; the match is dropped", vs.origin, path)
        return False

    def _tcp_request(
        self, vs: _Obj, mr: Mapping[str, Any], path: str
    ) -> tuple[int | None, HTTPMatch | None] | None:
        for key in sorted(mr):
            if key != "port":
                self.note(
                    MATCH_FEATURE,
                    f"{path}.{key} has no SMI field (a TrafficSplit routes every connection); the match is dropped",
                    vs.origin,
                    f"{path}.{key}",
                )
                return None
        port = self._port(vs, mr.get("port"), f"{path}.port")
        return None if port is False else (port, None)

    def _http_request(
        self, vs: _Obj, mr: Mapping[str, Any], path: str
    ) -> tuple[int | None, HTTPMatch | None] | None:
        for key in sorted(mr):
            if key in _MATCH_FIELDS_DROPPED or key not in (
                "uri",
                "method",
                "headers",
                "port",
                "name",
                "ignoreUriCase",
                "statPrefix",
            ):
                self.note(
                    MATCH_FEATURE,
                    f"{path}.{key} has no SMI field; the whole match is dropped, so requests it selected are "
                    "not split by it",
                    vs.origin,
                    f"{path}.{key}",
                )
                return None
        port = self._port(vs, mr.get("port"), f"{path}.port")
        if port is False:
            return None
        ignore_case = mr.get("ignoreUriCase") is True
        path_regex: str | None = None
        if "uri" in mr:
            sm = self._string_match(vs, mr["uri"], f"{path}.uri")
            if sm is None:
                return None
            path_regex = _path_regex_of_uri(sm[0], sm[1], ignore_case)
        methods: tuple[str, ...] = ()
        if "method" in mr:
            sm = self._string_match(vs, mr["method"], f"{path}.method")
            if sm is None:
                return None
            kind, value = sm
            if kind == "exact" and value:
                methods = (value,)
            elif kind == "regex" and _METHOD_ALTERNATION.fullmatch(value):
                methods = tuple(dict.fromkeys(value.split("|")))
            else:
                self.note(
                    MATCH_FEATURE,
                    f"{path}.method {kind} {value!r} is not a list of methods; the match is dropped",
                    vs.origin,
                    f"{path}.method",
                )
                return None
            if any(m != m.upper() for m in methods):
                self.note(
                    MATCH_FEATURE,
                    f"{path}.method {value!r} is not upper-case; Envoy compares methods case-sensitively, the IR "
                    "upper-cases them",
                    vs.origin,
                    f"{path}.method",
                    severity=Severity.INFO,
                )
                methods = tuple(dict.fromkeys(m.upper() for m in methods))
        headers: list[HeaderMatch] = []
        if "headers" in mr:
            hmap = self._map(mr["headers"], vs, f"{path}.headers")
            if hmap is None:
                return None
            for hname in hmap:
                hpath = f"{path}.headers.{hname}"
                raw = hmap[hname]
                if raw is None or (isinstance(raw, Mapping) and not raw):
                    headers.append(HeaderMatch(str(hname).lower(), ".*"))  # Istio: presence
                    continue
                sm = self._string_match(vs, raw, hpath)
                if sm is None:
                    return None
                headers.append(HeaderMatch(str(hname).lower(), _header_regex(sm[0], sm[1])))
        for regex in [*([path_regex] if path_regex is not None else []), *(h.regex for h in headers)]:
            reason = check_re2(regex)
            if reason is not None:
                self.note(
                    MATCH_FEATURE,
                    f"{path}: regex {regex!r} is outside the accepted RE2 subset ({reason}); the match is dropped",
                    vs.origin,
                    path,
                )
                return None
        name = mr.get("name")
        match_name = str(name) if isinstance(name, str) and name else f"{vs.name}-{path.split('.', 1)[1]}"
        match_name = re.sub(r"[^a-z0-9-]+", "-", match_name.lower()).strip("-") or vs.name
        return (port, HTTPMatch(match_name, path_regex, methods, tuple(headers), _at(vs.origin, path)))

    def _string_match(self, vs: _Obj, raw: Any, path: str) -> tuple[str, str] | None:
        sm = self._map(raw, vs, path)
        if sm is None:
            return None
        kinds = [k for k in ("exact", "prefix", "regex") if k in sm]
        if len(kinds) != 1 or not isinstance(sm[kinds[0]], str) or set(sm) - {"exact", "prefix", "regex"}:
            self.note(
                MALFORMED,
                f"{path} must hold exactly one of exact, prefix, regex; the match is dropped",
                vs.origin,
                path,
            )
            return None
        return kinds[0], sm[kinds[0]]

    def _destinations(self, vs: _Obj, raw: Any, path: str, ns: str) -> tuple[tuple[str, int], ...] | None:
        if raw is None:
            self.note(MALFORMED, f"{path} has no route; ignored", vs.origin, path)
            return None
        items = self._list(raw, vs, f"{path}.route")
        if items is None or not items:
            return None
        dests: list[tuple[str, int | None]] = []
        for j, item in enumerate(items):
            rpath = f"{path}.route[{j}]"
            rd = self._map(item, vs, rpath)
            if rd is None:
                return None
            dest = self._map(rd.get("destination"), vs, f"{rpath}.destination")
            if dest is None:
                return None
            host = dest.get("host")
            key = self._resolve_host(host, vs.namespace) if isinstance(host, str) else None
            if key is None or key[0] != ns:
                self.note(
                    HOST_UNRESOLVED,
                    f"{rpath}.destination.host {host!r} is not a Service in namespace {ns} (TrafficSplit backends "
                    "must be Services in the root's namespace); the entry is not translated",
                    vs.origin,
                    f"{rpath}.destination.host",
                )
                return None
            if "subset" in dest:
                self.note(
                    SUBSET,
                    f"{rpath}.destination.subset {dest['subset']!r}: SMI backends are whole Services, so all pods "
                    f"of {key[1]} receive this share, not only the subset",
                    vs.origin,
                    f"{rpath}.destination.subset",
                    hint="create one Service per subset and route to those Services",
                )
            if "port" in dest:
                self.note(
                    SUBSET,
                    f"{rpath}.destination.port: SMI keeps the requested port; the port override is dropped",
                    vs.origin,
                    f"{rpath}.destination.port",
                )
            if "headers" in rd:
                self.note(
                    ROUTE_FEATURE,
                    f"{rpath}.headers (header manipulation) has no SMI field; dropped",
                    vs.origin,
                    f"{rpath}.headers",
                )
            weight = rd.get("weight")
            if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool) or weight < 0):
                self.note(
                    MALFORMED,
                    f"{rpath}.weight must be an integer >= 0; the entry is not translated",
                    vs.origin,
                    f"{rpath}.weight",
                )
                return None
            dests.append((key[1], weight))
        if len(dests) == 1:
            return ((dests[0][0], 100),)  # one destination takes everything, whatever its weight
        merged: dict[str, int] = {}
        for service, weight in dests:
            merged[service] = merged.get(service, 0) + (weight or 0)
        if sum(merged.values()) <= 0:
            self.note(
                ZERO_WEIGHTS,
                f"{path}.route has several destinations and total weight 0, which Istio rejects; not translated",
                vs.origin,
                f"{path}.route",
            )
            return None
        return tuple(merged.items())

    def _section(
        self, vs: _Obj, kind: Literal["http", "tcp"], ns: str, root: str, root_svc: Service | None
    ) -> _Section:
        section = _Section(kind)
        entries = self._entries(vs, kind, ns, root)
        if not entries:
            section.catch_all = "root"  # no entry of this protocol: Istio routes to the host itself
        weighted: list[_Entry] = []
        root_first: list[_Entry] = []
        stopped = False
        for e in entries:
            if stopped:
                self.note(
                    ROUTING_SHAPE,
                    f"{e.path} comes after a catch-all entry and is never used",
                    vs.origin,
                    e.path,
                    severity=Severity.INFO,
                )
                continue
            if e.requests is not None and not e.requests:
                continue  # every match was dropped (reported): the entry matches nothing we can hold
            if e.route is None:
                if e.catch_all:
                    section.catch_all = "other"
                    stopped = True
                continue
            root_only = all(s == root or w == 0 for s, w in e.route)
            if e.catch_all:
                stopped = True
                section.catch_all = "root" if root_only else "weighted"
            if root_only:
                if not e.catch_all:
                    root_first.append(e)
                continue
            weighted.append(e)
            for r in root_first:
                self.note(
                    ROUTING_SHAPE,
                    f"{r.path} sends its matches to the root before {e.path} splits; TrafficSplit routes cannot "
                    f"exclude requests, so requests matching both are split in the IR",
                    vs.origin,
                    r.path,
                )
            root_first.clear()
        if not weighted:
            return section
        constrained = any(not _blank(m) for e in weighted for _, m in e.requests or ())
        whole = section.catch_all == "weighted" or not constrained
        if whole:
            catch = next((e for e in weighted if e.catch_all), None)
            for e in weighted:
                assert e.route is not None
                if not e.catch_all and any(not _blank(m) for _, m in e.requests or ()):
                    # routing for some requests only (e.g. an A/B test next to a catch-all): one
                    # TrafficSplit without matches routes every request alike
                    if catch is None or not _close(_shares(e.route), _shares(catch.route or ())):
                        self.note(
                            ROUTING_SHAPE,
                            f"{e.path} sends the requests it matches to {_weights_text(e.route)}; the TrafficSplit "
                            "routes every request like the entries without route matches",
                            vs.origin,
                            e.path,
                        )
                    continue
                if e.catch_all and section.blank is None:
                    section.blank = next(
                        (m for p, m in e.requests or () if p is None and m is not None), None
                    )
                whole_ports = e.catch_all or e.requests is None or any(p is None for p, _ in e.requests)
                ports = None if whole_ports else frozenset(p for p, _ in e.requests or () if p is not None)
                section.groups.append((ports, e.route, e.path))
            return section
        matches: list[HTTPMatch] = []
        matched_ports: set[int] | None = set()
        for e in weighted:
            assert e.route is not None and e.requests is not None
            ports_of_entry: set[int] | None = set()
            for port, m in e.requests:
                if m is None:
                    continue  # only tcp entries have no HTTPMatch, and they never come here
                matches.append(m)
                if port is None:
                    ports_of_entry = None
                elif ports_of_entry is not None:
                    ports_of_entry.add(port)
            if ports_of_entry is None:
                matched_ports = None
            elif matched_ports is not None:
                matched_ports |= ports_of_entry
            section.groups.append(
                (None if ports_of_entry is None else frozenset(ports_of_entry), e.route, e.path)
            )
        section.matches = _merge_matches(matches)
        section.matched_ports = None if matched_ports is None else frozenset(matched_ports)
        return section

    def _eligible(self, ns: str, backends: Sequence[tuple[str, int]], port: int) -> list[tuple[str, int]]:
        out = []
        for service, weight in backends:
            svc = self.inv.service(ns, service)
            if svc is None or not svc.ports or svc.port(port) is not None:
                out.append((service, weight))
        return out

    def _weights(self, vs: _Obj, ns: str, section: _Section) -> list[tuple[str, int]]:
        """One weighted backend list that reproduces every group of the section (as far as it can).

        The entry with the most destinations gives the first weights. Smaller (port-scoped) entries
        are rounded over fewer backends, so they know their members' proportions more precisely:
        each one, largest first, redistributes the weight its members already hold by its own
        proportions and brings in backends not seen yet at the same scale. Backends that share
        nothing with what is known keep the entry's own proportions, as small as they go.
        """
        ordered = sorted(section.groups, key=lambda g: -len(g[1]))
        weights: dict[str, Fraction] = {s: Fraction(w) for s, w in ordered[0][1]}
        for _, group, _ in ordered[1:]:
            shared = [s for s, w in group if w > 0 and weights.get(s, 0) > 0]
            held = sum((weights[s] for s in shared), Fraction(0))
            given = sum(w for s, w in group if s in shared)
            if held > 0 and given > 0:
                for s, w in group:
                    if w > 0 or s not in weights:
                        weights[s] = Fraction(w) * held / given
                continue
            divisor = math.gcd(*(w for _, w in group if w > 0)) or 1
            for s, w in group:
                if s not in weights or (w > 0 and weights[s] == 0):
                    weights[s] = Fraction(w, divisor)
        return list(zip(weights, _integers(list(weights.values())), strict=True))

    def _check_groups(
        self,
        vs: _Obj,
        ns: str,
        root_svc: Service | None,
        section: _Section,
        weights: Sequence[tuple[str, int]],
    ) -> None:
        for ports, group, path in section.groups:
            # no port match: the entry routes every port of the section (every port when the root is unknown)
            check: Sequence[int | None] = (
                sorted(ports) if ports is not None else self._section_ports(root_svc, section.kind)
            )
            if ports is None and section.matches is None and not check:
                check = [None]
            for port in check:
                expected = _shares(weights if port is None else self._eligible(ns, weights, port))
                if _close(_shares(group), expected):
                    continue
                where = "every port" if port is None else f"port {port}"
                self.note(
                    ROUTING_SHAPE,
                    f"{path} routes {where} as {_weights_text(group)}; the TrafficSplit read from this "
                    f"VirtualService sends it to {_shares_text(expected)} (one set of weights; a backend takes a "
                    "port only if its Service has it)",
                    vs.origin,
                    path,
                )

    def _section_ports(self, root_svc: Service | None, kind: str) -> list[int]:
        if root_svc is None:
            return []
        if kind == "http":
            return [p.port for p in root_svc.ports if p.l4 == "tcp" and p.is_http]
        return [p.port for p in root_svc.ports if p.l4 == "tcp" and not p.is_http]

    def _check_coverage(
        self,
        vs: _Obj,
        ns: str,
        root_svc: Service | None,
        section: _Section,
        weights: Sequence[tuple[str, int]],
    ) -> None:
        """Ports the IR splits but the VirtualService sends elsewhere (root, or no route at all)."""
        if any(ports is None for ports, _, _ in section.groups):
            return
        covered = {p for ports, _, _ in section.groups for p in ports or ()}
        for port in self._section_ports(root_svc, section.kind):
            if port in covered or not any(w > 0 for _, w in self._eligible(ns, weights, port)):
                continue
            fate = {"root": "to the root Service unsplit", "none": "nowhere (no route matches)"}.get(
                section.catch_all, "elsewhere"
            )
            self.note(
                ROUTING_SHAPE,
                f"{section.kind} traffic to port {port} of {ns}/{root_svc.name if root_svc else '?'} goes "
                f"{fate} in Istio, but the TrafficSplit read from this VirtualService splits it",
                vs.origin,
                f"spec.{section.kind}",
            )

    def _assemble(
        self,
        vs: _Obj,
        ns: str,
        root: str,
        root_svc: Service | None,
        wanted: str,
        http: _Section,
        tcp: _Section,
    ) -> None:
        if not http.groups and not tcp.groups:
            return  # everything goes to the root: no split is needed to say so
        if root_svc is None:
            self.note(
                HOST_UNRESOLVED,
                f"root Service {ns}/{root} of VirtualService {vs.namespace}/{vs.name} is not in the inventory; the "
                "TrafficSplit is kept, but its ports cannot be checked",
                vs.origin,
                "spec.hosts",
                severity=Severity.INFO,
            )
        matches: list[HTTPMatch] | None = None
        if http.groups and http.matches is not None:
            weights = self._weights(vs, ns, http)
            self._check_groups(vs, ns, root_svc, http, weights)
            matches = http.matches
            if http.catch_all != "root":
                fate = {
                    "none": "get no route (404) in Istio",
                    "other": "are answered by the catch-all entry",
                }.get(http.catch_all, "are routed by another entry")
                self.note(
                    ROUTING_SHAPE,
                    f"requests matching no route {fate}; the TrafficSplit sends them to the root Service",
                    vs.origin,
                    "spec.http",
                )
            http_ports = self._section_ports(root_svc, "http")
            if http.matched_ports is not None and set(http_ports) - http.matched_ports:
                missing = sorted(set(http_ports) - http.matched_ports)
                self.note(
                    ROUTING_SHAPE,
                    f"the route matches apply only on ports {sorted(http.matched_ports)} in Istio; the TrafficSplit "
                    f"applies them on every HTTP port (also {missing})",
                    vs.origin,
                    "spec.http",
                )
            if tcp.groups:
                self.note(
                    ROUTING_SHAPE,
                    "tcp entries split connections, but a TrafficSplit with route matches never splits TCP; the tcp "
                    "weights are dropped",
                    vs.origin,
                    "spec.tcp",
                )
        else:
            # weights come from every entry of both sections: a port group may lack some backends
            combined = _Section("http", groups=[*http.groups, *tcp.groups])
            weights = self._weights(vs, ns, combined)
            for section in (http, tcp):
                self._check_groups(vs, ns, root_svc, section, weights)
            other_ports = [
                p for p in (root_svc.ports if root_svc else ()) if not (p.l4 == "tcp" and p.is_http)
            ]
            carried = [p for p in other_ports if any(w > 0 for _, w in self._eligible(ns, weights, p.port))]
            if http.groups and not tcp.groups and carried:
                # Istio splits only HTTP here, while the root also takes TCP/UDP the IR would split:
                # a TrafficSplit whose one route matches every HTTP request says exactly that
                matches = [http.blank or HTTPMatch(f"{wanted}-all", origin=_at(vs.origin, "spec.http"))]
                self._check_coverage(vs, ns, root_svc, http, weights)
            else:
                for section in (http, tcp):
                    self._check_coverage(vs, ns, root_svc, section, weights)
                for p in carried:
                    if p.l4 == "udp":
                        self.note(
                            ROUTING_SHAPE,
                            f"UDP traffic to port {p.port} of {ns}/{root} is not split by Istio (sidecars do not "
                            "capture UDP); the TrafficSplit splits it",
                            vs.origin,
                            "spec",
                        )
        name = self._name("TrafficSplit", ns, wanted)
        backends = tuple(
            SplitBackend(s, w, _at(vs.origin, f"spec.{'http' if http.groups else 'tcp'}")) for s, w in weights
        )
        route_groups: tuple[str, ...] = ()
        if matches is not None:
            group_name = self._name("HTTPRouteGroup", ns, f"{name}-routes")
            self.route_groups.append(RouteGroup(ns, group_name, tuple(matches), _at(vs.origin, "spec.http")))
            route_groups = (group_name,)
        self.splits.append(
            Split(
                namespace=ns,
                name=name,
                root=root,
                backends=backends,
                matches=None if matches is None else tuple(matches),
                route_groups=route_groups,
                origin=vs.origin,
            )
        )

    # -- AuthorizationPolicy --

    def _policy(self, ap: _Obj) -> None:
        spec = ap.spec
        action = spec.get("action", "ALLOW")
        ref = f"AuthorizationPolicy {ap.namespace}/{ap.name}"
        if action != "ALLOW":
            effects = {
                "DENY": (
                    Severity.ERROR,
                    "SMI access is allow-only, so what it denies stays allowed wherever a TrafficTarget allows it "
                    "(widened)",
                ),
                "AUDIT": (Severity.INFO, "it only logs, so access is unchanged"),
                "CUSTOM": (
                    Severity.ERROR,
                    "the external authorizer's decisions are lost (widened where it denied)",
                ),
            }
            severity, effect = effects.get(
                str(action), (Severity.ERROR, "the action is unknown; the policy is ignored")
            )
            self.note(
                NOT_ALLOW,
                f"{ref} has action {action}; not translated: {effect}",
                ap.origin,
                "spec.action",
                severity=severity,
            )
            return
        for key in ("targetRef", "targetRefs"):
            if key in spec:
                self.note(
                    POLICY_SCOPE,
                    f"{ref} attaches through {key} (waypoint/gateway enforcement); SMI destinations are "
                    "ServiceAccounts, so the policy is not translated (narrowed)",
                    ap.origin,
                    f"spec.{key}",
                )
                return
        for key in sorted(spec):
            if key not in ("selector", "rules", "action", "provider"):
                self.note(MALFORMED, f"{ref}: unknown field spec.{key}; ignored", ap.origin, f"spec.{key}")
        labels: dict[str, str] = {}
        if spec.get("selector") is not None:
            sel = self._map(spec["selector"], ap, "spec.selector")
            if sel is None:
                return
            ml = sel.get("matchLabels") or {}
            ml = self._map(ml, ap, "spec.selector.matchLabels")
            if ml is None:
                return
            labels = {str(k): str(v) for k, v in ml.items()}
        rules_raw = spec.get("rules")
        rules = [] if rules_raw is None else self._list(rules_raw, ap, "spec.rules")
        if rules is None:
            return
        if not rules and not labels:
            # allow-nothing: every workload in the namespace (or the mesh) is deny-by-default
            if ap.namespace == ISTIO_ROOT_NAMESPACE:
                self.mesh_deny = ap.origin
            else:
                self.deny_namespaces.setdefault(ap.namespace, ap.origin)
            return
        destinations = self._policy_destinations(ap, labels)
        if not destinations:
            return
        grants: list[_Grant] = []
        for i, rule in enumerate(rules):
            grants.extend(self._grants(ap, i, rule))
        self._targets_from(ap, destinations, grants)

    def _policy_destinations(self, ap: _Obj, labels: Mapping[str, str]) -> list[Identity]:
        ns = ap.namespace
        ref = f"AuthorizationPolicy {ap.namespace}/{ap.name}"
        pods_ns = [p for p in self.inv.pods if p.namespace == ns]
        if not labels:
            if ns == ISTIO_ROOT_NAMESPACE:
                self.note(
                    POLICY_SCOPE,
                    f"{ref} has no selector in the root namespace, so it applies mesh-wide; the IR has no mesh-wide "
                    "allow, so it is not translated (narrowed)",
                    ap.origin,
                    "spec",
                )
                return []
            sas = sorted({p.service_account for p in pods_ns})
            self.note(
                POLICY_SCOPE,
                f"{ref} has no selector, so it applies to every workload in namespace {ns}; read as one "
                f"TrafficTarget per ServiceAccount of the namespace's known pods ({', '.join(sas) or 'none'})",
                ap.origin,
                "spec",
            )
            return [Identity(ns, sa) for sa in sas]
        selector = tuple(sorted(labels.items()))
        selected = [p for p in pods_ns if p.matches(selector)]
        if not selected:
            self.note(
                SELECTOR,
                f"{ref} selects no known pod ({_labels_text(labels)}); nothing to translate",
                ap.origin,
                "spec.selector",
                hint="include the Deployments/Pods of the namespace in the input",
            )
            return []
        out = []
        for sa in sorted({p.service_account for p in selected}):
            everyone = [p for p in pods_ns if p.service_account == sa]
            chosen = [p for p in selected if p.service_account == sa]
            identity = Identity(ns, sa)
            if len(chosen) != len(everyone):
                left = sorted(p.name for p in everyone if p not in chosen)
                self.note(
                    SELECTOR,
                    f"{ref} selects only some pods running as ServiceAccount {identity} (not {', '.join(left)}); a "
                    "TrafficTarget covers all of them, so none of its grants is kept for that ServiceAccount, which "
                    "stays deny-by-default (narrowed)",
                    ap.origin,
                    "spec.selector",
                )
                self._target(ap, identity, f"{ap.name}-{sa}", (), (), ap.origin)
                continue
            out.append(identity)
        return out

    def _target(
        self,
        ap: _Obj,
        destination: Identity,
        wanted: str,
        sources: tuple[Identity, ...],
        rules: tuple[AccessRule, ...],
        origin: Origin,
    ) -> None:
        name = self._name("TrafficTarget", ap.namespace, wanted)
        self.targets.append(TrafficTarget(ap.namespace, name, destination, sources, rules, origin))

    def _targets_from(self, ap: _Obj, destinations: list[Identity], grants: list[_Grant]) -> None:
        groups: dict[tuple[Any, ...], list[_Grant]] = {}
        for g in grants:
            key: tuple[Any, ...] = (g.sources, "tcp") if g.http is None else (g.sources, "http", g.ports)
            groups.setdefault(key, []).append(g)
        ns = ap.namespace
        rules_by_group: list[tuple[tuple[Identity, ...], tuple[AccessRule, ...], str]] = []
        for idx, (key, members) in enumerate(groups.items()):
            suffix = f"-{idx + 1}" if len(groups) > 1 else ""
            sources = key[0]
            rules: list[AccessRule] = []
            if key[1] == "http":
                matches = tuple(_merge_matches([g.http for g in members if g.http is not None]))
                rg = self._name("HTTPRouteGroup", ns, f"{ap.name}{suffix}-routes")
                self.route_groups.append(RouteGroup(ns, rg, matches, _at(ap.origin, "spec.rules")))
                rules.append(AccessRule("http", rg, matches, (), members[0].origin))
                ports: tuple[int, ...] = key[2]
            else:
                ports = (
                    ()
                    if any(not g.ports for g in members)
                    else tuple(sorted({p for g in members for p in g.ports}))
                )
            if key[1] == "tcp" or ports:
                pr = self._name("TCPRoute", ns, f"{ap.name}{suffix}-ports")
                self.port_routes.append(PortRoute(ns, pr, "tcp", ports, _at(ap.origin, "spec.rules")))
                rules.append(AccessRule("tcp", pr, (), ports, members[0].origin))
            rules_by_group.append((sources, tuple(rules), suffix))
        for dest in destinations:
            per_dest = f"-{dest.name}" if len(destinations) > 1 else ""
            if not rules_by_group:
                # the policy selects the workloads, so Istio denies them everything it does not allow
                self._target(ap, dest, f"{ap.name}{per_dest}", (), (), ap.origin)
            for sources, rules_t, suffix in rules_by_group:
                self._target(ap, dest, f"{ap.name}{per_dest}{suffix}", sources, rules_t, ap.origin)

    def _grants(self, ap: _Obj, i: int, raw: Any) -> list[_Grant]:
        path = f"spec.rules[{i}]"
        rule = self._map(raw, ap, path)
        if rule is None:
            return []
        for key in sorted(rule):
            if key not in ("from", "to", "when"):
                self.note(
                    MALFORMED,
                    f"{path}.{key} is not an Istio rule field; the rule is dropped",
                    ap.origin,
                    f"{path}.{key}",
                )
                return []
        conditions = self._conditions(ap, path, rule.get("when"))
        if conditions is None:
            return []
        sources = self._rule_sources(ap, path, rule.get("from"))
        for patterns in conditions.principals:
            td = self.options.trust_domain
            sources = [s for s in sources if any(_istio_matches(p, _principal(s, td)) for p in patterns)]
        for patterns in conditions.namespaces:
            sources = [s for s in sources if any(_istio_matches(p, s.namespace) for p in patterns)]
        if not sources:
            return []
        ops = self._operations(ap, path, rule.get("to"))
        out: list[_Grant] = []
        src = tuple(sorted(dict.fromkeys(sources), key=lambda s: (s.namespace, s.name)))
        for j, op in ops:
            ports = op.ports
            if conditions.ports is not None:
                ports = conditions.ports if ports is None else ports & conditions.ports
                if not ports:
                    continue
            port_tuple = () if ports is None else tuple(sorted(ports))
            origin = _at(ap.origin, f"{path}.to[{j}]" if j >= 0 else path)
            if op.http or conditions.headers:
                for k, regex in enumerate(op.paths or [None]):
                    name = (
                        f"rule-{i}"
                        + (f"-to-{j}" if j >= 0 else "")
                        + (f"-path-{k}" if len(op.paths) > 1 else "")
                    )
                    match = HTTPMatch(name, regex, op.methods, tuple(conditions.headers), origin)
                    out.append(_Grant(src, match, port_tuple, origin))
            else:
                out.append(_Grant(src, None, port_tuple, origin))
        return out

    def _rule_sources(self, ap: _Obj, path: str, raw: Any) -> list[Identity]:
        if raw is None:
            self.note(
                SOURCES_EXPANDED,
                f"{path} has no 'from', so Istio allows any caller, including unauthenticated ones; read as every "
                f"ServiceAccount in the inventory ({len(self.identities)}) (narrowed: unauthenticated callers and "
                "identities outside the inventory lose access)",
                ap.origin,
                path,
            )
            return list(self.identities)
        items = self._list(raw, ap, f"{path}.from")
        if items is None:
            return []
        out: list[Identity] = []
        for j, item in enumerate(items):
            spath = f"{path}.from[{j}]"
            entry = self._map(item, ap, spath)
            if entry is None:
                continue
            source = entry.get("source")
            if source is None:
                self.note(
                    SOURCES_EXPANDED,
                    f"{spath} has no source, so it admits any caller; read as every ServiceAccount in the inventory "
                    "(narrowed: unauthenticated callers and identities outside the inventory lose access)",
                    ap.origin,
                    spath,
                )
                out.extend(self.identities)
                continue
            smap = self._map(source, ap, f"{spath}.source")
            if smap is not None:
                out.extend(self._source(ap, f"{spath}.source", smap))
        return out

    def _source(self, ap: _Obj, path: str, src: Mapping[str, Any]) -> list[Identity]:
        known = {
            "principals",
            "serviceAccounts",
            "namespaces",
            "notPrincipals",
            "notServiceAccounts",
            "notNamespaces",
        }
        dropped = sorted(k for k in src if k in _SOURCE_FIELDS_DROPPED or k not in known)
        if dropped:
            self.note(
                SOURCE_FIELD,
                f"{path} constrains the caller by {', '.join(dropped)}, which SMI cannot hold; this source is dropped "
                "(narrowed)",
                ap.origin,
                f"{path}.{dropped[0]}",
            )
            return []
        td = self.options.trust_domain
        lists: dict[str, list[str]] = {}
        for key in known & set(src):
            values = self._strings(src[key], ap, f"{path}.{key}")
            if values is None:
                return []
            lists[key] = values
        candidates: list[Identity] = []
        expanded = False
        if "principals" in lists or "serviceAccounts" in lists:
            for k, value in enumerate(lists.get("principals", [])):
                candidates.extend(self._principal_identities(ap, f"{path}.principals[{k}]", value))
            for value in lists.get("serviceAccounts", []):
                ns, _, sa = value.rpartition("/")
                candidates.append(Identity(ns or ap.namespace, sa))
        else:
            candidates = list(self.identities)
            expanded = True
        if "namespaces" in lists:
            candidates = [
                c for c in candidates if any(_istio_matches(p, c.namespace) for p in lists["namespaces"])
            ]
        if "notNamespaces" in lists:
            candidates = [
                c
                for c in candidates
                if not any(_istio_matches(p, c.namespace) for p in lists["notNamespaces"])
            ]
        if "notPrincipals" in lists:
            candidates = [
                c
                for c in candidates
                if not any(_istio_matches(p, _principal(c, td)) for p in lists["notPrincipals"])
            ]
        if "notServiceAccounts" in lists:
            excluded = {
                Identity((v.rpartition("/")[0] or ap.namespace), v.rpartition("/")[2])
                for v in lists["notServiceAccounts"]
            }
            candidates = [c for c in candidates if c not in excluded]
        if expanded:
            what = ", ".join(f"{k} {lists[k]}" for k in sorted(lists)) or "no principal"
            self.note(
                SOURCES_EXPANDED,
                f"{path} names callers by {what}; read as the matching ServiceAccounts of the inventory "
                f"({', '.join(map(str, candidates)) or 'none'}) (narrowed: identities outside the inventory lose access)",
                ap.origin,
                path,
            )
        return candidates

    def _principal_identities(self, ap: _Obj, path: str, value: str) -> list[Identity]:
        td = self.options.trust_domain
        if "*" in value[1:-1] or value.count("*") > 1:
            self.note(
                PRINCIPAL,
                f"principal {value!r} has a '*' that is not at its start or end, which Istio does not match; "
                "dropped (narrowed)",
                ap.origin,
                path,
            )
            return []
        if "*" in value:
            found = [i for i in self.identities if _istio_matches(value, _principal(i, td))]
            self.note(
                PRINCIPAL,
                f"wildcard principal {value!r} is read as the inventory's ServiceAccounts it matches "
                f"({', '.join(map(str, found)) or 'none'}) (narrowed: identities outside the inventory lose access)",
                ap.origin,
                path,
            )
            return found
        m = _PRINCIPAL.fullmatch(value)
        if m is None:
            self.note(
                PRINCIPAL,
                f"principal {value!r} is not <trust-domain>/ns/<namespace>/sa/<serviceaccount>; dropped (narrowed)",
                ap.origin,
                path,
                hint="Istio principals carry no spiffe:// prefix" if value.startswith("spiffe://") else "",
            )
            return []
        if m.group("td") != td:
            self.note(
                PRINCIPAL,
                f"principal {value!r} is in trust domain {m.group('td')!r}, not {td!r}; dropped (narrowed)",
                ap.origin,
                path,
                hint="set the trust domain option to the mesh's trust domain",
            )
            return []
        return [Identity(m.group("ns"), m.group("sa"))]

    def _conditions(self, ap: _Obj, path: str, raw: Any) -> _Conditions | None:
        out = _Conditions()
        if raw is None:
            return out
        items = self._list(raw, ap, f"{path}.when")
        if items is None:
            return None
        for k, item in enumerate(items):
            cpath = f"{path}.when[{k}]"
            cond = self._map(item, ap, cpath)
            if cond is None:
                return None
            key = cond.get("key")
            if "notValues" in cond:
                self.note(
                    CONDITION,
                    f"{cpath} uses notValues, which SMI cannot negate; the rule is dropped (narrowed)",
                    ap.origin,
                    f"{cpath}.notValues",
                )
                return None
            values = self._strings(cond.get("values", []), ap, f"{cpath}.values")
            if values is None or not values or not isinstance(key, str):
                self.note(MALFORMED, f"{cpath} needs a key and values; the rule is dropped", ap.origin, cpath)
                return None
            header = _HEADER_KEY.fullmatch(key)
            if header is not None:
                regex = "|".join(_value_regex(v) for v in values)
                out.headers.append(HeaderMatch(header.group("name").lower(), regex))
            elif key == "destination.port":
                if not all(v.isdigit() and 0 < int(v) < 65536 for v in values):
                    self.note(
                        CONDITION,
                        f"{cpath}: port values {values} are not port numbers; the rule is dropped",
                        ap.origin,
                        cpath,
                    )
                    return None
                ports = frozenset(int(v) for v in values)
                out.ports = ports if out.ports is None else out.ports & ports
            elif key == "source.principal":
                out.principals.append(values)
            elif key == "source.namespace":
                out.namespaces.append(values)
            else:
                self.note(
                    CONDITION,
                    f"{cpath} conditions on {key}, which SMI cannot hold; the rule is dropped (narrowed)",
                    ap.origin,
                    f"{cpath}.key",
                )
                return None
        return out

    def _operations(self, ap: _Obj, path: str, raw: Any) -> list[tuple[int, _Op]]:
        if raw is None:
            return [(-1, _Op(False, [], (), None))]
        items = self._list(raw, ap, f"{path}.to")
        if items is None:
            return []
        out: list[tuple[int, _Op]] = []
        for j, item in enumerate(items):
            opath = f"{path}.to[{j}].operation"
            entry = self._map(item, ap, f"{path}.to[{j}]")
            if entry is None:
                continue
            raw_op = entry.get("operation")
            if raw_op is None:
                out.append((j, _Op(False, [], (), None)))
                continue
            op = self._map(raw_op, ap, opath)
            if op is None:
                continue
            read = self._operation(ap, opath, op)
            if read is not None:
                out.append((j, read))
        return out

    def _operation(self, ap: _Obj, opath: str, op: Mapping[str, Any]) -> _Op | None:
        dropped = sorted(
            k for k in op if k in _OPERATION_FIELDS_DROPPED or k not in ("paths", "methods", "ports")
        )
        if dropped:
            self.note(
                OPERATION_FIELD,
                f"{opath} constrains {', '.join(dropped)}, which SMI cannot hold; the operation is dropped (narrowed)",
                ap.origin,
                f"{opath}.{dropped[0]}",
            )
            return None
        paths: list[str | None] = []
        if "paths" in op:
            values = self._strings(op["paths"], ap, f"{opath}.paths")
            if values is None:
                return None
            for k, value in enumerate(values):
                regex = self._path_value(ap, f"{opath}.paths[{k}]", value)
                if regex is not False:
                    paths.append(regex)
            if not paths:
                return None
        methods: tuple[str, ...] = ()
        if "methods" in op:
            values = self._strings(op["methods"], ap, f"{opath}.methods")
            if values is None:
                return None
            kept: list[str] = []
            every = False
            for k, value in enumerate(values):
                if value == "*":
                    every = True
                elif value and "*" not in value and value == value.upper():
                    kept.append(value)
                else:
                    self.note(
                        OPERATION_FIELD,
                        f"{opath}.methods[{k}] {value!r} is not an exact upper-case method; dropped (narrowed)",
                        ap.origin,
                        f"{opath}.methods[{k}]",
                    )
            if not kept and not every:
                return None
            methods = () if every else tuple(dict.fromkeys(kept))
        ports: frozenset[int] | None = None
        if "ports" in op:
            values = self._strings(op["ports"], ap, f"{opath}.ports")
            if values is None:
                return None
            good = set()
            for k, value in enumerate(values):
                if value.isdigit() and 0 < int(value) < 65536:
                    good.add(int(value))
                else:
                    self.note(
                        OPERATION_FIELD,
                        f"{opath}.ports[{k}] {value!r} is not a port number; dropped (narrowed)",
                        ap.origin,
                        f"{opath}.ports[{k}]",
                    )
            if not good:
                return None
            ports = frozenset(good)
        return _Op("paths" in op or "methods" in op, paths, methods, ports)

    def _path_value(self, ap: _Obj, path: str, value: str) -> str | Literal[False] | None:
        """A pathRegex for an Istio path value; None for any path; False when it has no SMI form."""
        if value == "*":
            return None
        stars = value.count("*")
        if "{" in value or "}" in value:
            problem = "path templates ({*}, {**}) have no SMI form"
        elif stars == 0:
            return re2_escape(value) + "$"
        elif stars == 1 and value.endswith("*"):
            return re2_escape(value[:-1])
        elif stars == 1 and value.startswith("*"):
            return ".*" + re2_escape(value[1:]) + "$"
        else:
            problem = "a '*' inside a path is not an Istio match"
        self.note(OPERATION_FIELD, f"{path} {value!r}: {problem}; dropped (narrowed)", ap.origin, path)
        return False

    # -- the default for workloads without policy --

    def _check_default_mode(self) -> None:
        guarded = {t.destination for t in self.targets}
        unguarded: dict[str, list[str]] = {}
        for identity in self.identities:
            if identity not in guarded:
                unguarded.setdefault(identity.namespace, []).append(f"ServiceAccount {identity.name}")
        for svc in self.inv.services:
            if not svc.service_accounts:
                unguarded.setdefault(svc.namespace, []).append(
                    f"Service {svc.name} (no known ServiceAccount)"
                )
        enforce = self.options.access_mode == "enforce"
        for ns in sorted(unguarded):
            deny_origin = self.mesh_deny or self.deny_namespaces.get(ns)
            istio_denies = deny_origin is not None
            if istio_denies == enforce:
                continue
            who = ", ".join(unguarded[ns])
            if enforce:
                message = (
                    f"namespace {ns}: no ALLOW policy selects {who} and there is no allow-nothing policy, so Istio "
                    "lets every caller reach them; access mode 'enforce' denies them (narrowed)"
                )
                hint = "migrate with access mode 'permissive' to keep them open"
            else:
                message = (
                    f"namespace {ns}: the allow-nothing policy denies every caller to {who}; access mode 'permissive' "
                    "allows them (widened)"
                )
                hint = "migrate with access mode 'enforce' to keep them closed"
            self.note(DEFAULT_MODE, message, deny_origin, hint=hint)


def _merge_matches(matches: Iterable[HTTPMatch]) -> list[HTTPMatch]:
    """Fold matches that differ only in method (one HTTPMatchRequest per method) back into one route."""
    out: list[HTTPMatch] = []
    for m in matches:
        for i, seen in enumerate(out):
            if seen.name == m.name and seen.path_regex == m.path_regex and seen.headers == m.headers:
                if not seen.methods or not m.methods:
                    methods: tuple[str, ...] = ()
                else:
                    methods = tuple(dict.fromkeys((*seen.methods, *m.methods)))
                out[i] = HTTPMatch(seen.name, seen.path_regex, methods, seen.headers, seen.origin)
                break
        else:
            out.append(m)
    # names must be unique within a route group; a clash of different routes gets a suffix
    names: set[str] = set()
    result = []
    for m in out:
        name = unique_name(names, m.name)
        result.append(m if name == m.name else HTTPMatch(name, m.path_regex, m.methods, m.headers, m.origin))
    return result


def _integers(values: Sequence[Fraction], limit: int = 1_000_000) -> list[int]:
    """Integers in the proportions of ``values``; zero stays zero, a positive value stays >= 1."""
    scale = math.lcm(*(v.denominator for v in values))
    ints = [int(v * scale) for v in values]
    divisor = math.gcd(*ints) or 1
    ints = [i // divisor for i in ints]
    top = max(ints, default=0)
    if top > limit:
        ints = [max(1, round(Fraction(i * limit, top))) if i > 0 else 0 for i in ints]
    return ints


def _weights_text(weights: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{s} {w}" for s, w in weights)


def _shares_text(shares: Mapping[str, Fraction]) -> str:
    return (
        ", ".join(f"{s} {float(f) * 100:.1f}%" for s, f in shares.items())
        or "the root (no backend has the port)"
    )


# --- the backend ----------------------------------------------------------------------------------


class IstioBackend:
    """VirtualService + AuthorizationPolicy (``networking.istio.io/v1``, ``security.istio.io/v1``)."""

    name = "istio"
    description = (
        "Istio: VirtualService (splits) and AuthorizationPolicy (access), Istio >= 1.22 API versions"
    )

    def emit(self, ir: IR, options: Options) -> Emission:
        return _Emitter(ir, options).run()

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        return _Importer(inventory, options).run(objects)
