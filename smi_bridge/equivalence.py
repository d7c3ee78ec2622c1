"""Do two IRs mean the same? Decide generated requests on both and explain every difference.

A migration (and every round-trip test) holds a *source* IR, the meaning the user has today, and a
*target* IR, read back from what the new mesh will be given. ``compare`` decides the same requests
on both with ``smi_bridge.semantics`` and reports each request decided differently, grouped so that
one cause is printed once with an example, a count and the objects involved.

What counts as "the same decision"
  The two decisions send the request to the same Services with the same *shares* (weights as
  exact fractions of their total, so 90/10 equals 9/1 and an unsplit request equals a split whose
  only positive backend is the root) and access allows or denies it on each of them alike.
  Reasons, split names and route names are explanations, not outcomes, and are not compared.
  A difference is about **routing** when the shares differ and about **access** when, for a
  Service both decisions use, one allows and the other denies (both may hold at once).

Which objects a difference involves
  For routing: every TrafficSplit of the source IR on the request's root Service (all of them, since
  an emitter may refuse the ones that do not apply), their backends, the routes in their
  ``matches`` and the route groups they reference, and the root and backend Services. For access:
  every TrafficTarget of the source IR whose destination is a ServiceAccount behind a Service that
  either decision sends the request to, their rules, the routes those rules allow and the route
  groups or TCP/UDP routes they reference, and those Services. The same is collected on the target
  IR, whose nodes come from emitted objects; each emitted object's ``smi-bridge.io/source``
  annotation (``provenance_of``) leads back to the source objects it was generated from, and those
  are involved too (a Linkerd Server written for one TrafficTarget may deny another identity's
  traffic on the same pods: the difference involves that TrafficTarget). An object is named by its
  origin (``Kind namespace/name`` of the object the user wrote, which for an imported IR is a mesh
  object such as a VirtualService); SMI nodes are also named by their SMI kind and name.

The rule: when a difference counts as explained
  A difference is **explained** when at least one diagnostic of the lossy report (the target
  emitter's notes, including the automatic "not translated" ones) names, as its resource, one of
  the objects the difference involves. Severity does not matter: an info note such as "weights
  rounded to 0.01% steps" explains a rounding difference exactly. A diagnostic naming no resource
  explains nothing, and neither does one about an object the difference does not involve: a note
  on split A never excuses a difference on Service B. Everything else is **unexplained**: the
  target means something the report does not admit. ``smi-bridge migrate`` fails on unexplained
  differences always and on explained ones unless ``--accept-lossy``; the round-trip tests accept
  explained ones only.

Which requests (``equivalence_requests``)
  ``smi_bridge.probes.generate_requests`` on a *slice* of each IR per destination Service: the
  Service, its TrafficSplits (a root's backends folded in, so their ports are probed on the root),
  and the TrafficTargets whose destination runs behind it or its backends. Probes cover every
  route's matches and near misses, every port (and one the Service lacks), every header present
  and absent, every identity the slice names as a source, two unknown identities and an
  unauthenticated caller. A caller no TrafficTarget of the slice names is decided exactly like an
  unknown one (``decide`` reads only the destination's own TrafficTargets), so the slice loses no
  case while staying linear in the size of the mesh; the whole-IR cross product of every identity
  with every Service is quadratic. Slices of both IRs are generated (once when they read the same),
  so routes and sources that only the target has are probed too.

  Without a cap (the tests) or when it allows, each destination gets the full cross product of its
  probe shapes with its sources. Under ``max_requests``, a destination whose product exceeds four
  times its share gets a *covering* instead: every source with every route of the TrafficTargets
  naming it, the destination's own identities and unauthenticated callers with every route, each
  route with an unknown caller, and every source on every port; only a source paired with routes of
  TrafficTargets that do not name it is left to sampling. Then each destination keeps an evenly
  spaced share of ``max_requests``. On the 1,000-Service benchmark the full product would be 6.5
  million requests; the covering is about a quarter of that and is generated in a fraction of the
  time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

from backends.base import SOURCE_ANNOTATION
from smi_bridge.diagnostics import Diagnostic
from smi_bridge.ir import (
    IR,
    HTTPMatch,
    Identity,
    Origin,
    PortRoute,
    RouteGroup,
    Service,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.probes import generate_requests
from smi_bridge.semantics import AccessMode, Decision, Request, Router, compile

__all__ = [
    "Aspect",
    "DifferenceGroup",
    "Equivalence",
    "Involved",
    "Progress",
    "compare",
    "describe_decision",
    "describe_request",
    "difference_lines",
    "equivalence_requests",
    "explaining",
    "involved_objects",
    "iter_lines",
    "origin_text",
    "outcome",
    "provenance_of",
]

Aspect = Literal["routing", "access"]
ObjectKey = tuple[str, str, str]  # (kind, namespace, name)
# (service, share of the request, allowed there), sorted by service
Outcome = tuple[tuple[str, Fraction, bool], ...]
# called as (phase, done, total) while requests are generated and decided
Progress = Callable[[str, int, int], None]

_PROGRESS_STEP = 2000


def outcome(decision: Decision) -> Outcome:
    """Where ``decision`` sends a request, as exact shares, and whether access allows it there."""
    total = sum(b.weight for b in decision.backends)
    weights: dict[str, int] = {}
    allowed: dict[str, bool] = {}
    for b in decision.backends:
        weights[b.service] = weights.get(b.service, 0) + b.weight
        allowed[b.service] = allowed.get(b.service, True) and b.allowed
    if total <= 0:
        return tuple((s, Fraction(0), allowed[s]) for s in sorted(weights))
    return tuple((s, Fraction(weights[s], total), allowed[s]) for s in sorted(weights))


def _aspects(before: Outcome, after: Outcome) -> tuple[Aspect, ...]:
    shares_a = {s: f for s, f, _ in before}
    shares_b = {s: f for s, f, _ in after}
    allowed_a = {s: a for s, _, a in before}
    allowed_b = {s: a for s, _, a in after}
    out: list[Aspect] = []
    if shares_a != shares_b:
        out.append("routing")
    common = allowed_a.keys() & allowed_b.keys()
    if any(allowed_a[s] != allowed_b[s] for s in common) or (
        all(allowed_a.values()) != all(allowed_b.values())
    ):
        out.append("access")
    return tuple(out)


# --- the objects a difference involves -----------------------------------------------------------


@dataclass(frozen=True)
class Involved:
    """The source objects behind one difference: their keys (for the rule) and origins (for people)."""

    keys: frozenset[ObjectKey]
    origins: tuple[Origin, ...]


class _Index:
    """Splits, TrafficTargets and routes of one IR, indexed for ``involved_objects``."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.splits: dict[tuple[str, str], list[Split]] = {}
        for s in ir.splits:
            self.splits.setdefault((s.namespace, s.root), []).append(s)
        self.targets: dict[Identity, list[TrafficTarget]] = {}
        for t in ir.targets:
            self.targets.setdefault(t.destination, []).append(t)
        self.route_groups = {(g.namespace, g.name): g for g in ir.route_groups}
        self.port_routes = {(r.namespace, r.name, r.protocol): r for r in ir.port_routes}
        # every object some node came from, for naming it with its file and line
        self.origins: dict[ObjectKey, Origin] = {}
        nodes: list[Split | TrafficTarget | RouteGroup | PortRoute | Service] = [
            *ir.services,
            *ir.route_groups,
            *ir.port_routes,
            *ir.splits,
            *ir.targets,
        ]
        for node in nodes:
            o = node.origin
            if o.kind:
                self.origins.setdefault((o.kind, o.namespace, o.name), o)


class _Collector:
    def __init__(self) -> None:
        self.keys: set[ObjectKey] = set()
        self.origins: dict[str, Origin] = {}

    def add(self, origin: Origin, smi_kind: str = "", namespace: str = "", name: str = "") -> None:
        if origin.kind:
            self.keys.add((origin.kind, origin.namespace, origin.name))
            self.origins.setdefault(origin.ref(), origin)
        if smi_kind:
            self.keys.add((smi_kind, namespace, name))
            if not origin.kind:
                synthetic = Origin(smi_kind, namespace, name)
                self.origins.setdefault(synthetic.ref(), synthetic)

    def add_matches(self, matches: Iterable[HTTPMatch]) -> None:
        for m in matches:
            self.add(m.origin)

    def add_service(self, service: Service | None, namespace: str, name: str) -> None:
        self.add(service.origin if service is not None else Origin(), "Service", namespace, name)

    def result(self) -> Involved:
        return Involved(frozenset(self.keys), tuple(self.origins[k] for k in sorted(self.origins)))


def involved_objects(
    index: _Index,
    request: Request,
    aspects: Sequence[Aspect],
    decisions: Sequence[Decision],
    *,
    after: _Index | None = None,
    provenance: Mapping[ObjectKey, frozenset[ObjectKey]] | None = None,
) -> Involved:
    """The source objects a difference on ``request`` involves (see the module docstring).

    With the target IR's index and the ``provenance`` of the target's objects (which source objects
    each was generated from), the source objects behind the target's deciding nodes count too.
    """
    found = _Collector()
    _collect(found, index, request, aspects, decisions)
    if after is not None and provenance:
        generated = _Collector()
        _collect(generated, after, request, aspects, decisions)
        for key in sorted(generated.keys):
            for source_key in sorted(provenance.get(key, ())):
                found.add(index.origins.get(source_key) or Origin(*source_key))
    return found.result()


def _collect(
    found: _Collector,
    index: _Index,
    request: Request,
    aspects: Sequence[Aspect],
    decisions: Sequence[Decision],
) -> None:
    ir = index.ir
    ns = request.namespace
    services = {request.service} | {b.service for d in decisions for b in d.backends}
    for name in sorted(services):
        found.add_service(ir.service(ns, name), ns, name)
    if "routing" in aspects:
        for split in index.splits.get((ns, request.service), ()):
            found.add(split.origin, "TrafficSplit", split.namespace, split.name)
            for b in split.backends:
                found.add(b.origin)
                found.add_service(ir.service(ns, b.service), ns, b.service)
            found.add_matches(split.matches or ())
            for group_name in split.route_groups:
                group = index.route_groups.get((split.namespace, group_name))
                found.add(group.origin if group else Origin(), "HTTPRouteGroup", split.namespace, group_name)
    if "access" in aspects:
        identities: set[Identity] = {i for d in decisions for b in d.backends for i in b.identities}
        for name in services:
            svc = ir.service(ns, name)
            if svc is not None:
                identities.update(ir.identities_of(svc))
        for identity in sorted(identities, key=lambda i: (i.namespace, i.name)):
            for target in index.targets.get(identity, ()):
                found.add(target.origin, "TrafficTarget", target.namespace, target.name)
                for rule in target.rules:
                    found.add(rule.origin)
                    found.add_matches(rule.matches)
                    if rule.kind == "http":
                        group = index.route_groups.get((target.namespace, rule.route))
                        found.add(
                            group.origin if group else Origin(),
                            "HTTPRouteGroup",
                            target.namespace,
                            rule.route,
                        )
                    else:
                        route = index.port_routes.get((target.namespace, rule.route, rule.kind))
                        kind = "TCPRoute" if rule.kind == "tcp" else "UDPRoute"
                        found.add(route.origin if route else Origin(), kind, target.namespace, rule.route)


def provenance_of(objects: Iterable[Mapping[str, Any]]) -> dict[ObjectKey, frozenset[ObjectKey]]:
    """For each emitted object, the source objects its ``smi-bridge.io/source`` annotation names."""
    out: dict[ObjectKey, frozenset[ObjectKey]] = {}
    for obj in objects:
        md = obj.get("metadata") or {}
        refs = str((md.get("annotations") or {}).get(SOURCE_ANNOTATION, ""))
        keys = set()
        for ref in filter(None, refs.split(",")):
            kind, _, rest = ref.partition("/")
            namespace, _, name = rest.partition("/")
            keys.add((kind, namespace, name))
        out[(str(obj.get("kind", "")), str(md.get("namespace", "")), str(md.get("name", "")))] = frozenset(
            keys
        )
    return out


def explaining(involved: Involved, lossy: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """The diagnostics of ``lossy`` that explain a difference involving ``involved`` (the rule above)."""
    out = []
    for d in lossy:
        r = d.resource
        if r.kind and (r.kind, r.namespace, r.name) in involved.keys:
            out.append(d)
    return tuple(out)


# --- the comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DifferenceGroup:
    """Requests decided differently in one way: same destination Service and outcomes on both sides."""

    aspects: tuple[Aspect, ...]
    example: Request
    before: Decision  # the example's decision on the source IR
    after: Decision  # ... and on the target IR
    count: int
    involved: tuple[Origin, ...]  # source objects
    explained_by: tuple[Diagnostic, ...]

    @property
    def explained(self) -> bool:
        return bool(self.explained_by)


@dataclass
class Equivalence:
    requests: int  # requests decided on both IRs
    generated: int  # requests generated before ``max_requests`` thinned them
    access_mode: AccessMode
    groups: list[DifferenceGroup] = field(default_factory=list)

    @property
    def differing(self) -> int:
        return sum(g.count for g in self.groups)

    def explained(self) -> list[DifferenceGroup]:
        return [g for g in self.groups if g.explained]

    def unexplained(self) -> list[DifferenceGroup]:
        return [g for g in self.groups if not g.explained]

    @property
    def equivalent(self) -> bool:
        return not self.groups


class _Slicer:
    """Cuts one IR into the per-destination slices that requests are generated from."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.by_root: dict[tuple[str, str], list[Split]] = {}
        self.by_backend: dict[tuple[str, str], list[Split]] = {}
        for s in ir.splits:
            self.by_root.setdefault((s.namespace, s.root), []).append(s)
            for b in s.backends:
                self.by_backend.setdefault((s.namespace, b.service), []).append(s)
        self.targets: dict[Identity, list[TrafficTarget]] = {}
        for t in ir.targets:
            self.targets.setdefault(t.destination, []).append(t)

    def destinations(self) -> list[tuple[str, str]]:
        found = {(s.namespace, s.name) for s in self.ir.services}
        found.update(self.by_root)
        found.update(self.by_backend)
        return sorted(found)

    def slice(self, ns: str, name: str) -> IR:
        """What decides requests to ``ns/name``, cut so that requests are generated for it alone.

        For a split root, the backends' ports and ServiceAccounts are folded into a copy of the root
        Service and the splits point at the root itself: ``generate_requests`` then probes the root on
        every port its backends have, with every route of the splits and of the TrafficTargets behind the
        backends, as it would with the whole IR, without also probing each backend (their own slices do).
        """
        ir = self.ir
        own = ir.service(ns, name)
        splits = self.by_root.get((ns, name), [])
        if not splits:
            if own is None:
                # a split backend no Service describes: the splits naming it make it a destination
                return IR(splits=tuple(self.by_backend.get((ns, name), [])))
            return IR(services=(own,), targets=self._targets_behind((own,)))
        backends = [
            b
            for split in splits
            for b in (ir.service(ns, x.service) for x in split.backends)
            if b is not None
        ]
        root = own if own is not None else Service(ns, name)
        ports = {p.port: p for p in root.ports}
        for b in backends:
            for p in b.ports:
                ports.setdefault(p.port, p)
        accounts = sorted({*root.service_accounts, *(a for b in backends for a in b.service_accounts)})
        folded = replace(root, ports=tuple(ports.values()), service_accounts=tuple(accounts))
        self_split = tuple(replace(s, backends=(SplitBackend(name, 1),)) for s in splits)
        return IR(services=(folded,), splits=self_split, targets=self._targets_behind((root, *backends)))

    def _targets_behind(self, services: Iterable[Service]) -> tuple[TrafficTarget, ...]:
        identities = sorted(
            {i for svc in services for i in self.ir.identities_of(svc)}, key=lambda i: (i.namespace, i.name)
        )
        return tuple(t for i in identities for t in self.targets.get(i, ()))


def _signature(part: IR, *, named: bool = True) -> object:
    """What ``generate_requests`` reads from a slice: equal signatures give equal requests.

    ``named=False`` leaves out the destination's own name, for slices whose requests differ only in it
    (the versions of one app: same ports, same ServiceAccount, same TrafficTargets).
    """

    def match(m: HTTPMatch) -> object:
        return (m.path_regex, m.methods, tuple((h.name, h.regex) for h in m.headers))

    return (
        tuple(
            (
                s.namespace,
                s.name if named else "",
                s.ports,
                s.service_accounts,
                tuple(e.service_account for e in s.endpoints),
            )
            for s in part.services
        ),
        tuple(
            (
                s.namespace,
                s.root if named else "",
                tuple(b.service for b in s.backends) if named else (),
                None if s.matches is None else tuple(map(match, s.matches)),
            )
            for s in part.splits
        ),
        tuple(
            (
                t.destination,
                t.sources,
                tuple((r.kind, tuple(map(match, r.matches)), r.ports) for r in t.rules),
            )
            for t in part.targets
        ),
    )


_Shape = tuple[int, Any, str, str, tuple[tuple[str, str], ...]]  # port, protocol, method, path, headers
# (source, shape, key) of one destination's probes, without the destination's name; the full product's size
_Probe = tuple[Identity | None, _Shape, bool]
_Pairs = tuple[list[_Probe], int]


def equivalence_requests(
    irs: Sequence[IR],
    *,
    max_requests: int | None = None,
    unknown_sources: int = 2,
    progress: Progress | None = None,
) -> tuple[list[Request], int]:
    """Probe requests for comparing ``irs`` (see the module docstring), and how many the full cross
    product of every probe shape with every source would hold.

    With ``max_requests`` each destination keeps a share proportional to its probes, at least one: first
    its *key* probes (a source on a route of a TrafficTarget naming it), then an evenly spaced part of
    the rest. A destination whose cross product exceeds four times its share is covered rather than
    enumerated (``_destination_probes``). A destination whose slice reads the same in a later IR (the
    usual case in a faithful migration) is generated once.
    """
    slicers = [_Slicer(ir) for ir in irs]
    work = [(slicer, dest) for slicer in slicers for dest in slicer.destinations()]
    destinations = {dest for _, dest in work}
    cap = None if max_requests is None else 4 * -(-max_requests // max(1, len(destinations)))
    seen: dict[tuple[str, str], list[object]] = {}
    # per destination: (source, shape, key) probes; Requests are made only for those finally kept
    by_dest: dict[tuple[str, str], list[_Probe]] = {}
    cache: dict[object, _Pairs] = {}
    generated = 0
    total = len(work)
    with _collector_paused():
        for done, (slicer, dest) in enumerate(work, 1):
            part = slicer.slice(*dest)
            signature = _signature(part)
            if signature not in seen.setdefault(dest, []):
                seen[dest].append(signature)
                probes, full = _destination_probes(part, dest, unknown_sources, cap, cache)
                mine = by_dest.get(dest)
                if mine is None:
                    mine = by_dest[dest] = probes  # shared with the cache: never changed in place
                    generated += full
                else:
                    merged: dict[tuple[Identity | None, _Shape], bool] = {(p[0], p[1]): p[2] for p in mine}
                    for src, shape, key in probes:
                        merged[(src, shape)] = merged.get((src, shape), False) or key
                    generated += min(full, len(merged) - len(mine))
                    mine = by_dest[dest] = [(src, shape, key) for (src, shape), key in merged.items()]
                if cap is not None and len(mine) > cap:
                    by_dest[dest] = _keep(mine, cap)
            if progress is not None and (done % 50 == 0 or done == total):
                progress("generate", done, total)
    counted = sum(len(v) for v in by_dest.values())
    quotas = _quotas({d: len(v) for d, v in by_dest.items()}, max_requests)
    out = [
        Request(src, ns, name, *shape)
        for (ns, name) in sorted(by_dest)
        for src, shape, _ in _keep(by_dest[(ns, name)], quotas.get((ns, name), len(by_dest[(ns, name)])))
    ]
    return out, max(generated, counted)


def _keep(probes: list[_Probe], n: int) -> list[_Probe]:
    """At most ``n`` of ``probes`` in their order: the key ones first, then an evenly spaced part of the rest."""
    if len(probes) <= n:
        return probes
    key = [i for i, p in enumerate(probes) if p[2]]
    if len(key) >= n:
        return [probes[i] for i in _even(key, n)]
    rest = [i for i, p in enumerate(probes) if not p[2]]
    chosen = sorted([*key, *_even(rest, n - len(key))])
    return [probes[i] for i in chosen]


def _even(items: Sequence[int], n: int) -> list[int]:
    if n <= 0:
        return []
    if len(items) <= n:
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def _quotas(sizes: Mapping[tuple[str, str], int], cap: int | None) -> dict[tuple[str, str], int]:
    """Each destination's share of ``cap``: proportional to its probes, at least one, summing to ``cap``
    (largest remainders first); no cap or room for all: everything."""
    total = sum(sizes.values())
    if cap is None or total <= cap:
        return dict(sizes)
    if cap < len(sizes):
        # fewer requests than destinations: one each for the first ``cap`` in an even spread
        names = sorted(sizes)
        picked = {names[(i * len(names)) // cap] for i in range(cap)}
        return {d: (1 if d in picked else 0) for d in sizes}
    quota = {d: max(1, (n * cap) // total) for d, n in sizes.items()}
    spare = cap - sum(quota.values())
    for d in sorted(sizes, key=lambda d: (-((sizes[d] * cap) % total), d)):
        if spare <= 0:
            break
        if quota[d] < sizes[d]:
            quota[d] += 1
            spare -= 1
    return quota


def _destination_probes(
    part: IR, dest: tuple[str, str], unknown_sources: int, cap: int | None, cache: dict[object, _Pairs]
) -> tuple[list[_Probe], int]:
    """The probes of one destination's slice (in order, each marked *key* when it pairs a source with a
    route of a TrafficTarget naming it), and the size of their full cross product.

    Probe *shapes* (port, protocol, method, path, headers) and *sources* are read from
    ``generate_requests`` run on the slice's parts: the Service with its splits, and the Service with
    each TrafficTarget alone (so each shape is known with the sources whose rules produced it). When
    ``cap`` allows, the result is every shape with every source, exactly what ``generate_requests``
    gives for the whole slice. Otherwise it is a covering of that product: every source with every
    shape of the TrafficTargets that name it, the destination's own identities and unauthenticated
    callers with every shape, every shape with one unknown source (in turn), and every source on every
    port. Only pairs of a source with the routes of TrafficTargets that do not name it are sampled
    rather than exhaustive, and such a source is decided there like any unknown caller unless its own
    routes overlap. Slices that differ only in the destination's name share one computation (``cache``).
    """
    ns = dest[0]
    if not part.services:
        # a split backend no Service describes: small, and probed whole
        whole: list[_Probe] = [
            (r.source, (r.port, r.protocol, r.method, r.path, r.headers), False)
            for r in generate_requests(part, unknown_sources=unknown_sources)
            if (r.namespace, r.service) == dest
        ]
        return whole, len(whole)
    key = (_signature(part, named=False), unknown_sources, cap)
    pairs = cache.get(key)
    if pairs is None:
        pairs = cache[key] = _probe_pairs(part, ns, unknown_sources, cap)
    return pairs


def _probe_pairs(part: IR, ns: str, unknown_sources: int, cap: int | None) -> _Pairs:
    found: dict[tuple[Identity | None, _Shape], bool] = {}
    for r in generate_requests(replace(part, targets=()), unknown_sources=0):
        found[(r.source, (r.port, r.protocol, r.method, r.path, r.headers))] = False
    for t in part.targets:
        named = set(t.sources)
        for r in generate_requests(IR(services=part.services, targets=(t,)), unknown_sources=0):
            pair = (r.source, (r.port, r.protocol, r.method, r.path, r.headers))
            found[pair] = found.get(pair, False) or r.source in named
    shapes: dict[_Shape, None] = dict.fromkeys(shape for _, shape in found)
    known: dict[Identity, None] = dict.fromkeys(src for src, _ in found if src is not None)
    strangers = _strangers(ns, known, unknown_sources)
    sources: list[Identity | None] = [*known, *strangers, None]
    full = len(shapes) * len(sources)
    if cap is None or full <= cap:
        return [(src, shape, found.get((src, shape), False)) for src in sources for shape in shapes], full
    for j, shape in enumerate(shapes):
        if strangers:
            found.setdefault((strangers[j % len(strangers)], shape), False)
    first_per_port: dict[tuple[int, Any], _Shape] = {}
    for shape in shapes:
        first_per_port.setdefault((shape[0], shape[1]), shape)
    for src in sources:
        for shape in first_per_port.values():
            found.setdefault((src, shape), False)
    return [(src, shape, k) for (src, shape), k in found.items()], full


def _strangers(namespace: str, known: Iterable[Identity], count: int) -> list[Identity]:
    """``count`` identities nobody names: alternately one in ``namespace`` and one from a namespace of its own."""
    taken = set(known)
    spaces = {i.namespace for i in taken} | {namespace}
    out: list[Identity] = []
    n = 0
    while len(out) < count:
        if len(out) % 2 == 0:
            candidate = Identity(namespace, f"smi-probe-stranger-{n}")
        else:
            candidate = Identity(f"smi-probe-elsewhere-{n}", "default")
        n += 1
        if candidate not in taken and (len(out) % 2 == 0 or candidate.namespace not in spaces):
            taken.add(candidate)
            out.append(candidate)
    return out


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of small probe objects and no reference cycles: the cyclic collector would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fast(decision: Decision) -> tuple[tuple[str, int, bool], ...]:
    return tuple((b.service, b.weight, b.allowed) for b in decision.backends)


@dataclass
class _Open:
    """A difference group being collected."""

    example: Request
    before: Decision
    after: Decision
    aspects: tuple[Aspect, ...]
    involved: Involved
    explained_by: tuple[Diagnostic, ...]
    count: int = 1


def compare(
    source: IR,
    target: IR,
    requests: Sequence[Request],
    *,
    lossy: Sequence[Diagnostic] = (),
    access_mode: AccessMode = "enforce",
    generated: int | None = None,
    progress: Progress | None = None,
    provenance: Mapping[ObjectKey, frozenset[ObjectKey]] | None = None,
) -> Equivalence:
    """Decide ``requests`` on both IRs; group, attribute and explain every difference.

    ``provenance`` (``provenance_of(target objects)``) lets a difference also involve the source objects
    the target's deciding objects were generated from.
    """
    before_router: Router = compile(source, access_mode=access_mode)
    after_router: Router = compile(target, access_mode=access_mode)
    index = _Index(source)
    after = _Index(target) if provenance else None
    groups: dict[tuple[object, ...], _Open] = {}
    involved_cache: dict[tuple[object, ...], tuple[Involved, tuple[Diagnostic, ...]]] = {}
    total = len(requests)
    for done, request in enumerate(requests, 1):
        a = before_router.decide(request)
        b = after_router.decide(request)
        if progress is not None and (done % _PROGRESS_STEP == 0 or done == total):
            progress("decide", done, total)
        if _fast(a) == _fast(b):
            continue
        oa, ob = outcome(a), outcome(b)
        if oa == ob:
            continue
        aspects = _aspects(oa, ob)
        key = (request.namespace, request.service, aspects, oa, ob)
        group = groups.get(key)
        if group is not None:
            group.count += 1
            continue
        services = tuple(sorted({s for s, _, _ in oa} | {s for s, _, _ in ob}))
        ikey = (request.namespace, request.service, aspects, services)
        cached = involved_cache.get(ikey)
        if cached is None:
            inv = involved_objects(index, request, aspects, (a, b), after=after, provenance=provenance)
            cached = involved_cache[ikey] = (inv, explaining(inv, lossy))
        groups[key] = _Open(request, a, b, aspects, cached[0], cached[1])
    out = Equivalence(
        requests=total, generated=generated if generated is not None else total, access_mode=access_mode
    )
    for g in groups.values():
        out.groups.append(
            DifferenceGroup(
                g.aspects, g.example, g.before, g.after, g.count, g.involved.origins, g.explained_by
            )
        )
    return out


def iter_lines(eq: Equivalence) -> Iterator[str]:
    """The comparison as text lines: a summary, then each difference with its example and objects."""
    yield (
        f"equivalence: {eq.requests} requests decided on both sides"
        + (f" (evenly thinned from {eq.generated})" if eq.generated > eq.requests else "")
        + f", access mode {eq.access_mode}: "
        + (
            "no difference"
            if eq.equivalent
            else f"{eq.differing} differ in {len(eq.groups)} way(s), "
            f"{len(eq.unexplained())} not named by the lossy report"
        )
    )
    for g in eq.groups:
        yield from difference_lines(g)


def describe_request(r: Request) -> str:
    source = str(r.source) if r.source is not None else "an unauthenticated caller"
    if r.protocol == "http":
        headers = "".join(f" [{k}: {v}]" for k, v in r.headers)
        what = f"{r.method} {r.path}{headers}"
    else:
        what = f"{r.protocol.upper()} connection"
    return f"{what} from {source} to {r.namespace}/{r.service}:{r.port}"


def describe_decision(d: Decision) -> str:
    """``svc-a 90% allowed, svc-b 10% denied (reason)``."""
    total = sum(b.weight for b in d.backends)
    parts = []
    for b in d.backends:
        share = f"{100 * b.weight / total:.4g}%" if total else "0%"
        parts.append(f"{b.service} {share} {'allowed' if b.allowed else 'denied'}")
    return ", ".join(parts) + f" ({d.reason})"


def difference_lines(g: DifferenceGroup) -> Iterator[str]:
    status = "explained" if g.explained else "UNEXPLAINED"
    yield f"- {status} {'+'.join(g.aspects)} difference on {g.count} request(s), e.g. {describe_request(g.example)}"
    yield f"    before: {describe_decision(g.before)}"
    yield f"    after:  {describe_decision(g.after)}"
    if g.involved:
        yield "    objects: " + "; ".join(origin_text(o) for o in g.involved)
    for d in g.explained_by:
        yield f"    named by {d.code} {d.severity}: {d.message}"


def origin_text(o: Origin) -> str:
    where = ""
    if o.file:
        where = f" ({o.file}{f':{o.line}' if o.line is not None else ''})"
    return f"{o.kind} {o.namespace}/{o.name}{where}"
