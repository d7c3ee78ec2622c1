"""IR -> SMI manifests at chosen API versions: what ``smi-bridge import`` writes.

A mesh's config, read into the IR by a backend's ``ingest``, leaves as TrafficSplits,
TrafficTargets, HTTPRouteGroups, TCPRoutes and UDPRoutes that ``smi-bridge lint`` accepts and that
``build`` reads back into an IR deciding every request alike (the round-trip tests check both).
The default versions are the ones the published smi-sdk-go CRDs serve: split v1alpha4, access
v1alpha3, specs v1alpha4. Older versions are for clusters that still run them; what they cannot
say is reported, and where something must give, access is narrowed rather than widened.

How the IR becomes SMI, and why:

- Route groups of the IR are written as they are (route names made unique inside a group, since
  references resolve by name). A split or rule whose routes are not exactly one group's routes
  (an importer's own grouping, a subset) gets a group of its own, named after it.
- v1alpha1 split weights are written as integers (valid quantities, so nothing is rounded), and
  duplicate backends are merged by adding their weights (the same shares). A split that cannot
  split anything (every weight 0, or ``matches`` that no request can match) is not written: every
  request then goes to the root, exactly as with the split.
- Split ``matches`` exist from split v1alpha3; at v1alpha1/v1alpha2 such a split is refused (written
  without them it would split every request).
- Access rules reference their route group, leaving out ``matches`` when the rule allows every
  route of the group. An HTTP rule allowing no route references an empty group: it still narrows
  the target's TCP rules to HTTP, as the IR means.
- TCP/UDP ports need specs v1alpha4 (TCPRoute ``spec.matches.ports``). At access v1alpha1/v1alpha2
  with older specs, one port travels as ``destination.port``; several ports are narrowed to the
  lowest one (reported). UDPRoute exists only at specs v1alpha4 and access v1alpha3.
- A TrafficTarget without sources or rules allows nothing; it is left out when that changes no
  decision (enforce mode, or another TrafficTarget keeps the destination deny-by-default), and
  otherwise written as far as the version allows, with the loss reported.
- HTTPRouteGroup v1alpha1 has no headers (dropping them would widen a route: refused per route and
  reported) and every route spells ``pathRegex`` and ``methods``. Methods outside SMI's list are
  left out of a route; a route left with none is left out (narrowed, reported).
- Headers are written in list form (one-key maps, what smi-sdk-go reads) unless the map form is
  asked for; the map form cannot hold one header name twice.

Every object carries the ``smi-bridge.io/generator`` and ``smi-bridge.io/source`` annotations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from backends.base import Emission, EmitContext, Options
from smi_bridge.diagnostics import Check, Severity
from smi_bridge.ir import IR, AccessRule, HTTPMatch, Identity, Origin, Split, TrafficTarget
from smi_bridge.model.specs import METHODS
from smi_bridge.regex import check_re2

__all__ = [
    "CHECKS",
    "DEFAULT_VERSIONS",
    "HeadersForm",
    "SmiVersions",
    "VersionError",
    "anchored_header",
    "emit_smi",
]

SPLIT_GROUP, ACCESS_GROUP, SPECS_GROUP = "split.smi-spec.io", "access.smi-spec.io", "specs.smi-spec.io"
VERSIONS: dict[str, tuple[str, ...]] = {
    "split": ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
    "access": ("v1alpha1", "v1alpha2", "v1alpha3"),
    "specs": ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
}
HeadersForm = Literal["list", "map"]

SPLIT_MATCHES = Check(
    "SMX600", Severity.ERROR, "split with matches cannot be written at split v1alpha1/v1alpha2"
)
SPLIT_INERT = Check("SMX601", Severity.INFO, "split that sends every request to its root is not written")
BACKENDS_MERGED = Check("SMX602", Severity.INFO, "backend listed twice: weights added (same shares)")
HEADERS_V1ALPHA1 = Check("SMX603", Severity.ERROR, "HTTPRouteGroup v1alpha1 has no headers: route left out")
METHOD_UNKNOWN = Check("SMX604", Severity.ERROR, "HTTP method SMI does not list: left out of the route")
PORTS_NEED_V1ALPHA4 = Check("SMX605", Severity.ERROR, "TCP/UDP ports need specs v1alpha4")
PORT_AS_DESTINATION = Check(
    "SMX606", Severity.INFO, "TCP port written as destination.port (access v1alpha1/v1alpha2)"
)
PORTS_NARROWED = Check(
    "SMX607", Severity.ERROR, "several TCP ports cannot be a destination.port: narrowed to one"
)
UDP_UNSUPPORTED = Check(
    "SMX608", Severity.ERROR, "UDP rules need access v1alpha3 and specs v1alpha4: left out"
)
TARGET_OMITTED = Check(
    "SMX609", Severity.INFO, "TrafficTarget that allows nothing left out (no decision changes)"
)
TARGET_INCOMPLETE = Check(
    "SMX610", Severity.ERROR, "TrafficTarget without sources cannot be written at access v1alpha3"
)
DUPLICATE_HEADER = Check(
    "SMX611", Severity.ERROR, "header named twice in one route cannot be written in map form"
)
ROUTE_RENAMED = Check("SMX612", Severity.INFO, "route renamed: names must be unique inside an HTTPRouteGroup")
NOT_RE2 = Check(
    "SMX613", Severity.WARNING, "route regex outside the RE2 subset (it matches nothing either way)"
)

CHECKS: tuple[Check, ...] = (
    SPLIT_MATCHES,
    SPLIT_INERT,
    BACKENDS_MERGED,
    HEADERS_V1ALPHA1,
    METHOD_UNKNOWN,
    PORTS_NEED_V1ALPHA4,
    PORT_AS_DESTINATION,
    PORTS_NARROWED,
    UDP_UNSUPPORTED,
    TARGET_OMITTED,
    TARGET_INCOMPLETE,
    DUPLICATE_HEADER,
    ROUTE_RENAMED,
    NOT_RE2,
)


class VersionError(ValueError):
    """A ``--smi-version`` value that names no SMI API group or version we write."""


@dataclass(frozen=True)
class SmiVersions:
    split: str = "v1alpha4"
    access: str = "v1alpha3"
    specs: str = "v1alpha4"

    @classmethod
    def parse(cls, text: str) -> SmiVersions:
        """``split=v1alpha4,access=v1alpha3,specs=v1alpha4`` (any subset; the rest stay default)."""
        chosen: dict[str, str] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            group, sep, version = part.partition("=")
            group, version = group.strip(), version.strip()
            if not sep or group not in VERSIONS:
                raise VersionError(
                    f"{part!r}: write GROUP=VERSION with GROUP one of {', '.join(VERSIONS)} "
                    "(e.g. split=v1alpha4,access=v1alpha3,specs=v1alpha4)"
                )
            if version not in VERSIONS[group]:
                raise VersionError(
                    f"{group} {version!r} is not written (choose {', '.join(VERSIONS[group])})"
                )
            chosen[group] = version
        return cls(**chosen)

    def __str__(self) -> str:
        return f"split={self.split},access={self.access},specs={self.specs}"


DEFAULT_VERSIONS = SmiVersions()


def _at_least(version: str, floor: str) -> bool:
    return int(version.removeprefix("v1alpha")) >= int(floor.removeprefix("v1alpha"))


_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_LEADING_FLAGS = re.compile(r"^\(\?[a-zA-Z]+\)")


def _unescaped_end(body: str, suffix: str) -> bool:
    if not body.endswith(suffix):
        return False
    backslashes = len(body) - len(suffix) - len(body[: len(body) - len(suffix)].rstrip("\\"))
    return backslashes % 2 == 0


def anchored_header(regex: str) -> str:
    """``regex`` with explicit ``^...$`` when an end has no anchor (or ``.*``).

    Header values full-match in the IR, so ``^(?:R)$`` means exactly ``R``; written out, it also means
    ``R`` to meshes that search instead of full-matching, and lint stops warning (SMB081).
    """
    flags = m.group(0) if (m := _LEADING_FLAGS.match(regex)) else ""
    body = regex[len(flags) :]
    start = body.startswith(("^", ".*", "\\A"))
    end = any(_unescaped_end(body, suffix) for suffix in ("$", ".*", "\\z"))
    if start and end:
        return regex
    return f"{flags}^(?:{body})$"


def _object_name(*parts: str) -> str:
    """A DNS-1123 name from ``parts`` (lower-case, dashes, at most 253 characters)."""
    text = _NOT_NAME.sub("-", "-".join(p for p in parts if p).lower()).strip("-") or "smi"
    return text[:253].rstrip("-")


@dataclass
class _Group:
    """One HTTPRouteGroup to write: its routes under their final (unique) names."""

    namespace: str
    name: str
    routes: list[tuple[str, HTTPMatch]] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)

    def names_of(self, matches: Iterable[HTTPMatch]) -> list[str] | None:
        """The final names of ``matches`` in this group; None when one of them is not in it."""
        out = []
        for m in matches:
            found = next((n for n, r in self.routes if r == m), None)
            if found is None:
                return None
            out.append(found)
        return out


class _Writer:
    def __init__(self, ir: IR, versions: SmiVersions, headers: HeadersForm, options: Options) -> None:
        self.ir = ir
        self.v = versions
        self.headers_form = headers
        self.options = options
        self.ctx = EmitContext("smi", options)
        self.groups: dict[tuple[str, str], _Group] = {}
        self.port_routes: dict[tuple[str, str], tuple[str, tuple[int, ...], list[Origin]]] = {}
        self.guarded: set[Identity] = set()  # destinations a written TrafficTarget keeps deny-by-default
        self.route_ok: dict[HTTPMatch, bool] = {}
        self.referenced: set[tuple[str, str]] = set()  # TCP/UDP routes a written rule references

    # --- names ------------------------------------------------------------------------------------

    def _free_group_name(self, namespace: str, *parts: str) -> str:
        base = _object_name(*parts)
        name, n = base, 2
        while (namespace, name) in self.groups:
            name, n = f"{base}-{n}", n + 1
        return name

    def _free_route_name(self, namespace: str, *parts: str) -> str:
        base = _object_name(*parts)
        name, n = base, 2
        taken = {k[1] for k in self.port_routes if k[0] == namespace}
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def _add_group(self, namespace: str, name: str, matches: Sequence[HTTPMatch], origin: Origin) -> _Group:
        group = _Group(namespace, name, origins=[origin])
        used: set[str] = set()
        for m in matches:
            final = m.name or "route"
            if final in used:
                n = 2
                while f"{final}-{n}" in used:
                    n += 1
                final = f"{final}-{n}"
                self.ctx.lossy(
                    ROUTE_RENAMED.code,
                    f"route {m.name!r} appears twice in HTTPRouteGroup {namespace}/{name}; the second is "
                    f"written as {final!r}",
                    m.origin if m.origin.kind else origin,
                    severity=ROUTE_RENAMED.severity,
                )
            used.add(final)
            group.routes.append((final, m))
        self.groups[(namespace, name)] = group
        return group

    # --- the run ------------------------------------------------------------------------------------

    def run(self) -> Emission:
        for g in self.ir.route_groups:
            self._add_group(g.namespace, g.name, g.matches, g.origin)
        for r in self.ir.port_routes:
            self.port_routes[(r.namespace, r.name)] = (r.protocol, r.ports, [r.origin])
        self.guarded = {t.destination for t in self.ir.targets if t.sources and t.rules}
        for split in self.ir.splits:
            self._split(split)
        for target in self.ir.targets:
            self._target(target)
        for group in self.groups.values():
            self._write_group(group)
        for (ns, name), (protocol, ports, origins) in self.port_routes.items():
            self._write_port_route(ns, name, protocol, ports, origins)
        return self.ctx.emission()

    # --- splits -------------------------------------------------------------------------------------

    def _split(self, split: Split) -> None:
        self.ctx.consume(split, *split.backends)
        where = f"TrafficSplit {split.namespace}/{split.name}"
        weights: dict[str, int] = {}
        for b in split.backends:
            if b.service in weights:
                self.ctx.lossy(
                    BACKENDS_MERGED.code,
                    f"{where} lists backend {b.service} twice; written once with the weights added",
                    b.origin,
                    severity=BACKENDS_MERGED.severity,
                )
            weights[b.service] = weights.get(b.service, 0) + b.weight
        if not any(weights.values()) or split.matches == ():
            why = "every weight is 0" if not any(weights.values()) else "its matches name no route"
            self.ctx.lossy(
                SPLIT_INERT.code,
                f"{where} is not written: {why}, so every request goes to the root {split.root} unsplit, "
                "as without it",
                split.origin,
                severity=SPLIT_INERT.severity,
            )
            return
        spec: dict[str, Any] = {
            "service": split.root,
            "backends": [{"service": s, "weight": w} for s, w in weights.items()],
        }
        if split.matches is not None:
            if not _at_least(self.v.split, "v1alpha3"):
                self.ctx.lossy(
                    SPLIT_MATCHES.code,
                    f"{where} splits only requests matching {len(split.matches)} route(s); split "
                    f"{self.v.split} has no matches, so it is not written",
                    split.origin,
                    severity=SPLIT_MATCHES.severity,
                    hint="import with --smi-version split=v1alpha4",
                )
                return
            matches = self._checked_matches(split.matches, split.origin)
            if not matches:
                self.ctx.lossy(
                    SPLIT_INERT.code,
                    f"{where} is not written: none of its routes can be written, so none matches",
                    split.origin,
                    severity=SPLIT_INERT.severity,
                )
                return
            spec["matches"] = [
                {"kind": "HTTPRouteGroup", "name": name} for name in self._groups_for_split(split, matches)
            ]
        self.ctx.object(
            f"{SPLIT_GROUP}/{self.v.split}", "TrafficSplit", split.namespace, split.name, spec, [split.origin]
        )

    def _groups_for_split(self, split: Split, matches: Sequence[HTTPMatch]) -> list[str]:
        """Existing groups whose routes are exactly the split's, else one group of its own."""
        named = [self.groups.get((split.namespace, g)) for g in split.route_groups]
        if named and all(g is not None for g in named):
            routes = [m for g in named if g is not None for _, m in g.routes]
            if routes == list(split.matches or ()) and list(matches) == routes:
                return [g.name for g in named if g is not None]
        name = self._free_group_name(split.namespace, split.name, "matches")
        self._add_group(split.namespace, name, matches, split.origin)
        return [name]

    # --- route checks ---------------------------------------------------------------------------------

    def _checked_matches(self, matches: Sequence[HTTPMatch], fallback: Origin) -> list[HTTPMatch]:
        """The routes that can be written at the chosen specs version (the others are reported)."""
        return [m for m in matches if self._writable(m, fallback)]

    def _writable(self, m: HTTPMatch, fallback: Origin) -> bool:
        """Whether route ``m`` can be written; the first call for a route reports what it cannot say."""
        known = self.route_ok.get(m)
        if known is not None:
            return known
        origin = m.origin if m.origin.kind else fallback
        ok = True
        if m.headers and self.v.specs == "v1alpha1":
            self.ctx.lossy(
                HEADERS_V1ALPHA1.code,
                f"route {m.name!r} needs header(s) {', '.join(h.name for h in m.headers)}; specs v1alpha1 "
                "cannot say so, and without them the route would match more: left out",
                origin,
                severity=HEADERS_V1ALPHA1.severity,
                hint="import with --smi-version specs=v1alpha4",
            )
            ok = False
        unknown = [x for x in m.methods if x not in METHODS]
        if ok and unknown:
            ok = any(x in METHODS for x in m.methods)
            self.ctx.lossy(
                METHOD_UNKNOWN.code,
                f"route {m.name!r}: method(s) {', '.join(unknown)} are not SMI methods and are left out"
                + ("" if ok else "; no method remains, so the route is left out"),
                origin,
                severity=METHOD_UNKNOWN.severity,
            )
        for pattern in (m.path_regex, *(h.regex for h in m.headers)):
            reason = check_re2(pattern) if ok and pattern is not None else None
            if reason is not None:
                self.ctx.lossy(
                    NOT_RE2.code,
                    f"route {m.name!r}: {pattern!r} is outside the RE2 subset ({reason}); it matches nothing "
                    "here and fails lint",
                    origin,
                    severity=NOT_RE2.severity,
                )
        self.route_ok[m] = ok
        return ok

    # --- targets ------------------------------------------------------------------------------------

    def _target(self, target: TrafficTarget) -> None:
        self.ctx.consume(target, *target.rules)
        where = f"TrafficTarget {target.namespace}/{target.name}"
        if not target.sources or not target.rules:
            missing = "sources" if not target.sources else "rules"
            harmless = self.options.access_mode == "enforce" or target.destination in self.guarded
            if harmless:
                self.ctx.lossy(
                    TARGET_OMITTED.code,
                    f"{where} has no {missing}, so it allows nothing; {target.destination} stays "
                    "deny-by-default without it",
                    target.origin,
                    severity=TARGET_OMITTED.severity,
                )
                return
            if not target.sources and self.v.access == "v1alpha3":
                self.ctx.lossy(
                    TARGET_INCOMPLETE.code,
                    f"{where} has no sources: it only makes {target.destination} deny-by-default, which "
                    "access v1alpha3 (at least one source) cannot say; in permissive mode that identity "
                    "now allows every caller",
                    target.origin,
                    severity=TARGET_INCOMPLETE.severity,
                    hint="add a TrafficTarget for that identity, or import with --smi-version access=v1alpha2",
                )
                return
        rules: list[dict[str, Any]] = []
        destination: dict[str, Any] = {
            "kind": "ServiceAccount",
            "name": target.destination.name,
            "namespace": target.destination.namespace,
        }
        http = [r for r in target.rules if r.kind == "http"]
        tcp = [r for r in target.rules if r.kind == "tcp"]
        udp = [r for r in target.rules if r.kind == "udp"]
        for i, rule in enumerate(http):
            rules.append(self._http_rule(target, rule, i))
        rules.extend(self._tcp_rules(target, tcp, destination))
        for i, rule in enumerate(udp):
            if self.v.access != "v1alpha3" or self.v.specs != "v1alpha4":
                self.ctx.lossy(
                    UDP_UNSUPPORTED.code,
                    f"{where}: UDP rule {rule.route} needs access v1alpha3 and specs v1alpha4; left out "
                    "(that UDP traffic is denied)",
                    rule.origin,
                    severity=UDP_UNSUPPORTED.severity,
                )
                continue
            rules.append(self._port_rule(target, rule, "UDPRoute", i))
        if not rules and self.v.access == "v1alpha3":
            # v1alpha3 needs a rule; a reference to an empty group allows nothing, as no rule does
            rules.append(self._empty_http_rule(target))
        sources = [
            {"kind": "ServiceAccount", "name": s.name, "namespace": s.namespace} for s in target.sources
        ]
        api = f"{ACCESS_GROUP}/{self.v.access}"
        if self.v.access == "v1alpha1":
            obj = self.ctx.object(api, "TrafficTarget", target.namespace, target.name, None, [target.origin])
            obj["destination"] = destination
            obj["specs"] = rules
            obj["sources"] = sources
        else:
            spec = {"destination": destination, "rules": rules, "sources": sources}
            self.ctx.object(api, "TrafficTarget", target.namespace, target.name, spec, [target.origin])

    def _http_rule(self, target: TrafficTarget, rule: AccessRule, index: int) -> dict[str, Any]:
        matches = self._checked_matches(rule.matches, rule.origin)
        if not matches:
            return self._empty_http_rule(target)
        group = self.groups.get((target.namespace, rule.route))
        names = group.names_of(matches) if group is not None else None
        if group is not None and names is not None:
            out: dict[str, Any] = {"kind": "HTTPRouteGroup", "name": group.name}
            if len(names) != len(group.routes) or set(names) != {n for n, _ in group.routes}:
                out["matches"] = names
            return out
        name = self._free_group_name(target.namespace, target.name, rule.route or f"rule-{index}")
        self._add_group(target.namespace, name, matches, rule.origin)
        return {"kind": "HTTPRouteGroup", "name": name}

    def _empty_http_rule(self, target: TrafficTarget) -> dict[str, Any]:
        name = self._free_group_name(target.namespace, target.name, "no-routes")
        self._add_group(target.namespace, name, (), target.origin)
        return {"kind": "HTTPRouteGroup", "name": name}

    def _tcp_rules(
        self, target: TrafficTarget, tcp: Sequence[AccessRule], destination: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not tcp:
            return []
        where = f"TrafficTarget {target.namespace}/{target.name}"
        every_port = any(not r.ports for r in tcp)
        if self.v.specs == "v1alpha4" or every_port:
            if every_port:
                # one rule on every port covers the others
                rule = next(r for r in tcp if not r.ports)
                return [self._port_rule(target, rule, "TCPRoute", 0)]
            return [self._port_rule(target, r, "TCPRoute", i) for i, r in enumerate(tcp)]
        ports = sorted({p for r in tcp for p in r.ports})
        if self.v.access == "v1alpha3":
            self.ctx.lossy(
                PORTS_NEED_V1ALPHA4.code,
                f"{where}: TCP port(s) {', '.join(map(str, ports))} need specs v1alpha4; the TCPRoute written "
                "covers every port (widened)",
                tcp[0].origin,
                severity=PORTS_NEED_V1ALPHA4.severity,
                hint="import with --smi-version specs=v1alpha4",
            )
            return [self._port_rule(target, tcp[0], "TCPRoute", 0, widen=True)]
        destination["port"] = ports[0]
        if len(ports) == 1:
            self.ctx.lossy(
                PORT_AS_DESTINATION.code,
                f"{where}: TCP port {ports[0]} written as destination.port",
                tcp[0].origin,
                severity=PORT_AS_DESTINATION.severity,
            )
        else:
            self.ctx.lossy(
                PORTS_NARROWED.code,
                f"{where}: TCP ports {', '.join(map(str, ports))} cannot all be one destination.port; "
                f"narrowed to {ports[0]} (the others are denied)",
                tcp[0].origin,
                severity=PORTS_NARROWED.severity,
                hint="import with --smi-version access=v1alpha3,specs=v1alpha4",
            )
        return []

    def _port_rule(
        self, target: TrafficTarget, rule: AccessRule, kind: str, index: int, *, widen: bool = False
    ) -> dict[str, Any]:
        protocol = "udp" if kind == "UDPRoute" else "tcp"
        ports = () if widen else rule.ports
        existing = self.port_routes.get((target.namespace, rule.route))
        if existing is not None and existing[0] == protocol and (existing[1] == ports or widen):
            name = rule.route
        else:
            name = self._free_route_name(target.namespace, target.name, rule.route or f"{protocol}-{index}")
            self.port_routes[(target.namespace, name)] = (protocol, ports, [rule.origin])
        self.referenced.add((target.namespace, name))
        return {"kind": kind, "name": name}

    # --- specs objects --------------------------------------------------------------------------------

    def _route(self, name: str, m: HTTPMatch) -> dict[str, Any]:
        route: dict[str, Any] = {"name": name}
        v1 = self.v.specs == "v1alpha1"
        if m.path_regex is not None:
            route["pathRegex"] = m.path_regex
        elif v1:
            route["pathRegex"] = ".*"  # v1alpha1 spells every field; anchored at the start, any path
        methods = [x for x in m.methods if x in METHODS]
        if methods:
            route["methods"] = methods
        elif v1 or not m.methods:
            route["methods"] = ["*"]
        if m.headers and not v1:
            if self.headers_form == "list":
                route["headers"] = [{h.name: anchored_header(h.regex)} for h in m.headers]
            else:
                seen: dict[str, str] = {}
                for h in m.headers:
                    if h.name in seen:
                        self.ctx.lossy(
                            DUPLICATE_HEADER.code,
                            f"route {name!r} requires header {h.name} twice ({seen[h.name]!r} and {h.regex!r}); "
                            "the map form keeps the first (widened)",
                            m.origin,
                            severity=DUPLICATE_HEADER.severity,
                            hint="write headers in list form",
                        )
                        continue
                    seen[h.name] = h.regex
                route["headers"] = {name: anchored_header(regex) for name, regex in seen.items()}
        return route

    def _write_group(self, group: _Group) -> None:
        routes = []
        for name, m in group.routes:
            if self._writable(m, group.origins[0]):
                routes.append(self._route(name, m))
        api = f"{SPECS_GROUP}/{self.v.specs}"
        sources = group.origins
        if _at_least(self.v.specs, "v1alpha3"):
            self.ctx.object(api, "HTTPRouteGroup", group.namespace, group.name, {"matches": routes}, sources)
        else:
            obj = self.ctx.object(api, "HTTPRouteGroup", group.namespace, group.name, None, sources)
            obj["matches"] = routes

    def _write_port_route(
        self, namespace: str, name: str, protocol: str, ports: tuple[int, ...], origins: list[Origin]
    ) -> None:
        kind = "UDPRoute" if protocol == "udp" else "TCPRoute"
        unused = (namespace, name) not in self.referenced
        if kind == "UDPRoute" and self.v.specs != "v1alpha4":
            if unused:  # the rules using it were reported where they were left out
                self.ctx.lossy(
                    UDP_UNSUPPORTED.code,
                    f"UDPRoute {namespace}/{name} is not written: specs {self.v.specs} has no UDPRoute "
                    "(no TrafficTarget written here uses it)",
                    origins[0],
                    severity=Severity.INFO,
                )
            return
        if ports and self.v.specs != "v1alpha4" and unused:
            self.ctx.lossy(
                PORTS_NEED_V1ALPHA4.code,
                f"{kind} {namespace}/{name} is written without its ports {', '.join(map(str, ports))}: specs "
                f"{self.v.specs} has none (no TrafficTarget written here uses it)",
                origins[0],
                severity=Severity.INFO,
            )
        api = f"{SPECS_GROUP}/{self.v.specs}"
        if self.v.specs == "v1alpha4":
            spec: Mapping[str, Any] | None = {"matches": {"ports": list(ports)}}
        elif self.v.specs == "v1alpha3":
            spec = {}
        else:
            spec = None
        self.ctx.object(api, kind, namespace, name, spec, origins)


def emit_smi(
    ir: IR,
    versions: SmiVersions = DEFAULT_VERSIONS,
    *,
    headers: HeadersForm = "list",
    options: Options | None = None,
) -> Emission:
    """SMI objects for ``ir`` at ``versions`` (plain dicts, sorted), with what they could not say."""
    return _Writer(ir, versions, headers, options or Options()).run()
