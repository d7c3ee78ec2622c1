"""Hypothesis strategies: random IRs in normal form, and requests to decide on them.

``irs()`` draws internally consistent IRs that any backend should be able to express and read
back: names are Kubernetes DNS labels; every Service selects pods by labels and its
``service_accounts`` and ``endpoints`` are exactly what those pods give; splits name Services of
their own namespace with integer weights (never all zero); TrafficTargets name ServiceAccounts
that exist and rules that reference route groups and TCP/UDP routes that exist; every collection
is sorted by (namespace, name). ``ir_from_dict(ir_to_dict(ir)) == ir`` holds for all of them.

``requests_for(ir)`` mixes the generated probes of ``smi_bridge.probes`` (which hit every route,
port and identity) with free-form requests (odd ports, unknown Services and sources, random paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from hypothesis import strategies as st

from smi_bridge.ir import (
    IR,
    AccessRule,
    Endpoint,
    EndpointPort,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    Pod,
    PortRoute,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.probes import generate_requests
from smi_bridge.regex import sample
from smi_bridge.semantics import Request

__all__ = ["dns_labels", "irs", "path_regexes", "requests_for", "simple_patterns"]

_NAMESPACE_POOL = ("default", "shop", "payments", "edge", "team-a", "ops-1", "bookstore", "mesh")
_NAME_POOL = ("web", "api", "api-v1", "api-v2", "db", "cache", "books", "auth", "front", "back")
_SA_POOL = ("default", "web", "api", "reader", "writer", "prometheus", "client")
_APPS = ("app", "store", "auth")
_METHOD_POOL = ("GET", "POST", "PUT", "DELETE", "PATCH")
_HEADER_POOL = ("x-user", "x-canary", "user-agent", "x-env")
_HEADER_REGEX_POOL = ("alice", "beta|canary", "v[0-9]+", ".*", "Mozilla/.*", "[a-z]+-prod", "(?i)yes")
_PORT_POOL = (80, 443, 8080, 8081, 9090, 9091, 5432, 53, 15000)

_label_re = r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?"


# Strategies are built once: building them inside every draw costs more than drawing from them.
_LABELS = st.one_of(st.sampled_from(_NAME_POOL), st.from_regex(_label_re, fullmatch=True))
_APP = st.sampled_from(_APPS)
_VERSION = st.sampled_from(("v1", "v2"))
_SA_NAMES = st.lists(st.sampled_from(_SA_POOL), min_size=1, max_size=3, unique=True)
_METHOD_LISTS = st.lists(st.sampled_from(_METHOD_POOL), max_size=2, unique=True)
_HEADER_NAMES = st.lists(st.sampled_from(_HEADER_POOL), max_size=2, unique=True)
_HEADER_REGEX = st.sampled_from(_HEADER_REGEX_POOL)
_PORT_STYLES = st.sampled_from(("http", "http-named", "tcp", "udp", "app-protocol"))
_TCP_PORT_STYLES = st.sampled_from(("http", "http-named", "tcp", "app-protocol"))


def dns_labels() -> st.SearchStrategy[str]:
    """RFC 1123 labels as Kubernetes requires for names of namespaces, Services, ports..."""
    return _LABELS


_SEGMENTS = ("api", "v1", "books", "static", "metrics", "a-b", "x_y")
_REDUCIBLE_TAILS = ("", "/.*", ".*", "$", "/")
_IRREDUCIBLE_TAILS = ("/[0-9]+", "/(get|list)", "/v[12]/.*", "/[^/]+/items", "\\.(js|css)", "/.+")


@st.composite
def path_regexes(draw: st.DrawFn) -> str:
    """pathRegex values: literal prefixes, `/x/.*`, exact `/x$`, suffixes, and irreducible ones."""
    segments = draw(st.lists(st.sampled_from(_SEGMENTS), min_size=0, max_size=3))
    head = "/" + "/".join(segments)
    kind = draw(st.sampled_from(("reducible", "irreducible", "suffix", "any")))
    if kind == "reducible":
        return head + draw(st.sampled_from(_REDUCIBLE_TAILS))
    if kind == "irreducible":
        return head.rstrip("/") + draw(st.sampled_from(_IRREDUCIBLE_TAILS))
    if kind == "suffix":
        return ".*\\." + draw(st.sampled_from(("js", "css", "png")))
    return ".*"


_ATOMS = (
    "a",
    "b",
    "z",
    "0",
    "/",
    "-",
    "\\.",
    ".",
    "[a-c]",
    "[0-9]",
    "[^/]",
    "\\d",
    "\\w",
    "(ab|cd)",
    "(?:x|y)",
)
_QUANTIFIERS = ("", "", "", "*", "+", "?", "{2}", "{1,3}", "*?")


@st.composite
def simple_patterns(draw: st.DrawFn) -> str:
    """Small RE2-compatible patterns built from literals, classes, groups and quantifiers."""
    atoms = draw(st.lists(st.tuples(st.sampled_from(_ATOMS), st.sampled_from(_QUANTIFIERS)), max_size=6))
    body = "".join(a + q for a, q in atoms)
    anchors = draw(st.sampled_from(("", "^", "$", "^$")))
    return ("^" if "^" in anchors else "") + body + ("$" if "$" in anchors else "")


def _origin(kind: str, ns: str, name: str, api_version: str, path: str = "") -> Origin:
    return Origin(
        kind=kind, namespace=ns, name=name, api_version=api_version, file="generated.yaml", path=path
    )


@st.composite
def _service_ports(draw: st.DrawFn, udp: bool) -> tuple[ServicePort, ...]:
    numbers = draw(
        st.lists(
            st.one_of(st.sampled_from(_PORT_POOL), st.integers(1, 65535)), min_size=1, max_size=3, unique=True
        )
    )
    ports = []
    for i, number in enumerate(numbers):
        style = draw(_PORT_STYLES if udp else _TCP_PORT_STYLES)
        protocol = "UDP" if style == "udp" else "TCP"
        name = {"http": "http", "http-named": f"http-{i}", "tcp": f"tcp-{i}", "udp": f"udp-{i}"}.get(
            style, f"web-{i}"
        )
        if len(numbers) == 1 and style == "tcp" and draw(st.booleans()):
            name = ""  # a single-port Service may leave its port unnamed
        if name == "http" and i > 0:
            name = f"http-{i}"
        target = draw(st.sampled_from((None, number, min(number + 1000, 65535))))
        ports.append(
            ServicePort(
                port=number,
                name=name,
                target_port=target,
                protocol=protocol,
                app_protocol="http" if style == "app-protocol" else "",
            )
        )
    return tuple(ports)


def _workload_port(sp: ServicePort) -> int:
    return sp.target_port if isinstance(sp.target_port, int) else sp.port


@st.composite
def _namespace_inventory(
    draw: st.DrawFn, ns: str, ip_base: int, udp: bool
) -> tuple[list[Service], list[Pod], list[str]]:
    """Services, pods and ServiceAccounts of one namespace, consistent with each other."""
    sas = draw(_SA_NAMES)
    pods: list[Pod] = []
    n_pods = draw(st.integers(0, 5))
    for k in range(n_pods):
        app = draw(_APP)
        version = draw(_VERSION)
        template = draw(st.integers(0, 4)) == 0
        pods.append(
            Pod(
                namespace=ns,
                name=f"{app}-{version}-{k}",
                labels=tuple(sorted({"app": app, "version": version}.items())),
                service_account=draw(st.sampled_from(sas)),
                ip="" if template else f"10.{ip_base}.{k // 250}.{k % 250 + 1}",
                template=template,
                workload=f"{app}-{version}",
                origin=_origin("Pod", ns, f"{app}-{version}-{k}", "v1"),
            )
        )
    names = draw(st.lists(dns_labels(), min_size=1, max_size=4, unique=True))
    services: list[Service] = []
    for j, name in enumerate(names):
        selector_kind = draw(st.sampled_from(("app", "app-version", "app-version", "none")))
        app, version = draw(_APP), draw(_VERSION)
        selector: tuple[tuple[str, str], ...] = {
            "app": (("app", app),),
            "app-version": (("app", app), ("version", version)),
            "none": (),
        }[selector_kind]
        ports = draw(_service_ports(udp))
        selected = [p for p in pods if p.matches(selector)]
        endpoints = tuple(
            Endpoint(
                address=p.ip,
                ports=tuple(EndpointPort(_workload_port(sp), sp.name, sp.protocol) for sp in ports),
                pod=p.name,
                service_account=p.service_account,
            )
            for p in selected
            if not p.template
        )
        services.append(
            Service(
                namespace=ns,
                name=name,
                cluster_ip=f"10.96.{ip_base}.{j + 1}",
                ports=ports,
                selector=selector,
                service_accounts=tuple(sorted({p.service_account for p in selected})),
                endpoints=endpoints,
                origin=_origin("Service", ns, name, "v1"),
            )
        )
    return services, pods, sas


@st.composite
def _http_match(draw: st.DrawFn, ns: str, group: str, index: int, name: str) -> HTTPMatch:
    path = draw(st.one_of(st.none(), path_regexes()))
    methods = tuple(draw(_METHOD_LISTS))
    header_names = draw(_HEADER_NAMES)
    headers = tuple(HeaderMatch(h, draw(_HEADER_REGEX)) for h in header_names)
    return HTTPMatch(
        name=name,
        path_regex=path,
        methods=methods,
        headers=headers,
        origin=_origin("HTTPRouteGroup", ns, group, "specs.smi-spec.io/v1alpha4", f"spec.matches[{index}]"),
    )


@st.composite
def _route_groups(draw: st.DrawFn, ns: str) -> list[RouteGroup]:
    names = draw(st.lists(dns_labels(), max_size=2, unique=True))
    groups = []
    for name in names:
        match_names = draw(
            st.lists(
                st.sampled_from(("all", "read", "write", "metrics", "canary")),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        matches = tuple(draw(_http_match(ns, name, i, m)) for i, m in enumerate(match_names))
        groups.append(
            RouteGroup(
                ns, name, matches, origin=_origin("HTTPRouteGroup", ns, name, "specs.smi-spec.io/v1alpha4")
            )
        )
    return groups


@st.composite
def _port_routes(draw: st.DrawFn, ns: str, workload_ports: Sequence[int], udp: bool) -> list[PortRoute]:
    names = draw(st.lists(dns_labels(), max_size=2, unique=True))
    routes = []
    for name in names:
        protocol: Literal["tcp", "udp"] = draw(st.sampled_from(("tcp", "tcp", "udp") if udp else ("tcp",)))
        port_choices = st.sampled_from(workload_ports) if workload_ports else st.integers(1, 65535)
        ports = tuple(
            sorted(draw(st.lists(st.one_of(port_choices, st.integers(1, 65535)), max_size=3, unique=True)))
        )
        kind = "TCPRoute" if protocol == "tcp" else "UDPRoute"
        routes.append(
            PortRoute(ns, name, protocol, ports, origin=_origin(kind, ns, name, "specs.smi-spec.io/v1alpha4"))
        )
    return routes


@st.composite
def _splits(
    draw: st.DrawFn, ns: str, services: list[Service], groups: list[RouteGroup], with_matches: bool
) -> list[Split]:
    if len(services) < 2:
        return []
    names = draw(st.lists(dns_labels(), max_size=2, unique=True))
    splits = []
    for name in names:
        root = draw(st.sampled_from(services)).name
        others = [s.name for s in services if s.name != root]
        chosen = draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
        weights = draw(st.lists(st.integers(0, 1000), min_size=len(chosen), max_size=len(chosen)))
        if sum(weights) == 0:
            weights[0] = draw(st.integers(1, 1000))
        backends = tuple(
            SplitBackend(
                svc,
                w,
                origin=_origin("TrafficSplit", ns, name, "split.smi-spec.io/v1alpha4", f"spec.backends[{i}]"),
            )
            for i, (svc, w) in enumerate(zip(chosen, weights, strict=True))
        )
        matches: tuple[HTTPMatch, ...] | None = None
        route_groups: tuple[str, ...] = ()
        if with_matches and groups and draw(st.integers(0, 2)) == 0:
            group = draw(st.sampled_from(groups))
            picked = draw(st.lists(st.sampled_from(group.matches), min_size=1, unique=True))
            matches = tuple(m for m in group.matches if m in picked)
            route_groups = (group.name,)
        splits.append(
            Split(
                namespace=ns,
                name=name,
                root=root,
                backends=backends,
                matches=matches,
                route_groups=route_groups,
                origin=_origin("TrafficSplit", ns, name, "split.smi-spec.io/v1alpha4"),
            )
        )
    return splits


@st.composite
def _rule(
    draw: st.DrawFn, groups: list[RouteGroup], routes: list[PortRoute], index: int, origin: Origin
) -> AccessRule | None:
    kinds = [
        k
        for k, present in (
            ("http", groups),
            ("tcp", [r for r in routes if r.protocol == "tcp"]),
            ("udp", [r for r in routes if r.protocol == "udp"]),
        )
        if present
    ]
    if not kinds:
        return None
    kind = draw(st.sampled_from(kinds))
    rule_origin = origin.child(f"spec.rules[{index}]")
    if kind == "http":
        group = draw(st.sampled_from(groups))
        if draw(st.booleans()):
            matches = group.matches  # the rule names no matches: every route of the group
        else:
            picked = draw(st.lists(st.sampled_from(group.matches), min_size=1, unique=True))
            matches = tuple(m for m in group.matches if m in picked)
        return AccessRule("http", group.name, matches=matches, origin=rule_origin)
    route = draw(st.sampled_from([r for r in routes if r.protocol == kind]))
    return AccessRule(route.protocol, route.name, ports=route.ports, origin=rule_origin)


@st.composite
def _targets(
    draw: st.DrawFn,
    ns: str,
    sas: list[str],
    everyone: list[Identity],
    groups: list[RouteGroup],
    routes: list[PortRoute],
) -> list[TrafficTarget]:
    names = draw(st.lists(dns_labels(), max_size=3, unique=True))
    targets = []
    for name in names:
        origin = _origin("TrafficTarget", ns, name, "access.smi-spec.io/v1alpha3")
        destination = Identity(ns, draw(st.sampled_from(sas)))
        sources = tuple(draw(st.lists(st.sampled_from(everyone), min_size=1, max_size=3, unique=True)))
        rules = []
        for i in range(draw(st.integers(1, 3))):
            rule = draw(_rule(groups, routes, i, origin))
            if rule is not None:
                rules.append(rule)
        targets.append(TrafficTarget(ns, name, destination, sources, tuple(rules), origin=origin))
    return targets


def _by_key(items: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items, key=lambda x: (x.namespace, x.name)))


@st.composite
def irs(draw: st.DrawFn, *, max_namespaces: int = 6, udp: bool = True, split_matches: bool = True) -> IR:
    """A random IR in normal form, internally consistent (see the module docstring).

    Backends that cannot express a feature at all turn it off instead of filtering examples:
    ``udp=False`` draws no UDPRoutes and no UDP Service ports, ``split_matches=False`` no v1alpha4 split matches.
    """
    namespaces = draw(
        st.lists(
            st.one_of(st.sampled_from(_NAMESPACE_POOL), dns_labels()),
            min_size=1,
            max_size=max_namespaces,
            unique=True,
        )
    )
    services: list[Service] = []
    pods: list[Pod] = []
    sas_of: dict[str, list[str]] = {}
    for i, ns in enumerate(namespaces):
        ns_services, ns_pods, sas = draw(_namespace_inventory(ns, i + 1, udp))
        services.extend(ns_services)
        pods.extend(ns_pods)
        sas_of[ns] = sas
    everyone = [Identity(ns, sa) for ns in namespaces for sa in sas_of[ns]]

    groups: list[RouteGroup] = []
    routes: list[PortRoute] = []
    splits: list[Split] = []
    targets: list[TrafficTarget] = []
    for ns in namespaces:
        ns_services = [s for s in services if s.namespace == ns]
        workload_ports = sorted({_workload_port(sp) for s in ns_services for sp in s.ports})
        ns_groups = draw(_route_groups(ns))
        ns_routes = draw(_port_routes(ns, workload_ports, udp))
        groups.extend(ns_groups)
        routes.extend(ns_routes)
        splits.extend(draw(_splits(ns, ns_services, ns_groups, split_matches)))
        targets.extend(draw(_targets(ns, sas_of[ns], everyone, ns_groups, ns_routes)))

    return IR(
        services=_by_key(services),
        pods=_by_key(pods),
        route_groups=_by_key(groups),
        port_routes=_by_key(routes),
        splits=_by_key(splits),
        targets=_by_key(targets),
    )


_PATHS = ("/", "/api", "/api/v1/books", "/metrics", "/static/app.js", "/a-b?x=1", "", "/%2e%2e/", "/api/0")


def requests_for(ir: IR) -> st.SearchStrategy[Request]:
    """Requests to decide on ``ir``: its generated probes, and free-form ones around its names."""
    probes = generate_requests(ir)
    identities = sorted(
        {Identity(p.namespace, p.service_account) for p in ir.pods}
        | {i for t in ir.targets for i in (t.destination, *t.sources)},
        key=lambda i: (i.namespace, i.name),
    )
    sources = st.one_of(
        st.none(),
        st.just(Identity("nowhere", "nobody")),
        *([st.sampled_from(identities)] if identities else []),
    )
    services = [(s.namespace, s.name) for s in ir.services] or [("default", "missing")]
    ports = sorted({p.port for s in ir.services for p in s.ports}) or [80]
    samples = sorted(
        {
            s
            for g in ir.route_groups
            for m in g.matches
            if m.path_regex is not None
            for s in (sample(m.path_regex),)
            if s is not None
        }
    )
    header_values = sorted(
        {
            (h.name, v)
            for g in ir.route_groups
            for m in g.matches
            for h in m.headers
            for v in (sample(h.regex),)
            if v is not None
        }
    )
    free_form = st.builds(
        lambda src, dest, port, protocol, method, path, headers: Request(
            src, dest[0], dest[1], port, protocol, method, path, tuple(headers)
        ),
        sources,
        st.one_of(st.sampled_from(services), st.tuples(dns_labels(), dns_labels())),
        st.one_of(st.sampled_from(ports), st.integers(1, 65535)),
        st.sampled_from(("http", "http", "tcp", "udp")),
        st.sampled_from((*_METHOD_POOL, "get", "OPTIONS")),
        st.one_of(st.sampled_from(_PATHS + tuple(samples)), st.text(alphabet="/abc-09?.%", max_size=12)),
        st.lists(
            st.one_of(
                st.sampled_from(header_values) if header_values else st.nothing(),
                st.tuples(st.sampled_from(_HEADER_POOL), st.text(alphabet="abcv0-", max_size=6)),
            ),
            max_size=3,
        ),
    )
    if not probes:
        return free_form
    return st.one_of(st.sampled_from(probes), free_form)
