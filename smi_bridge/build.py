"""Typed resources (any SMI version) plus the inventory -> the IR, resolving every reference.

``build`` is the one place where references are resolved: HTTPRouteGroup/TCPRoute/UDPRoute names
and route (match) names; root and backend Services and their ports; the ServiceAccounts behind a
Service (its selector against Pods and workload pod templates); endpoints (EndpointSlices when
present, otherwise Endpoints, otherwise Pods whose labels match the selector). Every reference it
cannot resolve becomes a diagnostic, and the rest is built anyway. Lint, translate, migrate and the
controller all call it, so there is one meaning of every reference.

Origins carry the document's start line and the field path; exact positions are computed only for
diagnostics (``Resource.diag``), which keeps building 10,000 documents cheap.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from smi_bridge import ir
from smi_bridge.diagnostics import Check, Diagnostic, Severity
from smi_bridge.model import access, specs, split
from smi_bridge.model import inventory as inv
from smi_bridge.model.quantity import integer_weights, parse_quantity
from smi_bridge.parse import Resource

DANGLING_ROUTE = Check(
    "SMB030", Severity.ERROR, "reference to an HTTPRouteGroup, TCPRoute or UDPRoute that is not in the input"
)
DANGLING_MATCH = Check("SMB031", Severity.ERROR, "rule names a route (match) its route group does not have")
BAD_ROOT = Check(
    "SMB032", Severity.ERROR, "TrafficSplit root service is not a Service of the split's namespace"
)
MISSING_BACKEND = Check("SMB033", Severity.WARNING, "backend Service not found in the inventory")
MISSING_ROOT = Check("SMB034", Severity.WARNING, "root Service not found in the inventory")
ALL_ZERO = Check("SMB035", Severity.ERROR, "every backend weight is zero")
TWO_SPLITS = Check(
    "SMB036", Severity.WARNING, "two TrafficSplits on one root service (the first by name applies)"
)
SELF_BACKEND = Check("SMB037", Severity.WARNING, "a backend is the root service itself")
DEST_NAMESPACE = Check(
    "SMB038", Severity.WARNING, "TrafficTarget destination namespace differs from the TrafficTarget's"
)
PORT_MISMATCH = Check(
    "SMB039", Severity.WARNING, "backend Service lacks a port of the root Service (excluded for that port)"
)
NO_IDENTITY = Check(
    "SMB040", Severity.INFO, "no pod or workload template runs behind this Service (no ServiceAccount known)"
)
PORT_RULE = Check(
    "SMB041", Severity.INFO, "access v1alpha1/v1alpha2 destination.port kept as a TCP rule on that port"
)
MIXED_RULES = Check(
    "SMB042",
    Severity.INFO,
    "TrafficTarget mixes TCPRoute and HTTPRouteGroup rules (HTTP narrowed to the TCP ports)",
)
MATCHES_ON_L4 = Check("SMB043", Severity.WARNING, "rules[].matches on a TCPRoute or UDPRoute has no meaning")
EMPTY_BACKENDS = Check("SMB044", Severity.WARNING, "TrafficSplit has no backends")
DUPLICATE_BACKEND = Check("SMB045", Severity.WARNING, "the same backend Service is listed twice")
INCOMPATIBLE_SPECS = Check(
    "SMB046", Severity.INFO, "referenced route group is at a version not paired with the referrer's"
)
EMPTY_ROUTE_GROUP = Check(
    "SMB047", Severity.WARNING, "referenced HTTPRouteGroup has no routes (the split matches nothing)"
)

CHECKS: tuple[Check, ...] = (
    DANGLING_ROUTE,
    DANGLING_MATCH,
    BAD_ROOT,
    MISSING_BACKEND,
    MISSING_ROOT,
    ALL_ZERO,
    TWO_SPLITS,
    SELF_BACKEND,
    DEST_NAMESPACE,
    PORT_MISMATCH,
    NO_IDENTITY,
    PORT_RULE,
    MIXED_RULES,
    MATCHES_ON_L4,
    EMPTY_BACKENDS,
    DUPLICATE_BACKEND,
    INCOMPATIBLE_SPECS,
    EMPTY_ROUTE_GROUP,
)

# The spec's stated pairings (smi-spec.md §0): which specs versions each access/split version uses.
_PAIRED_SPECS = {
    ("access", "v1alpha1"): {"v1alpha1", "v1alpha2"},
    ("access", "v1alpha2"): {"v1alpha3"},
    ("access", "v1alpha3"): {"v1alpha4"},
    ("split", "v1alpha3"): {"v1alpha3"},
    ("split", "v1alpha4"): {"v1alpha4"},
}

_HASH_SUFFIX = re.compile(r"-[a-z0-9]{5,10}$")


@dataclass
class BuildResult:
    ir: ir.IR
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # IR node -> the Resource it came from (for diagnostics by later stages)
    sources: dict[tuple[str, str, str], Resource] = field(default_factory=dict)


def _origin(res: Resource, path: str = "") -> ir.Origin:
    return ir.Origin(
        kind=res.kind,
        namespace=res.namespace,
        name=res.name,
        api_version=res.api_version,
        file=res.doc.file,
        line=res.doc.line,
        column=None,
        path=(f"{res.doc.item_path}.{path}" if res.doc.item_path and path else res.doc.item_path or path),
    )


def build(resources: Sequence[Resource], *, cluster_domain: str = "cluster.local") -> BuildResult:
    """The IR of ``resources`` (any SMI versions, plus inventory), with reference diagnostics."""
    b = _Builder(resources, cluster_domain)
    return b.run()


def build_inventory(resources: Sequence[Resource]) -> ir.IR:
    """Only the Services and Pods of ``resources`` (for importers resolving identities)."""
    b = _Builder(resources, "cluster.local")
    services, pods = b.inventory()
    return ir.IR(services=services, pods=pods)


class _Builder:
    def __init__(self, resources: Sequence[Resource], cluster_domain: str) -> None:
        self.resources = [r for r in resources if r.model is not None]
        self.cluster_domain = cluster_domain
        self.diagnostics: list[Diagnostic] = []
        self.by_kind: dict[str, dict[tuple[str, str], Resource]] = defaultdict(dict)
        for r in self.resources:
            self.by_kind[r.kind].setdefault((r.namespace, r.name), r)
        self.route_groups: dict[tuple[str, str], ir.RouteGroup] = {}
        self.port_routes: dict[tuple[str, str, str], ir.PortRoute] = {}

    # --- inventory ---------------------------------------------------------------------------

    def inventory(self) -> tuple[tuple[ir.Service, ...], tuple[ir.Pod, ...]]:
        pods: list[ir.Pod] = []
        for r in self.resources:
            m = r.model
            if isinstance(m, inv.Pod):
                pods.append(
                    ir.Pod(
                        namespace=r.namespace,
                        name=r.name,
                        labels=tuple(sorted(m.metadata.labels.items())),
                        service_account=m.spec.serviceAccountName or m.spec.serviceAccount or "default",
                        ip=m.status.podIP or "",
                        workload=_pod_workload(m),
                        origin=_origin(r),
                    )
                )
            elif isinstance(m, inv.Workload):
                tmpl = m.spec.template
                pods.append(
                    ir.Pod(
                        namespace=r.namespace,
                        name=r.name,
                        labels=tuple(sorted(tmpl.metadata.labels.items())),
                        service_account=tmpl.spec.serviceAccountName or tmpl.spec.serviceAccount or "default",
                        template=True,
                        workload=r.name,
                        origin=_origin(r, "spec.template"),
                    )
                )
        pods.sort(key=lambda p: (p.namespace, p.name, p.template))
        slices: dict[tuple[str, str], list[inv.EndpointSlice]] = defaultdict(list)
        for r in self.resources:
            if isinstance(r.model, inv.EndpointSlice):
                svc = r.model.metadata.labels.get("kubernetes.io/service-name")
                if svc:
                    slices[(r.namespace, svc)].append(r.model)
        services: list[ir.Service] = []
        pods_by_ns: dict[str, list[ir.Pod]] = defaultdict(list)
        for p in pods:
            pods_by_ns[p.namespace].append(p)
        for r in self.resources:
            m = r.model
            if not isinstance(m, inv.Service):
                continue
            selector = tuple(sorted((m.spec.selector or {}).items()))
            selected = [p for p in pods_by_ns[r.namespace] if p.matches(selector)]
            sas = tuple(sorted({p.service_account for p in selected}))
            ports = tuple(
                ir.ServicePort(
                    port=p.port,
                    name=p.name,
                    target_port=p.targetPort,
                    protocol=p.protocol,
                    app_protocol=p.appProtocol,
                )
                for p in m.spec.ports
            )
            endpoints = self._endpoints(r, m, slices.get((r.namespace, r.name)), selected, ports)
            cluster_ip = m.spec.clusterIP if m.spec.clusterIP and m.spec.clusterIP != "None" else ""
            services.append(
                ir.Service(
                    namespace=r.namespace,
                    name=r.name,
                    cluster_ip=cluster_ip,
                    ports=ports,
                    selector=selector,
                    service_accounts=sas,
                    endpoints=endpoints,
                    origin=_origin(r),
                )
            )
        services.sort(key=lambda s: (s.namespace, s.name))
        return tuple(services), tuple(pods)

    def _endpoints(
        self,
        res: Resource,
        svc: inv.Service,
        slices: list[inv.EndpointSlice] | None,
        selected: list[ir.Pod],
        ports: tuple[ir.ServicePort, ...],
    ) -> tuple[ir.Endpoint, ...]:
        pod_sa = {(p.namespace, p.name): p.service_account for p in selected if not p.template}
        pod_by_ip = {p.ip: p for p in selected if p.ip}
        out: list[ir.Endpoint] = []
        if slices:
            for sl in slices:
                eports = tuple(
                    ir.EndpointPort(p.port, p.name or "", p.protocol)
                    for p in sl.ports or ()
                    if p.port is not None
                )
                for ep in sl.endpoints or ():
                    pod = ep.targetRef.name if ep.targetRef and ep.targetRef.kind == "Pod" else ""
                    for addr in ep.addresses:
                        sa = pod_sa.get((res.namespace, pod), "") or (
                            pod_by_ip[addr].service_account if addr in pod_by_ip else ""
                        )
                        out.append(ir.Endpoint(addr, eports, pod, sa, ep.conditions.ready is not False))
            return tuple(out)
        eps = self.by_kind.get("Endpoints", {}).get((res.namespace, res.name))
        if eps is not None and isinstance(eps.model, inv.Endpoints):
            for subset in eps.model.subsets or ():
                eports = tuple(ir.EndpointPort(p.port, p.name or "", p.protocol) for p in subset.ports)
                for addrs, ready in ((subset.addresses, True), (subset.notReadyAddresses, False)):
                    for a in addrs:
                        pod = a.targetRef.name if a.targetRef and a.targetRef.kind == "Pod" else ""
                        sa = pod_sa.get((res.namespace, pod), "") or (
                            pod_by_ip[a.ip].service_account if a.ip in pod_by_ip else ""
                        )
                        out.append(ir.Endpoint(a.ip, eports, pod, sa, ready))
            return tuple(out)
        # No endpoint objects: the pods the selector matches, on the target ports.
        for p in selected:
            if p.template or not p.ip:
                continue
            eports = tuple(
                ir.EndpointPort(
                    sp.target_port if isinstance(sp.target_port, int) else sp.port, sp.name, sp.protocol
                )
                for sp in ports
            )
            out.append(ir.Endpoint(p.ip, eports, p.name, p.service_account, True))
        return tuple(out)

    # --- specs -------------------------------------------------------------------------------

    def _build_route_groups(self) -> None:
        for (ns, name), r in sorted(self.by_kind.get("HTTPRouteGroup", {}).items()):
            m = r.model
            assert isinstance(
                m, specs.HTTPRouteGroupV1alpha1 | specs.HTTPRouteGroupV1alpha2 | specs.HTTPRouteGroupV1alpha3
            )
            base = "spec.matches" if isinstance(m, specs.HTTPRouteGroupV1alpha3) else "matches"
            matches = []
            for i, hm in enumerate(specs.http_matches(m)):
                methods = tuple(dict.fromkeys(x.upper() for x in (hm.methods or ()) if x != "*"))
                if hm.methods and "*" in hm.methods:
                    methods = ()
                headers = tuple(
                    ir.HeaderMatch(k.lower(), v)
                    for k, v in specs.header_pairs(hm.headers if isinstance(hm, specs.HTTPMatch) else None)
                )
                matches.append(
                    ir.HTTPMatch(
                        name=hm.name,
                        path_regex=hm.pathRegex if hm.pathRegex not in (None, "") else None,
                        methods=methods,
                        headers=headers,
                        origin=_origin(r, f"{base}[{i}]"),
                    )
                )
            self.route_groups[(ns, name)] = ir.RouteGroup(ns, name, tuple(matches), _origin(r))
        for kind, proto in (("TCPRoute", "tcp"), ("UDPRoute", "udp")):
            for (ns, name), r in sorted(self.by_kind.get(kind, {}).items()):
                m = r.model
                assert isinstance(
                    m,
                    specs.TCPRouteV1alpha1
                    | specs.TCPRouteV1alpha3
                    | specs.TCPRouteV1alpha4
                    | specs.UDPRouteV1alpha4,
                )
                self.port_routes[(kind, ns, name)] = ir.PortRoute(
                    ns, name, "udp" if proto == "udp" else "tcp", tuple(specs.port_route_ports(m)), _origin(r)
                )

    def _check_pairing(
        self, referrer: Resource, api: str, target: Resource, path: Sequence[str | int]
    ) -> None:
        paired = _PAIRED_SPECS.get((api, referrer.version))
        if paired and target.version not in paired:
            self.diagnostics.append(
                referrer.diag(
                    INCOMPATIBLE_SPECS,
                    f"{referrer.kind} {referrer.version} is paired with specs {'/'.join(sorted(paired))}, "
                    f"but {target.kind} {target.namespace}/{target.name} is {target.version}",
                    path,
                    hint="both are read; convert them to matching versions to keep clusters consistent",
                )
            )

    # --- splits ------------------------------------------------------------------------------

    def _root(self, r: Resource, service: str) -> str | None:
        parts = service.split(".")
        name = parts[0]
        ok = (
            len(parts) == 1
            or (len(parts) == 2 and parts[1] == r.namespace)
            or (
                len(parts) >= 3
                and parts[1] == r.namespace
                and parts[2] == "svc"
                and (len(parts) == 3 or ".".join(parts[3:]) == self.cluster_domain)
            )
        )
        if not ok or not name:
            self.diagnostics.append(
                r.diag(
                    BAD_ROOT,
                    f"spec.service {service!r} is not a Service in namespace {r.namespace!r}",
                    ["spec", "service"],
                    hint=f"write svc, svc.{r.namespace}, svc.{r.namespace}.svc or "
                    f"svc.{r.namespace}.svc.{self.cluster_domain}",
                )
            )
            return None
        return name

    def _splits(self, inventory_present: bool, services: dict[tuple[str, str], ir.Service]) -> list[ir.Split]:
        out: list[ir.Split] = []
        for (ns, name), r in sorted(self.by_kind.get("TrafficSplit", {}).items()):
            m = r.model
            assert isinstance(
                m,
                split.TrafficSplitV1alpha1 | split.TrafficSplitV1alpha2 | split.TrafficSplitV1alpha3,
            )
            root = self._root(r, m.spec.service)
            if root is None:
                continue
            if isinstance(m, split.TrafficSplitV1alpha1):
                weights = integer_weights([parse_quantity(b.weight) for b in m.spec.backends])
            else:
                weights = [b.weight for b in m.spec.backends]
            written: Sequence[split.Backend | split.BackendV1alpha1] = m.spec.backends
            backends = tuple(
                ir.SplitBackend(b.service, w, _origin(r, f"spec.backends[{i}]"))
                for i, (b, w) in enumerate(zip(written, weights, strict=True))
            )
            if not backends:
                self.diagnostics.append(
                    r.diag(
                        EMPTY_BACKENDS,
                        "spec.backends is empty: the split sends nowhere",
                        ["spec", "backends"],
                    )
                )
            elif all(w == 0 for w in weights):
                self.diagnostics.append(
                    r.diag(
                        ALL_ZERO,
                        "every backend weight is 0: no backend can receive traffic",
                        ["spec", "backends"],
                        hint="give at least one backend a positive weight",
                    )
                )
            seen: set[str] = set()
            root_svc = services.get((ns, root))
            for i, b in enumerate(backends):
                if b.service in seen:
                    self.diagnostics.append(
                        r.diag(
                            DUPLICATE_BACKEND,
                            f"backend {b.service!r} is listed more than once",
                            ["spec", "backends", i, "service"],
                        )
                    )
                seen.add(b.service)
                if b.service == root:
                    self.diagnostics.append(
                        r.diag(
                            SELF_BACKEND,
                            f"backend {b.service!r} is the root service itself",
                            ["spec", "backends", i, "service"],
                            hint="the root usually selects every version; list version-specific Services",
                        )
                    )
                svc = services.get((ns, b.service))
                if inventory_present and svc is None:
                    self.diagnostics.append(
                        r.diag(
                            MISSING_BACKEND,
                            f"backend Service {ns}/{b.service} is not in the input",
                            ["spec", "backends", i, "service"],
                        )
                    )
                if svc is not None and root_svc is not None:
                    missing = [p.port for p in root_svc.ports if svc.port(p.port) is None]
                    if missing:
                        self.diagnostics.append(
                            r.diag(
                                PORT_MISMATCH,
                                f"backend Service {b.service} has no port {', '.join(map(str, missing))} of root "
                                f"{root}: it gets no traffic on {'that port' if len(missing) == 1 else 'those ports'}",
                                ["spec", "backends", i, "service"],
                            )
                        )
            if inventory_present and root_svc is None:
                self.diagnostics.append(
                    r.diag(MISSING_ROOT, f"root Service {ns}/{root} is not in the input", ["spec", "service"])
                )
            matches: tuple[ir.HTTPMatch, ...] | None = None
            groups: list[str] = []
            if isinstance(m, split.TrafficSplitV1alpha3) and m.spec.matches:
                collected: list[ir.HTTPMatch] = []
                for i, ref in enumerate(m.spec.matches):
                    groups.append(ref.name)
                    rg = self.route_groups.get((ns, ref.name))
                    if rg is None:
                        self.diagnostics.append(
                            r.diag(
                                DANGLING_ROUTE,
                                f"HTTPRouteGroup {ns}/{ref.name} is not in the input",
                                ["spec", "matches", i, "name"],
                                hint="requests can match nothing, so none are split",
                            )
                        )
                        continue
                    self._check_pairing(
                        r, "split", self.by_kind["HTTPRouteGroup"][(ns, ref.name)], ["spec", "matches", i]
                    )
                    if not rg.matches:
                        self.diagnostics.append(
                            r.diag(
                                EMPTY_ROUTE_GROUP,
                                f"HTTPRouteGroup {ns}/{ref.name} has no routes",
                                ["spec", "matches", i, "name"],
                            )
                        )
                    collected.extend(rg.matches)
                matches = tuple(collected)
            out.append(ir.Split(ns, name, root, backends, matches, tuple(groups), _origin(r)))
        by_root: dict[tuple[str, str], list[ir.Split]] = defaultdict(list)
        for s in out:
            by_root[(s.namespace, s.root)].append(s)
        for (ns, root), group in by_root.items():
            for extra in group[1:]:
                r = self.by_kind["TrafficSplit"][(ns, extra.name)]
                self.diagnostics.append(
                    r.diag(
                        TWO_SPLITS,
                        f"TrafficSplits {group[0].name} and {extra.name} both split root {root}; "
                        f"{group[0].name} applies",
                        ["spec", "service"],
                    )
                )
        return out

    # --- targets -----------------------------------------------------------------------------

    def _targets(self) -> list[ir.TrafficTarget]:
        out: list[ir.TrafficTarget] = []
        for (ns, name), r in sorted(self.by_kind.get("TrafficTarget", {}).items()):
            m = r.model
            dest: access.Subject
            rule_list: Sequence[access.RuleV1alpha1 | access.RuleV1alpha3]
            base: list[str]
            if isinstance(m, access.TrafficTargetV1alpha1):
                dest, sources, base = m.destination, m.sources, []
                rule_list = list(m.specs)
                rules_key = "specs"
            elif isinstance(m, access.TrafficTargetV1alpha2):
                dest, sources, base = m.spec.destination, m.spec.sources, ["spec"]
                rule_list = list(m.spec.rules)
                rules_key = "rules"
            elif isinstance(m, access.TrafficTargetV1alpha3):
                dest, sources, base = m.spec.destination, m.spec.sources, ["spec"]
                rule_list = list(m.spec.rules)
                rules_key = "rules"
            else:
                continue
            dest_ns = dest.namespace or ns
            if dest_ns != ns:
                self.diagnostics.append(
                    r.diag(
                        DEST_NAMESPACE,
                        f"destination namespace {dest_ns!r} differs from the TrafficTarget's {ns!r}",
                        [*base, "destination", "namespace"],
                        hint="OSM rejects this; keep TrafficTargets in their destination's namespace",
                    )
                )
            rules: list[ir.AccessRule] = []
            kinds: set[str] = set()
            rule: access.RuleV1alpha1 | access.RuleV1alpha3
            for i, rule in enumerate(rule_list):
                path: list[str | int] = [*base, rules_key, i]
                origin = _origin(r, ".".join([*map(str, base), f"{rules_key}[{i}]"]))
                kinds.add(rule.kind)
                if rule.kind == "HTTPRouteGroup":
                    rg = self.route_groups.get((ns, rule.name))
                    if rg is None:
                        self.diagnostics.append(
                            r.diag(
                                DANGLING_ROUTE,
                                f"HTTPRouteGroup {ns}/{rule.name} is not in the input",
                                [*path, "name"],
                                hint="the rule allows nothing until it exists",
                            )
                        )
                        continue
                    self._check_pairing(r, "access", self.by_kind["HTTPRouteGroup"][(ns, rule.name)], path)
                    if rule.matches:
                        chosen = []
                        for j, mname in enumerate(rule.matches):
                            hm = rg.match(mname)
                            if hm is None:
                                self.diagnostics.append(
                                    r.diag(
                                        DANGLING_MATCH,
                                        f"HTTPRouteGroup {ns}/{rule.name} has no route named {mname!r}",
                                        [*path, "matches", j],
                                        hint=f"routes: {', '.join(x.name for x in rg.matches) or '(none)'}",
                                    )
                                )
                                continue
                            chosen.append(hm)
                        if not chosen:
                            continue  # nothing resolvable: allowing all routes instead would widen access
                        rule_matches = tuple(chosen)
                    else:
                        rule_matches = rg.matches
                    rules.append(ir.AccessRule("http", rule.name, rule_matches, (), origin))
                else:
                    pr = self.port_routes.get((rule.kind, ns, rule.name))
                    if pr is None:
                        self.diagnostics.append(
                            r.diag(
                                DANGLING_ROUTE,
                                f"{rule.kind} {ns}/{rule.name} is not in the input",
                                [*path, "name"],
                                hint="the rule allows nothing until it exists",
                            )
                        )
                        continue
                    self._check_pairing(r, "access", self.by_kind[rule.kind][(ns, rule.name)], path)
                    if rule.matches:
                        self.diagnostics.append(
                            r.diag(
                                MATCHES_ON_L4,
                                f"matches on {rule.kind} {rule.name} are ignored",
                                [*path, "matches"],
                            )
                        )
                    rules.append(ir.AccessRule(pr.protocol, rule.name, (), pr.ports, origin))
            port = getattr(dest, "port", None)
            if port is not None:
                rules.append(
                    ir.AccessRule(
                        "tcp",
                        f"destination.port={port}",
                        (),
                        (port,),
                        _origin(r, ".".join([*map(str, base), "destination.port"])),
                    )
                )
                self.diagnostics.append(
                    r.diag(
                        PORT_RULE,
                        f"destination.port {port} restricts every rule to port {port}",
                        [*base, "destination", "port"],
                    )
                )
            if "TCPRoute" in kinds and "HTTPRouteGroup" in kinds:
                self.diagnostics.append(
                    r.diag(
                        MIXED_RULES,
                        "HTTP rules apply only on the TCPRoute ports; the TCPRoute alone "
                        "does not open raw TCP",
                        [*base, rules_key],
                    )
                )
            out.append(
                ir.TrafficTarget(
                    ns,
                    name,
                    ir.Identity(dest_ns, dest.name),
                    tuple(ir.Identity(s.namespace or ns, s.name) for s in sources),
                    tuple(rules),
                    _origin(r),
                )
            )
        return out

    def run(self) -> BuildResult:
        services, pods = self.inventory()
        svc_index = {(s.namespace, s.name): s for s in services}
        inventory_present = bool(services)
        self._build_route_groups()
        splits = self._splits(inventory_present, svc_index)
        targets = self._targets()
        if inventory_present:
            self._identity_notes(splits, svc_index)
        result = ir.IR(
            services=services,
            pods=pods,
            route_groups=tuple(self.route_groups[k] for k in sorted(self.route_groups)),
            port_routes=tuple(
                self.port_routes[k] for k in sorted(self.port_routes, key=lambda k: (k[1], k[2], k[0]))
            ),
            splits=tuple(splits),
            targets=tuple(targets),
        )
        return BuildResult(result, self.diagnostics)

    def _identity_notes(
        self, splits: Iterable[ir.Split], services: dict[tuple[str, str], ir.Service]
    ) -> None:
        for s in splits:
            for b in s.backends:
                svc = services.get((s.namespace, b.service))
                if svc is not None and not svc.service_accounts and svc.selector:
                    r = self.by_kind["Service"][(svc.namespace, svc.name)]
                    self.diagnostics.append(
                        r.diag(
                            NO_IDENTITY,
                            f"Service {svc.namespace}/{svc.name} selects no pod or workload in "
                            "the input: its ServiceAccount is unknown, access to it follows the mesh-wide mode",
                            ["spec", "selector"],
                        )
                    )


def _pod_workload(pod: inv.Pod) -> str:
    for owner in pod.metadata.ownerReferences:
        if owner.kind == "ReplicaSet":
            return _HASH_SUFFIX.sub("", owner.name)
        if owner.kind in ("StatefulSet", "DaemonSet", "Job", "Deployment"):
            return owner.name
    return pod.metadata.name
