"""The Consul target: SMI as consul-k8s config entries (``consul.hashicorp.com/v1alpha1``), and back.

Emit
  - A TrafficSplit without ``matches`` becomes a ``ServiceSplitter`` named after the root Service, its
    weights turned into percentages with at most two decimals. The consul-k8s webhook adds them as
    float32 in list order and demands exactly 100, which plain 2-decimal rounding misses for about one
    split in ten; ``consul_percentages`` rounds by largest remainder and then reorders (exact) or, if
    no order works, moves 0.01 between entries (reported) until the float32 sum is exactly 100.
  - A TrafficSplit with ``matches`` becomes a ``ServiceRouter`` whose routes send matching requests to
    one backend (a Consul route has one destination). Unmatched requests follow the router's implicit
    default route to the root itself, which is SMI's meaning. A matched split with several
    positive-weight backends cannot be expressed; its routes go to the heaviest backend (the stable
    majority, never a mix of versions behind the root) and the loss is reported.
  - Consul chains splitters (a split to a service that has its own splitter is split again); SMI does
    not. Where a backend is itself a split root, the entry names a ``ServiceResolver`` subset
    (``smi-bridge-unsplit``, no filter) of it, which Consul resolves directly. That is the only
    ``ServiceResolver`` we emit: SMI has no subsets of its own.
  - ``ServiceDefaults {protocol: http}`` for the root and every backend of a split or router and for
    every intention destination with HTTP permissions (Consul refuses L7 config entries otherwise).
    Consul has one protocol per service, so a Service that also has TCP ports loses raw TCP (reported),
    and a split whose root has only TCP ports is refused: protocol http would break every connection.
  - One ``ServiceIntentions`` per destination identity, merging every TrafficTarget naming it. Sources
    with only TCP rules get ``action: allow`` (intentions have no port dimension: port lists are
    widened and reported); sources with HTTP rules get ``permissions`` (``pathRegex`` in full-match
    form, ``methods``, header ``regex``) followed by a catch-all ``deny``, because Consul sends an L7
    request no permission matched to the default intention policy, which is *allow* without ACLs.
    Every destination also lists ``{name: "*", action: deny}`` (SMI: a destination with a
    TrafficTarget is deny-by-default), and in ``enforce`` mode a ``*`` -> ``*`` deny named
    ``smi-bridge-default-deny`` covers identities nobody names.

Names: a Consul service name is the Kubernetes Service name (consul-k8s registers pods under the
Service that selects them); for identities it is the ServiceAccount name, which consul-k8s with ACLs
requires to equal the service name. On Consul CE every Kubernetes namespace maps to one Consul
namespace, so config entries are unique by name across namespaces and intention sources carry no
namespace: colliding entries are reported (the first namespace in sort order is emitted) and every
source namespace collapses (reported). ``Options.consul_namespaces`` (Consul Enterprise with namespace
mirroring) emits source namespaces and treats namespaces as distinct instead.

Ingest reads those kinds (as emitted and as written by hand) back into the IR, reporting every field
the IR cannot hold; see ``ConsulBackend.ingest``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import permutations
from typing import Any

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

API_GROUP = "consul.hashicorp.com"
API_VERSION = f"{API_GROUP}/v1alpha1"
UNSPLIT_SUBSET = "smi-bridge-unsplit"
DEFAULT_DENY_NAME = "smi-bridge-default-deny"
# A ``*`` destination is keyed cluster-wide; the Kubernetes namespace holding it does not matter to Consul.
DEFAULT_DENY_NAMESPACE = "default"
WILDCARD = "*"
# The methods consul-k8s and Consul accept in routes and permissions (Go's net/http constants).
CONSUL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"})
L7_PROTOCOLS = frozenset({"http", "http2", "grpc"})
CATCH_ALL_HTTP: dict[str, Any] = {"pathPrefix": "/"}

# --- checks: emit ----------------------------------------------------------------------------------

ALL_ZERO = Check("SMT300", Severity.ERROR, "split with every weight zero is not emitted")
WEIGHT_VANISHES = Check("SMT301", Severity.WARNING, "a positive weight rounds to 0.00% in a ServiceSplitter")
WEIGHT_ROUNDED = Check("SMT302", Severity.INFO, "weights rounded to 0.01% steps for a ServiceSplitter")
WEIGHT_NUDGED = Check("SMT303", Severity.INFO, "0.01% moved between splits so the float32 sum is exactly 100")
FLOAT32_UNSOLVED = Check("SMT304", Severity.ERROR, "no 2-decimal percentages found that the webhook accepts")
MATCHED_WEIGHTED = Check(
    "SMT305", Severity.WARNING, "matched split with several weighted backends: one backend"
)
MATCH_DROPPED = Check("SMT306", Severity.WARNING, "route match Consul cannot express was left out")
PORTS_IGNORED = Check("SMT307", Severity.WARNING, "Consul routes and splits by service, not by port")
TCP_ON_L7 = Check("SMT308", Severity.WARNING, "service made L7 (protocol http) although it carries raw TCP")
NAME_COLLISION = Check("SMT309", Severity.ERROR, "config entry name taken in another namespace (Consul CE)")
PORTS_WIDENED = Check("SMT310", Severity.WARNING, "intentions have no port dimension: ports widened")
SOURCE_NAMESPACE = Check("SMT311", Severity.WARNING, "source namespaces collapse on Consul CE")
NO_UDP = Check("SMT312", Severity.WARNING, "Consul service mesh carries no UDP: UDP rule not translated")
SERVICE_NAME = Check(
    "SMT313", Severity.WARNING, "Consul service name of an identity differs from its ServiceAccount"
)
NAME_ASSUMED = Check("SMT314", Severity.INFO, "Consul service name assumed equal to the ServiceAccount name")
NOTHING_ALLOWED = Check("SMT315", Severity.INFO, "HTTP rule with no expressible route allows nothing")
TCP_SPLIT = Check("SMT316", Severity.ERROR, "split of a TCP-only Service: Consul splits only L7 services")

# --- checks: ingest --------------------------------------------------------------------------------

UNKNOWN_KIND = Check("SMX300", Severity.INFO, "object of a kind the consul importer does not read")
ROUTE_FEATURE = Check("SMX301", Severity.WARNING, "ServiceRouter feature with no SMI form")
RESOLVER_FEATURE = Check("SMX302", Severity.WARNING, "ServiceResolver feature with no SMI form")
SPLITTER_FEATURE = Check("SMX303", Severity.WARNING, "ServiceSplitter feature with no SMI form")
DENY = Check("SMX304", Severity.INFO, "deny intention or permission (SMI only allows; denial is its default)")
WILDCARD_NAME = Check("SMX305", Severity.WARNING, "wildcard intention source or destination")
JWT = Check("SMX306", Severity.WARNING, "JWT requirement has no SMI form: the grant is left out")
FOREIGN_SOURCE = Check("SMX307", Severity.WARNING, "peer, partition or sameness-group source has no SMI form")
HEADER_AS_REGEX = Check("SMX308", Severity.INFO, "header or path condition rewritten as an equivalent regex")
INVERT = Check("SMX309", Severity.WARNING, "inverted header match has no SMI form: the match is left out")
QUERY_PARAM = Check("SMX310", Severity.WARNING, "queryParam match has no SMI form: the route is left out")
WEIGHTS = Check("SMX311", Severity.WARNING, "ServiceSplitter weights not in 0.01 steps or not summing to 100")
CONFLICT = Check("SMX312", Severity.WARNING, "two config entries for one Consul name")
DEFAULTS_FEATURE = Check("SMX313", Severity.INFO, "ServiceDefaults/ProxyDefaults setting with no SMI form")
INVALID = Check("SMX314", Severity.ERROR, "malformed config entry or field (left out)")
ROUTING_SHAPE = Check(
    "SMX315", Severity.WARNING, "routing SMI cannot hold (one TrafficSplit per root service)"
)
IDENTITY = Check("SMX316", Severity.INFO, "Consul service name resolved to ServiceAccounts")
L7_DEFAULT = Check(
    "SMX317", Severity.WARNING, "unmatched L7 request falls to Consul's default intention policy"
)
L7_ON_TCP = Check("SMX318", Severity.WARNING, "permissions on a destination whose protocol is not HTTP")

CHECKS: tuple[Check, ...] = (
    ALL_ZERO,
    WEIGHT_VANISHES,
    WEIGHT_ROUNDED,
    WEIGHT_NUDGED,
    FLOAT32_UNSOLVED,
    MATCHED_WEIGHTED,
    MATCH_DROPPED,
    PORTS_IGNORED,
    TCP_ON_L7,
    NAME_COLLISION,
    PORTS_WIDENED,
    SOURCE_NAMESPACE,
    NO_UDP,
    SERVICE_NAME,
    NAME_ASSUMED,
    NOTHING_ALLOWED,
    TCP_SPLIT,
    UNKNOWN_KIND,
    ROUTE_FEATURE,
    RESOLVER_FEATURE,
    SPLITTER_FEATURE,
    DENY,
    WILDCARD_NAME,
    JWT,
    FOREIGN_SOURCE,
    HEADER_AS_REGEX,
    INVERT,
    QUERY_PARAM,
    WEIGHTS,
    CONFLICT,
    DEFAULTS_FEATURE,
    INVALID,
    ROUTING_SHAPE,
    IDENTITY,
    L7_DEFAULT,
    L7_ON_TCP,
)


# --- percentages -----------------------------------------------------------------------------------


def float32(x: float) -> float:
    """``x`` rounded to the nearest IEEE float32 (what Go's ``float32(x)`` gives)."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def webhook_sum(percentages: Iterable[float]) -> float:
    """The consul-k8s webhook's sum: float32 additions in list order, each rounded to float32.

    A float32 + float32 computed in double and rounded once to float32 equals the float32 sum, so this
    is the Go loop ``total += split.Weight`` exactly.
    """
    total = 0.0
    for p in percentages:
        total = float32(total + float32(p))
    return total


def percent(hundredths: int) -> int | float:
    """The YAML value for ``hundredths`` of a percent: an int when whole, else a 2-decimal float."""
    if hundredths % 100 == 0:
        return hundredths // 100
    return hundredths / 100


def largest_remainder(weights: Sequence[int], total: int) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total``; ties go to the earlier entry.

    Zero stays zero: the leftover units are fewer than the entries with a positive remainder.
    """
    s = sum(weights)
    quotas = [w * total // s for w in weights]
    remainders = [w * total % s for w in weights]
    left = total - sum(quotas)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        quotas[i] += 1
    return quotas


@dataclass(frozen=True)
class ConsulPercentages:
    """Split percentages the webhook accepts: ``hundredths[i]`` belongs to input entry ``order[k]``."""

    order: tuple[int, ...]  # emit the input entries in this order
    hundredths: tuple[int, ...]  # per input entry (not per output position)
    moved: int  # hundredths moved away from the largest-remainder result (0: exact rounding kept)
    accepted: bool  # False only if no candidate passed (never observed; reported as an error)

    def emitted(self) -> list[tuple[int, int]]:
        """``(input index, hundredths)`` in output order."""
        return [(i, self.hundredths[i]) for i in self.order]


def _accepted(values: Sequence[int], order: Sequence[int]) -> bool:
    return webhook_sum(v / 100 for v in (values[i] for i in order)) == 100.0


def _orders(values: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Candidate emission orders: as given, ascending, descending, then more, bounded."""
    idx = tuple(range(len(values)))
    yield idx
    ascending = tuple(sorted(idx, key=lambda i: (values[i], i)))
    descending = tuple(sorted(idx, key=lambda i: (-values[i], i)))
    yield ascending
    yield descending
    if len(values) <= 6:
        yield from permutations(idx)
    else:
        for k in range(1, len(values)):
            yield ascending[k:] + ascending[:k]
            yield descending[k:] + descending[:k]


def _nudged(values: Sequence[int], max_units: int = 3) -> Iterator[tuple[list[int], int]]:
    """``values`` with up to ``max_units`` hundredths moved from one positive entry to another."""
    positive = [i for i, v in enumerate(values) if v > 0]
    for units in range(1, max_units + 1):
        for i in positive:
            if values[i] - units < 1:
                continue
            for j in positive:
                if i != j:
                    out = list(values)
                    out[i] -= units
                    out[j] += units
                    yield out, units


def consul_percentages(weights: Sequence[int]) -> ConsulPercentages:
    """Percentages (in hundredths) for ``weights`` that consul-k8s accepts; ``sum(weights) > 0``.

    Largest-remainder rounding to 0.01 first; then the first emission order whose float32 sum is
    exactly 100; failing every order, the smallest move of 0.01 steps between positive entries that
    an order accepts. Zero weights stay zero and positive entries keep at least 0.01 when they had it.
    """
    base = largest_remainder(weights, 10000)
    for order in _orders(base):
        if _accepted(base, order):
            return ConsulPercentages(order, tuple(base), 0, True)
    for values, units in _nudged(base):
        for order in _orders(values):
            if _accepted(values, order):
                return ConsulPercentages(order, tuple(values), units, True)
    return ConsulPercentages(tuple(range(len(base))), tuple(base), 0, False)


# --- regex glue ------------------------------------------------------------------------------------

_RE2_SPECIAL = set("\\.+*?()|[]{}^$-#&~")


def literal_regex(text: str) -> str:
    """An RE2 (and Python ``re``) pattern matching exactly ``text``."""
    out = []
    for ch in text:
        if ch in _RE2_SPECIAL:
            out.append("\\" + ch)
        elif ch.isprintable() and ord(ch) < 128:
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else ch)
    return "".join(out)


def smi_path_regex(full_match: str) -> str:
    """The SMI (start-anchored) pathRegex for a full-match path regex.

    ``(?:R).*`` (what ``full_match_form`` writes) gives ``R`` back; a literal or literal prefix gives its
    escaped text (``$``-terminated when exact); anything else gets ``(?:P)$``.
    """
    head, body = split_leading_flags(full_match)
    inner = strip_full_match(body)
    if inner is not None:
        return head + inner
    kind, literal = reduce_to_literal(full_match)
    if kind == "exact":
        return literal_regex(literal) + "$"
    if kind == "prefix":
        return literal_regex(literal)
    return f"(?:{full_match})$"


def _path_literal(match: HTTPMatch) -> tuple[str, str] | None:
    """``("exact"|"prefix", text)`` when the match's path is a literal or a literal prefix."""
    if match.path_regex is None:
        return ("prefix", "")
    kind, literal = reduce_to_literal(full_match_form(match.path_regex))
    if kind in ("exact", "prefix"):
        return (kind, literal)
    if kind == "any":
        return ("prefix", "")
    return None


def disjoint(a: HTTPMatch, b: HTTPMatch) -> bool:
    """True when no request can match both (decided on literal paths and method lists only)."""
    if a.methods and b.methods and not set(a.methods) & set(b.methods):
        return True
    pa, pb = _path_literal(a), _path_literal(b)
    if pa is None or pb is None:
        return False
    (ka, ta), (kb, tb) = pa, pb
    if ka == "exact" and kb == "exact":
        return ta != tb
    if ka == "exact":
        return not ta.startswith(tb)
    if kb == "exact":
        return not tb.startswith(ta)
    return not (ta.startswith(tb) or tb.startswith(ta))


# --- emit ------------------------------------------------------------------------------------------


def _enterprise(options: Options) -> bool:
    # Options is shared; the flag lands there as ``consul_namespaces`` (see the report to the lead).
    return bool(getattr(options, "consul_namespaces", False))


@dataclass
class _Grant:
    """What one Consul source may do on one destination, merged over TrafficTargets."""

    name: str
    namespace: str
    l4: bool = False
    matches: list[HTTPMatch] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)


@dataclass
class _Chain:
    """What we emit for one root Service's discovery chain."""

    split: Split
    backends: list[tuple[str, int]]  # duplicates merged, in first-appearance order


class _Emitter:
    def __init__(self, ir: IR, options: Options) -> None:
        self.ir = ir
        self.options = options
        self.ctx = EmitContext("consul", options)
        self.enterprise = _enterprise(options)
        self.l7: dict[tuple[str, str], list[Origin]] = {}
        self.unsplit_subsets: dict[tuple[str, str], list[Origin]] = {}
        # (kind family, Consul key) -> (Kubernetes namespace, origin) of the first claimant
        self.claims: dict[tuple[str, str, str], tuple[str, Origin]] = {}

    # -- names ---------------------------------------------------------------------------------

    def _consul_ns(self, namespace: str) -> str:
        """The Consul namespace a Kubernetes namespace maps to ("" = the one CE namespace)."""
        return namespace if self.enterprise else ""

    def _claim(self, family: str, namespace: str, name: str, origin: Origin, what: str) -> bool:
        """Reserve a Consul name; False (and an error) when another namespace holds it (CE)."""
        key = (family, self._consul_ns(namespace), name)
        held = self.claims.get(key)
        if held is None:
            self.claims[key] = (namespace, origin)
            return True
        if held[0] == namespace:
            return True
        self.ctx.lossy(
            NAME_COLLISION.code,
            f"{what} needs the Consul name {name!r}, already used from namespace {held[0]!r} "
            f"({held[1].ref()}); on Consul CE every namespace shares one Consul namespace, so it is "
            "not emitted",
            origin,
            severity=NAME_COLLISION.severity,
            hint="rename one of the Services/ServiceAccounts, or use Consul Enterprise namespace mirroring "
            "(consul_namespaces option)",
        )
        return False

    def _mark_l7(self, namespace: str, name: str, origin: Origin) -> None:
        self.l7.setdefault((namespace, name), []).append(origin)

    # -- splits --------------------------------------------------------------------------------

    def emit_splits(self) -> None:
        applied: dict[tuple[str, str], Split] = {}
        # semantics: when two splits share a root, the first by name applies (build warns)
        for split in sorted(self.ir.splits, key=lambda s: (s.namespace, s.root, s.name)):
            key = (split.namespace, split.root)
            if key in applied:
                self.ctx.consume(split, *split.backends)  # has no effect in SMI either
                continue
            applied[key] = split
        chains: dict[tuple[str, str], _Chain] = {}
        for key, split in sorted(applied.items()):
            # refused and colliding splits are consumed: their error below is the precise report
            self.ctx.consume(split, *split.backends)
            if split.total_weight == 0:
                self.ctx.lossy(
                    ALL_ZERO.code,
                    f"TrafficSplit {split.namespace}/{split.name}: every backend weight is 0; no "
                    f"ServiceSplitter or ServiceRouter is emitted for {split.root}",
                    split.origin,
                    severity=ALL_ZERO.severity,
                    hint="give at least one backend a positive weight",
                )
                continue
            root = self.ir.service(split.namespace, split.root)
            if root is not None and root.ports and not any(p.is_http for p in root.ports):
                self.ctx.lossy(
                    TCP_SPLIT.code,
                    f"TrafficSplit {split.namespace}/{split.name}: {split.root} has only non-HTTP port(s) "
                    f"{', '.join(str(p.port) for p in root.ports)}; a Consul splitter or router needs protocol "
                    "http, which would break those connections, so none is emitted and traffic stays on "
                    f"{split.root}",
                    split.origin,
                    severity=TCP_SPLIT.severity,
                    hint="name the port http (or set appProtocol) if it carries HTTP; split TCP with another target",
                )
                continue
            if not self._claim(
                "chain", split.namespace, split.root, split.origin, f"TrafficSplit {split.name}"
            ):
                continue
            merged: dict[str, int] = {}
            for b in split.backends:
                merged[b.service] = merged.get(b.service, 0) + b.weight
            chains[key] = _Chain(split, list(merged.items()))
        unsplit_roots = {k for k, c in chains.items() if c.split.matches is None}
        for _, chain in sorted(chains.items()):
            if chain.split.matches is None:
                self._splitter(chain, unsplit_roots)
            else:
                self._router(chain, unsplit_roots)

    def _target_entry(
        self, namespace: str, root: str, service: str, unsplit_roots: set[tuple[str, str]], origin: Origin
    ) -> dict[str, Any]:
        """``{service[, serviceSubset]}`` reaching ``service`` without Consul chaining its own splitter."""
        entry: dict[str, Any] = {"service": service}
        if service != root and (namespace, service) in unsplit_roots:
            entry["serviceSubset"] = UNSPLIT_SUBSET
            self.unsplit_subsets.setdefault((namespace, service), []).append(origin)
        return entry

    def _port_check(self, split: Split, backends: Iterable[str]) -> None:
        root = self.ir.service(split.namespace, split.root)
        if root is None or not root.ports:
            return
        for name in backends:
            svc = self.ir.service(split.namespace, name)
            if svc is None or not svc.ports or name == split.root:
                continue
            missing = [p.port for p in root.ports if svc.port(p.port) is None]
            if missing:
                self.ctx.lossy(
                    PORTS_IGNORED.code,
                    f"TrafficSplit {split.namespace}/{split.name}: backend {name} lacks root port(s) "
                    f"{', '.join(map(str, missing))}; SMI leaves it out for those ports, Consul splits by "
                    "service and sends it that traffic too",
                    split.origin,
                )

    def _splitter(self, chain: _Chain, unsplit_roots: set[tuple[str, str]]) -> None:
        split = chain.split
        ns = split.namespace
        weights = [w for _, w in chain.backends]
        result = consul_percentages(weights)
        self._report_percentages(split, chain, result)
        splits = []
        for i, hundredths in result.emitted():
            service = chain.backends[i][0]
            entry = self._target_entry(ns, split.root, service, unsplit_roots, split.origin)
            entry["weight"] = percent(hundredths)
            splits.append(entry)
        sources = [split.origin, *(b.origin for b in split.backends)]
        self.ctx.object(API_VERSION, "ServiceSplitter", ns, split.root, {"splits": splits}, sources)
        for service in [split.root, *(s for s, _ in chain.backends)]:
            self._mark_l7(ns, service, split.origin)
        self._port_check(split, (s for s, _ in chain.backends))

    def _report_percentages(self, split: Split, chain: _Chain, result: ConsulPercentages) -> None:
        ref = f"TrafficSplit {split.namespace}/{split.name}"
        total = sum(w for _, w in chain.backends)
        shown = ", ".join(
            f"{svc} {percent(result.hundredths[i])}%" for i, (svc, _) in enumerate(chain.backends)
        )
        if not result.accepted:
            self.ctx.lossy(
                FLOAT32_UNSOLVED.code,
                f"{ref}: no order or 0.01 adjustment of {shown} adds up to exactly 100 in float32; the "
                "consul-k8s webhook will reject this ServiceSplitter",
                split.origin,
                severity=FLOAT32_UNSOLVED.severity,
            )
        vanished = [svc for i, (svc, w) in enumerate(chain.backends) if w > 0 and result.hundredths[i] == 0]
        if vanished:
            self.ctx.lossy(
                WEIGHT_VANISHES.code,
                f"{ref}: backend(s) {', '.join(vanished)} get less than 0.005% and round to 0%: {shown}",
                split.origin,
                hint="Consul splits in 0.01% steps",
            )
        inexact = [i for i, (_, w) in enumerate(chain.backends) if w * 10000 != result.hundredths[i] * total]
        if inexact and result.moved == 0 and not vanished:
            self.ctx.lossy(
                WEIGHT_ROUNDED.code,
                f"{ref}: weights {', '.join(str(w) for _, w in chain.backends)} become {shown} (0.01% steps)",
                split.origin,
                severity=WEIGHT_ROUNDED.severity,
            )
        if result.moved:
            self.ctx.lossy(
                WEIGHT_NUDGED.code,
                f"{ref}: {result.moved * 0.01:.2f}% moved between backends so that the consul-k8s webhook's "
                f"float32 sum is exactly 100: {shown}",
                split.origin,
                severity=WEIGHT_NUDGED.severity,
            )

    def _http_match(self, match: HTTPMatch, where: str, origin: Origin) -> dict[str, Any] | None:
        """A Consul ``http`` match (routes and permissions share the fields we use), or None + report."""
        http: dict[str, Any] = {}
        if match.path_regex is not None:
            reason = check_re2(match.path_regex)
            if reason is not None:
                self.ctx.lossy(
                    MATCH_DROPPED.code, f"{where}: pathRegex {match.path_regex!r} left out: {reason}", origin
                )
                return None
            http["pathRegex"] = full_match_form(match.path_regex)
        if match.methods:
            bad = [m for m in match.methods if m not in CONSUL_METHODS]
            if bad:
                self.ctx.lossy(
                    MATCH_DROPPED.code,
                    f"{where}: method(s) {', '.join(bad)} are not among Consul's "
                    f"{', '.join(sorted(CONSUL_METHODS))}; the match is left out",
                    origin,
                )
                return None
            http["methods"] = list(dict.fromkeys(match.methods))
        if match.headers:
            headers = []
            for h in match.headers:
                reason = check_re2(h.regex)
                if reason is not None:
                    self.ctx.lossy(
                        MATCH_DROPPED.code,
                        f"{where}: header {h.name} regex {h.regex!r} left out: {reason}",
                        origin,
                    )
                    return None
                headers.append({"name": h.name, "regex": h.regex})
            http["header"] = headers
        return http or dict(CATCH_ALL_HTTP)

    def _router(self, chain: _Chain, unsplit_roots: set[tuple[str, str]]) -> None:
        split = chain.split
        ns = split.namespace
        assert split.matches is not None
        positive = [(svc, w) for svc, w in chain.backends if w > 0]
        destination = max(positive, key=lambda p: p[1])[0]  # max keeps the first of equal weights
        if len(positive) > 1:
            self.ctx.lossy(
                MATCHED_WEIGHTED.code,
                f"TrafficSplit {ns}/{split.name}: a Consul route has one destination, so matching requests "
                f"all go to {destination} (the heaviest backend) instead of "
                f"{', '.join(f'{s} {w}' for s, w in positive)}",
                split.origin,
                hint="split the matched traffic with a TrafficSplit without matches, or keep one positive backend",
            )
        routes = []
        for match in split.matches:
            http = self._http_match(match, f"TrafficSplit {ns}/{split.name} route {match.name}", match.origin)
            if http is None:
                continue
            dest = self._target_entry(ns, split.root, destination, unsplit_roots, split.origin)
            routes.append({"match": {"http": http}, "destination": dest})
        if routes:
            sources = [split.origin, *(b.origin for b in split.backends), *(m.origin for m in split.matches)]
            self.ctx.object(API_VERSION, "ServiceRouter", ns, split.root, {"routes": routes}, sources)
            for service in [split.root, destination]:
                self._mark_l7(ns, service, split.origin)
            self._port_check(split, [destination])

    # -- access --------------------------------------------------------------------------------

    def _check_identity_name(self, identity: Identity, origin: Origin, role: str) -> None:
        """Say when the Consul service name we write for an identity may not be its pods' service name."""
        same_named = self.ir.service(identity.namespace, identity.name)
        if same_named is not None and same_named.service_accounts:
            if identity.name not in same_named.service_accounts:
                self.ctx.lossy(
                    SERVICE_NAME.code,
                    f"{role} {identity}: the intention names Consul service {identity.name!r}, which is the "
                    f"Kubernetes Service {identity.name} whose pods run as "
                    f"{', '.join(same_named.service_accounts)}, not as ServiceAccount {identity.name}",
                    origin,
                    hint="name the ServiceAccount after its Service, as consul-k8s with ACLs requires",
                )
            return
        behind = sorted(
            s.name
            for s in self.ir.services
            if s.namespace == identity.namespace and identity.name in s.service_accounts
        )
        if behind:
            self.ctx.lossy(
                SERVICE_NAME.code,
                f"{role} {identity}: pods running as ServiceAccount {identity.name} sit behind Service(s) "
                f"{', '.join(behind)}; consul-k8s registers them under a Service name (with ACLs it refuses "
                f"pods whose ServiceAccount differs from it), while the intention names {identity.name!r}",
                origin,
                hint="name the ServiceAccount after its Service, as consul-k8s with ACLs requires",
            )
        elif same_named is None and not self.ir.pods_of(identity):
            self.ctx.lossy(
                NAME_ASSUMED.code,
                f"{role} {identity}: no Service or pod for it in the input; its Consul service name is "
                f"assumed to be {identity.name!r} (consul-k8s with ACLs ties service name and ServiceAccount)",
                origin,
                severity=NAME_ASSUMED.severity,
            )

    def emit_intentions(self) -> None:
        by_dest: dict[Identity, list[TrafficTarget]] = {}
        for t in self.ir.targets:
            by_dest.setdefault(t.destination, []).append(t)
        for dest in sorted(by_dest, key=lambda i: (i.namespace, i.name)):
            targets = sorted(by_dest[dest], key=lambda t: (t.namespace, t.name))
            if not self._claim(
                "intentions",
                dest.namespace,
                dest.name,
                targets[0].origin,
                f"the destination {dest} of TrafficTarget(s) {', '.join(t.name for t in targets)}",
            ):
                self.ctx.consume(*targets, *(r for t in targets for r in t.rules))  # SMT309 reports them
                continue
            self._intentions(dest, targets)

    def _source_key(self, identity: Identity) -> tuple[str, str]:
        return (identity.namespace if self.enterprise else "", identity.name)

    def _intentions(self, dest: Identity, targets: list[TrafficTarget]) -> None:
        grants: dict[tuple[str, str], _Grant] = {}
        self._check_identity_name(dest, targets[0].origin, "destination")
        checked: set[Identity] = set()
        for t in targets:
            http_rules = [r for r in t.rules if r.kind == "http"]
            tcp_rules = [r for r in t.rules if r.kind == "tcp"]
            for r in t.rules:
                if r.kind == "udp":
                    self.ctx.lossy(
                        NO_UDP.code,
                        f"TrafficTarget {t.namespace}/{t.name}: UDP rule {r.route} grants nothing on Consul, "
                        "whose service mesh carries only TCP and HTTP",
                        r.origin,
                    )
            if http_rules and tcp_rules:
                ports = sorted({p for r in tcp_rules for p in r.ports})
                if ports:
                    self.ctx.lossy(
                        PORTS_WIDENED.code,
                        f"TrafficTarget {t.namespace}/{t.name}: its HTTP rules apply on port(s) "
                        f"{', '.join(map(str, ports))} only; Consul intentions allow them on every port",
                        t.origin,
                    )
            elif tcp_rules:
                ports = sorted({p for r in tcp_rules for p in r.ports})
                if ports and not any(not r.ports for r in tcp_rules):
                    self.ctx.lossy(
                        PORTS_WIDENED.code,
                        f"TrafficTarget {t.namespace}/{t.name}: TCP access limited to port(s) "
                        f"{', '.join(map(str, ports))} becomes access to every port of {dest.name}",
                        t.origin,
                    )
            self.ctx.consume(t, *(r for r in t.rules if r.kind != "udp"))
            if not http_rules and not tcp_rules:
                continue  # no rule Consul can carry: the destination is merely deny-by-default
            matches: list[HTTPMatch] = [m for r in http_rules for m in r.matches]
            for src in dict.fromkeys(t.sources):
                if src not in checked:
                    checked.add(src)
                    self._check_identity_name(src, t.origin, "source")
                key = self._source_key(src)
                grant = grants.setdefault(key, _Grant(src.name, src.namespace))
                if src not in grant.identities:
                    grant.identities.append(src)
                grant.targets.append(f"{t.namespace}/{t.name}")
                if http_rules:
                    for m in matches:
                        if m not in grant.matches:
                            grant.matches.append(m)
                else:
                    grant.l4 = True
        self._write_intentions(dest, targets, grants)

    def _write_intentions(
        self, dest: Identity, targets: list[TrafficTarget], grants: dict[tuple[str, str], _Grant]
    ) -> None:
        sources: list[dict[str, Any]] = []
        l7 = False
        has_l4 = False
        collapsed: list[str] = []
        origin = targets[0].origin
        for key in sorted(grants):
            grant = grants[key]
            entry: dict[str, Any] = {"name": grant.name}
            if self.enterprise:
                entry["namespace"] = grant.namespace
            else:
                collapsed.append(f"{grant.name} (from {', '.join(str(i) for i in grant.identities)})")
            if grant.l4:
                # an L4 allow covers every HTTP route too (SMI: a target without HTTP rules allows all of
                # HTTP on its ports), so HTTP grants from other targets add nothing; port limits are
                # reported per target above
                entry["action"] = "allow"
                has_l4 = True
            else:
                permissions = []
                for m in grant.matches:
                    http = self._http_match(m, f"source {grant.name} of {dest} route {m.name}", m.origin)
                    if http is not None:
                        permission = {"action": "allow", "http": http}
                        if permission not in permissions:
                            permissions.append(permission)
                if not permissions:
                    self.ctx.lossy(
                        NOTHING_ALLOWED.code,
                        f"source {grant.name} of {dest}: no HTTP route to allow (TrafficTarget(s) "
                        f"{', '.join(grant.targets)}), so it gets no intention and stays denied",
                        origin,
                        severity=NOTHING_ALLOWED.severity,
                    )
                    continue
                # Consul sends an L7 request no permission matched to the default intention policy (allow
                # without ACLs); SMI denies it, so say so explicitly.
                permissions.append({"action": "deny", "http": dict(CATCH_ALL_HTTP)})
                entry["permissions"] = permissions
                l7 = True
            entry["description"] = "smi-bridge: TrafficTarget " + ", ".join(dict.fromkeys(grant.targets))
            sources.append(entry)
        wildcard: dict[str, Any] = {"name": WILDCARD, "action": "deny"}
        if self.enterprise:
            wildcard["namespace"] = WILDCARD
        wildcard["description"] = "smi-bridge: a destination with TrafficTargets denies everyone else"
        sources.append(wildcard)
        if collapsed and not self.enterprise:
            self.ctx.lossy(
                SOURCE_NAMESPACE.code,
                f"ServiceIntentions {dest.name}: Consul CE sources have no namespace, so "
                f"{'; '.join(collapsed)} match(es) that service name in every Kubernetes namespace",
                origin,
                hint="with Consul Enterprise namespace mirroring set the consul_namespaces option",
            )
        if l7 and has_l4:
            self.ctx.lossy(
                TCP_ON_L7.code,
                f"ServiceIntentions {dest.name}: HTTP permissions need protocol http on {dest.name}, so the "
                "sources allowed at L4 can reach it only with HTTP, not raw TCP",
                origin,
            )
        origins = [t.origin for t in targets] + [r.origin for t in targets for r in t.rules]
        self.ctx.object(
            API_VERSION,
            "ServiceIntentions",
            dest.namespace,
            dest.name,
            {"destination": {"name": dest.name}, "sources": sources},
            origins,
        )
        if l7:
            for t in targets:
                if any(r.kind == "http" for r in t.rules):
                    self._mark_l7(dest.namespace, dest.name, t.origin)

    def emit_defaults(self) -> None:
        emitted_in: dict[tuple[str, str], str] = {}
        for (ns, name), origins in sorted(self.l7.items()):
            key = (self._consul_ns(ns), name)
            if key in emitted_in:
                # CE: the same Consul service, already declared http from another namespace
                self.ctx.object(API_VERSION, "ServiceDefaults", emitted_in[key], name, None, origins)
                continue
            emitted_in[key] = ns
            self.ctx.object(API_VERSION, "ServiceDefaults", ns, name, {"protocol": "http"}, origins)
            service = self.ir.service(ns, name)
            non_http = [p.port for p in service.ports if not p.is_http] if service is not None else []
            if non_http:
                self.ctx.lossy(
                    TCP_ON_L7.code,
                    f"Service {ns}/{name}: splitting, routing or HTTP permissions need ServiceDefaults protocol "
                    f"http, and Consul has one protocol per service, so its non-HTTP port(s) "
                    f"{', '.join(map(str, non_http))} stop carrying raw TCP",
                    origins[0],
                )
        for (ns, name), origins in sorted(self.unsplit_subsets.items()):
            self.ctx.object(
                API_VERSION,
                "ServiceResolver",
                ns,
                name,
                {"subsets": {UNSPLIT_SUBSET: {"onlyPassing": False}}},
                origins,
            )

    def emit_default_deny(self) -> None:
        if self.options.access_mode != "enforce":
            return
        source: dict[str, Any] = {"name": WILDCARD, "action": "deny"}
        destination: dict[str, Any] = {"name": WILDCARD}
        if self.enterprise:
            source["namespace"] = WILDCARD
            destination["namespace"] = WILDCARD
        source["description"] = "smi-bridge: access mode enforce denies identities no TrafficTarget names"
        self.ctx.object(
            API_VERSION,
            "ServiceIntentions",
            DEFAULT_DENY_NAMESPACE,
            DEFAULT_DENY_NAME,
            {"destination": destination, "sources": [source]},
            [],
        )

    def run(self) -> Emission:
        self.emit_splits()
        self.emit_intentions()
        self.emit_defaults()
        self.emit_default_deny()
        return self.ctx.emission()


# --- ingest ----------------------------------------------------------------------------------------

CONSUL_KINDS = (
    "ServiceDefaults",
    "ProxyDefaults",
    "ServiceResolver",
    "ServiceSplitter",
    "ServiceRouter",
    "ServiceIntentions",
)
# Kubernetes kinds that reach ``ingest`` through ``inventory``; not reported as unknown.
_INVENTORY_KINDS = frozenset(
    {
        "Service",
        "Pod",
        "ServiceAccount",
        "Endpoints",
        "EndpointSlice",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "Namespace",
    }
)
_ROUTE_DESTINATION_FEATURES = (
    "prefixRewrite",
    "requestTimeout",
    "idleTimeout",
    "numRetries",
    "retryOnConnectFailure",
    "retryOn",
    "retryOnStatusCodes",
    "requestHeaders",
    "responseHeaders",
)
_RESOLVER_FEATURES = (
    "defaultSubset",
    "redirect",
    "failover",
    "loadBalancer",
    "connectTimeout",
    "requestTimeout",
    "prioritizeByLocality",
)


@dataclass
class _Entry:
    kind: str
    namespace: str
    name: str
    spec: Mapping[str, Any]
    origin: Origin
    index: int

    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def where(self) -> str:
        """The label with file:line, for messages that name two objects."""
        place = f" ({self.origin.file}:{self.origin.line})" if self.origin.file else ""
        return f"{self.label()}{place}"


# an ordered distribution over leaf Services: service -> share
_Distribution = dict[str, Fraction]


def consul_hundredths(weight: float) -> int:
    """Consul's own normalisation of a split weight: ``round(float32(w) * 100)`` in float32, half up."""
    return math.floor(float32(float32(weight) * 100.0) + 0.5)


def _integer_weights(dist: _Distribution) -> list[int]:
    """Relative integer weights for ``dist`` (exact: common denominator, then divided by the GCD)."""
    denominator = 1
    for share in dist.values():
        denominator = denominator * share.denominator // math.gcd(denominator, share.denominator)
    ints = [int(share * denominator) for share in dist.values()]
    g = 0
    for w in ints:
        g = math.gcd(g, w)
    return [w // g for w in ints] if g else ints


class _Ingester:
    def __init__(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> None:
        self.objects = objects
        self.inventory = inventory
        self.options = options
        self.enterprise = _enterprise(options)
        self.report = Report()
        self.entries: dict[str, dict[tuple[str, str], _Entry]] = {k: {} for k in CONSUL_KINDS}
        self.route_groups: list[RouteGroup] = []
        self.port_routes: list[PortRoute] = []
        self.splits: list[Split] = []
        self.targets: list[TrafficTarget] = []
        self.names: dict[tuple[str, str], set[str]] = {}  # taken names per (family, namespace)
        self.global_deny = False

    # -- reporting -----------------------------------------------------------------------------

    def diag(
        self,
        check: Check,
        message: str,
        origin: Origin,
        path: str | None = None,
        *,
        hint: str = "",
        severity: Severity | None = None,
    ) -> None:
        where = origin.child(path) if path is not None else origin
        self.report.add(
            Diagnostic.at(check.code, severity or check.severity, f"[consul] {message}", where, hint=hint)
        )

    def unique(self, family: str, namespace: str, name: str) -> str:
        return unique_name(self.names.setdefault((family, namespace), set()), name)

    # -- collection ----------------------------------------------------------------------------

    def _consul_ns(self, namespace: str) -> str:
        return namespace if self.enterprise else ""

    def collect(self) -> None:
        for index, source in enumerate(self.objects):
            obj = source.obj
            kind = obj.get("kind")
            api = obj.get("apiVersion")
            meta = obj.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            name = meta.get("name")
            namespace = meta.get("namespace") or source.origin.namespace or "default"
            group = api.rpartition("/")[0] if isinstance(api, str) else ""
            if group == API_GROUP and kind in CONSUL_KINDS:
                assert isinstance(kind, str)
                if not isinstance(name, str) or not name:
                    self.diag(
                        INVALID, f"{kind} without metadata.name is left out", source.origin, "metadata.name"
                    )
                    continue
                spec = obj.get("spec", {})
                if not isinstance(spec, Mapping):
                    self.diag(
                        INVALID,
                        f"{kind} {namespace}/{name}: spec is not a mapping; left out",
                        source.origin,
                        "spec",
                    )
                    continue
                self.report.resources += 1
                self._store(_Entry(kind, str(namespace), name, spec, source.origin, index))
            elif (
                isinstance(kind, str)
                and kind in _INVENTORY_KINDS
                and group in ("", "apps", "batch", "discovery.k8s.io")
            ):
                continue
            else:
                self.diag(
                    UNKNOWN_KIND,
                    f"{kind or '<no kind>'} {namespace}/{name or '<no name>'} ({api or 'no apiVersion'}) is not a "
                    "Consul config entry this importer reads; passed over",
                    source.origin,
                )

    def _key(self, entry: _Entry) -> tuple[str, str] | None:
        if entry.kind == "ProxyDefaults":
            if entry.name != "global":
                self.diag(
                    INVALID,
                    f"ProxyDefaults {entry.namespace}/{entry.name}: consul-k8s accepts only the "
                    "name 'global'; left out",
                    entry.origin,
                    "metadata.name",
                )
                return None
            return ("", "global")
        if entry.kind == "ServiceIntentions":
            dest = entry.spec.get("destination")
            dest_name = dest.get("name") if isinstance(dest, Mapping) else None
            if not isinstance(dest_name, str) or not dest_name:
                self.diag(
                    INVALID,
                    f"ServiceIntentions {entry.namespace}/{entry.name} has no "
                    "spec.destination.name; left out",
                    entry.origin,
                    "spec.destination.name",
                )
                return None
            dest_ns = dest.get("namespace") if isinstance(dest, Mapping) else None
            ns = dest_ns if isinstance(dest_ns, str) and dest_ns else entry.namespace
            return (self._consul_ns(ns), dest_name)
        return (self._consul_ns(entry.namespace), entry.name)

    def _store(self, entry: _Entry) -> None:
        key = self._key(entry)
        if key is None:
            return
        table = self.entries[entry.kind]
        held = table.get(key)
        if held is None:
            table[key] = entry
            return
        what = f"Consul {entry.kind} for {key[1]!r}"
        if (held.namespace, held.name) == (entry.namespace, entry.name):
            table[key] = entry
            self.diag(
                CONFLICT,
                f"{what} appears twice as {entry.where()} and {held.where()}; a later apply replaces the "
                "earlier, so the later one is applied",
                entry.origin,
            )
            return
        rule = (
            "the consul-k8s webhook keys ServiceIntentions by destination name"
            if entry.kind == "ServiceIntentions"
            else "on Consul CE a config entry name is unique across Kubernetes namespaces"
        )
        self.diag(
            CONFLICT,
            f"{what} is defined by {held.where()} and {entry.where()}; {rule} and admits the first applied, so "
            f"{held.where()} (first in input order) is applied",
            entry.origin,
        )

    # -- protocol ------------------------------------------------------------------------------

    def read_defaults(self) -> None:
        proxy = self.entries["ProxyDefaults"].get(("", "global"))
        self.default_protocol = "tcp"
        if proxy is not None:
            config = proxy.spec.get("config")
            if isinstance(config, Mapping):
                protocol = config.get("protocol")
                if isinstance(protocol, str):
                    self.default_protocol = protocol.lower()
                for key in sorted(k for k in config if k != "protocol"):
                    self.diag(
                        DEFAULTS_FEATURE,
                        f"ProxyDefaults global: config.{key} has no SMI form",
                        proxy.origin,
                        f"spec.config.{key}",
                    )
            for key in sorted(k for k in proxy.spec if k != "config"):
                self.diag(
                    DEFAULTS_FEATURE,
                    f"ProxyDefaults global: {key} has no SMI form",
                    proxy.origin,
                    f"spec.{key}",
                )
        for entry in self.entries["ServiceDefaults"].values():
            for key in sorted(k for k in entry.spec if k != "protocol"):
                self.diag(
                    DEFAULTS_FEATURE,
                    f"ServiceDefaults {entry.namespace}/{entry.name}: {key} has no SMI form",
                    entry.origin,
                    f"spec.{key}",
                )
            protocol = entry.spec.get("protocol")
            if protocol is not None and not isinstance(protocol, str):
                self.diag(
                    INVALID,
                    f"ServiceDefaults {entry.namespace}/{entry.name}: protocol is not a string",
                    entry.origin,
                    "spec.protocol",
                )

    def protocol(self, namespace: str, name: str) -> tuple[str, bool]:
        """The Consul protocol of a service and whether the input says so explicitly."""
        entry = self.entries["ServiceDefaults"].get((self._consul_ns(namespace), name))
        if entry is not None and isinstance(entry.spec.get("protocol"), str):
            return str(entry.spec["protocol"]).lower(), True
        has_proxy = ("", "global") in self.entries["ProxyDefaults"]
        return self.default_protocol, has_proxy

    # -- matches -------------------------------------------------------------------------------

    def header_match(
        self, header: Any, where: str, origin: Origin, path: str, *, intentions: bool
    ) -> HeaderMatch | None:
        if not isinstance(header, Mapping) or not isinstance(header.get("name"), str) or not header["name"]:
            self.diag(
                INVALID, f"{where}: header condition without a name; the match is left out", origin, path
            )
            return None
        name = str(header["name"]).lower()
        if header.get("invert"):
            self.diag(
                INVERT,
                f'{where}: header {name} with invert: true ("does not match") has no SMI form; '
                "the match is left out",
                origin,
                f"{path}.invert",
            )
            return None
        forms = [
            k for k in ("exact", "prefix", "suffix", "regex", "contains") if header.get(k) not in (None, "")
        ]
        present = header.get("present") is True
        if len(forms) + int(present) != 1:
            self.diag(
                INVALID,
                f"{where}: header {name} needs exactly one of exact, prefix, suffix, regex, present; "
                "the match is left out",
                origin,
                path,
            )
            return None
        if present:
            regex = ".*"
            form = "present"
        else:
            form = forms[0]
            value = header[form]
            if not isinstance(value, str):
                self.diag(
                    INVALID,
                    f"{where}: header {name} {form} is not a string; the match is left out",
                    origin,
                    f"{path}.{form}",
                )
                return None
            literal = literal_regex(value)
            regex = {
                "exact": literal,
                "prefix": literal + ".*",
                "suffix": ".*" + literal,
                "contains": ".*" + literal + ".*",
                "regex": value,
            }[form]
        if header.get("ignoreCase") is True:
            if not intentions or form in ("regex", "present"):
                self.diag(
                    INVALID,
                    f"{where}: header {name} ignoreCase applies only to exact/prefix/suffix/contains; "
                    "the match is left out",
                    origin,
                    f"{path}.ignoreCase",
                )
                return None
            regex = "(?i)" + regex
        reason = check_re2(regex)
        if reason is not None:
            self.diag(
                INVALID,
                f"{where}: header {name} regex {regex!r} is outside the RE2 subset SMI accepts "
                f"({reason}); the match is left out",
                origin,
                f"{path}.{form}",
            )
            return None
        if form != "regex" or header.get("ignoreCase") is True:
            self.diag(
                HEADER_AS_REGEX,
                f"{where}: header {name} {form}"
                f"{' (ignoreCase)' if header.get('ignoreCase') else ''} read as the full-match regex {regex!r}",
                origin,
                path,
            )
        return HeaderMatch(name, regex)

    def http_match(
        self, http: Any, match_name: str, where: str, origin: Origin, path: str, *, intentions: bool
    ) -> HTTPMatch | None:
        """An IR match for a Consul ``http`` block, or None (reported) when it has no SMI form."""
        at = origin.child(path)
        if http is None:
            return HTTPMatch(match_name, origin=at)
        if not isinstance(http, Mapping):
            self.diag(INVALID, f"{where}: http is not a mapping; left out", origin, path)
            return None
        allowed = {"pathExact", "pathPrefix", "pathRegex", "header", "methods"}
        allowed |= set() if intentions else {"queryParam", "caseInsensitive"}
        for key in sorted(set(http) - allowed):
            self.diag(
                INVALID,
                f"{where}: unknown field http.{key}; left out with its match",
                origin,
                f"{path}.{key}",
            )
            return None
        if http.get("queryParam"):
            self.diag(
                QUERY_PARAM,
                f"{where}: queryParam conditions have no SMI form; the route is left out",
                origin,
                f"{path}.queryParam",
            )
            return None
        paths = [k for k in ("pathExact", "pathPrefix", "pathRegex") if http.get(k) not in (None, "")]
        if len(paths) > 1:
            self.diag(
                INVALID, f"{where}: at most one of pathExact, pathPrefix, pathRegex; left out", origin, path
            )
            return None
        path_regex: str | None = None
        if paths:
            form = paths[0]
            value = http[form]
            if not isinstance(value, str):
                self.diag(INVALID, f"{where}: {form} is not a string; left out", origin, f"{path}.{form}")
                return None
            if form == "pathExact":
                path_regex = literal_regex(value) + "$"
            elif form == "pathPrefix":
                path_regex = None if value == "/" else literal_regex(value)
            else:
                path_regex = smi_path_regex(value)
            if http.get("caseInsensitive") is True:
                path_regex = "(?i)" + (path_regex if path_regex is not None else "/")
            reason = None if path_regex is None else check_re2(path_regex)
            if reason is not None:
                self.diag(
                    INVALID,
                    f"{where}: {form} {value!r} is outside the RE2 subset SMI accepts ({reason}); left out",
                    origin,
                    f"{path}.{form}",
                )
                return None
            if path_regex is not None and (form != "pathRegex" or http.get("caseInsensitive") is True):
                self.diag(
                    HEADER_AS_REGEX,
                    f"{where}: {form} {value!r}{' (caseInsensitive)' if http.get('caseInsensitive') else ''} "
                    f"read as the SMI pathRegex {path_regex!r}",
                    origin,
                    f"{path}.{form}",
                )
        elif http.get("caseInsensitive") is True:
            self.diag(
                HEADER_AS_REGEX,
                f"{where}: caseInsensitive without a path condition has no effect",
                origin,
                f"{path}.caseInsensitive",
            )
        methods: list[str] = []
        raw_methods = http.get("methods") or []
        if not isinstance(raw_methods, list) or not all(isinstance(m, str) for m in raw_methods):
            self.diag(
                INVALID, f"{where}: methods is not a list of strings; left out", origin, f"{path}.methods"
            )
            return None
        for m in raw_methods:
            if m.upper() not in CONSUL_METHODS:
                self.diag(
                    INVALID,
                    f"{where}: method {m!r} is not one Consul accepts; left out",
                    origin,
                    f"{path}.methods",
                )
                return None
            if m.upper() not in methods:
                methods.append(m.upper())
        headers: list[HeaderMatch] = []
        raw_headers = http.get("header") or []
        if not isinstance(raw_headers, list):
            self.diag(INVALID, f"{where}: header is not a list; left out", origin, f"{path}.header")
            return None
        for k, h in enumerate(raw_headers):
            hm = self.header_match(h, where, origin, f"{path}.header[{k}]", intentions=intentions)
            if hm is None:
                return None
            headers.append(hm)
        return HTTPMatch(match_name, path_regex, tuple(methods), tuple(headers), at)

    # -- discovery chain -----------------------------------------------------------------------

    def read_resolvers(self) -> None:
        """Report what resolvers do that SMI cannot; remember which subsets are smi-bridge's own."""
        self.own_subsets: set[tuple[str, str]] = set()  # (Consul key ns, service) with the unsplit subset
        for (cns, name), entry in sorted(self.entries["ServiceResolver"].items()):
            for feature in _RESOLVER_FEATURES:
                if entry.spec.get(feature) not in (None, "", {}, []):
                    self.diag(
                        RESOLVER_FEATURE,
                        f"ServiceResolver {entry.namespace}/{name}: {feature} has no SMI form and is not applied "
                        "(traffic is read as going to the service's own instances)",
                        entry.origin,
                        f"spec.{feature}",
                    )
            subsets = entry.spec.get("subsets") or {}
            if not isinstance(subsets, Mapping):
                self.diag(
                    INVALID,
                    f"ServiceResolver {entry.namespace}/{name}: subsets is not a mapping",
                    entry.origin,
                    "spec.subsets",
                )
                continue
            foreign = []
            for subset, body in subsets.items():
                plain = isinstance(body, Mapping) and not body.get("filter") and not body.get("onlyPassing")
                if subset == UNSPLIT_SUBSET and plain:
                    self.own_subsets.add((cns, name))
                else:
                    foreign.append(str(subset))
            if foreign:
                self.diag(
                    RESOLVER_FEATURE,
                    f"ServiceResolver {entry.namespace}/{name}: subset(s) {', '.join(sorted(foreign))} have no SMI "
                    "form; splits and routes naming them are read as going to the whole service",
                    entry.origin,
                    "spec.subsets",
                )
            for key in sorted(set(entry.spec) - {"subsets", *_RESOLVER_FEATURES}):
                self.diag(
                    RESOLVER_FEATURE,
                    f"ServiceResolver {entry.namespace}/{name}: {key} has no SMI form",
                    entry.origin,
                    f"spec.{key}",
                )

    def _subset(self, entry: _Entry, service: str, subset: Any, path: str, check: Check) -> None:
        """Report a ``serviceSubset`` reference unless it is smi-bridge's own unsplit subset."""
        if subset in (None, ""):
            return
        if subset == UNSPLIT_SUBSET and (self._consul_ns(entry.namespace), service) in self.own_subsets:
            return
        self.diag(
            check,
            f"{entry.label()}: serviceSubset {subset!r} of {service} has no SMI form; read as all of "
            f"{service}",
            entry.origin,
            path,
        )

    def read_splitters(self) -> None:
        """``self.splitters[(Consul ns, service)]``: [(backend, hundredths, follow its own splitter?)]."""
        self.splitters: dict[tuple[str, str], list[tuple[str, int, bool]]] = {}
        for key, entry in sorted(self.entries["ServiceSplitter"].items()):
            where = f"ServiceSplitter {entry.namespace}/{entry.name}"
            raw = entry.spec.get("splits")
            if not isinstance(raw, list) or not raw:
                self.diag(
                    INVALID,
                    f"{where}: spec.splits is missing or not a list; left out",
                    entry.origin,
                    "spec.splits",
                )
                continue
            merged: dict[str, tuple[int, bool]] = {}
            fractional = False
            for i, split in enumerate(raw):
                path = f"spec.splits[{i}]"
                if not isinstance(split, Mapping):
                    self.diag(INVALID, f"{where}: {path} is not a mapping; left out", entry.origin, path)
                    continue
                weight = split.get("weight", 0)
                if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 100:
                    self.diag(
                        INVALID,
                        f"{where}: weight {weight!r} is not a percentage in [0, 100]; split left out",
                        entry.origin,
                        f"{path}.weight",
                    )
                    continue
                hundredths = consul_hundredths(float(weight))
                if abs(float(weight) * 100 - hundredths) > 1e-3:
                    fractional = True
                service = split.get("service") or entry.name
                if not isinstance(service, str):
                    self.diag(
                        INVALID,
                        f"{where}: {path}.service is not a string; left out",
                        entry.origin,
                        f"{path}.service",
                    )
                    continue
                subset = split.get("serviceSubset")
                self._subset(entry, service, subset, f"{path}.serviceSubset", SPLITTER_FEATURE)
                for feature in ("namespace", "partition", "requestHeaders", "responseHeaders"):
                    if split.get(feature) not in (None, "", {}):
                        self.diag(
                            SPLITTER_FEATURE,
                            f"{where}: {path}.{feature} has no SMI form and is not applied",
                            entry.origin,
                            f"{path}.{feature}",
                        )
                follow = subset in (None, "") and service != entry.name
                if service in merged:
                    self.diag(
                        WEIGHTS,
                        f"{where}: {service} is listed twice (Consul rejects that); weights added",
                        entry.origin,
                        path,
                    )
                    previous, prev_follow = merged[service]
                    merged[service] = (previous + hundredths, prev_follow and follow)
                else:
                    merged[service] = (hundredths, follow)
            total = sum(h for h, _ in merged.values())
            if fractional:
                self.diag(
                    WEIGHTS,
                    f"{where}: weights finer than 0.01% are rounded to 0.01% as Consul does",
                    entry.origin,
                    "spec.splits",
                )
            if merged and total != 10000:
                self.diag(
                    WEIGHTS,
                    f"{where}: weights add up to {total / 100:g}%, not 100% (Consul rejects that); "
                    "read as relative weights",
                    entry.origin,
                    "spec.splits",
                )
            if merged and total == 0:
                self.diag(INVALID, f"{where}: every weight is 0; left out", entry.origin, "spec.splits")
                continue
            if merged:
                self.splitters[key] = [(svc, h, f) for svc, (h, f) in merged.items()]

    def distribution(
        self, cns: str, service: str, follow: bool, seen: frozenset[str] = frozenset()
    ) -> _Distribution:
        """Where Consul sends traffic addressed to ``service``: its splitter, recursively, else itself."""
        splits = self.splitters.get((cns, service)) if follow else None
        if not splits or service in seen:
            return {service: Fraction(1)}
        total = sum(h for _, h, _ in splits)
        out: _Distribution = {}
        for backend, hundredths, chain in splits:
            if hundredths == 0:
                out.setdefault(backend, Fraction(0))
                continue
            inner = self.distribution(cns, backend, chain, seen | {service})
            for leaf, share in inner.items():
                out[leaf] = out.get(leaf, Fraction(0)) + share * Fraction(hundredths, total)
        return out

    def read_routers(self) -> None:
        """``self.routers[(Consul ns, service)]``: [(match or None if left out, distribution, route path)]."""
        self.routers: dict[tuple[str, str], list[tuple[HTTPMatch | None, _Distribution, str]]] = {}
        for key, entry in sorted(self.entries["ServiceRouter"].items()):
            where = f"ServiceRouter {entry.namespace}/{entry.name}"
            raw = entry.spec.get("routes") or []
            if not isinstance(raw, list):
                self.diag(
                    INVALID, f"{where}: spec.routes is not a list; left out", entry.origin, "spec.routes"
                )
                continue
            routes = []
            for i, route in enumerate(raw):
                path = f"spec.routes[{i}]"
                if not isinstance(route, Mapping):
                    self.diag(INVALID, f"{where}: {path} is not a mapping; left out", entry.origin, path)
                    continue
                match = route.get("match")
                http = match.get("http") if isinstance(match, Mapping) else None
                if match is not None and not isinstance(match, Mapping):
                    self.diag(
                        INVALID, f"{where}: {path}.match is not a mapping; left out", entry.origin, path
                    )
                    continue
                hm = self.http_match(
                    http,
                    f"route-{i}",
                    f"{where} {path}",
                    entry.origin,
                    f"{path}.match.http",
                    intentions=False,
                )
                dest = route.get("destination") or {}
                if not isinstance(dest, Mapping):
                    self.diag(
                        INVALID, f"{where}: {path}.destination is not a mapping; left out", entry.origin, path
                    )
                    continue
                service = dest.get("service") or entry.name
                if not isinstance(service, str):
                    self.diag(
                        INVALID,
                        f"{where}: {path}.destination.service is not a string; left out",
                        entry.origin,
                        f"{path}.destination.service",
                    )
                    continue
                subset = dest.get("serviceSubset")
                self._subset(entry, service, subset, f"{path}.destination.serviceSubset", ROUTE_FEATURE)
                for feature in ("namespace", "partition", *_ROUTE_DESTINATION_FEATURES):
                    if dest.get(feature) not in (None, "", {}, [], 0, False):
                        self.diag(
                            ROUTE_FEATURE,
                            f"{where}: {path}.destination.{feature} has no SMI form and is not applied",
                            entry.origin,
                            f"{path}.destination.{feature}",
                        )
                # routes never chain routers, but a destination without a subset goes through its splitter
                dist = self.distribution(key[0], service, subset in (None, ""))
                routes.append((hm, dist, path))
            self.routers[key] = routes

    def build_splits(self) -> None:
        services = sorted(set(self.routers) | set(self.splitters))
        for key in services:
            router = self.entries["ServiceRouter"].get(key)
            splitter = self.entries["ServiceSplitter"].get(key)
            owner = router or splitter
            assert owner is not None
            name = key[1]
            ns = owner.namespace
            default = self.distribution(key[0], name, True)
            unsplit = {name: Fraction(1)}
            routes = self.routers.get(key, [])
            elsewhere = [(m, d, p) for m, d, p in routes if m is not None and d != default]
            if not elsewhere:
                if default != unsplit and splitter is not None:
                    self._add_split(ns, name, default, None, (), splitter)
                continue
            assert router is not None
            if default != unsplit:
                dropped = ", ".join(p for _, _, p in elsewhere)
                self.diag(
                    ROUTING_SHAPE,
                    f"ServiceRouter {ns}/{name}: SMI has one TrafficSplit per root, and the "
                    f"ServiceSplitter for {name} already takes the unmatched traffic; route(s) {dropped} to "
                    "other destinations are left out",
                    router.origin,
                )
                assert splitter is not None
                self._add_split(ns, name, default, None, (), splitter)
                continue
            target = elsewhere[0][1]
            kept = [m for m, d, _ in elsewhere if d == target]
            others = [p for _, d, p in elsewhere if d != target]
            if others:
                self.diag(
                    ROUTING_SHAPE,
                    f"ServiceRouter {ns}/{name}: SMI has one TrafficSplit per root; only routes "
                    f"to {', '.join(target)} are kept, route(s) {', '.join(others)} to other destinations are "
                    "left out (their requests go to the root)",
                    router.origin,
                )
            first_kept = next(i for i, (m, d, _) in enumerate(routes) if m is not None and d == target)
            shadowing = [p for m, d, p in routes[:first_kept] if m is not None and d == default]
            if shadowing:
                self.diag(
                    ROUTING_SHAPE,
                    f"ServiceRouter {ns}/{name}: route(s) {', '.join(shadowing)} to {name} "
                    "itself come first and take precedence in Consul; SMI matches have no order, so requests "
                    "matching both go to the split",
                    router.origin,
                )
            group = self.unique("group", ns, f"{name}.routes")
            self.route_groups.append(RouteGroup(ns, group, tuple(kept), router.origin))
            self._add_split(ns, name, target, tuple(kept), (group,), router)

    def _add_split(
        self,
        ns: str,
        root: str,
        dist: _Distribution,
        matches: tuple[HTTPMatch, ...] | None,
        groups: tuple[str, ...],
        entry: _Entry,
    ) -> None:
        weights = _integer_weights(dist)
        backends = tuple(
            SplitBackend(service, weight, entry.origin.child("spec"))
            for service, weight in zip(dist, weights, strict=True)
        )
        name = self.unique("split", ns, root)
        self.splits.append(Split(ns, name, root, backends, matches, groups, entry.origin))

    # -- identities ----------------------------------------------------------------------------

    def _service_accounts(self) -> dict[str, set[str]]:
        """ServiceAccount name -> namespaces where the inventory shows it running."""
        if not hasattr(self, "_sa_index"):
            index: dict[str, set[str]] = {}
            for pod in self.inventory.pods:
                index.setdefault(pod.service_account, set()).add(pod.namespace)
            for svc in self.inventory.services:
                for sa in svc.service_accounts:
                    index.setdefault(sa, set()).add(svc.namespace)
                for ep in svc.endpoints:
                    if ep.service_account:
                        index.setdefault(ep.service_account, set()).add(svc.namespace)
            self._sa_index = index
        return self._sa_index

    _sa_index: dict[str, set[str]]

    def identities(
        self, name: str, namespaces: Sequence[str] | None, home: str, entry: _Entry, path: str
    ) -> list[Identity]:
        """The ServiceAccounts behind Consul service ``name``.

        ``namespaces`` None means "any Kubernetes namespace" (Consul CE); ``home`` is the fallback
        namespace when the inventory knows nothing. A ServiceAccount of that name wins; otherwise the
        ServiceAccounts behind a Kubernetes Service of that name (consul-k8s without ACLs).
        """
        known = self._service_accounts()
        spaces = sorted(
            known.get(name, set()) if namespaces is None else set(namespaces) & known.get(name, set())
        )
        if spaces:
            if namespaces is None and len(spaces) > 1:
                self.diag(
                    IDENTITY,
                    f"{entry.label()}: on Consul CE the source {name!r} is that service in every namespace: "
                    f"ServiceAccount {name} in {', '.join(spaces)}",
                    entry.origin,
                    path,
                )
            return [Identity(ns, name) for ns in spaces]
        candidates = [home] if namespaces is None else list(namespaces)
        behind: list[Identity] = []
        for ns in candidates:
            svc = self.inventory.service(ns, name)
            if svc is not None:
                behind.extend(Identity(ns, sa) for sa in svc.service_accounts)
        if behind:
            self.diag(
                IDENTITY,
                f"{entry.label()}: Consul service {name!r} is the Kubernetes Service {name}, whose "
                f"pods run as {', '.join(str(i) for i in behind)}",
                entry.origin,
                path,
            )
            return behind
        return [Identity(ns, name) for ns in candidates]

    def known_identities(self, namespace: str | None) -> list[Identity]:
        out = {
            Identity(ns, sa)
            for sa, spaces in self._service_accounts().items()
            for ns in spaces
            if namespace is None or ns == namespace
        }
        return sorted(out, key=lambda i: (i.namespace, i.name))

    # -- intentions ----------------------------------------------------------------------------

    def read_intentions(self) -> None:
        entries = sorted(self.entries["ServiceIntentions"].values(), key=lambda e: e.index)
        for entry in entries:
            dest = entry.spec["destination"]
            if dest["name"] == WILDCARD:
                self._wildcard_destination(entry)
        for entry in entries:
            if entry.spec["destination"]["name"] != WILDCARD:
                self._intentions(entry)

    def _wildcard_destination(self, entry: _Entry) -> None:
        sources = entry.spec.get("sources")
        sources = sources if isinstance(sources, list) else []
        for j, src in enumerate(sources):
            if not isinstance(src, Mapping):
                continue
            if src.get("action") == "deny" and src.get("name") == WILDCARD and not src.get("permissions"):
                self.global_deny = True
                continue
            self.diag(
                WILDCARD_NAME,
                f"{entry.label()}: sources[{j}] ({src.get('name')!r}, "
                f'{src.get("action") or "permissions"}) on the wildcard destination "*" has no SMI form '
                "(TrafficTargets name one destination each); left out",
                entry.origin,
                f"spec.sources[{j}]",
            )
        if self.global_deny and self.options.access_mode == "permissive":
            self.diag(
                WILDCARD_NAME,
                f"{entry.label()}: the input denies every destination without intentions, "
                "but the translation runs in permissive mode, which allows them",
                entry.origin,
                hint="use --access-mode enforce to keep that default",
            )

    def _source_namespaces(self, src: Mapping[str, Any], entry: _Entry, path: str) -> list[str] | None:
        namespace = src.get("namespace")
        if namespace in (None, ""):
            return None if not self.enterprise else [entry.namespace]
        if not self.enterprise:
            self.diag(
                INVALID,
                f"{entry.label()}: {path}.namespace needs Consul Enterprise namespaces; read as namespace "
                f"{namespace}",
                entry.origin,
                f"{path}.namespace",
                severity=Severity.WARNING,
            )
        if namespace == WILDCARD:
            return None
        return [str(namespace)]

    def _intentions(self, entry: _Entry) -> None:
        spec = entry.spec
        dest = spec["destination"]
        dest_ns = (
            dest.get("namespace")
            if isinstance(dest.get("namespace"), str) and dest.get("namespace")
            else None
        )
        if dest_ns is not None and not self.enterprise:
            self.diag(
                INVALID,
                f"{entry.label()}: destination.namespace needs Consul Enterprise namespaces; read as "
                f"namespace {dest_ns}",
                entry.origin,
                "spec.destination.namespace",
                severity=Severity.WARNING,
            )
        home = dest_ns or entry.namespace
        where = entry.label()
        destinations = self.identities(dest["name"], [home], home, entry, "spec.destination.name")
        jwt_all = spec.get("jwt") not in (None, {}, [])
        if jwt_all:
            self.diag(
                JWT,
                f"{where}: spec.jwt requires a JWT for every request; the allows that depend on it are "
                "left out",
                entry.origin,
                "spec.jwt",
            )
        for key in sorted(set(spec) - {"destination", "sources", "jwt"}):
            self.diag(INVALID, f"{where}: unknown field spec.{key}; ignored", entry.origin, f"spec.{key}")
        protocol, explicit = self.protocol(home, dest["name"])
        sources = spec.get("sources")
        if not isinstance(sources, list) or not sources:
            self.diag(
                INVALID,
                f"{where}: spec.sources is missing or empty (Consul requires one); left out",
                entry.origin,
                "spec.sources",
            )
            return
        l4: list[Identity] = []
        l7: list[tuple[list[Identity], list[HTTPMatch], str]] = []
        wildcard_grants: list[tuple[list[str] | None, bool, list[HTTPMatch], int]] = []
        exact_sources: set[Identity] = set()
        deny_all = False
        for j, src in enumerate(sources):
            path = f"spec.sources[{j}]"
            if not isinstance(src, Mapping) or not isinstance(src.get("name"), str) or not src.get("name"):
                self.diag(INVALID, f"{where}: {path} has no name; left out", entry.origin, path)
                continue
            name = str(src["name"])
            foreign = [k for k in ("peer", "partition", "samenessGroup") if src.get(k) not in (None, "")]
            if foreign:
                self.diag(
                    FOREIGN_SOURCE,
                    f"{where}: {path} ({name}) comes through {', '.join(foreign)} "
                    f"{src.get(foreign[0])!r}, which SMI cannot name; left out",
                    entry.origin,
                    f"{path}.{foreign[0]}",
                )
                continue
            namespaces = self._source_namespaces(src, entry, path)
            action = src.get("action")
            permissions = src.get("permissions")
            if action not in (None, "") and permissions:
                self.diag(
                    INVALID,
                    f"{where}: {path} sets both action and permissions (Consul rejects that); left out",
                    entry.origin,
                    path,
                )
                continue
            if name == WILDCARD and action == "deny" and not permissions:
                deny_all = True
                continue
            if name != WILDCARD:
                ids = self.identities(name, namespaces, home, entry, f"{path}.name")
                exact_sources.update(ids)
            else:
                ids = []
            if action == "deny":
                self.diag(
                    DENY,
                    f"{where}: {path} denies {name}; SMI denies whatever no TrafficTarget allows, so "
                    "nothing is added",
                    entry.origin,
                    f"{path}.action",
                )
                continue
            if jwt_all:
                continue
            if action == "allow":
                if name == WILDCARD:
                    wildcard_grants.append((namespaces, True, [], j))
                else:
                    l4.extend(i for i in ids if i not in l4)
                continue
            if not isinstance(permissions, list) or not permissions:
                self.diag(
                    INVALID,
                    f"{where}: {path} has neither action nor permissions; left out",
                    entry.origin,
                    path,
                )
                continue
            matches = self._permissions(entry, name, permissions, path, protocol, explicit)
            if not matches:
                continue
            if name == WILDCARD:
                wildcard_grants.append((namespaces, False, matches, j))
            else:
                l7.append((ids, matches, name))
        for namespaces, is_l4, matches, j in wildcard_grants:
            spaces = [None] if namespaces is None else list(namespaces)
            expanded = [i for ns in spaces for i in self.known_identities(ns) if i not in exact_sources]
            self.diag(
                WILDCARD_NAME,
                f'{where}: sources[{j}] allows every service ("*"); SMI names its sources, so '
                f"it is read as the identities the input knows: "
                f"{', '.join(str(i) for i in expanded) or 'none, so nothing is allowed'}",
                entry.origin,
                f"spec.sources[{j}].name",
            )
            if is_l4:
                l4.extend(i for i in expanded if i not in l4)
            elif expanded:
                l7.append((expanded, matches, "wildcard"))
        if not deny_all and not self.global_deny:
            self.diag(
                L7_DEFAULT,
                f'{where}: no "*" deny source here nor a "*" -> "*" deny intention in the '
                "input: services not listed reach the destination when Consul's default intention policy "
                "allows (ACLs off); SMI denies them",
                entry.origin,
                "spec.sources",
            )
        for destination in destinations:
            self._targets_for(entry, destination, l4, l7, len(destinations) > 1)

    def _permissions(
        self, entry: _Entry, name: str, permissions: list[Any], path: str, protocol: str, explicit: bool
    ) -> list[HTTPMatch]:
        where = entry.label()
        if explicit and protocol not in L7_PROTOCOLS:
            self.diag(
                L7_ON_TCP,
                f"{where}: {path}.permissions need an HTTP destination, but its protocol is "
                f"{protocol!r}; Consul rejects them there (read as written)",
                entry.origin,
                f"{path}.permissions",
            )
        allows: list[HTTPMatch] = []
        denies: list[tuple[HTTPMatch | None, str]] = []  # (match, path); None: a deny we could not read
        closed = False
        for k, perm in enumerate(permissions):
            ppath = f"{path}.permissions[{k}]"
            if not isinstance(perm, Mapping) or perm.get("action") not in ("allow", "deny"):
                self.diag(
                    INVALID, f"{where}: {ppath} needs action allow or deny; left out", entry.origin, ppath
                )
                continue
            if closed:
                self.diag(
                    DENY,
                    f"{where}: {ppath} follows a deny of every request and is never reached",
                    entry.origin,
                    ppath,
                )
                continue
            http = perm.get("http")
            if not isinstance(http, Mapping) or not http:
                self.diag(
                    INVALID,
                    f"{where}: {ppath}.http is missing or empty (Consul requires it); left out",
                    entry.origin,
                    ppath,
                )
                continue
            match = self.http_match(
                http, f"permission-{k}", f"{where} {ppath}", entry.origin, f"{ppath}.http", intentions=True
            )
            catch_all = (
                match is not None and match.path_regex is None and not match.methods and not match.headers
            )
            if perm["action"] == "deny":
                if catch_all:
                    closed = True
                    continue  # denying whatever is left is SMI's own default: exact
                self.diag(
                    DENY,
                    f"{where}: {ppath} denies {name} some requests; SMI cannot subtract, so allows "
                    "after it that may overlap it are left out",
                    entry.origin,
                    ppath,
                )
                denies.append((match, ppath))
                continue
            if perm.get("jwt") not in (None, {}, []):
                self.diag(
                    JWT, f"{where}: {ppath} allows only with a JWT; left out", entry.origin, f"{ppath}.jwt"
                )
                continue
            if match is None:
                continue
            shadow = next((p for d, p in denies if d is None or not disjoint(d, match)), None)
            if shadow is not None:
                self.diag(
                    DENY,
                    f"{where}: {ppath} may overlap the deny at {shadow}, which Consul checks first; "
                    "left out (the safe side)",
                    entry.origin,
                    ppath,
                )
                continue
            allows.append(match)
        if allows and not closed:
            self.diag(
                L7_DEFAULT,
                f"{where}: {path} ends without a deny of every request; Consul sends requests no "
                "permission matches to its default intention policy (allow with ACLs off), SMI denies them",
                entry.origin,
                f"{path}.permissions",
                hint="end the list with {action: deny, http: {pathPrefix: /}}",
            )
        return allows

    def _targets_for(
        self,
        entry: _Entry,
        destination: Identity,
        l4: list[Identity],
        l7: list[tuple[list[Identity], list[HTTPMatch], str]],
        several: bool,
    ) -> None:
        ns = entry.namespace
        base = f"{entry.name}.{destination.name}" if several else entry.name
        made = False
        if l4:
            route = self.unique("port", ns, f"{base}.l4")
            self.port_routes.append(PortRoute(ns, route, "tcp", (), entry.origin))
            rule = AccessRule("tcp", route, (), (), entry.origin.child("spec.sources"))
            name = self.unique("target", ns, base)
            self.targets.append(TrafficTarget(ns, name, destination, tuple(l4), (rule,), entry.origin))
            made = True
        for ids, matches, source_name in l7:
            group = self.unique("group", ns, f"{base}.from-{source_name}")
            self.route_groups.append(RouteGroup(ns, group, tuple(matches), entry.origin))
            rule = AccessRule("http", group, tuple(matches), (), entry.origin.child("spec.sources"))
            name = self.unique("target", ns, f"{base}.from-{source_name}")
            self.targets.append(TrafficTarget(ns, name, destination, tuple(ids), (rule,), entry.origin))
            made = True
        if not made:
            # the destination still has intentions, so it is deny-by-default: a TrafficTarget with no source
            name = self.unique("target", ns, base)
            self.targets.append(TrafficTarget(ns, name, destination, (), (), entry.origin))

    # -- the whole -----------------------------------------------------------------------------

    def run(self) -> tuple[IR, Report]:
        self.report.documents = len(self.objects)
        self.collect()
        self.read_defaults()
        self.read_resolvers()
        self.read_splitters()
        self.read_routers()
        self.build_splits()
        self.read_intentions()

        def by_name(node: Any) -> tuple[str, str]:
            return (node.namespace, node.name)

        ir = IR(
            services=self.inventory.services,
            pods=self.inventory.pods,
            route_groups=tuple(sorted(self.route_groups, key=by_name)),
            port_routes=tuple(sorted(self.port_routes, key=by_name)),
            splits=tuple(sorted(self.splits, key=by_name)),
            targets=tuple(sorted(self.targets, key=by_name)),
        )
        return ir, self.report


# --- the backend -----------------------------------------------------------------------------------


class ConsulBackend:
    """consul-k8s config entries: ServiceSplitter/Router/Resolver/Defaults and ServiceIntentions."""

    name = "consul"
    description = (
        "Consul (consul-k8s CRDs): ServiceSplitter, ServiceRouter, ServiceDefaults, ServiceIntentions"
    )

    def emit(self, ir: IR, options: Options) -> Emission:
        return _Emitter(ir, options).run()

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        """Consul config entries (as emitted or hand-written) -> IR, every loss reported.

        - ServiceSplitter/ServiceRouter/ServiceResolver become one TrafficSplit per root service:
          Consul's chaining of splitters is flattened into leaf weights (percent x 100, exact); a router
          becomes a split with ``matches`` when its routes go to one destination (others reported).
        - ServiceIntentions become TrafficTargets: ``action: allow`` sources a TCP rule on every port
          (an L4 allow covers HTTP too); permissions an HTTP rule per source. Deny sources and a trailing
          deny-everything permission are SMI's default; denies before allows cannot be subtracted, so the
          allows after them are left out (the safe side). ``*`` sources become the identities the input
          knows; ``*`` destinations are reported (a ``*`` -> ``*`` deny is the enforce access mode).
        - Consul names become identities through the inventory: a ServiceAccount of that name (in every
          namespace on Consul CE, where names ignore namespaces), else the ServiceAccounts behind a
          Service of that name, else ``<namespace>/<name>``.
        - Two entries for one Consul name: the first in input order is applied (consul-k8s admits the
          first applied), both are reported; the same object twice: the later replaces the earlier.
        """
        return _Ingester(objects, inventory, options).run()
