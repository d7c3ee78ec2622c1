"""Generated requests: a deterministic set of ``Request``s that exercises every meaning in an IR.

Migration equivalence (``decide`` on mesh A's IR vs mesh B's), the emitters' semantic tests and
the property tests all decide the same generated requests, so this list is where "the two configs
mean the same" is actually checked. It covers:

- destinations: every Service in the IR, every split root and backend (known to the IR or not);
- ports: every port of the Service, for a split root also every port of its backends, plus one
  port the Service does not have (probed as both HTTP and TCP); the protocol comes from the port
  (``ServicePort.is_http`` -> http, UDP -> udp, otherwise tcp);
- HTTP shapes, from every route that can affect the Service (its splits' matches, the HTTP rules
  of TrafficTargets whose destination runs behind it or behind its split backends): the sampled
  path with each listed method (or GET and POST when every method is allowed) and all headers;
  a method not listed; the sampled path with a query string; each path near miss; each header
  missing; each header with a non-matching value; and ``GET /`` without headers;
- sources: every identity named anywhere (TrafficTargets, pods, Services, endpoints), plus
  ``unknown_sources`` identities nobody names (alternately in a known namespace and in an unknown
  one), plus ``None`` (unauthenticated).

The list is the full cross product of these, deduplicated, in a stable order. ``max_requests``
keeps an evenly spaced subset, so a cap thins every part of the list instead of cutting off the
Services that sort last.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from smi_bridge.ir import IR, HTTPMatch, Identity, Protocol, Service, ServicePort
from smi_bridge.regex import compile_path, near_misses, sample
from smi_bridge.semantics import Request

__all__ = ["generate_requests"]

_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_QUERY = "?smi-probe=1"

# (method, path, headers) of one HTTP request; TCP/UDP requests use the Request defaults
_Shape = tuple[str, str, tuple[tuple[str, str], ...]]


def _protocol(port: ServicePort) -> Protocol:
    if port.is_http:
        return "http"
    return port.l4


def _known_identities(ir: IR) -> list[Identity]:
    seen: set[Identity] = set()
    for target in ir.targets:
        seen.add(target.destination)
        seen.update(target.sources)
    for pod in ir.pods:
        seen.add(Identity(pod.namespace, pod.service_account))
    for svc in ir.services:
        seen.update(ir.identities_of(svc))
        seen.update(Identity(svc.namespace, ep.service_account) for ep in svc.endpoints if ep.service_account)
    return sorted(seen, key=lambda i: (i.namespace, i.name))


def _unknown_identities(ir: IR, known: list[Identity], count: int) -> list[Identity]:
    taken = set(known)
    namespaces = set(ir.namespaces()) | {i.namespace for i in known}
    home = sorted(namespaces)
    out: list[Identity] = []
    n = 0
    while len(out) < count:
        # alternate: a stranger inside a namespace we know, then one from a namespace nobody names
        if len(out) % 2 == 0 and home:
            candidate = Identity(home[(len(out) // 2) % len(home)], f"smi-probe-stranger-{n}")
            fresh = candidate not in taken
        else:
            candidate = Identity(f"smi-probe-elsewhere-{n}", "default")
            fresh = candidate.namespace not in namespaces
        n += 1
        if fresh:
            taken.add(candidate)
            out.append(candidate)
    return out


def _destinations(ir: IR) -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = {(s.namespace, s.name) for s in ir.services}
    for split in ir.splits:
        found.add((split.namespace, split.root))
        found.update((split.namespace, b.service) for b in split.backends)
    return sorted(found)


def _missing_port(used: set[int]) -> int:
    candidate = max(used, default=79) + 1
    if candidate <= 65535:
        return candidate
    return next(p for p in range(1, 65536) if p not in used)


def _ports(ir: IR, ns: str, name: str) -> list[tuple[int, Protocol]]:
    """(port, protocol) to probe on this Service: its own, its split backends', one it lacks."""
    own = ir.service(ns, name)
    ports: dict[int, Protocol] = {}
    for sp in own.ports if own is not None else ():
        ports.setdefault(sp.port, _protocol(sp))
    for split in ir.splits:
        if split.namespace == ns and split.root == name:
            for b in split.backends:
                backend = ir.service(ns, b.service)
                for sp in backend.ports if backend is not None else ():
                    ports.setdefault(sp.port, _protocol(sp))
    out = sorted(ports.items())
    missing = _missing_port(set(ports))
    out.extend(((missing, "http"), (missing, "tcp")))
    return out


def _relevant_matches(ir: IR, ns: str, name: str) -> list[HTTPMatch]:
    """Routes that can change a decision for requests to ``ns/name``."""
    services: list[Service] = []
    matches: list[HTTPMatch] = []
    own = ir.service(ns, name)
    if own is not None:
        services.append(own)
    for split in ir.splits:
        if split.namespace == ns and split.root == name:
            matches.extend(split.matches or ())
            for b in split.backends:
                backend = ir.service(ns, b.service)
                if backend is not None:
                    services.append(backend)
    identities = {i for svc in services for i in ir.identities_of(svc)}
    for target in ir.targets:
        if target.destination in identities:
            for rule in target.rules:
                if rule.kind == "http":
                    matches.extend(rule.matches)
    unique: dict[tuple[str | None, tuple[str, ...], tuple[tuple[str, str], ...]], HTTPMatch] = {}
    for m in matches:
        unique.setdefault((m.path_regex, m.methods, tuple((h.name, h.regex) for h in m.headers)), m)
    return list(unique.values())


def _path_sample(pattern: str | None) -> str:
    if pattern is None:
        return "/"
    s = sample(pattern)
    if s is None:
        return "/"
    if not s.startswith("/"):
        # patterns such as '.*\.js' sample to '.js'; a real request path starts with '/'
        slashed = "/" + s
        if compile_path(pattern).match(slashed) is not None:
            return slashed
    return s


def _path_misses(pattern: str | None) -> list[str]:
    if pattern is None:
        return []
    out: list[str] = []
    rx = compile_path(pattern)
    for miss in near_misses(pattern):
        if not miss.startswith("/") and rx.match("/" + miss) is None:
            miss = "/" + miss
        out.append(miss)
    return out


def _shapes(match: HTTPMatch) -> Iterator[_Shape]:
    path = _path_sample(match.path_regex)
    headers: list[tuple[str, str]] = []
    misses: list[tuple[str, str]] = []
    for h in match.headers:
        value = sample(h.regex)
        if value is None:
            continue
        headers.append((h.name, value))
        wrong = near_misses(h.regex, full_match=True)
        misses.append((h.name, wrong[0] if wrong else ""))
    full = tuple(headers)
    methods = match.methods or ("GET", "POST")
    for method in methods:
        yield (method, path, full)
    if match.methods:
        unlisted = next((m for m in _METHODS if m not in match.methods), None)
        if unlisted is not None:
            yield (unlisted, path, full)
    yield (methods[0], path + _QUERY, full)
    for miss in _path_misses(match.path_regex):
        yield (methods[0], miss, full)
    for i, (name, wrong_value) in enumerate(misses):
        yield (methods[0], path, full[:i] + full[i + 1 :])
        if wrong_value != full[i][1]:
            yield (methods[0], path, (*full[:i], (name, wrong_value), *full[i + 1 :]))


def _http_shapes(matches: Iterable[HTTPMatch]) -> list[_Shape]:
    shapes: dict[_Shape, None] = {("GET", "/", ()): None}
    for m in matches:
        for shape in _shapes(m):
            shapes.setdefault(shape)
    return list(shapes)


def generate_requests(ir: IR, *, unknown_sources: int = 2, max_requests: int | None = None) -> list[Request]:
    """The deterministic probe requests for ``ir`` (see the module docstring for what they cover)."""
    if unknown_sources < 0:
        raise ValueError(f"unknown_sources must be >= 0, not {unknown_sources}")
    if max_requests is not None and max_requests < 0:
        raise ValueError(f"max_requests must be >= 0, not {max_requests}")
    known = _known_identities(ir)
    sources: list[Identity | None] = [*known, *_unknown_identities(ir, known, unknown_sources), None]

    requests: dict[Request, None] = {}
    for ns, name in _destinations(ir):
        http_shapes: list[_Shape] | None = None
        for port, protocol in _ports(ir, ns, name):
            if protocol == "http":
                if http_shapes is None:
                    http_shapes = _http_shapes(_relevant_matches(ir, ns, name))
                for source in sources:
                    for method, path, headers in http_shapes:
                        requests.setdefault(Request(source, ns, name, port, "http", method, path, headers))
            else:
                for source in sources:
                    requests.setdefault(Request(source, ns, name, port, protocol))

    out = list(requests)
    if max_requests is not None and len(out) > max_requests:
        out = [out[(i * len(out)) // max_requests] for i in range(max_requests)]
    return out
