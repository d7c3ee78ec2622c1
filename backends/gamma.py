"""GAMMA routes: TrafficSplits as Gateway API HTTPRoutes/TCPRoutes attached to the root Service.

Both the ``gateway-api`` backend and the ``linkerd`` backend (whose default split *is* a GAMMA
HTTPRoute) build and read these objects here; each passes its own diagnostic codes in a
``GammaChecks`` so that findings land in its own range. The meaning followed is
``smi_bridge.semantics``: the first split by name applies per root; a backend Service without the
dialled port takes no part; a split with matches splits HTTP requests only.

Emit (one Split):
- One route per root Service port, because every Service ``backendRef`` needs a ``port`` and one
  rule cannot forward 80->80 and 9090->9090. Each route has exactly one parentRef
  ``{group: "", kind: Service, name, port}`` (``group`` is written out: the parentRef default is
  ``gateway.networking.k8s.io``), so the standard channel's CEL rule on parentRefs (two refs to one
  parent must differ by ``sectionName``) never applies. A port no positive-weight backend has gets
  no route (its requests stay on the root, as the semantics says).
- HTTP ports (``appProtocol``/port name say http) get an HTTPRoute, other TCP ports a TCPRoute
  (exactly one rule: TCPRoute v1 allows no more). UDP and SCTP ports have no standard route: an
  unconditional split is reported there. A split with matches leaves non-HTTP ports alone (the
  semantics keeps TCP/UDP on the root), and says so for TCP ports, which may carry unlabelled HTTP.
- A split restricted by ``matches`` gets the weighted rule first and an explicit catch-all rule
  (``PathPrefix /``) to the root, because a GAMMA route rejects requests that match none of its
  rules while SMI sends them to the root unsplit. Paths are ``RegularExpression`` in the anchored
  full-match form ``^…$`` (or ``Exact`` when the regex matches one path): Gateway API's
  ``PathPrefix`` is a path-*segment* prefix (``/foo`` does not match ``/foobar``) while SMI's
  pathRegex is a character prefix, so we never emit ``PathPrefix`` for a regex and that trap does
  not arise. The ``^(?:R)$`` wrapping matters for Linkerd, whose proxy accepts a regex when
  ``find()`` covers the whole value (leftmost-first, so ``a|ab`` does not match ``ab``); with
  explicit anchors ``find()`` agrees with RE2's full match. ``\\d``/``\\w``/``\\s`` are spelled as
  ASCII classes (Rust's are Unicode-aware). Header regexes that are plain literals become ``Exact``.
- Precedence: the spec leaves the rank of ``RegularExpression`` against ``PathPrefix`` to the
  implementation. Linkerd ranks path matches by matched length (a regex covers the whole path, the
  catch-all one character) and breaks ties by list order, and we list the weighted rule first, so the
  catch-all only takes requests the weighted rule does not match. Matches beyond the CRD limits
  (64 per rule, fewer than 128 per route, 16 rules) spill into further rules and routes.
- Weights are int32 0..1,000,000: integer weights are divided by their GCD and, only when still too
  large, scaled with largest-remainder rounding (zero stays zero, non-zero stays >= 1), reported.

Ingest reverses this and reads hand-written routes. The rules of every route on one parent port are
merged oldest route first (Gateway API's tie-break: creationTimestamp, then name); Exact/PathPrefix
paths become regexes (noting that PathPrefix is a segment prefix); the catch-all-to-root rule is
recognised; HTTPRoutes that leave a Service's TCP ports alone read as an HTTP-only split. What the IR
cannot hold (filters, timeouts, query params, hostnames, cross-namespace backends, consumer routes,
a second weighted backend set, ports that disagree, objects of the wrong shape) is reported with
the field path.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, TypeVar

from backends.base import SOURCE_ANNOTATION, EmitContext, SourceObject
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import (
    IR,
    HeaderMatch,
    HTTPMatch,
    Origin,
    RouteGroup,
    ServicePort,
    Split,
    SplitBackend,
)
from smi_bridge.regex import check_re2, full_match_form, reduce_to_literal

GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_V1 = f"{GATEWAY_GROUP}/v1"
TCPROUTE_V1 = f"{GATEWAY_GROUP}/v1"
TCPROUTE_V1ALPHA2 = f"{GATEWAY_GROUP}/v1alpha2"

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
MAX_WEIGHT = 1_000_000
MAX_NAME = 253
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_MAX_HEADERS = 16
_MAX_PATH_VALUE = 1024
_MAX_HEADER_VALUE = 4096


# --- codes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaChecks:
    """The codes a backend reports GAMMA findings under (every backend has its own range)."""

    # emit
    root_unknown: Check
    all_zero: Check
    weights_scaled: Check
    port_unsupported: Check
    method_unsupported: Check
    header_unsupported: Check
    matches_need_http: Check
    backend_port_missing: Check
    shared_root: Check
    no_request: Check
    never_matches: Check
    # ingest
    unknown_kind: Check
    parent_unsupported: Check
    consumer_route: Check
    field_ignored: Check
    backend_dropped: Check
    path_prefix: Check
    no_catch_all: Check
    rules_merged: Check
    route_conflict: Check
    ports_disagree: Check
    regex_dialect: Check
    malformed: Check

    @classmethod
    def from_names(cls, namespace: Mapping[str, object]) -> GammaChecks:
        """The checks a backend module declares under the fields' names in capitals.

        ``GammaChecks.from_names(globals())`` takes ``ROOT_UNKNOWN`` for ``root_unknown`` and so on, so a
        backend declares each code once, as a module-level ``Check`` like its other codes.
        """
        found: dict[str, Check] = {}
        for f in fields(cls):
            check = namespace.get(f.name.upper())
            if not isinstance(check, Check):
                raise TypeError(f"GAMMA check {f.name.upper()} is not declared as a Check")
            found[f.name] = check
        return cls(**found)

    def __iter__(self) -> Iterator[Check]:
        return (getattr(self, f.name) for f in fields(self))

    def listed_with(self, *own: Check) -> tuple[Check, ...]:
        """A backend's ``CHECKS``: these and its own checks, in code order."""
        return tuple(sorted((*self, *own), key=lambda c: c.code))


@dataclass(frozen=True)
class GammaStyle:
    """What differs between the targets that emit GAMMA routes."""

    checks: GammaChecks
    tcp_route_api: str = TCPROUTE_V1


# --- regular expressions --------------------------------------------------------------------------
#
# The IR's pathRegex is anchored at the start only; header regexes are full-match
# (``smi_bridge.regex``). Gateway API implementations differ (RE2 full match in Envoy,
# find()-covers-the-whole-value in Linkerd), so we always write explicit ``^…$`` anchors, which mean
# the same under both readings. Leading global flags such as ``(?i)`` stay in front.

_REGEX_META = set("\\.+*?()|[]{}^$")
_LEADING_FLAGS = re.compile(r"^(?:\(\?[imsU]+\))+")
# RE2 and Python (re.ASCII) read \d \w \s as ASCII classes, Rust's regex crate as Unicode ones;
# spelling them out keeps every engine on the ASCII meaning.
_ASCII_CLASS = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\v\\f\\r "}
# Gateway API's CEL rules for Exact/PathPrefix values
_CEL_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")


def escape(literal: str) -> str:
    """Escape for RE2, Rust and Python alike (only the metacharacters, so the result stays readable)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in literal)


def _scan(pattern: str) -> list[tuple[int, str, bool]]:
    """``(depth, char_or_escape, in_class)`` for every token of ``pattern``."""
    out: list[tuple[int, str, bool]] = []
    depth = 0
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append((depth, pattern[i : i + 2], in_class))
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append((depth, c, True))
            i += 1
            continue
        if c == "[":
            out.append((depth, c, False))
            in_class = True
            i += 1
            # a ``]`` right after ``[`` or ``[^`` is a literal
            for lead in ("^", "]"):
                if pattern[i : i + 1] == lead:
                    out.append((depth, lead, True))
                    i += 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        out.append((depth if c != "(" else depth - 1, c, False))
        i += 1
    return out


def _top_level_alternation(pattern: str) -> bool:
    """True when ``|`` appears outside every group and character class."""
    return any(tok == "|" and depth == 0 and not in_class for depth, tok, in_class in _scan(pattern))


def _is_single_group(pattern: str) -> bool:
    """True when ``pattern`` is one ``(?:…)`` group spanning the whole text."""
    if not (pattern.startswith("(?:") and pattern.endswith(")")):
        return False
    tokens = _scan(pattern)
    closes = [
        k for k, (depth, tok, in_class) in enumerate(tokens) if tok == ")" and depth == 0 and not in_class
    ]
    return closes == [len(tokens) - 1]


def _ends_with_unescaped(pattern: str, suffix: str) -> bool:
    if not pattern.endswith(suffix):
        return False
    backslashes = 0
    j = len(pattern) - len(suffix) - 1
    while j >= 0 and pattern[j] == "\\":
        backslashes += 1
        j -= 1
    return backslashes % 2 == 0


def _split_flags(pattern: str) -> tuple[str, str]:
    m = _LEADING_FLAGS.match(pattern)
    return (m.group(0), pattern[m.end() :]) if m else ("", pattern)


def ascii_classes(pattern: str) -> str:
    """``\\d`` -> ``[0-9]`` etc. (inside a set: ``[\\d_]`` -> ``[0-9_]``; negated ones stay there)."""
    out: list[str] = []
    for _, tok, in_class in _scan(pattern):
        letter = tok[1:] if tok.startswith("\\") else ""
        if letter.lower() in _ASCII_CLASS and letter:
            body = _ASCII_CLASS[letter.lower()]
            if not in_class:
                out.append(("[" if letter.islower() else "[^") + body + "]")
                continue
            if letter.islower():
                out.append(body)
                continue
        out.append(tok)
    return "".join(out)


def _group(pattern: str) -> str:
    return pattern if not _top_level_alternation(pattern) else f"(?:{pattern})"


def path_full_match(path_regex: str) -> str:
    """The anchored full-match form of a start-anchored IR path regex: ``/api`` -> ``^/api.*$``."""
    flags, body = _split_flags(ascii_classes(path_regex))
    if body.startswith("^") and not _top_level_alternation(body):
        body = body[1:]
    if not _top_level_alternation(body) and _ends_with_unescaped(body, "$"):
        return flags + "^" + body
    if not _top_level_alternation(body) and _ends_with_unescaped(body, ".*"):
        return flags + "^" + body + "$"
    return flags + "^" + _group(body) + ".*$"


def header_full_match(regex: str) -> str:
    """An anchored full-match header regex: ``v1|v2`` -> ``^(?:v1|v2)$``."""
    flags, body = _split_flags(ascii_classes(regex))
    return flags + "^" + _group(body) + "$"


def exact_path(path_regex: str) -> str | None:
    """The literal path when a pathRegex matches exactly one path that an ``Exact`` match may hold."""
    kind, literal = reduce_to_literal(full_match_form(path_regex))
    if kind == "exact" and literal.startswith("/") and _CEL_PATH.match(literal) and not _unsafe_path(literal):
        return literal
    return None


def _unsafe_path(path: str) -> bool:
    low = path.lower()
    return (
        "//" in path
        or "/./" in path
        or "/../" in path
        or "%2f" in low
        or "#" in path
        or path.endswith(("/..", "/."))
    )


def _strip_anchors(regex: str) -> tuple[str, str]:
    """``(flags, X)`` for ``flags^X$`` (only when that does not change what an alternation binds to)."""
    flags, body = _split_flags(regex)
    if _top_level_alternation(body):
        return flags, body
    if body.startswith("^"):
        body = body[1:]
    if _ends_with_unescaped(body, "$"):
        body = body[:-1]
    if _is_single_group(body):
        body = body[3:-1]
    return flags, body


def path_regex_from_full_match(regex: str) -> str | None:
    """The IR (start-anchored) path regex for a full-match path regex; None for every path."""
    flags, body = _strip_anchors(regex)
    if _top_level_alternation(body):
        return f"{flags}(?:{body})$"
    if _ends_with_unescaped(body, ".*"):
        head = body[:-2]
        if _is_single_group(head):
            inner = head[3:-1]
            head = inner if not _top_level_alternation(inner) else head
        return (flags + head) or None
    return flags + body + "$"


def header_regex_from_full_match(regex: str) -> str:
    flags, body = _strip_anchors(regex)
    return flags + body


def path_regex_from_prefix(prefix: str) -> str | None:
    """A Gateway API ``PathPrefix`` as an IR regex: a path-*segment* prefix (``/foo`` not ``/foobar``)."""
    trimmed = prefix.rstrip("/")
    if not trimmed:
        return None
    return escape(trimmed) + "(?:/|$)"


def path_regex_from_exact(path: str) -> str:
    return escape(path) + "$"


# --- weights --------------------------------------------------------------------------------------


def fit_weights(weights: Sequence[int], limit: int = MAX_WEIGHT) -> tuple[list[int], bool]:
    """Weights within ``0..limit`` with the same ratios where possible; ``(weights, exact)``.

    Divide by the GCD first (exact). Only when the largest is still above ``limit`` scale so that it
    becomes ``limit``, distributing the rest by largest remainder; zero stays zero and a non-zero
    weight never rounds to zero (that would silently cut a backend off).
    """
    g = 0
    for w in weights:
        g = math.gcd(g, w)
    if g == 0:
        return list(weights), True
    reduced = [w // g for w in weights]
    top = max(reduced)
    if top <= limit:
        return reduced, True
    # integer arithmetic throughout: weights may be far beyond what a float holds exactly
    floors = [w * limit // top for w in reduced]
    remainders = [w * limit % top for w in reduced]
    target = sum(w * limit for w in reduced) // top
    order = sorted(range(len(reduced)), key=lambda i: (-remainders[i], i))
    for i in order[: max(0, target - sum(floors))]:
        floors[i] += 1
    scaled = [max(1, f) if w > 0 else 0 for f, w in zip(floors, reduced, strict=True)]
    return scaled, False


# --- names ----------------------------------------------------------------------------------------


def object_name(*parts: str | int) -> str:
    """``a-b-c`` cut to the 253 characters of a Kubernetes name (with a stable hash when cut)."""
    name = "-".join(str(p) for p in parts if str(p))
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return name[: MAX_NAME - 11].rstrip("-.") + "-" + digest


# --- matches --------------------------------------------------------------------------------------


@dataclass
class MatchTranslation:
    """The HTTPRouteMatches for one IR match, and what could not be expressed."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    # (check, message) pairs; ``dropped`` means the whole IR match could not be expressed
    problems: list[tuple[Check, str]] = field(default_factory=list)
    dropped: bool = False


def translate_match(m: HTTPMatch, checks: GammaChecks) -> MatchTranslation:
    """One HTTPRouteMatch per method (Gateway API has one ``method`` per match)."""
    out = MatchTranslation()

    def drop(check: Check, message: str) -> MatchTranslation:
        out.dropped = True
        out.problems.append((check, f"route {m.name!r}: {message}"))
        return out

    for regex in ([m.path_regex] if m.path_regex is not None else []) + [h.regex for h in m.headers]:
        reason = check_re2(regex)
        if reason is not None:
            # smi-bridge reads a rejected pattern as matching nothing, so leaving the match out is exact
            return drop(checks.never_matches, f"{reason}; the route matches no request")
    base: dict[str, Any] = {}
    if m.path_regex is None:
        base["path"] = {"type": "PathPrefix", "value": "/"}
    else:
        exact = exact_path(m.path_regex)
        value = path_full_match(m.path_regex)
        if exact is not None:
            base["path"] = {"type": "Exact", "value": exact}
        elif len(value) > _MAX_PATH_VALUE:
            return drop(checks.header_unsupported, f"path regex longer than {_MAX_PATH_VALUE} characters")
        else:
            base["path"] = {"type": "RegularExpression", "value": value}
    headers: dict[str, str] = {}
    for h in m.headers:
        if not _HEADER_NAME.match(h.name):
            return drop(checks.header_unsupported, f"header name {h.name!r} is not a valid HTTP token")
        if h.name in headers and headers[h.name] != h.regex:
            # Gateway API keys header matches by name: two regexes for one header cannot both be required
            return drop(checks.header_unsupported, f"header {h.name!r} has two regexes; one match holds one")
        headers[h.name] = h.regex
    if len(headers) > _MAX_HEADERS:
        return drop(checks.header_unsupported, f"more than {_MAX_HEADERS} header matches")
    if headers:
        header_matches = []
        for name, regex in headers.items():
            kind, literal = reduce_to_literal(regex)
            if kind == "exact" and literal:
                header_matches.append({"name": name, "type": "Exact", "value": literal})
                continue
            value = header_full_match(regex)
            if len(value) > _MAX_HEADER_VALUE:
                return drop(checks.header_unsupported, f"header {name!r} regex is too long")
            header_matches.append({"name": name, "type": "RegularExpression", "value": value})
        base["headers"] = header_matches
    if not m.methods:
        out.matches.append(base)
        return out
    unsupported = [meth for meth in m.methods if meth not in HTTP_METHODS]
    supported = [meth for meth in m.methods if meth in HTTP_METHODS]
    if unsupported:
        out.problems.append(
            (
                checks.method_unsupported,
                f"route {m.name!r}: method(s) {', '.join(unsupported)} are not in Gateway API's method "
                f"enum ({' '.join(HTTP_METHODS)}); requests with them no longer match",
            )
        )
    if not supported:
        out.dropped = True
        return out
    for meth in dict.fromkeys(supported):
        out.matches.append({**base, "method": meth})
    return out


def is_match_all(m: HTTPMatch) -> bool:
    return m.path_regex is None and not m.methods and not m.headers


def _chunks(items: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class RouteLimits:
    """CRD limits on one route: matches per rule, rules per route, matches per route."""

    matches_per_rule: int = 64
    rules_per_route: int = 16
    matches_per_route: int = 127  # standard channel CEL: "less than 128"


GATEWAY_LIMITS = RouteLimits()


def pack_rules(
    matches: Sequence[dict[str, Any]], limits: RouteLimits, reserved_rules: int = 0, reserved_matches: int = 0
) -> list[list[list[dict[str, Any]]]]:
    """Spread matches over rules and routes within the CRD limits: ``routes[rules[matches]]``.

    The first route keeps room for ``reserved_*`` (the catch-all rule). Splitting a match list over
    several rules or routes with the same action changes nothing: a request takes the best match.
    """
    routes: list[list[list[dict[str, Any]]]] = []
    remaining = list(matches)
    first = True
    while remaining or first:
        max_rules = limits.rules_per_route - (reserved_rules if first else 0)
        max_total = limits.matches_per_route - (reserved_matches if first else 0)
        take = remaining[: min(max_total, max_rules * limits.matches_per_rule)]
        remaining = remaining[len(take) :]
        routes.append(_chunks(take, limits.matches_per_rule) if take else [])
        first = False
    return routes


# --- emit -----------------------------------------------------------------------------------------


def _service_ref(name: str, port: int, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _parent_ref(name: str, port: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": port}


def _merged_backends(split: Split) -> list[tuple[str, int, list[Origin]]]:
    """Backends in source order, duplicates summed (Gateway API would add them up the same way)."""
    merged: dict[str, tuple[int, list[Origin]]] = {}
    for b in split.backends:
        weight, origins = merged.get(b.service, (0, []))
        merged[b.service] = (weight + b.weight, [*origins, b.origin])
    return [(svc, w, o) for svc, (w, o) in merged.items()]


def splits_in_force(ctx: EmitContext, ir: IR, checks: GammaChecks) -> list[Split]:
    """The split that applies per root Service (the first by name, as ``smi_bridge.semantics`` says).

    The others are consumed and reported: emitting them too would attach a second route to the same
    parent, which Gateway API merges by match precedence and Linkerd resolves by route age.
    """
    by_root: dict[tuple[str, str], list[Split]] = {}
    for split in ir.splits:
        by_root.setdefault((split.namespace, split.root), []).append(split)
    chosen: list[Split] = []
    for (namespace, root), splits in sorted(by_root.items()):
        splits.sort(key=lambda s: s.name)
        chosen.append(splits[0])
        for other in splits[1:]:
            ctx.consume(other, *other.backends)
            ctx.lossy(
                checks.shared_root.code,
                f"TrafficSplit {namespace}/{other.name} shares root Service {root} with "
                f"{namespace}/{splits[0].name}, which applies (the first by name); it is not emitted",
                other.origin,
                severity=checks.shared_root.severity,
                hint="keep one TrafficSplit per root Service",
            )
    return chosen


def emit_splits(ctx: EmitContext, ir: IR, style: GammaStyle) -> None:
    """Every Split of ``ir`` as GAMMA routes (consumes each Split and its backends)."""
    for split in splits_in_force(ctx, ir, style.checks):
        emit_split(ctx, ir, split, style)


def split_matches(
    ctx: EmitContext, split: Split, checks: GammaChecks
) -> tuple[bool, tuple[HTTPMatch, ...] | None]:
    """``(emit?, matches)``: refuses all-zero splits and splits that apply to no request (reported).

    ``matches`` is None when every HTTP request is split: the split has no matches, or one of its
    routes matches every request. In the second case ``split.matches`` is still a tuple, and the
    semantics still keeps TCP and UDP traffic on the root.
    """
    where = f"TrafficSplit {split.namespace}/{split.name}"
    if split.total_weight == 0:
        ctx.lossy(
            checks.all_zero.code,
            f"{where}: every backend weight is 0; the split is refused and not emitted",
            split.origin,
            severity=checks.all_zero.severity,
            hint="give at least one backend a positive weight",
        )
        return False, None
    matches = split.matches
    if matches is not None and any(is_match_all(m) for m in matches):
        matches = None  # one route matching every request: every HTTP request is split
    if matches is not None and not matches:
        ctx.lossy(
            checks.no_request.code,
            f"{where}: the split applies to no request (empty matches); nothing emitted, all traffic "
            f"stays on {split.root}",
            split.origin,
            severity=checks.no_request.severity,
        )
        return False, None
    return True, matches


def emit_split(ctx: EmitContext, ir: IR, split: Split, style: GammaStyle) -> None:
    checks = style.checks
    ctx.consume(split, *split.backends)
    where = f"TrafficSplit {split.namespace}/{split.name}"
    go, matches = split_matches(ctx, split, checks)
    if not go:
        return
    root = ir.service(split.namespace, split.root)
    if root is None or not root.ports:
        ctx.lossy(
            checks.root_unknown.code,
            f"{where}: root Service {split.namespace}/{split.root} "
            + ("is not in the input" if root is None else "has no ports")
            + "; its ports are needed for parentRefs and backendRefs, so the split is not emitted",
            split.origin,
            severity=checks.root_unknown.severity,
            hint="include the Service manifests (or translate against a cluster)",
        )
        return

    backends = _merged_backends(split)
    # one set of weights for the whole split, so that every port's route carries the same numbers
    weights, exact = fit_weights([w for _, w, _ in backends])
    if not exact:
        pairs = ", ".join(f"{svc} {w}->{n}" for (svc, w, _), n in zip(backends, weights, strict=True))
        ctx.lossy(
            checks.weights_scaled.code,
            f"{where}: weights exceed Gateway API's 1,000,000 and were scaled ({pairs}); ratios are "
            "approximate",
            split.origin,
            severity=checks.weights_scaled.severity,
        )

    translated: list[dict[str, Any]] = []
    if matches is not None:
        for m in matches:
            t = translate_match(m, checks)
            for check, message in t.problems:
                ctx.lossy(
                    check.code,
                    f"{where}: {message}"
                    + ("; that route is left out, so its requests go to the root" if t.dropped else ""),
                    m.origin if m.origin.kind else split.origin,
                    severity=check.severity,
                )
            translated.extend(t.matches)
        if not translated:
            ctx.lossy(
                checks.no_request.code,
                f"{where}: none of the split's routes can be expressed; nothing emitted, all traffic stays "
                f"on {split.root}",
                split.origin,
                severity=Severity.WARNING,
            )
            return

    sources = [split.origin, *(o for _, _, origins in backends for o in origins)]
    if matches is not None:
        sources.extend(m.origin for m in matches)
    # a split with matches (even one matching every request) splits HTTP only: TCP/UDP stay on the root
    http_only = split.matches is not None
    plans: list[tuple[ServicePort, list[dict[str, Any]]]] = []
    for p in root.ports:
        kind = _port_kind(p)
        if kind == "unsupported":
            if not http_only:
                ctx.lossy(
                    checks.port_unsupported.code,
                    f"{where}: port {p.port}/{p.protocol} of {split.root} is not split: Gateway API's "
                    "standard channel has no route for it",
                    split.origin,
                    severity=checks.port_unsupported.severity,
                )
            continue
        if kind == "tcp" and http_only:
            ctx.lossy(
                checks.matches_need_http.code,
                f"{where}: port {p.port} of {split.root} is not marked HTTP (port name or appProtocol), so "
                "the split's HTTP matches cannot apply there; traffic to it stays on the root",
                split.origin,
                severity=checks.matches_need_http.severity,
                hint="name the port http[-suffix] or set appProtocol: http",
            )
            continue
        refs = []
        for (svc, _, origins), weight in zip(backends, weights, strict=True):
            backend = ir.service(split.namespace, svc)
            if backend is not None and backend.ports and backend.port(p.port) is None:
                # the semantics leaves a backend without the dialled port out of the split
                ctx.lossy(
                    checks.backend_port_missing.code,
                    f"{where}: backend Service {svc} has no port {p.port}, so it takes no traffic for the "
                    f"root's port {p.port}",
                    origins[0] if origins[0].kind else split.origin,
                    severity=checks.backend_port_missing.severity,
                )
                continue
            refs.append(_service_ref(svc, p.port, weight))
        if not any(r["weight"] > 0 for r in refs):
            continue  # no backend takes this port: requests stay on the root, as without a route
        plans.append((p, refs))

    routed = {r["name"] for _, refs in plans for r in refs if r["weight"] > 0}
    for (svc, _, origins), weight in zip(backends, weights, strict=True):
        if weight > 0 and svc not in routed:
            ctx.lossy(
                checks.backend_port_missing.code,
                f"{where}: backend Service {svc} shares no port with root Service {split.root}, so no route "
                f"sends it traffic (an SMI split would, on ports only {svc} has)",
                origins[0] if origins[0].kind else split.origin,
                severity=Severity.WARNING,
            )
    multi = len(plans) > 1
    for p, refs in plans:
        name = object_name(split.name, p.port) if multi else split.name
        if _port_kind(p) == "http":
            _emit_http_route(ctx, split, p, name, refs, translated if matches is not None else None, sources)
        else:
            ctx.object(
                style.tcp_route_api,
                "TCPRoute",
                split.namespace,
                name,
                {"parentRefs": [_parent_ref(split.root, p.port)], "rules": [{"backendRefs": refs}]},
                sources,
            )


def _port_kind(p: ServicePort) -> str:
    if p.protocol.upper() not in ("TCP", ""):
        return "unsupported"
    return "http" if p.is_http else "tcp"


def _emit_http_route(
    ctx: EmitContext,
    split: Split,
    port: ServicePort,
    name: str,
    refs: list[dict[str, Any]],
    matches: list[dict[str, Any]] | None,
    sources: Iterable[Origin],
) -> None:
    parent = [_parent_ref(split.root, port.port)]
    sources = list(sources)
    if matches is None:
        ctx.object(
            HTTPROUTE_V1,
            "HTTPRoute",
            split.namespace,
            name,
            {"parentRefs": parent, "rules": [{"backendRefs": refs}]},
            sources,
        )
        return
    catch_all = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [_service_ref(split.root, port.port)],
    }
    routes = pack_rules(matches, GATEWAY_LIMITS, reserved_rules=1, reserved_matches=1)
    for index, rules in enumerate(routes):
        spec_rules: list[dict[str, Any]] = [{"matches": ms, "backendRefs": refs} for ms in rules]
        if index == 0:
            spec_rules.append(catch_all)
        ctx.object(
            HTTPROUTE_V1,
            "HTTPRoute",
            split.namespace,
            name if index == 0 else object_name(name, index + 1),
            {"parentRefs": parent, "rules": spec_rules},
            sources,
        )


# --- ingest ---------------------------------------------------------------------------------------


T = TypeVar("T")
# what a reader trips over when a hand-written object has a shape its CRD would not admit
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, ValueError, IndexError)


def guarded(read: Callable[[], T], src: SourceObject, check: Check, report: Report) -> T | None:
    """Run one object's reader; a shape it did not expect becomes a diagnostic, never a traceback."""
    try:
        return read()
    except _SHAPE_ERRORS as exc:
        o = src.origin
        report.add(
            _diag(
                check,
                f"{o.kind or 'object'} {o.namespace}/{o.name} does not have the shape its kind requires "
                f"({type(exc).__name__}: {exc}); not imported",
                o,
                hint="check the object against its CRD (kubectl apply --dry-run=server)",
            )
        )
        return None


def _diag(
    check: Check, message: str, origin: Origin, *, hint: str = "", severity: Severity | None = None
) -> Diagnostic:
    return Diagnostic.at(check.code, severity or check.severity, message, origin, hint=hint)


# Kubernetes kinds the inventory is built from (``smi_bridge.build``): importers pass over them quietly.
_INVENTORY = {
    "": {"Service", "ServiceAccount", "Pod", "Endpoints", "Namespace", "ReplicationController"},
    "apps": {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"},
    "batch": {"Job", "CronJob"},
    "discovery.k8s.io": {"EndpointSlice"},
}


def is_inventory(obj: Mapping[str, Any]) -> bool:
    group, _, _ = str(obj.get("apiVersion", "")).rpartition("/")
    return str(obj.get("kind", "")) in _INVENTORY.get(group, set())


def is_route(obj: Mapping[str, Any], groups: Iterable[str] = (GATEWAY_GROUP,)) -> bool:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group in tuple(groups) and obj.get("kind") in ("HTTPRoute", "TCPRoute")


def service_parent(ref: Mapping[str, Any]) -> bool:
    """Linkerd (and Istio) accept ``""``, ``core`` or no group for a Service parent."""
    group = ref.get("group", GATEWAY_GROUP)
    return ref.get("kind") == "Service" and group in ("", "core", None)


@dataclass(frozen=True)
class _Backend:
    service: str
    weight: int
    origin: Origin


@dataclass(frozen=True)
class _Rule:
    """One rule as read: its matches (None: every request) and weighted Service backends."""

    index: int
    matches: tuple[HTTPMatch, ...] | None
    backends: tuple[_Backend, ...]
    origin: Origin
    route: Origin  # the route object the rule belongs to


@dataclass(frozen=True)
class _Attachment:
    """One route attached to one Service port (``port None``: every port)."""

    source: SourceObject
    namespace: str
    root: str
    port: int | None
    rules: tuple[_Rule, ...]
    split_name: str
    created: str


@dataclass
class GammaResult:
    splits: list[Split] = field(default_factory=list)
    route_groups: list[RouteGroup] = field(default_factory=list)
    roots: set[tuple[str, str]] = field(default_factory=set)  # Services that have a GAMMA route


def _source_split_name(obj: Mapping[str, Any]) -> str | None:
    """Our own routes say which TrafficSplit they came from; use that name on the way back."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    refs = [r for r in str(ann.get(SOURCE_ANNOTATION, "")).split(",") if r.startswith("TrafficSplit/")]
    if len(refs) == 1:
        return refs[0].split("/", 2)[2]
    return None


def _read_match(
    raw: Mapping[str, Any], name: str, origin: Origin, checks: GammaChecks, report: Report, linkerd: bool
) -> tuple[str | None, tuple[str, ...], tuple[HeaderMatch, ...]] | None:
    """(path_regex, methods, headers) of one HTTPRouteMatch; None when it cannot be read at all."""
    path = raw.get("path") or {"type": "PathPrefix", "value": "/"}
    ptype = path.get("type", "PathPrefix")
    value = str(path.get("value", "/"))
    path_regex: str | None
    if ptype == "PathPrefix":
        path_regex = path_regex_from_prefix(value)
        if path_regex is not None:
            report.add(
                _diag(
                    checks.path_prefix,
                    f"PathPrefix {value!r} is a path-segment prefix ({value.rstrip('/')} and "
                    f"{value.rstrip('/')}/…, not {value.rstrip('/')}x); read as the regex {path_regex!r}",
                    origin.child(f"{origin.path}.path"),
                )
            )
    elif ptype == "Exact":
        path_regex = path_regex_from_exact(value)
    elif ptype == "RegularExpression":
        if linkerd and _top_level_alternation(_split_flags(value)[1]):
            report.add(
                _diag(
                    checks.regex_dialect,
                    f"regex {value!r} has a top-level alternation: Linkerd accepts it when the leftmost-first "
                    "match covers the whole path (so 'a|ab' does not match 'ab'); read as a full match",
                    origin.child(f"{origin.path}.path.value"),
                )
            )
        path_regex = path_regex_from_full_match(value)
    else:
        report.add(_diag(checks.field_ignored, f"unknown path match type {ptype!r}; match skipped", origin))
        return None
    method = raw.get("method")
    methods: tuple[str, ...] = (str(method).upper(),) if method else ()
    headers: list[HeaderMatch] = []
    for i, h in enumerate(raw.get("headers") or ()):
        htype = h.get("type", "Exact")
        hname = str(h.get("name", "")).lower()
        hvalue = str(h.get("value", ""))
        if htype == "Exact":
            headers.append(HeaderMatch(hname, escape(hvalue)))
        elif htype == "RegularExpression":
            if linkerd and _top_level_alternation(_split_flags(hvalue)[1]):
                report.add(
                    _diag(
                        checks.regex_dialect,
                        f"regex {hvalue!r} has a top-level alternation: Linkerd accepts a value when the "
                        "leftmost-first match covers all of it (so 'a|ab' does not match 'ab'); read as a full match",
                        origin.child(f"{origin.path}.headers[{i}].value"),
                    )
                )
            headers.append(HeaderMatch(hname, header_regex_from_full_match(hvalue)))
        else:
            report.add(
                _diag(
                    checks.field_ignored,
                    f"unknown header match type {htype!r}; match skipped",
                    origin.child(f"{origin.path}.headers[{i}]"),
                )
            )
            return None
    if raw.get("queryParams"):
        report.add(
            _diag(
                checks.field_ignored,
                "query parameter matches cannot be held by SMI (the query string is not part of the path); "
                "dropped, so the match is wider",
                origin.child(f"{origin.path}.queryParams"),
            )
        )
    return path_regex, methods, tuple(headers)


def _merge_methods(matches: list[HTTPMatch]) -> list[HTTPMatch]:
    """Matches that differ only by method (one Gateway API match per method) become one IR match."""
    merged: dict[tuple[str | None, tuple[HeaderMatch, ...]], HTTPMatch] = {}
    order: list[tuple[str | None, tuple[HeaderMatch, ...]]] = []
    for m in matches:
        key = (m.path_regex, m.headers)
        prev = merged.get(key)
        if prev is None:
            merged[key] = m
            order.append(key)
        elif prev.methods and m.methods:
            merged[key] = HTTPMatch(
                prev.name,
                prev.path_regex,
                tuple(dict.fromkeys(prev.methods + m.methods)),
                prev.headers,
                prev.origin,
            )
        else:
            merged[key] = HTTPMatch(prev.name, prev.path_regex, (), prev.headers, prev.origin)
    return [merged[k] for k in order]


def read_rule_matches(
    raw_matches: Sequence[Mapping[str, Any]] | None,
    name_prefix: str,
    origin: Origin,
    checks: GammaChecks,
    report: Report,
    *,
    linkerd: bool,
) -> tuple[HTTPMatch, ...] | None:
    """A rule's ``matches`` as IR matches; None when the rule matches every request."""
    if not raw_matches:
        return None
    out: list[HTTPMatch] = []
    for j, raw in enumerate(raw_matches):
        morigin = origin.child(f"{origin.path}.matches[{j}]")
        read = _read_match(raw, name_prefix, morigin, checks, report, linkerd)
        if read is None:
            continue
        path_regex, methods, headers = read
        out.append(HTTPMatch(f"{name_prefix}-{len(out)}", path_regex, methods, headers, morigin))
    merged = _merge_methods(out)
    if any(is_match_all(m) for m in merged):
        return None
    return tuple(
        HTTPMatch(f"{name_prefix}-{i}", m.path_regex, m.methods, m.headers, m.origin)
        for i, m in enumerate(merged)
    )


_RULE_FIELDS_IGNORED = {
    "filters": "filters (header changes, redirects, rewrites, mirrors) have no SMI equivalent",
    "timeouts": "timeouts have no SMI equivalent",
    "retry": "retries have no SMI equivalent",
    "sessionPersistence": "session persistence has no SMI equivalent",
}


def _read_rules(
    src: SourceObject,
    namespace: str,
    parent_port: int | None,
    checks: GammaChecks,
    report: Report,
    *,
    linkerd: bool,
) -> tuple[_Rule, ...]:
    obj = src.obj
    spec = obj.get("spec") or {}
    name = str((obj.get("metadata") or {}).get("name", ""))
    rules: list[_Rule] = []
    for i, raw in enumerate(spec.get("rules") or ()):
        rorigin = src.origin.child(f"spec.rules[{i}]")
        for key, why in _RULE_FIELDS_IGNORED.items():
            if raw.get(key):
                report.add(
                    _diag(checks.field_ignored, f"{why}; dropped", rorigin.child(f"spec.rules[{i}].{key}"))
                )
        matches = None
        if obj.get("kind") == "HTTPRoute":
            matches = read_rule_matches(
                raw.get("matches"), f"{name}-{i}", rorigin, checks, report, linkerd=linkerd
            )
        backends: list[_Backend] = []
        for j, ref in enumerate(raw.get("backendRefs") or ()):
            borigin = src.origin.child(f"spec.rules[{i}].backendRefs[{j}]")
            if ref.get("group", "") not in ("", "core") or ref.get("kind", "Service") != "Service":
                report.add(
                    _diag(
                        checks.backend_dropped,
                        f"backend {ref.get('kind')} {ref.get('name')} is not a Service; SMI backends are Services, "
                        "so it is dropped",
                        borigin,
                    )
                )
                continue
            if ref.get("namespace") and ref.get("namespace") != namespace:
                report.add(
                    _diag(
                        checks.backend_dropped,
                        f"backend Service {ref.get('namespace')}/{ref.get('name')} is in another namespace; SMI "
                        "backends live in the split's namespace, so it is dropped",
                        borigin,
                    )
                )
                continue
            if ref.get("filters"):
                report.add(
                    _diag(
                        checks.field_ignored,
                        "backend filters have no SMI equivalent; dropped",
                        borigin.child(f"{borigin.path}.filters"),
                    )
                )
            if parent_port is not None and ref.get("port") not in (None, parent_port):
                report.add(
                    _diag(
                        checks.field_ignored,
                        f"backend port {ref.get('port')} differs from the parent port {parent_port}; SMI keeps the "
                        "port a client dialled, so the port change is dropped",
                        borigin.child(f"{borigin.path}.port"),
                    )
                )
            weight = ref.get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                report.add(
                    _diag(
                        checks.backend_dropped, f"weight {weight!r} is not an integer >= 0; dropped", borigin
                    )
                )
                continue
            backends.append(_Backend(str(ref.get("name", "")), weight, borigin))
        rules.append(_Rule(i, matches, tuple(backends), rorigin, src.origin))
    return tuple(rules)


def read_route_matches(
    src: SourceObject, checks: GammaChecks, report: Report, *, linkerd: bool
) -> tuple[HTTPMatch, ...] | None:
    """Every rule's matches of an HTTPRoute together (authorization is per route, not per rule).

    None when some rule matches every request (a route without rules has one such rule by default).
    """
    spec = src.obj.get("spec") or {}
    name = str((src.obj.get("metadata") or {}).get("name", ""))
    collected: list[HTTPMatch] = []
    every = False
    for i, raw in enumerate(spec.get("rules") or [{}]):
        rorigin = src.origin.child(f"spec.rules[{i}]")
        for key, why in _RULE_FIELDS_IGNORED.items():
            if raw.get(key):
                report.add(
                    _diag(checks.field_ignored, f"{why}; dropped", rorigin.child(f"spec.rules[{i}].{key}"))
                )
        if raw.get("backendRefs"):
            report.add(
                _diag(
                    checks.field_ignored,
                    "backendRefs on a route attached to a Server have no SMI equivalent; dropped",
                    rorigin.child(f"spec.rules[{i}].backendRefs"),
                )
            )
        matches = read_rule_matches(
            raw.get("matches"), f"{name}-{i}", rorigin, checks, report, linkerd=linkerd
        )
        if matches is None:
            every = True
        else:
            collected.extend(matches)
    if every:
        return None
    merged = _merge_methods(collected)
    return tuple(
        HTTPMatch(f"{name}-{i}", m.path_regex, m.methods, m.headers, m.origin) for i, m in enumerate(merged)
    )


def _created(obj: Mapping[str, Any]) -> str:
    # RFC 3339 timestamps of one cluster compare correctly as strings; a route without one sorts last
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "~")


def _attachments(
    objects: Sequence[SourceObject], inventory: IR, checks: GammaChecks, report: Report, *, linkerd: bool
) -> list[_Attachment]:
    out: list[_Attachment] = []
    for src in objects:
        read = guarded(
            partial(_attachments_of, src, inventory, checks, report, linkerd=linkerd),
            src,
            checks.malformed,
            report,
        )
        out.extend(read or ())
    return out


def _attachments_of(
    src: SourceObject, inventory: IR, checks: GammaChecks, report: Report, *, linkerd: bool
) -> list[_Attachment]:
    out: list[_Attachment] = []
    obj = src.obj
    md = obj.get("metadata") or {}
    namespace = str(md.get("namespace") or "default")
    name = str(md.get("name", ""))
    spec = obj.get("spec") or {}
    if spec.get("hostnames"):
        report.add(
            _diag(
                checks.field_ignored,
                "hostnames have no SMI equivalent (and no effect on a Service parent); dropped",
                src.origin.child("spec.hostnames"),
            )
        )
    service_refs = []
    for i, ref in enumerate(spec.get("parentRefs") or ()):
        rorigin = src.origin.child(f"spec.parentRefs[{i}]")
        if not service_parent(ref):
            if (
                linkerd
                and ref.get("kind") == "Server"
                and ref.get("group", "policy.linkerd.io") == "policy.linkerd.io"
            ):
                continue  # an inbound (authorization) route; the linkerd backend reads those
            report.add(
                _diag(
                    checks.parent_unsupported,
                    f"parent {ref.get('kind', 'Gateway')} {ref.get('name')} is not a Service: only mesh (GAMMA) "
                    "routes become TrafficSplits; this parent is ignored",
                    rorigin,
                )
            )
            continue
        parent_ns = str(ref.get("namespace") or namespace)
        if parent_ns != namespace:
            report.add(
                _diag(
                    checks.consumer_route,
                    f"route in namespace {namespace} for Service {parent_ns}/{ref.get('name')} is a consumer "
                    "route (it applies only to clients in its own namespace); SMI has no consumer scoping, so "
                    "it is ignored",
                    rorigin,
                )
            )
            continue
        port = ref.get("port")
        if port is None and ref.get("sectionName"):
            service = inventory.service(parent_ns, str(ref.get("name")))
            named = [p for p in (service.ports if service else ()) if p.name == ref.get("sectionName")]
            if not named:
                report.add(
                    _diag(
                        checks.parent_unsupported,
                        f"sectionName {ref.get('sectionName')!r} names no port of Service {parent_ns}/"
                        f"{ref.get('name')} in the input; parent ignored",
                        rorigin,
                    )
                )
                continue
            port = named[0].port
        service_refs.append((str(ref.get("name", "")), port if isinstance(port, int) else None))
    if not service_refs:
        return out
    split_name = _source_split_name(obj) or name
    for root, port in service_refs:
        rules = _read_rules(src, namespace, port, checks, report, linkerd=linkerd)
        out.append(_Attachment(src, namespace, root, port, rules, split_name, _created(obj)))
    return out


@dataclass(frozen=True)
class _Decision:
    """What one route says for one port: backends (None: unsplit) and matches (None: every request)."""

    backends: tuple[_Backend, ...] | None
    matches: tuple[HTTPMatch, ...] | None
    attachment: _Attachment


def _is_root_only(rule: _Rule, root: str) -> bool:
    return (
        bool(rule.backends)
        and all(b.service == root for b in rule.backends)
        and sum(b.weight for b in rule.backends) > 0
    )


def _where(o: Origin) -> str:
    return f"{o.kind} {o.namespace}/{o.name} ({o.file or '<input>'}:{o.line or 0})"


def _drop(checks: GammaChecks, report: Report, rule: _Rule, chosen: _Rule, reason: str) -> None:
    if rule.route == chosen.route:
        report.add(
            _diag(
                checks.rules_merged,
                f"rule {rule.index}: {reason}; rule {chosen.index} is kept, this one dropped",
                rule.origin,
            )
        )
        return
    # two routes on one parent: Gateway API merges their rules by precedence, ties to the older route
    report.add(
        _diag(
            checks.route_conflict,
            f"rule {rule.index}: {reason}; rule {chosen.index} of {_where(chosen.route)}, on the same Service port, is "
            "kept because Gateway API ranks equal matches by the oldest creationTimestamp, then by name",
            rule.origin,
        )
    )


def _decide(atts: Sequence[_Attachment], checks: GammaChecks, report: Report) -> _Decision:
    """Fold the rules of every route on one parent port (oldest route first) into what a split can say:
    one weighted backend set and the matches that select it (None: every request)."""
    att = atts[0]
    rules = []
    for r in (r for a in atts for r in a.rules):
        if sum(b.weight for b in r.backends) == 0:
            report.add(
                _diag(
                    checks.rules_merged,
                    f"rule {r.index} has no backend with a positive weight, so Gateway API fails its requests "
                    "(HTTP 500); SMI cannot express a failing route, so the rule is dropped",
                    r.origin,
                )
            )
            continue
        rules.append(r)
    catch_all = [r for r in rules if r.matches is None and _is_root_only(r, att.root)]
    weighted = [r for r in rules if r not in catch_all]
    if not weighted:
        return _Decision(None, None, att)
    unconditional = [r for r in weighted if r.matches is None]
    if unconditional:
        chosen = unconditional[0]
        for r in weighted:
            if r is not chosen:
                _drop(
                    checks,
                    report,
                    r,
                    chosen,
                    "its requests go to another backend set, and a TrafficSplit holds one: the rule that matches "
                    "every request decides",
                )
        return _Decision(chosen.backends, None, _attachment_of(atts, chosen))
    first = weighted[0]
    same = [r for r in weighted if _backend_key(r.backends) == _backend_key(first.backends)]
    for r in weighted:
        if r not in same:
            _drop(
                checks,
                report,
                r,
                first,
                "it sends its matches to another backend set, and a TrafficSplit holds one",
            )
    matches = tuple(m for r in same for m in (r.matches or ()))
    if not catch_all:
        report.add(
            _diag(
                checks.no_catch_all,
                "the route has no catch-all rule: under GAMMA, requests matching none of its rules fail, while "
                "the SMI split sends them to the root Service unsplit",
                att.source.origin.child("spec.rules"),
            )
        )
    renamed = tuple(
        HTTPMatch(f"{first.route.name}-{i}", m.path_regex, m.methods, m.headers, m.origin)
        for i, m in enumerate(matches)
    )
    return _Decision(first.backends, renamed, _attachment_of(atts, first))


def _attachment_of(atts: Sequence[_Attachment], rule: _Rule) -> _Attachment:
    return next((a for a in atts if a.source.origin == rule.route), atts[0])


def _backend_key(backends: Iterable[_Backend]) -> tuple[tuple[str, int], ...]:
    return tuple((b.service, b.weight) for b in backends)


def ingest_routes(
    objects: Sequence[SourceObject],
    inventory: IR,
    checks: GammaChecks,
    report: Report,
    *,
    linkerd: bool = False,
    groups: Iterable[str] = (GATEWAY_GROUP,),
) -> GammaResult:
    """GAMMA routes (HTTPRoute/TCPRoute with Service parents) as Splits."""
    result = GammaResult()
    routes = [o for o in objects if is_route(o.obj, groups)]
    attachments = _attachments(routes, inventory, checks, report, linkerd=linkerd)
    by_parent: dict[tuple[str, str, int | None, str], list[_Attachment]] = {}
    for att in attachments:
        kind = str(att.source.obj.get("kind"))
        by_parent.setdefault((att.namespace, att.root, att.port, kind), []).append(att)

    decisions: dict[tuple[str, str], list[tuple[int | None, _Decision]]] = {}
    for (namespace, root, port, _kind), atts in sorted(
        by_parent.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0, kv[0][3])
    ):
        atts.sort(key=lambda a: (a.created, str((a.source.obj.get("metadata") or {}).get("name", ""))))
        decisions.setdefault((namespace, root), []).append((port, _decide(atts, checks, report)))

    for (namespace, root), per_port in sorted(decisions.items()):
        result.roots.add((namespace, root))
        split = _fold_ports(namespace, root, per_port, inventory, checks, report)
        if split is None:
            continue
        result.splits.append(split)
        if split.matches:
            result.route_groups.append(
                RouteGroup(namespace, split.route_groups[0], split.matches, split.origin)
            )
    return result


def _normalised(weights: Mapping[str, int]) -> dict[str, int]:
    positive = {svc: w for svc, w in weights.items() if w > 0}
    g = 0
    for w in positive.values():
        g = math.gcd(g, w)
    return {svc: w // g for svc, w in positive.items()} if g else {}


def _fold_ports(
    namespace: str,
    root: str,
    per_port: list[tuple[int | None, _Decision]],
    inventory: IR,
    checks: GammaChecks,
    report: Report,
) -> Split | None:
    """One Split from the per-port decisions (SMI splits have no port dimension).

    A backend Service without the dialled port takes no part in an SMI split for that port, so a
    route that leaves such a backend out agrees with the split; only real differences are reported.
    """
    split_ports = [(port, d) for port, d in per_port if d.backends is not None]
    if not split_ports:
        return None
    union: dict[str, int] = {}
    origins: dict[str, Origin] = {}
    for _, d in split_ports:
        for b in d.backends or ():
            if b.service not in union:
                union[b.service] = 0
                origins[b.service] = b.origin
        for svc, w in _summed(d.backends or ()).items():
            union[svc] = max(union[svc], w)
    port0, first = split_ports[0]

    def takes(service: str, port: int | None) -> bool:
        svc = inventory.service(namespace, service)
        return port is None or svc is None or not svc.ports or svc.port(port) is not None

    def expected(port: int | None) -> dict[str, int]:
        return _normalised({svc: w for svc, w in union.items() if takes(svc, port)})

    for port, d in split_ports:
        if _normalised(_summed(d.backends or ())) != expected(port) or _matches_key(
            d.matches
        ) != _matches_key(first.matches):
            report.add(
                _diag(
                    checks.ports_disagree,
                    f"routes for Service {namespace}/{root} split port {port} differently from port {port0}; an "
                    f"SMI split has no port dimension, so one backend set and one set of matches apply to every "
                    "port",
                    d.attachment.source.origin,
                )
            )
    covered = {port for port, _ in per_port}
    service = inventory.service(namespace, root)
    matches = first.matches
    only_http_routes = all(d.attachment.source.obj.get("kind") == "HTTPRoute" for _, d in split_ports)
    if (
        matches is None
        and only_http_routes
        and service is not None
        and None not in covered
        and any(_port_kind(p) != "http" and p.port not in covered and expected(p.port) for p in service.ports)
    ):
        # HTTPRoutes split HTTP only; with the non-HTTP ports left alone this is an SMI split whose one
        # route matches every request (the semantics keeps TCP and UDP on the root then)
        o = first.attachment.source.origin
        matches = (HTTPMatch(f"{o.name}-all", origin=o.child("spec.rules")),)
    if service is not None and None not in covered:
        for p in service.ports:
            relevant = _port_kind(p) == "http" if matches is not None else True
            if p.port in covered or not relevant or not expected(p.port):
                continue
            report.add(
                _diag(
                    checks.ports_disagree,
                    f"Service {namespace}/{root} port {p.port} has no route (traffic there is not split), but the "
                    "SMI split applies to every port",
                    first.attachment.source.origin,
                )
            )
    att = first.attachment
    name = att.split_name
    return Split(
        namespace=namespace,
        name=name,
        root=root,
        backends=tuple(SplitBackend(svc, w, origins[svc]) for svc, w in union.items()),
        matches=matches,
        route_groups=(name,) if matches else (),
        origin=att.source.origin,
    )


def _summed(backends: Iterable[_Backend]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in backends:
        out[b.service] = out.get(b.service, 0) + b.weight
    return out


def _matches_key(matches: tuple[HTTPMatch, ...] | None) -> object:
    if matches is None:
        return None
    return tuple((m.path_regex, m.methods, m.headers) for m in matches)


__all__ = [
    "GATEWAY_GROUP",
    "HTTPROUTE_V1",
    "HTTP_METHODS",
    "TCPROUTE_V1",
    "TCPROUTE_V1ALPHA2",
    "GammaChecks",
    "GammaResult",
    "GammaStyle",
    "MatchTranslation",
    "RouteLimits",
    "emit_split",
    "emit_splits",
    "split_matches",
    "splits_in_force",
    "fit_weights",
    "guarded",
    "header_full_match",
    "ingest_routes",
    "is_inventory",
    "is_match_all",
    "is_route",
    "ascii_classes",
    "escape",
    "exact_path",
    "object_name",
    "pack_rules",
    "path_full_match",
    "path_regex_from_exact",
    "path_regex_from_full_match",
    "path_regex_from_prefix",
    "read_route_matches",
    "read_rule_matches",
    "service_parent",
    "translate_match",
]
