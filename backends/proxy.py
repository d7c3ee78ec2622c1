"""The ``proxy`` target: the IR as one ``ProxyConfig`` for smi-proxy, and a ProxyConfig back to IR.

smi-proxy enforces exactly the reference meaning (it asks ``smi_bridge.semantics`` for every
decision), so this target translates without loss: the ``ProxyConfig`` body is the IR itself
(``smi_bridge.ir.ir_to_dict``) with the access mode, trust domain and cluster domain, and every
split, backend, target and rule is consumed. The object is cluster-scoped, named ``smi-proxy``,
``apiVersion: proxy.smi-bridge.io/v1alpha1``; ``schemas/proxy-config.schema.json`` describes it.

What the data plane cannot do is reported (SMT5xx):

- an all-zero TrafficSplit is refused (error, SMT501; the proxy then sends the root unsplit,
  which is also what the reference meaning does with it);
- a Service without a clusterIP gets no listener (SMT502) and one without a ready endpoint gets
  no traffic (SMT503): warnings for Services that policy names (split roots and backends, and
  Services behind a TrafficTarget destination), notes for the rest;
- a named targetPort an endpoint does not have (SMT504), a UDP or SCTP Service port (SMT505) and
  a UDPRoute rule (SMT506): the proxy relays TCP and HTTP only;
- a pod without an IP cannot be recognised by ``--identity source-address`` (SMT507, note);
- two Services on one clusterIP:port (SMT508): the proxy serves the first.

``ingest`` reads ProxyConfig objects back (SMX5xx): the IR in the body becomes the IR, with
origins pointing at the ProxyConfig and the field path of each node; fields the schema does not
know are reported and left out; a second ProxyConfig is reported with both locations and passed
over (the proxy serves exactly one config); two Services or splits of one name, or two splits on
one root, are reported, and the one the proxy would use is kept. Objects of other kinds are
listed, one note each.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, TypeVar

import jsonschema

from backends.base import Emission, EmitContext, Options, SourceObject
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import (
    IR,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    Pod,
    PortRoute,
    RouteGroup,
    Service,
    Split,
    TrafficTarget,
    ir_from_dict,
    ir_to_dict,
)
from smi_bridge.resources import PROXY_CONFIG_SCHEMA

API_VERSION = "proxy.smi-bridge.io/v1alpha1"
KIND = "ProxyConfig"
NAME = "smi-proxy"
SCHEMA_PATH = PROXY_CONFIG_SCHEMA

ALL_ZERO = Check(
    "SMT501", Severity.ERROR, "TrafficSplit with only zero weights refused (the root gets all traffic)"
)
NO_CLUSTER_IP = Check(
    "SMT502", Severity.WARNING, "Service without clusterIP: smi-proxy has no listener for it"
)
NO_ENDPOINTS = Check(
    "SMT503", Severity.WARNING, "Service without a ready endpoint: smi-proxy cannot forward to it"
)
PORT_UNRESOLVED = Check(
    "SMT504", Severity.WARNING, "named targetPort missing on an endpoint: that endpoint gets no traffic"
)
NOT_TCP = Check("SMT505", Severity.WARNING, "UDP/SCTP Service port: smi-proxy relays TCP and HTTP only")
UDP_RULE = Check("SMT506", Severity.WARNING, "UDPRoute rule: smi-proxy carries no UDP, so it never applies")
NO_POD_IP = Check("SMT507", Severity.INFO, "pod without an IP: --identity source-address cannot recognise it")
SHARED_ADDRESS = Check(
    "SMT508", Severity.WARNING, "two Services on one clusterIP:port: smi-proxy serves the first"
)

UNKNOWN_KIND = Check("SMX500", Severity.INFO, "object kind not read by the proxy importer; passed over")
SECOND_CONFIG = Check(
    "SMX501", Severity.WARNING, "more than one ProxyConfig; the first is read (smi-proxy serves one)"
)
INVALID_CONFIG = Check(
    "SMX502", Severity.ERROR, "ProxyConfig does not match schemas/proxy-config.schema.json"
)
UNKNOWN_FIELD = Check("SMX503", Severity.WARNING, "ProxyConfig field the IR cannot hold; left out")
OPTIONS_DIFFER = Check(
    "SMX504", Severity.WARNING, "ProxyConfig access mode or domains differ from the options"
)
DUPLICATE = Check("SMX505", Severity.WARNING, "two nodes of one kind and name; the first is kept")
SPLIT_CONFLICT = Check("SMX506", Severity.WARNING, "two TrafficSplits on one root; the first by name applies")
NOT_NORMAL = Check("SMX507", Severity.INFO, "method or header name not in normal form; normalised")
INVENTORY_DIFFERS = Check(
    "SMX508", Severity.INFO, "Service or Pod differs from the inventory; the ProxyConfig's is kept"
)

CHECKS: tuple[Check, ...] = (
    ALL_ZERO,
    NO_CLUSTER_IP,
    NO_ENDPOINTS,
    PORT_UNRESOLVED,
    NOT_TCP,
    UDP_RULE,
    NO_POD_IP,
    SHARED_ADDRESS,
    UNKNOWN_KIND,
    SECOND_CONFIG,
    INVALID_CONFIG,
    UNKNOWN_FIELD,
    OPTIONS_DIFFER,
    DUPLICATE,
    SPLIT_CONFLICT,
    NOT_NORMAL,
    INVENTORY_DIFFERS,
)

N = TypeVar("N")


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def validate_config(obj: Mapping[str, Any]) -> list[tuple[list[str | int], str, str]]:
    """``(field path, validator keyword, message)`` of every schema violation; [] when valid."""
    errors = sorted(_validator().iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [(list(e.absolute_path), str(e.validator), e.message) for e in errors]


def _json_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class ProxyBackend:
    name = "proxy"
    description = "smi-proxy, the reference data plane (ProxyConfig: the IR as the proxy serves it)"

    # --- emit ---------------------------------------------------------------------------------

    def emit(self, ir: IR, options: Options) -> Emission:
        ctx = EmitContext(self.name, options)
        kept: list[Split] = []
        for split in ir.splits:
            ctx.consume(split, *split.backends)
            if split.total_weight == 0:
                ctx.lossy(
                    ALL_ZERO.code,
                    f"TrafficSplit {split.namespace}/{split.name} has only zero weights; it is not given to "
                    f"the proxy, which sends requests to {split.root} unsplit",
                    split.origin,
                    severity=ALL_ZERO.severity,
                    hint="give at least one backend a positive weight",
                )
                continue
            kept.append(split)
        for target in ir.targets:
            ctx.consume(target, *target.rules)
            for rule in target.rules:
                if rule.kind == "udp":
                    ctx.lossy(
                        UDP_RULE.code,
                        f"TrafficTarget {target.namespace}/{target.name} rule UDPRoute {rule.route}: the proxy "
                        "relays no UDP, so this rule allows nothing through it",
                        rule.origin,
                        severity=UDP_RULE.severity,
                    )
        self._inventory_notes(ctx, ir)
        served = IR(
            services=ir.services,
            pods=ir.pods,
            route_groups=ir.route_groups,
            port_routes=ir.port_routes,
            splits=tuple(kept),
            targets=ir.targets,
        )
        body = {
            "accessMode": options.access_mode,
            "trustDomain": options.trust_domain,
            "clusterDomain": options.cluster_domain,
            "ir": ir_to_dict(served),
        }
        sources = [s.origin for s in ir.splits] + [t.origin for t in ir.targets]
        ctx.object(API_VERSION, KIND, "", NAME, body, sources, cluster_scoped=True)
        return ctx.emission()

    def _inventory_notes(self, ctx: EmitContext, ir: IR) -> None:
        named = _policy_services(ir)
        claimed: dict[tuple[str, int], Service] = {}
        for svc in ir.services:
            ref = f"Service {svc.namespace}/{svc.name}"
            important = (svc.namespace, svc.name) in named
            severity = Severity.WARNING if important else Severity.INFO
            if not svc.cluster_ip:
                ctx.lossy(
                    NO_CLUSTER_IP.code,
                    f"{ref} has no clusterIP, so smi-proxy does not listen for it",
                    svc.origin,
                    severity=severity,
                    hint="set spec.clusterIP in the inventory (127.0.1.x on a loopback test bed)",
                )
            if not any(ep.ready for ep in svc.endpoints):
                ctx.lossy(
                    NO_ENDPOINTS.code,
                    f"{ref} has no ready endpoint, so requests it should receive get 503 from smi-proxy",
                    svc.origin,
                    severity=severity,
                    hint="add the Pods (with status.podIP) it selects, or an EndpointSlice",
                )
            for sp in svc.ports:
                if sp.protocol.upper() != "TCP":
                    ctx.lossy(
                        NOT_TCP.code,
                        f"{ref} port {sp.port}/{sp.protocol}: smi-proxy relays TCP and HTTP only",
                        svc.origin,
                        severity=NOT_TCP.severity,
                    )
                    continue
                if isinstance(sp.target_port, str) and sp.target_port:
                    missing = [
                        ep.address for ep in svc.endpoints if all(p.name != sp.target_port for p in ep.ports)
                    ]
                    if missing:
                        ctx.lossy(
                            PORT_UNRESOLVED.code,
                            f"{ref} port {sp.port}: endpoint(s) {', '.join(missing)} have no port named "
                            f"{sp.target_port!r} and get no traffic on it",
                            svc.origin,
                            severity=PORT_UNRESOLVED.severity,
                        )
                if svc.cluster_ip:
                    other = claimed.setdefault((svc.cluster_ip, sp.port), svc)
                    if other is not svc:
                        ctx.lossy(
                            SHARED_ADDRESS.code,
                            f"{ref} and Service {other.namespace}/{other.name} both use {svc.cluster_ip}:{sp.port}; "
                            f"smi-proxy serves {other.namespace}/{other.name} there",
                            svc.origin,
                            severity=SHARED_ADDRESS.severity,
                        )
        for pod in ir.pods:
            if not pod.template and not pod.ip:
                ctx.lossy(
                    NO_POD_IP.code,
                    f"Pod {pod.namespace}/{pod.name} has no IP (status.podIP): with --identity source-address "
                    "its requests are unauthenticated",
                    pod.origin,
                    severity=NO_POD_IP.severity,
                )

    # --- ingest -------------------------------------------------------------------------------

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        report = Report()
        configs: list[SourceObject] = []
        for so in objects:
            obj = so.obj
            if obj.get("kind") == KIND and str(obj.get("apiVersion", "")).startswith("proxy.smi-bridge.io/"):
                configs.append(so)
            else:
                report.add(
                    Diagnostic.at(
                        UNKNOWN_KIND.code,
                        UNKNOWN_KIND.severity,
                        f"{obj.get('kind', '<no kind>')} {obj.get('apiVersion', '')} is not read by the proxy importer",
                        so.origin,
                    )
                )
        report.resources = len(objects)
        if not configs:
            return IR(services=inventory.services, pods=inventory.pods), report
        first = configs[0]
        for extra in configs[1:]:
            report.add(
                Diagnostic.at(
                    SECOND_CONFIG.code,
                    SECOND_CONFIG.severity,
                    f"a second ProxyConfig ({_where(extra.origin)}) beside the one read ({_where(first.origin)}); "
                    "smi-proxy serves exactly one config, so only the first is read",
                    extra.origin,
                )
            )
        readable = self._readable(first, report)
        if readable is None:
            return IR(services=inventory.services, pods=inventory.pods), report
        spec = readable["spec"]
        for key, option, want in (
            ("accessMode", "access_mode", options.access_mode),
            ("trustDomain", "trust_domain", options.trust_domain),
            ("clusterDomain", "cluster_domain", options.cluster_domain),
        ):
            if spec[key] != want:
                report.add(
                    Diagnostic.at(
                        OPTIONS_DIFFER.code,
                        OPTIONS_DIFFER.severity,
                        f"ProxyConfig spec.{key} is {spec[key]!r} but the {option} option is {want!r}; the IR "
                        "does not hold it, so the option applies from here on",
                        first.origin.child(f"spec.{key}"),
                    )
                )
        ir = _rebase(ir_from_dict(spec["ir"]), first.origin)
        ir = _normalise(ir, report)
        ir = _with_inventory(ir, inventory, report)
        return ir, report

    def _readable(self, so: SourceObject, report: Report) -> dict[str, Any] | None:
        """The object with fields the schema does not know removed (each reported); None if invalid."""
        obj = copy.deepcopy(dict(so.obj))
        errors = validate_config(obj)
        unknown = [path for path, keyword, _ in errors if keyword == "additionalProperties"]
        for path in unknown:
            parent = _lookup(obj, path)
            if not isinstance(parent, dict):
                continue
            allowed = _known_keys(path)
            for key in sorted(set(parent) - allowed) if allowed is not None else []:
                where = _json_path([*path, key])
                report.add(
                    Diagnostic.at(
                        UNKNOWN_FIELD.code,
                        UNKNOWN_FIELD.severity,
                        f"ProxyConfig {so.origin.name}: {where} is not a ProxyConfig field; it is left out",
                        so.origin.child(where),
                    )
                )
                del parent[key]
        errors = validate_config(obj)
        if errors:
            for path, _, message in errors:
                where = _json_path(path) or "<root>"
                report.add(
                    Diagnostic.at(
                        INVALID_CONFIG.code,
                        INVALID_CONFIG.severity,
                        f"ProxyConfig {so.origin.name}: {where}: {message}",
                        so.origin.child(where),
                    )
                )
            return None
        return obj


def _where(origin: Origin) -> str:
    if origin.file:
        return f"{origin.file}:{origin.line}" if origin.line is not None else origin.file
    return origin.ref()


def _lookup(obj: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if isinstance(obj, dict) and isinstance(part, str):
            obj = obj.get(part)
        elif isinstance(obj, list) and isinstance(part, int) and part < len(obj):
            obj = obj[part]
        else:
            return None
    return obj


def _known_keys(path: Sequence[str | int]) -> set[str] | None:
    """The properties the schema allows at ``path`` (following ``$ref``s), None if unknown."""
    schema: Any = _validator().schema
    node: Any = schema
    defs = schema.get("$defs", {})

    def resolve(n: Any) -> Any:
        while isinstance(n, dict) and "$ref" in n:
            n = defs[n["$ref"].rsplit("/", 1)[-1]]
        return n

    node = resolve(node)
    for part in path:
        if isinstance(part, int):
            node = resolve(node.get("items")) if isinstance(node, dict) else None
        else:
            props = node.get("properties", {}) if isinstance(node, dict) else {}
            node = resolve(props.get(part))
            if isinstance(node, dict) and "anyOf" in node:
                node = next((resolve(a) for a in node["anyOf"] if resolve(a).get("type") == "array"), node)
        if node is None:
            return None
    if isinstance(node, dict) and "properties" in node:
        return set(node["properties"])
    return None


def _policy_services(ir: IR) -> set[tuple[str, str]]:
    named = {(s.namespace, s.root) for s in ir.splits}
    named |= {(s.namespace, b.service) for s in ir.splits for b in s.backends}
    destinations = {t.destination for t in ir.targets}
    for svc in ir.services:
        if any(Identity(svc.namespace, sa) in destinations for sa in svc.service_accounts):
            named.add((svc.namespace, svc.name))
    return named


def _at(base: Origin, path: str) -> Origin:
    return base.child(path)


def _rebase_match(m: HTTPMatch, base: Origin, path: str) -> HTTPMatch:
    return replace(m, origin=_at(base, path))


def _rebase(ir: IR, base: Origin) -> IR:
    """Point every node's origin at the ProxyConfig field it was read from."""

    def matches(ms: Iterable[HTTPMatch], path: str) -> tuple[HTTPMatch, ...]:
        return tuple(_rebase_match(m, base, f"{path}[{i}]") for i, m in enumerate(ms))

    p = "spec.ir"
    return IR(
        services=tuple(replace(s, origin=_at(base, f"{p}.services[{i}]")) for i, s in enumerate(ir.services)),
        pods=tuple(replace(x, origin=_at(base, f"{p}.pods[{i}]")) for i, x in enumerate(ir.pods)),
        route_groups=tuple(
            replace(
                g,
                matches=matches(g.matches, f"{p}.routeGroups[{i}].matches"),
                origin=_at(base, f"{p}.routeGroups[{i}]"),
            )
            for i, g in enumerate(ir.route_groups)
        ),
        port_routes=tuple(
            replace(r, origin=_at(base, f"{p}.portRoutes[{i}]")) for i, r in enumerate(ir.port_routes)
        ),
        splits=tuple(
            replace(
                s,
                backends=tuple(
                    replace(b, origin=_at(base, f"{p}.splits[{i}].backends[{j}]"))
                    for j, b in enumerate(s.backends)
                ),
                matches=None if s.matches is None else matches(s.matches, f"{p}.splits[{i}].matches"),
                origin=_at(base, f"{p}.splits[{i}]"),
            )
            for i, s in enumerate(ir.splits)
        ),
        targets=tuple(
            replace(
                t,
                rules=tuple(
                    replace(
                        r,
                        matches=matches(r.matches, f"{p}.targets[{i}].rules[{j}].matches"),
                        origin=_at(base, f"{p}.targets[{i}].rules[{j}]"),
                    )
                    for j, r in enumerate(t.rules)
                ),
                origin=_at(base, f"{p}.targets[{i}]"),
            )
            for i, t in enumerate(ir.targets)
        ),
    )


def _normal_match(m: HTTPMatch, report: Report) -> HTTPMatch:
    methods = tuple(x.upper() for x in m.methods)
    headers = tuple(HeaderMatch(h.name.lower(), h.regex) for h in m.headers)
    if methods != m.methods or headers != m.headers:
        report.add(
            Diagnostic.at(
                NOT_NORMAL.code,
                NOT_NORMAL.severity,
                f"route {m.name}: methods are upper-case and header names lower-case in the IR; normalised",
                m.origin,
            )
        )
        return replace(m, methods=methods, headers=headers)
    return m


def _first_of_each(
    nodes: Iterable[N], key: Callable[[N], tuple[str, str]], what: str, report: Report
) -> list[N]:
    seen: dict[tuple[str, str], N] = {}
    kept: list[N] = []
    for node in nodes:
        k = key(node)
        if k in seen:
            origin: Origin = getattr(node, "origin", Origin())
            first: Origin = getattr(seen[k], "origin", Origin())
            report.add(
                Diagnostic.at(
                    DUPLICATE.code,
                    DUPLICATE.severity,
                    f"{what} {k[0]}/{k[1]} appears twice ({first.path} and {origin.path}); the first is kept",
                    origin,
                )
            )
            continue
        seen[k] = node
        kept.append(node)
    return sorted(kept, key=key)


def _normalise(ir: IR, report: Report) -> IR:
    """The IR's normal form: lower/upper case, (namespace, name) order, no duplicate names."""

    def ns_name(n: Any) -> tuple[str, str]:
        return (n.namespace, n.name)

    groups = [replace(g, matches=tuple(_normal_match(m, report) for m in g.matches)) for g in ir.route_groups]
    splits = [
        replace(s, matches=None if s.matches is None else tuple(_normal_match(m, report) for m in s.matches))
        for s in ir.splits
    ]
    targets = [
        replace(
            t,
            rules=tuple(
                replace(r, matches=tuple(_normal_match(m, report) for m in r.matches)) for r in t.rules
            ),
        )
        for t in ir.targets
    ]
    kept_splits: list[Split] = _first_of_each(splits, ns_name, "TrafficSplit", report)
    by_root: dict[tuple[str, str], Split] = {}
    for split in sorted(kept_splits, key=lambda s: (s.namespace, s.root, s.name)):
        other = by_root.setdefault((split.namespace, split.root), split)
        if other is not split:
            report.add(
                Diagnostic.at(
                    SPLIT_CONFLICT.code,
                    SPLIT_CONFLICT.severity,
                    f"TrafficSplits {other.namespace}/{other.name} ({other.origin.path}) and {split.name} "
                    f"({split.origin.path}) share root {split.root}; {other.name} applies (first by name), as in "
                    "smi-proxy",
                    split.origin,
                )
            )
    services: list[Service] = _first_of_each(ir.services, ns_name, "Service", report)
    pods: list[Pod] = _first_of_each(ir.pods, ns_name, "Pod", report)
    route_groups: list[RouteGroup] = _first_of_each(groups, ns_name, "HTTPRouteGroup", report)
    port_routes: list[PortRoute] = sorted(
        _first_of_each(
            ir.port_routes, lambda r: (f"{r.namespace}", f"{r.protocol}/{r.name}"), "port route", report
        ),
        key=ns_name,
    )
    kept_targets: list[TrafficTarget] = _first_of_each(targets, ns_name, "TrafficTarget", report)
    return IR(
        services=tuple(services),
        pods=tuple(pods),
        route_groups=tuple(route_groups),
        port_routes=tuple(port_routes),
        splits=tuple(kept_splits),
        targets=tuple(kept_targets),
    )


def _strip_origin(node: N) -> N:
    return replace(node, origin=Origin())  # type: ignore[type-var]


def _with_inventory(ir: IR, inventory: IR, report: Report) -> IR:
    """Add the inventory's Services and Pods the config lacks; the config's own win on conflict."""
    services = {(s.namespace, s.name): s for s in ir.services}
    for svc in inventory.services:
        mine = services.get((svc.namespace, svc.name))
        if mine is None:
            services[(svc.namespace, svc.name)] = svc
        elif _strip_origin(mine) != _strip_origin(svc):
            report.add(
                Diagnostic.at(
                    INVENTORY_DIFFERS.code,
                    INVENTORY_DIFFERS.severity,
                    f"Service {svc.namespace}/{svc.name} differs between the ProxyConfig and the inventory "
                    f"({_where(svc.origin)}); the ProxyConfig's is kept, as smi-proxy serves it",
                    mine.origin,
                )
            )
    pods = {(p.namespace, p.name): p for p in ir.pods}
    for pod in inventory.pods:
        mine_pod = pods.get((pod.namespace, pod.name))
        if mine_pod is None:
            pods[(pod.namespace, pod.name)] = pod
        elif _strip_origin(mine_pod) != _strip_origin(pod):
            report.add(
                Diagnostic.at(
                    INVENTORY_DIFFERS.code,
                    INVENTORY_DIFFERS.severity,
                    f"Pod {pod.namespace}/{pod.name} differs between the ProxyConfig and the inventory "
                    f"({_where(pod.origin)}); the ProxyConfig's is kept",
                    mine_pod.origin,
                )
            )
    return IR(
        services=tuple(services[k] for k in sorted(services)),
        pods=tuple(pods[k] for k in sorted(pods)),
        route_groups=ir.route_groups,
        port_routes=ir.port_routes,
        splits=ir.splits,
        targets=ir.targets,
    )


__all__ = ["API_VERSION", "CHECKS", "KIND", "NAME", "ProxyBackend", "validate_config"]
